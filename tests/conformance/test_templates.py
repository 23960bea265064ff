"""Placeholders: fresh per case, stable per name, escaped in XML."""

from __future__ import annotations

import pytest

from conformance.result import Endpoints
from conformance.templates import Document, Scope, TemplateError, render

ENDPOINTS = Endpoints(affinity_domain="1.2.3", repository_unique_id="1.2.3.4")


def scope(number: int = 1) -> Scope:
    return Scope(ENDPOINTS, "2.25.1234", number, {"doc1": Document("doc1", b"abc")})


def test_uid_is_stable_per_name_and_under_the_run_root() -> None:
    s = scope(7)
    assert render("{{uid:a}} {{uid:a}} {{uid:b}}", s) == "2.25.1234.7.1 2.25.1234.7.1 2.25.1234.7.2"


def test_each_case_gets_a_fresh_patient() -> None:
    assert render("{{patient_id}}", scope(1)) != render("{{patient_id}}", scope(2))


def test_patient_id_is_a_cx_in_the_affinity_domain_escaped_in_xml() -> None:
    assert render("{{patient_id}}", scope(), escape=True).endswith("^^^&amp;1.2.3&amp;ISO")


def test_document_hash_and_size() -> None:
    assert render("{{sha1:doc1}} {{size:doc1}}", scope()) == (
        "a9993e364706816aba3e25717850c26c9cd0d89d 3"
    )


def test_ref_reads_a_capture() -> None:
    s = scope()
    s.captured["find.entry"] = "urn:uuid:x"
    assert render("{{ref:find.entry}}", s) == "urn:uuid:x"


@pytest.mark.parametrize("text", ["{{nope}}", "{{ref:missing}}", "{{sha1:doc9}}"])
def test_unfillable_placeholder_is_an_error(text: str) -> None:
    with pytest.raises(TemplateError):
        render(text, scope())


def test_unique_ids_longer_than_64_characters_are_refused() -> None:
    s = Scope(ENDPOINTS, "2.25." + "9" * 60, 1)
    with pytest.raises(TemplateError, match="64"):
        render("{{uid:a}}", s)
