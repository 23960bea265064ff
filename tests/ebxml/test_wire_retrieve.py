"""ITI-43 / RAD-69 messages (ebxml/retrieve.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentRequest,
    RetrievedDocument,
    RetrieveDocumentSetRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.retrieve import (
    document_response_bytes,
    parse_retrieve_document_set_request,
    parse_retrieve_document_set_response,
    parse_retrieve_imaging_document_set_request,
    retrieve_document_set_request,
    retrieve_document_set_response,
    retrieve_document_set_response_parts,
    retrieve_imaging_document_set_request,
)
from ebxml.serialize import cid_href
from ebxml.vocabulary import NS_RS, NS_XDSB, NS_XDSI, NS_XOP, ResponseStatus
from soap.splice import XmlSplice, spliced_bytes

XDSB = f"{{{NS_XDSB}}}"
RS = f"{{{NS_RS}}}"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True)
REFERENCE = Path(
    os.environ.get(
        "XDSI_REFERENCE_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "reference")
    )
)
TESTKIT = REFERENCE / "testkit" / "tests"


@dataclass(frozen=True)
class FakeAttachment:
    content_id: str
    content_type: str
    path: Path
    size: int
    sha1: str = ""


def _request(*document_requests: str) -> etree._Element:
    return etree.fromstring(
        f'<xdsb:RetrieveDocumentSetRequest xmlns:xdsb="{NS_XDSB}">'
        + "".join(f"<xdsb:DocumentRequest>{d}</xdsb:DocumentRequest>" for d in document_requests)
        + "</xdsb:RetrieveDocumentSetRequest>",
        SAFE,
    )


REPO = "<xdsb:RepositoryUniqueId>1.2.3</xdsb:RepositoryUniqueId>"
DOC = "<xdsb:DocumentUniqueId>1.2.3.4</xdsb:DocumentUniqueId>"
HOME = "<xdsb:HomeCommunityId>urn:oid:1.2</xdsb:HomeCommunityId>"


# --- RetrieveDocumentSetRequest ---------------------------------------------------------


def test_request_without_home_community() -> None:
    result = parse_retrieve_document_set_request(_request(REPO + DOC))
    assert result.errors == ()
    assert result.value.documents == (DocumentRequest("1.2.3", "1.2.3.4"),)


def test_request_with_home_community() -> None:
    result = parse_retrieve_document_set_request(_request(HOME + REPO + DOC))
    assert result.value.documents[0].home_community_id == "urn:oid:1.2"


def test_missing_repository_unique_id_is_reported() -> None:
    result = parse_retrieve_document_set_request(_request(DOC, REPO + DOC))
    assert [(e.code, e.location) for e in result.errors] == [
        (ErrorCode.XDSRepositoryError, "DocumentRequest[1]")
    ]
    assert len(result.value.documents) == 1


def test_missing_document_unique_id_is_reported() -> None:
    result = parse_retrieve_document_set_request(_request(REPO))
    assert "DocumentUniqueId" in result.errors[0].context
    assert result.value.documents == ()


def test_each_id_is_read_from_its_first_element_whitespace_stripped() -> None:
    # the one-pass read of a DocumentRequest's children (ebxml.retrieve.document_ids)
    # answers as element.find would: the first element of each name, comments and
    # other elements passed over, an empty or blank one as absent
    result = parse_retrieve_document_set_request(
        _request(
            "<!-- a comment first --><xdsb:Other>x</xdsb:Other>"
            "<xdsb:DocumentUniqueId> 1.2.3.4 </xdsb:DocumentUniqueId>"
            "<xdsb:DocumentUniqueId>9.9.9</xdsb:DocumentUniqueId>"
            "<xdsb:HomeCommunityId>  </xdsb:HomeCommunityId>" + REPO + HOME,
            "<xdsb:RepositoryUniqueId/>" + REPO + DOC,
        )
    )
    assert result.value.documents == (DocumentRequest("1.2.3", "1.2.3.4", None),)
    assert [(e.context, e.location) for e in result.errors] == [
        ("RepositoryUniqueId is missing", "DocumentRequest[2]")
    ]


def test_empty_request_is_reported() -> None:
    result = parse_retrieve_document_set_request(_request())
    assert len(result.errors) == 1


def test_request_round_trips(assert_valid) -> None:
    request = RetrieveDocumentSetRequest(
        (DocumentRequest("1.2.3", "1.2.3.4", "urn:oid:1.2"), DocumentRequest("1.2.3", "1.2.3.5"))
    )
    elem = retrieve_document_set_request(request)
    assert_valid(elem)
    assert parse_retrieve_document_set_request(elem).value == request


# --- RetrieveDocumentSetResponse ----------------------------------------------------------


def _retrieved(tmp_path: Path, **changes) -> RetrievedDocument:
    values = {
        "repository_unique_id": "1.2.3",
        "document_unique_id": "1.2.3.4",
        "mime_type": "application/dicom",
        "path": tmp_path / "doc",
        "size": 4,
    } | changes
    return RetrievedDocument(**values)


def test_response_shape(tmp_path, assert_valid) -> None:
    document = _retrieved(tmp_path, home_community_id="urn:oid:1.2")
    elem = retrieve_document_set_response(
        RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, (document,)), ["part-1@xdsi"]
    )
    assert [etree.QName(c).localname for c in elem] == ["RegistryResponse", "DocumentResponse"]
    response = elem.find(f"{XDSB}DocumentResponse")
    assert [etree.QName(c).localname for c in response] == [
        "HomeCommunityId",
        "RepositoryUniqueId",
        "DocumentUniqueId",
        "mimeType",
        "Document",
    ]
    include = response.find(f"{XDSB}Document/{{{NS_XOP}}}Include")
    assert include.get("href") == "cid:part-1@xdsi"
    assert_valid(elem)


def test_response_with_new_ids(tmp_path, assert_valid) -> None:
    # XDS.b_DocumentRepository.xsd: the New* ids follow DocumentUniqueId, before mimeType
    document = _retrieved(tmp_path, new_repository_unique_id="9.9", new_document_unique_id="9.9.1")
    elem = retrieve_document_set_response(
        RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, (document,)), ["p"]
    )
    names = [etree.QName(c).localname for c in elem.find(f"{XDSB}DocumentResponse")]
    assert names[1:5] == [
        "DocumentUniqueId",
        "NewRepositoryUniqueId",
        "NewDocumentUniqueId",
        "mimeType",
    ]
    assert_valid(elem)


def test_failure_response_carries_errors(assert_valid) -> None:
    error = RegistryError(ErrorCode.XDSDocumentUniqueIdError, "unknown", "1.2.3.4")
    elem = retrieve_document_set_response(
        RetrieveDocumentSetResponse(ResponseStatus.FAILURE, errors=(error,)), []
    )
    registry = elem.find(f"{RS}RegistryResponse")
    assert registry.get("status") == ResponseStatus.FAILURE
    assert registry.find(f"{RS}RegistryErrorList/{RS}RegistryError").get("errorCode") == (
        "XDSDocumentUniqueIdError"
    )
    assert_valid(elem)


def test_one_cid_per_document_is_required(tmp_path) -> None:
    response = RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, (_retrieved(tmp_path),))
    with pytest.raises(ValueError):
        retrieve_document_set_response(response, [])


def test_response_round_trips_through_attachments(tmp_path) -> None:
    document = _retrieved(tmp_path, home_community_id="urn:oid:1.2")
    response = RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, (document,))
    elem = retrieve_document_set_response(response, ["part 1@xdsi"])
    part = FakeAttachment("part 1@xdsi", "application/dicom", document.path, 4)
    assert parse_retrieve_document_set_response(elem, {part.content_id: part}) == response


def test_response_without_its_part_is_reported(tmp_path) -> None:
    response = RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, (_retrieved(tmp_path),))
    parsed = parse_retrieve_document_set_response(
        retrieve_document_set_response(response, ["gone"]), {}
    )
    assert parsed.documents == ()
    assert [e.location for e in parsed.errors] == ["DocumentResponse[1]"]


def _spliced(response: RetrieveDocumentSetResponse, cids: list[str]) -> bytes:
    elem, fragments = retrieve_document_set_response_parts(response, cids)
    return spliced_bytes(elem, [XmlSplice(elem, fragments)], etree.tostring)


@pytest.mark.parametrize(
    "changes",
    [
        {"home_community_id": "urn:oid:1.2"},
        {"new_repository_unique_id": "9.9", "new_document_unique_id": "9.9.1"},
        {"mime_type": 'a/b; x="<&>"\r', "document_unique_id": "1.2 & 3"},  # escaped
    ],
)
def test_document_responses_written_as_bytes_are_the_elements(tmp_path, changes) -> None:
    documents = (_retrieved(tmp_path, **changes), _retrieved(tmp_path, document_unique_id="5"))
    response = RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, documents)
    cids = ["part 1@xdsi", 'p"2&<>\t@xdsi']  # quoted in the href, then escaped
    as_tree = etree.tostring(retrieve_document_set_response(response, cids), method="c14n")
    reparsed = etree.fromstring(_spliced(response, cids))
    assert etree.tostring(reparsed, method="c14n") == as_tree


def test_a_document_response_with_a_character_xml_cannot_carry_is_refused(tmp_path) -> None:
    document = _retrieved(tmp_path, document_unique_id="1.2\x00")
    with pytest.raises(ValueError):
        document_response_bytes(document, "p@xdsi")


@pytest.mark.parametrize(
    "content_id",
    ["instance1.0a1b@xdsi", "a b@xdsi", "\u00e9t\u00e9@x", "a/b?c#d%e", "~!$&'()*+,;=:"],
)
def test_cid_href_is_the_content_id_url_encoded(content_id: str) -> None:
    assert cid_href(content_id) == "cid:" + quote(content_id, safe="@!$&'()*+,;=:~-._")


# --- RAD-69 RetrieveImagingDocumentSetRequest ----------------------------------------------


def _imaging_request() -> RetrieveImagingDocumentSetRequest:
    return RetrieveImagingDocumentSetRequest(
        studies=(
            StudyRequest(
                "1.2.840.1",
                (
                    SeriesRequest(
                        "1.2.840.1.1",
                        (DocumentRequest("1.2.3", "1.2.840.1.1.1"), DocumentRequest("1.2.3", "x")),
                    ),
                ),
            ),
        ),
        transfer_syntaxes=("1.2.840.10008.1.2.1", "1.2.840.10008.1.2"),
    )


def test_imaging_request_round_trips(assert_valid) -> None:
    elem = retrieve_imaging_document_set_request(_imaging_request())
    assert_valid(elem)
    result = parse_retrieve_imaging_document_set_request(elem)
    assert result.errors == ()
    assert result.value == _imaging_request()


def test_imaging_request_missing_study_uid_is_reported() -> None:
    elem = retrieve_imaging_document_set_request(_imaging_request())
    del elem.find(f"{{{NS_XDSI}}}StudyRequest").attrib["studyInstanceUID"]
    result = parse_retrieve_imaging_document_set_request(elem)
    assert [e.location for e in result.errors] == ["StudyRequest[1]"]


def test_imaging_request_missing_document_id_is_located() -> None:
    elem = retrieve_imaging_document_set_request(_imaging_request())
    target = elem.find(f".//{XDSB}DocumentRequest/{XDSB}DocumentUniqueId")
    target.getparent().remove(target)
    result = parse_retrieve_imaging_document_set_request(elem)
    assert [e.location for e in result.errors] == [
        "StudyRequest[1]/SeriesRequest[1]/DocumentRequest[1]"
    ]


# --- the NIST testkit's ITI-43 and RAD-69 requests -----------------------------------------

_PARSERS = {
    f"{XDSB}RetrieveDocumentSetRequest": parse_retrieve_document_set_request,
    f"{{{NS_XDSI}}}RetrieveImagingDocumentSetRequest": parse_retrieve_imaging_document_set_request,
}


def _testkit_requests() -> list[Path]:
    if not TESTKIT.exists():
        return []
    return sorted(
        p
        for p in TESTKIT.rglob("*.xml")
        if p.name != "testplan.xml" and etree.parse(str(p), SAFE).getroot().tag in _PARSERS
    )


_REQUESTS = _testkit_requests()


def test_testkit_requests_are_present() -> None:
    if _REQUESTS:
        return
    if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
        pytest.fail(f"testkit not found: {TESTKIT}")
    pytest.skip(f"testkit not found: {TESTKIT}")


@pytest.mark.parametrize("path", _REQUESTS, ids=lambda p: str(p.relative_to(TESTKIT)))
def test_testkit_retrieve_request_parses(path: Path) -> None:
    elem = etree.parse(str(path), SAFE).getroot()
    result = _PARSERS[elem.tag](elem)
    assert result.errors == ()
