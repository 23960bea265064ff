"""The plan format: shipped plans load, families expand, bad plans are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.plan import PlanError, case_requirements, load_plan_file, load_plans, select

TEMPLATES = Path(__file__).resolve().parents[2] / "conformance" / "plans" / "templates"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_plans_have_at_least_150_cases_with_unique_ids() -> None:
    cases = load_plans()
    assert len(cases) >= 150
    assert len({c.case_id for c in cases}) == len(cases)


def test_shipped_plans_cover_the_core_error_codes() -> None:
    tags = {t for c in load_plans() for t in c.tags}
    for code in (
        "XDSPatientIdDoesNotMatch", "XDSUnknownPatientId", "XDSRegistryDuplicateUniqueIdInMessage",
        "XDSDuplicateUniqueIdInRegistry", "XDSNonIdenticalHash", "XDSNonIdenticalSize",
        "XDSRegistryDeprecatedDocumentError", "UnresolvedReferenceException", "XDSMissingDocument",
        "XDSMissingDocumentMetadata", "XDSRepositoryMetadataError", "XDSRegistryMetadataError",
        "XDSExtraMetadataNotSaved", "XDSStoredQueryMissingParam", "XDSStoredQueryParamNumber",
        "XDSUnknownStoredQuery", "XDSRegistryError", "XDSResultNotSinglePatient",
        "XDSDocumentUniqueIdError", "XDSUnknownRepositoryId", "PartialSuccess", "RPLC",
    ):  # fmt: skip
        assert code in tags, code


FAMILY = """
[[family]]
id = "fam-%{attr}"
title = "without %{attr}"
rows = [ { attr = "a" }, { attr = "b" } ]
[[family.steps]]
kind = "wait"
seconds = 0
"""


def test_family_expands_one_case_per_row(tmp_path: Path) -> None:
    cases = load_plan_file(write(tmp_path, FAMILY), TEMPLATES)
    assert [(c.case_id, c.title) for c in cases] == [("fam-a", "without a"), ("fam-b", "without b")]


def test_family_variable_without_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no column 'other'"):
        load_plan_file(write(tmp_path, FAMILY.replace('%{attr}"\ntitle', '%{other}"\ntitle')))


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('kind = "teleport"', "unknown kind"),
        ('kind = "query"\nbogus = 1', "unknown keys"),
        ('kind = "submit"\ntemplate = "missing.xml"', "does not exist"),
        ('kind = "query"\nexpect = { status = "Fine" }', "status must be"),
        ('kind = "feed"\nexpect = { ack = "OK" }', "ack must be"),
        ('kind = "query"\nassert = [ { xpath = "//x" } ]', "exactly one of"),
        ('kind = "query"\nexpect = { fault = { subcode = "x" } }', "fault needs a code"),
        ('kind = "query"\npoll = { seconds = -1 }', "poll seconds"),
        ('kind = "query"\npoll = { until = 3 }', "poll is a table"),
        ('kind = "stow"\nseries = [0]', "series must be"),
        ('kind = "stow"\nseries = "two"', "series must be"),
    ],
)
def test_bad_step_is_refused(tmp_path: Path, step: str, message: str) -> None:
    text = f'[[case]]\nid = "c"\ntitle = "t"\n[[case.steps]]\n{step}\n'
    with pytest.raises(PlanError, match=message):
        load_plan_file(write(tmp_path, text), TEMPLATES)


def test_duplicate_case_ids_are_refused(tmp_path: Path) -> None:
    case = '[[case]]\nid = "same"\ntitle = "t"\n[[case.steps]]\nkind = "wait"\n'
    (tmp_path / "a.toml").write_text(case)
    (tmp_path / "b.toml").write_text(case)
    with pytest.raises(PlanError, match="also in"):
        load_plans(tmp_path)


def test_only_globs_ids_and_tags() -> None:
    cases = load_plans()
    assert all(c.case_id.startswith("iti43-") for c in select(cases, "iti43-*"))
    assert all("XDSNonIdenticalHash" in c.tags for c in select(cases, "XDSNonIdenticalHash"))
    assert len(select(cases, "iti43-*,soap-*")) == len(select(cases, "iti43-*")) + len(
        select(cases, "soap-*")
    )


def test_requirements_follow_from_step_kinds() -> None:
    cases = {c.case_id: c for c in load_plans()}
    assert case_requirements(cases["rad69-unknown-repository"]) == ("imaging_source",)
    assert case_requirements(cases["rad69-retrieve-imaging-document-set"]) == (
        "imaging_source_id",
        "mllp",
        "imaging_source",
        "registry",
        "repository",
    )
    assert case_requirements(cases["iti57-unresolved-reference"]) == ("mllp", "registry")


def test_iti57_cases_are_an_option() -> None:
    iti57 = [c for c in load_plans() if "ITI-57" in c.tags]
    assert len(iti57) >= 15
    assert {c.option for c in iti57} == {"metadata-update"}
