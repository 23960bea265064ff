"""conformance/testkit plan.py, assertions.py and logs.py on small plans and responses."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from conformance.testkit.assertions import (
    Contents,
    UnknownCheck,
    error_checks,
    expected_contents,
    status_checks,
    xpath_assert,
)
from conformance.testkit.logs import LogLookupError, RunLogs, UpstreamNotRunnable
from conformance.testkit.plan import Expectation, UseId, parse_testplan, read_index
from ebxml.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    SUBMISSION_SET_NODE,
    AssociationType,
    AvailabilityStatus,
    ResponseStatus,
)

PLAN = """<TestPlan><Test>1/s</Test>
  <TestStep id="q"><ExpectedStatus>Failure</ExpectedStatus>
    <ExpectedErrorMessage>XDSUnknownPatientId</ExpectedErrorMessage><AltPatientId/>
    <StoredQueryTransaction><XDSb/><MetadataFile>q.xml</MetadataFile>
      <UseId testdir="../a" id="Doc" symbol="$u$" step="s" section="AssignedUids"/>
      <ExpectedContents><Documents count="2"/></ExpectedContents><Bogus/>
    </StoredQueryTransaction></TestStep></TestPlan>"""


def _response(status: str = ResponseStatus.SUCCESS, children: str = "") -> etree._Element:
    return etree.fromstring(
        f'<query:AdhocQueryResponse xmlns:query="{NS_QUERY}" xmlns:rim="{NS_RIM}" '
        f'xmlns:rs="{NS_RS}" status="{status}"><rim:RegistryObjectList>{children}'
        "</rim:RegistryObjectList></query:AdhocQueryResponse>"
    )


ONE_DOC = (
    f'<rim:RegistryPackage id="ss"/><rim:Classification id="c" classifiedObject="ss" '
    f'classificationNode="{SUBMISSION_SET_NODE}"/>'
    f'<rim:ExtrinsicObject id="d" status="{AvailabilityStatus.APPROVED}"/>'
    f'<rim:Association id="a" sourceObject="ss" targetObject="d" '
    f'associationType="{AssociationType.HAS_MEMBER}"/>'
)


@pytest.fixture
def plan_path(tmp_path: Path) -> Path:
    section = tmp_path / "1" / "s"
    section.mkdir(parents=True)
    (section / "testplan.xml").write_text(PLAN)
    (tmp_path / "1" / "index.idx").write_text("s\n\n")
    return section / "testplan.xml"


def test_index_lists_sections_in_order(plan_path: Path) -> None:
    assert read_index(plan_path.parent.parent) == ["s"]


def test_step_expectations_are_read(plan_path: Path) -> None:
    step = parse_testplan(plan_path).steps[0]
    assert (step.expected_status, step.expected_error_messages, step.alt_patient_id) == (
        "Failure",
        ("XDSUnknownPatientId",),
        True,
    )


def test_use_id_is_read(plan_path: Path) -> None:
    transaction = parse_testplan(plan_path).steps[0].transaction
    assert transaction.use_ids == (UseId("../a", "Doc", "$u$", "s", "AssignedUids"),)


def test_unknown_transaction_child_is_kept_by_name(plan_path: Path) -> None:
    assert parse_testplan(plan_path).steps[0].transaction.unknown == ("Bogus",)


def test_status_check_compares_the_response_status() -> None:
    [check] = status_checks("Failure", _response(), "t")
    assert not check.passed


def test_expected_error_message_matches_an_error_code() -> None:
    body = _response(
        ResponseStatus.FAILURE,
    )
    etree.SubElement(body, f"{{{NS_RS}}}RegistryError", errorCode="XDSUnknownPatientId")
    [check] = error_checks(("XDSUnknownPatientId",), (), body, "t")
    assert check.passed


def test_contents_sorts_objects_by_kind() -> None:
    contents = Contents.of(_response(children=ONE_DOC))
    shape = (len(contents.submission_sets), len(contents.documents), len(contents.associations))
    assert shape == (1, 1, 1)


def test_ss_with_one_doc_passes_on_a_member_document() -> None:
    checks = expected_contents((Expectation("SSwithOneDoc"),), _response(children=ONE_DOC), "t")
    assert all(c.passed for c in checks)


def test_doc_dep_fails_on_an_approved_document() -> None:
    [check] = expected_contents((Expectation("DocDep"),), _response(children=ONE_DOC), "t")
    assert not check.passed


def test_count_check_compares_the_count() -> None:
    expectation = Expectation("ObjectRefs", (("count", "3"),))
    [check] = expected_contents((expectation,), _response(children=ONE_DOC), "t")
    assert (check.passed, check.actual) == (False, "0")


def test_unknown_expected_contents_is_reported() -> None:
    with pytest.raises(UnknownCheck):
        expected_contents((Expectation("Mystery"),), _response(), "t")


def test_xpath_assert_is_evaluated_as_a_boolean() -> None:
    from conformance.testkit.plan import Assert

    doc = _response(children=ONE_DOC)
    text = f"//*[local-name()='ExtrinsicObject']/@status = '{AvailabilityStatus.APPROVED}'"
    assert xpath_assert(Assert("a", None, text, etree.Element("Assert")), doc, "t").passed


def test_use_id_of_a_section_that_did_not_run_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LogLookupError):
        RunLogs().use_id(tmp_path / "s", UseId("../a", "Doc", "$u$", "s", "AssignedUids"))


def test_use_id_reads_the_logged_value(tmp_path: Path) -> None:
    logs = RunLogs()
    logs.section(tmp_path / "a").step("s").assign("AssignedUids", "Doc", "1.2.3")
    assert logs.use_id(tmp_path / "b", UseId("../a", "Doc", "$u$", "s", "AssignedUids")) == "1.2.3"


def test_a_step_that_could_not_run_makes_its_readers_not_runnable(tmp_path: Path) -> None:
    logs = RunLogs()
    logs.section(tmp_path / "a").step("s").not_runnable = "no images"
    with pytest.raises(UpstreamNotRunnable):
        logs.step(tmp_path / "a", "s")
