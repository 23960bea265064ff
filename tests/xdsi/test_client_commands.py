"""xdsi.client_commands: the pieces that need no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from xdsi.client_commands import (
    FORMAT_BY_MIME,
    SubmitOptions,
    UniqueIds,
    UsageError,
    build_submission,
    parse_code,
    patient_cx,
)
from xdsi.config import load_config


def test_parse_code_with_display() -> None:
    code = parse_code("REPORTS^1.3.6.1.4.1.19376.1.2.6.1^Reports", "--class-code")
    assert (code.code, code.scheme, code.display) == (
        "REPORTS",
        "1.3.6.1.4.1.19376.1.2.6.1",
        "Reports",
    )


def test_parse_code_needs_a_scheme() -> None:
    with pytest.raises(UsageError):
        parse_code("REPORTS", "--class-code")


def test_bare_patient_id_is_qualified_with_the_affinity_domain(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert patient_cx("P1", config) == f"P1^^^&{config.registry.affinity_domain}&ISO"


def test_unique_ids_increase_under_the_root() -> None:
    ids = UniqueIds("1.2.3")
    first, second = ids.next(5), ids.next(5)
    assert first.startswith("1.2.3.5.") and first != second


def test_unique_ids_from_a_uuid_root_fit_64_characters(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    assert len(UniqueIds(config.oid_root).next(5)) <= 64


def test_submission_has_one_entry_per_file_with_format_by_mime(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    files = [tmp_path / "a.pdf", tmp_path / "b.txt"]
    submission, documents = build_submission(
        config, files, SubmitOptions(patient="P1"), UniqueIds(config.oid_root)
    )
    formats = [e.format_code for e in submission.document_entries]
    assert formats == [FORMAT_BY_MIME["application/pdf"], FORMAT_BY_MIME["text/plain"]]
    assert [m for _, _, m in documents] == ["application/pdf", "text/plain"]
    assert len(submission.associations) == 2
