"""ebxml/remove.py: ITI-62 lcm:RemoveObjectsRequest and ITI-86 rmd:RemoveDocumentsRequest
both ways, against the hand-written fixtures in tests/fixtures/rmd and the schemas."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from ebxml.errors import ErrorCode
from ebxml.messages import DocumentRequest
from ebxml.remove import (
    RIM_OBJECT_REF_LIST,
    RemoveDocumentsRequest,
    RemoveObjectsRequest,
    parse_remove_documents_request,
    parse_remove_objects_request,
    remove_documents_request,
    remove_objects_request,
)
from ebxml.tags import RIM, XDSB

REPO_ROOT = Path(__file__).resolve().parents[2]
RMD_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "rmd"
REFERENCE = Path(
    os.environ.get("XDSI_REFERENCE_DIR", str(REPO_ROOT.parent / "shared" / "reference"))
)
RMD_XSD = REFERENCE / "schemas" / "nist-toolkit" / "v3" / "rmd.xsd"
REPOSITORY = "1.3.6.1.4.1.21367.13.40.1"
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def fixture(name: str) -> etree._Element:
    return etree.parse(str(RMD_FIXTURES / name), SAFE_PARSER).getroot()


# --- ITI-62 ----------------------------------------------------------------------------


def test_remove_objects_request_fixture_names_three_objects() -> None:
    parsed = parse_remove_objects_request(fixture("iti62_remove_objects.xml"))
    assert parsed.errors == ()
    assert parsed.value.object_refs == (
        "urn:uuid:5b7c2a0e-8a5d-4a9f-9e2c-0e1a3c8a2f11",
        "urn:uuid:7f3d1e44-2b6c-4c1e-8f1a-2d9b5a6c7e22",
        "urn:uuid:0a9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d33",
    )


def test_remove_objects_request_round_trips() -> None:
    request = parse_remove_objects_request(fixture("iti62_remove_objects.xml")).value
    assert parse_remove_objects_request(remove_objects_request(request)).value == request


def test_remove_objects_request_is_schema_valid(
    assert_valid: Callable[[etree._Element], None],
) -> None:
    assert_valid(remove_objects_request(RemoveObjectsRequest(("urn:uuid:1", "urn:uuid:2"))))


def test_deletion_scope_shall_not_be_specified() -> None:
    elem = fixture("iti62_remove_objects.xml")
    elem.set("deletionScope", "urn:oasis:names:tc:ebxml-regrep:DeletionScopeType:DeleteAll")
    parsed = parse_remove_objects_request(elem)
    assert [(e.code, e.location) for e in parsed.errors] == [
        (ErrorCode.XDSRegistryError, "deletionScope")
    ]


def test_adhoc_query_shall_not_be_specified() -> None:
    elem = fixture("iti62_remove_objects.xml")
    elem.insert(0, etree.Element(RIM.AdhocQuery, id="urn:uuid:q"))
    assert [e.location for e in parse_remove_objects_request(elem).errors] == ["AdhocQuery"]


def test_object_ref_list_is_required() -> None:
    elem = fixture("iti62_remove_objects.xml")
    elem.remove(elem.find(RIM_OBJECT_REF_LIST))
    assert [e.location for e in parse_remove_objects_request(elem).errors] == ["ObjectRefList"]


def test_object_ref_needs_an_id() -> None:
    elem = fixture("iti62_remove_objects.xml")
    del elem.findall(f"{RIM_OBJECT_REF_LIST}/{RIM.ObjectRef}")[1].attrib["id"]
    parsed = parse_remove_objects_request(elem)
    assert [e.location for e in parsed.errors] == ["ObjectRef[2]"]
    assert len(parsed.value.object_refs) == 2


def test_repeated_object_ref_counts_once() -> None:
    elem = fixture("iti62_remove_objects.xml")
    ref_list = elem.find(RIM_OBJECT_REF_LIST)
    etree.SubElement(ref_list, RIM.ObjectRef, id=ref_list.find(RIM.ObjectRef).get("id"))
    assert len(parse_remove_objects_request(elem).value.object_refs) == 3


# --- ITI-86 ----------------------------------------------------------------------------


def test_remove_documents_request_fixture() -> None:
    parsed = parse_remove_documents_request(fixture("iti86_remove_documents.xml"))
    assert parsed.errors == ()
    assert parsed.value.documents == (
        DocumentRequest(
            REPOSITORY, "1.3.6.1.4.1.21367.13.50.1001", "urn:oid:1.3.6.1.4.1.21367.13.70.1"
        ),
        DocumentRequest(REPOSITORY, "1.3.6.1.4.1.21367.13.50.1002"),
    )


def test_remove_documents_request_round_trips() -> None:
    request = parse_remove_documents_request(fixture("iti86_remove_documents.xml")).value
    assert parse_remove_documents_request(remove_documents_request(request)).value == request


def test_document_unique_id_is_required() -> None:
    elem = fixture("iti86_remove_documents.xml")
    second = elem.findall(XDSB.DocumentRequest)[1]
    second.remove(second.find(XDSB.DocumentUniqueId))
    parsed = parse_remove_documents_request(elem)
    assert [(e.code, e.location) for e in parsed.errors] == [
        (ErrorCode.XDSRepositoryError, "DocumentRequest[2]")
    ]
    assert len(parsed.value.documents) == 1


def test_at_least_one_document_request() -> None:
    elem = etree.Element("{urn:ihe:iti:rmd:2017}RemoveDocumentsRequest")
    parsed = parse_remove_documents_request(elem)
    assert [e.code for e in parsed.errors] == [ErrorCode.XDSRepositoryError]


@pytest.fixture(scope="module")
def rmd_schema() -> etree.XMLSchema:
    if not RMD_XSD.exists():
        message = f"reference material not found: {RMD_XSD}"
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return etree.XMLSchema(etree.parse(str(RMD_XSD)))


def test_remove_documents_request_is_schema_valid(rmd_schema: etree.XMLSchema) -> None:
    # the published rmd.xsd declares a single DocumentRequest; one is what we validate
    request = RemoveDocumentsRequest((DocumentRequest(REPOSITORY, "1.2.3", "urn:oid:1.2"),))
    elem = remove_documents_request(request)
    assert rmd_schema.validate(elem), rmd_schema.error_log
