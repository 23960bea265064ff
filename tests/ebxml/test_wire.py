"""ITI-18 messages and rs:RegistryResponse reading (ebxml/wire.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, RegistryResponse, StoredObject
from ebxml.model import DocumentEntry, ObjectRef
from ebxml.parse import parse_submit_objects_request
from ebxml.serialize import leaf_class, registry_response
from ebxml.vocabulary import (
    NS_QUERY,
    NS_RIM,
    NS_RS,
    UUID_PREFIX,
    AvailabilityStatus,
    ErrorSeverity,
    ResponseStatus,
    ReturnType,
    StoredQuery,
)
from ebxml.wire import (
    adhoc_query_request,
    adhoc_query_response,
    parse_adhoc_query_request,
    parse_adhoc_query_response,
    parse_registry_response,
)

RIM = f"{{{NS_RIM}}}"
RS = f"{{{NS_RS}}}"
QUERY = f"{{{NS_QUERY}}}"
DOC_ID = f"{UUID_PREFIX}3f2c1b4a-5d6e-4f70-8192-a3b4c5d6e7f8"
REFERENCE = Path(
    os.environ.get(
        "XDSI_REFERENCE_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "reference")
    )
)
TESTKIT = REFERENCE / "testkit" / "tests"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True)


@pytest.fixture
def submission(fixture_xml, uuids):
    return parse_submit_objects_request(fixture_xml("iti42_symbolic.xml"), uuid_factory=uuids).value


# --- AdhocQueryRequest ---------------------------------------------------------------------


@pytest.fixture
def find_documents(fixture_xml) -> AdhocQueryRequest:
    return parse_adhoc_query_request(fixture_xml("iti18_find_documents.xml"))


def test_query_id_and_home(find_documents) -> None:
    assert find_documents.query_id == StoredQuery.FIND_DOCUMENTS
    assert find_documents.home == "urn:oid:1.2.3.4.5"


def test_response_option(find_documents) -> None:
    assert find_documents.return_type == ReturnType.OBJECT_REF
    assert find_documents.return_composed_objects is True


def test_request_id(find_documents) -> None:
    assert find_documents.request_id == "urn:uuid:7b3c6c5e-2f1e-4d3c-9a8b-0c1d2e3f4a5b"


def test_repeated_slots_stay_separate(find_documents) -> None:
    assert find_documents.parameters["$XDSDocumentEntryEventCodeList"] == [
        ["('CR^^DCM')"],
        ["('T-D3000^^SRT')", "('T-D4000^^SRT')"],
    ]


def test_values_are_kept_raw(find_documents) -> None:
    assert find_documents.parameters["$XDSDocumentEntryPatientId"] == [["'P1^^^&1.2.3.4&ISO'"]]
    assert find_documents.parameters["$XDSDocumentEntryStatus"] == [
        [
            "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved', "
            "'urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated')"
        ]
    ]


def test_unknown_return_type_is_kept_for_validation() -> None:
    elem = etree.fromstring(
        f'<q:AdhocQueryRequest xmlns:q="{NS_QUERY}" xmlns:rim="{NS_RIM}">'
        '<q:ResponseOption returnType="RegistryObject"/><rim:AdhocQuery id="x"/>'
        "</q:AdhocQueryRequest>"
    )
    request = parse_adhoc_query_request(elem)
    assert request.return_type == "RegistryObject"
    assert request.return_composed_objects is False


def test_query_request_round_trips(find_documents) -> None:
    assert parse_adhoc_query_request(adhoc_query_request(find_documents)) == find_documents


def test_query_request_validates(find_documents, assert_valid) -> None:
    assert_valid(adhoc_query_request(find_documents))


# --- AdhocQueryResponse ------------------------------------------------------------------


def test_leaf_class_response_round_trips(submission, assert_valid) -> None:
    objects = (
        *submission.document_entries,
        submission.submission_set,
        *submission.folders,
        *submission.associations,
    )
    response = AdhocQueryResponse(ResponseStatus.SUCCESS, objects=objects)
    elem = adhoc_query_response(response, ReturnType.LEAF_CLASS)
    assert_valid(elem)
    assert parse_adhoc_query_response(elem) == response


def test_stored_object_is_written_with_its_current_status(assert_valid) -> None:
    entry = DocumentEntry(DOC_ID, availability_status=AvailabilityStatus.APPROVED)
    stored = StoredObject(DOC_ID, etree.tostring(leaf_class(entry)), AvailabilityStatus.DEPRECATED)
    elem = adhoc_query_response(
        AdhocQueryResponse(ResponseStatus.SUCCESS, objects=(stored,)), ReturnType.LEAF_CLASS
    )
    (written,) = elem.find(f"{RIM}RegistryObjectList")
    assert (written.get("id"), written.get("status")) == (DOC_ID, AvailabilityStatus.DEPRECATED)
    assert_valid(elem)


def test_stored_object_entities_are_not_resolved(tmp_path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret")
    xml = (
        f'<!DOCTYPE x [<!ENTITY e SYSTEM "{secret.as_uri()}">]>'
        f'<rim:ExtrinsicObject xmlns:rim="{NS_RIM}" id="a"><rim:Name>&e;</rim:Name>'
        "</rim:ExtrinsicObject>"
    ).encode()
    stored = StoredObject("a", xml, AvailabilityStatus.APPROVED)
    elem = adhoc_query_response(
        AdhocQueryResponse(ResponseStatus.SUCCESS, objects=(stored,)), ReturnType.LEAF_CLASS
    )
    assert b"top-secret" not in etree.tostring(elem)


def test_object_ref_response(assert_valid) -> None:
    response = AdhocQueryResponse(
        ResponseStatus.SUCCESS, object_refs=(ObjectRef(DOC_ID), ObjectRef(UUID_PREFIX + "b"))
    )
    elem = adhoc_query_response(response, ReturnType.OBJECT_REF)
    refs = elem.find(f"{RIM}RegistryObjectList")
    assert [(etree.QName(r).localname, r.get("id")) for r in refs] == [
        ("ObjectRef", DOC_ID),
        ("ObjectRef", UUID_PREFIX + "b"),
    ]
    assert_valid(elem)
    assert parse_adhoc_query_response(elem).object_refs == response.object_refs


def test_object_ref_response_from_objects() -> None:
    stored = StoredObject(DOC_ID, b"<x/>", AvailabilityStatus.APPROVED)
    elem = adhoc_query_response(
        AdhocQueryResponse(ResponseStatus.SUCCESS, objects=(stored,)), ReturnType.OBJECT_REF
    )
    assert [r.get("id") for r in elem.find(f"{RIM}RegistryObjectList")] == [DOC_ID]


def test_failure_response_has_errors_and_an_empty_list(assert_valid) -> None:
    error = RegistryError(ErrorCode.XDSStoredQueryMissingParam, "$XDSDocumentEntryPatientId")
    response = AdhocQueryResponse(ResponseStatus.FAILURE, errors=(error,))
    elem = adhoc_query_response(response, ReturnType.LEAF_CLASS)
    assert _children(elem) == ["RegistryErrorList", "RegistryObjectList"]
    assert len(elem.find(f"{RIM}RegistryObjectList")) == 0
    assert_valid(elem)
    assert parse_adhoc_query_response(elem) == response


def _children(elem: etree._Element) -> list[str]:
    return [etree.QName(c).localname for c in elem]


# --- rs:RegistryResponse ------------------------------------------------------------------


def test_registry_response_round_trips() -> None:
    response = RegistryResponse.from_errors(
        [
            RegistryError(ErrorCode.XDSRegistryMetadataError, "bad", "Document01"),
            RegistryError.warning(ErrorCode.XDSExtraMetadataNotSaved, "kept nothing"),
        ]
    )
    assert parse_registry_response(registry_response(response)) == response


def test_unknown_error_code_from_a_peer_is_kept() -> None:
    elem = etree.fromstring(
        f'<rs:RegistryResponse xmlns:rs="{NS_RS}" status="{ResponseStatus.FAILURE}">'
        '<rs:RegistryErrorList><rs:RegistryError errorCode="XDSSomethingNew" codeContext="c"/>'
        "</rs:RegistryErrorList></rs:RegistryResponse>"
    )
    (error,) = parse_registry_response(elem).errors
    assert (error.code, error.severity) == ("XDSSomethingNew", ErrorSeverity.ERROR)


# --- the NIST testkit's ITI-18 requests ---------------------------------------------------


def _testkit_queries() -> list[Path]:
    if not TESTKIT.exists():
        return []
    return sorted(
        p
        for p in TESTKIT.rglob("*.xml")
        if p.name != "testplan.xml"
        and etree.parse(str(p), SAFE).getroot().tag == f"{QUERY}AdhocQueryRequest"
    )


_QUERIES = _testkit_queries()


def test_testkit_queries_are_present() -> None:
    if _QUERIES:
        return
    if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
        pytest.fail(f"testkit not found: {TESTKIT}")
    pytest.skip(f"testkit not found: {TESTKIT}")


@pytest.mark.parametrize("path", _QUERIES, ids=lambda p: str(p.relative_to(TESTKIT)))
def test_testkit_query_parses_and_round_trips(path: Path) -> None:
    elem = etree.parse(str(path), SAFE).getroot()
    request = parse_adhoc_query_request(elem)
    slots = elem.findall(f"{RIM}AdhocQuery/{RIM}Slot")
    assert request.query_id.startswith(UUID_PREFIX)
    assert sum(len(v) for v in request.parameters.values()) == len(slots)
    assert parse_adhoc_query_request(adhoc_query_request(request)) == request
