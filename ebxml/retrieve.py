"""ITI-43 Retrieve Document Set and RAD-69 Retrieve Imaging Document Set on the wire.

Requests: ITI TF-2 3.43.4.1.2, RAD TF-3 4.69.4.1.2.  Response: ITI TF-2 3.43.4.2.2 (RAD-69
answers with the same RetrieveDocumentSetResponse).  Document bytes never pass through
here: the response names each MTOM part by Content-ID in an xop:Include.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentRequest,
    RegistryResponse,
    RetrievedDocument,
    RetrieveDocumentSetRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.parse import AttachmentLike, ParseResult, include_content_id
from ebxml.serialize import cid_href, registry_error_list
from ebxml.tags import RS, XDSB, XDSI, XOP
from ebxml.vocabulary import NSMAP, ResponseStatus
from ebxml.wire import parse_registry_response
from ebxml.xml_text import ATTRIBUTE_ESCAPES, NOT_XML_CHAR, TEXT_ESCAPES

_SubElement = etree.SubElement


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    text = None if child is None else (child.text or "").strip()
    return text or None


_DOCUMENT_IDS = frozenset((XDSB.RepositoryUniqueId, XDSB.DocumentUniqueId, XDSB.HomeCommunityId))


def document_ids(elem: etree._Element) -> dict[str, str | None]:
    """A DocumentRequest's or DocumentResponse's first RepositoryUniqueId,
    DocumentUniqueId and HomeCommunityId children by tag, as ``_text`` reads them, in
    one pass over its children: a ``find`` per id cost three times as much for each of
    the hundreds of instances a RAD-69 names."""
    ids: dict[str, str | None] = {}
    for child in elem:
        tag = child.tag
        if tag in _DOCUMENT_IDS and tag not in ids:
            ids[tag] = (child.text or "").strip() or None
    return ids


def _document_requests(
    parent: etree._Element, code: ErrorCode, errors: list[RegistryError], where: str
) -> tuple[DocumentRequest, ...]:
    """xdsb:DocumentRequest children; ITI TF-2 3.43.4.1.2: RepositoryUniqueId and
    DocumentUniqueId are required, HomeCommunityId optional.  Incomplete ones are
    reported and left out."""
    requests: list[DocumentRequest] = []
    for n, elem in enumerate(parent.iterfind(XDSB.DocumentRequest), 1):
        ids = document_ids(elem)
        repository = ids.get(XDSB.RepositoryUniqueId)
        document = ids.get(XDSB.DocumentUniqueId)
        if repository is not None and document is not None:
            requests.append(DocumentRequest(repository, document, ids.get(XDSB.HomeCommunityId)))
            continue
        location = f"{where}DocumentRequest[{n}]"
        if repository is None:
            errors.append(RegistryError(code, "RepositoryUniqueId is missing", location))
        if document is None:
            errors.append(RegistryError(code, "DocumentUniqueId is missing", location))
    return tuple(requests)


def parse_retrieve_document_set_request(
    elem: etree._Element, *, default_code: ErrorCode = ErrorCode.XDSRepositoryError
) -> ParseResult[RetrieveDocumentSetRequest]:
    """xdsb:RetrieveDocumentSetRequest (ITI TF-2 3.43.4.1.2)."""
    errors: list[RegistryError] = []
    documents = _document_requests(elem, default_code, errors, "")
    if elem.find(XDSB.DocumentRequest) is None:
        errors.append(RegistryError(default_code, "No DocumentRequest in the request"))
    return ParseResult(RetrieveDocumentSetRequest(documents), tuple(errors))


def _document_request(parent: etree._Element, request: DocumentRequest) -> None:
    elem = _SubElement(parent, XDSB.DocumentRequest)
    if request.home_community_id:
        _SubElement(elem, XDSB.HomeCommunityId).text = request.home_community_id
    _SubElement(elem, XDSB.RepositoryUniqueId).text = request.repository_unique_id
    _SubElement(elem, XDSB.DocumentUniqueId).text = request.document_unique_id


def retrieve_document_set_request(request: RetrieveDocumentSetRequest) -> etree._Element:
    """xdsb:RetrieveDocumentSetRequest (ITI TF-2 3.43.4.1.2)."""
    elem = etree.Element(XDSB.RetrieveDocumentSetRequest, nsmap={"xdsb": NSMAP["xdsb"]})
    for document in request.documents:
        _document_request(elem, document)
    return elem


def parse_retrieve_imaging_document_set_request(
    elem: etree._Element, *, default_code: ErrorCode = ErrorCode.XDSRepositoryError
) -> ParseResult[RetrieveImagingDocumentSetRequest]:
    """xdsi:RetrieveImagingDocumentSetRequest (RAD TF-3 4.69.4.1.2): studies, their series,
    the DocumentRequests (one per SOP Instance) and the TransferSyntaxUIDList."""
    errors: list[RegistryError] = []
    studies: list[StudyRequest] = []
    for s, study in enumerate(elem.iterfind(XDSI.StudyRequest), 1):
        study_uid = (study.get("studyInstanceUID") or "").strip()
        if not study_uid:
            errors.append(
                RegistryError(default_code, "studyInstanceUID is missing", f"StudyRequest[{s}]")
            )
        series: list[SeriesRequest] = []
        for r, series_elem in enumerate(study.iterfind(XDSI.SeriesRequest), 1):
            where = f"StudyRequest[{s}]/SeriesRequest[{r}]/"
            series_uid = (series_elem.get("seriesInstanceUID") or "").strip()
            if not series_uid:
                errors.append(
                    RegistryError(default_code, "seriesInstanceUID is missing", where.rstrip("/"))
                )
            documents = _document_requests(series_elem, default_code, errors, where)
            series.append(SeriesRequest(series_uid, documents))
        studies.append(StudyRequest(study_uid, tuple(series)))
    syntaxes = tuple(
        (t.text or "").strip()
        for t in elem.iterfind(f"{XDSI.TransferSyntaxUIDList}/{XDSI.TransferSyntaxUID}")
    )
    if not studies:
        errors.append(RegistryError(default_code, "No StudyRequest in the request"))
    return ParseResult(RetrieveImagingDocumentSetRequest(tuple(studies), syntaxes), tuple(errors))


def retrieve_imaging_document_set_request(
    request: RetrieveImagingDocumentSetRequest,
) -> etree._Element:
    """xdsi:RetrieveImagingDocumentSetRequest (RAD TF-3 4.69.4.1.2)."""
    nsmap = {"xdsi": NSMAP["xdsi"], "xdsb": NSMAP["xdsb"]}
    elem = etree.Element(XDSI.RetrieveImagingDocumentSetRequest, nsmap=nsmap)
    for study in request.studies:
        study_elem = _SubElement(elem, XDSI.StudyRequest, studyInstanceUID=study.study_instance_uid)
        for series in study.series:
            series_elem = _SubElement(
                study_elem, XDSI.SeriesRequest, seriesInstanceUID=series.series_instance_uid
            )
            for document in series.documents:
                _document_request(series_elem, document)
    syntax_list = _SubElement(elem, XDSI.TransferSyntaxUIDList)
    for syntax in request.transfer_syntaxes:
        _SubElement(syntax_list, XDSI.TransferSyntaxUID).text = syntax
    return elem


def _document_fields(document: RetrievedDocument) -> tuple[tuple[str, str | None], ...]:
    """A DocumentResponse's children before the Document, in the schema's order."""
    return (
        ("HomeCommunityId", document.home_community_id),
        ("RepositoryUniqueId", document.repository_unique_id),
        ("DocumentUniqueId", document.document_unique_id),
        ("NewRepositoryUniqueId", document.new_repository_unique_id),
        ("NewDocumentUniqueId", document.new_document_unique_id),
        ("mimeType", document.mime_type),
    )


def _response_root(response: RetrieveDocumentSetResponse, cids: Sequence[str]) -> etree._Element:
    if len(cids) != len(response.documents):
        raise ValueError("one Content-ID per retrieved document is needed")
    nsmap = {"xdsb": NSMAP["xdsb"], "rs": NSMAP["rs"], "xop": NSMAP["xop"]}
    elem = etree.Element(XDSB.RetrieveDocumentSetResponse, nsmap=nsmap)
    registry = _SubElement(elem, RS.RegistryResponse, status=str(response.status))
    registry_error_list(registry, response.errors)
    return elem


def retrieve_document_set_response(
    response: RetrieveDocumentSetResponse, cids: Sequence[str]
) -> etree._Element:
    """xdsb:RetrieveDocumentSetResponse (ITI TF-2 3.43.4.2.2): the RegistryResponse, then
    one DocumentResponse per document whose Document is the MTOM part ``cids[i]``."""
    elem = _response_root(response, cids)
    for document, cid in zip(response.documents, cids, strict=True):
        doc = _SubElement(elem, XDSB.DocumentResponse)
        for name, value in _document_fields(document):
            if value is not None:
                _SubElement(doc, getattr(XDSB, name)).text = value
        _SubElement(_SubElement(doc, XDSB.Document), XOP.Include, href=cid_href(cid))
    return elem


_TEXT_SPECIAL = re.compile("[&<>\r]")
_ATTRIBUTE_SPECIAL = re.compile('[&<>"\t\n\r]')


def _escaped(value: str, special: re.Pattern[str], escapes: dict[int, str]) -> str:
    if NOT_XML_CHAR.search(value):
        raise ValueError(f"a character XML cannot carry: {value!r}")
    return value.translate(escapes) if special.search(value) else value


def document_response_bytes(document: RetrievedDocument, cid: str) -> bytes:
    """One xdsb:DocumentResponse as :func:`retrieve_document_set_response` writes it,
    written directly: for an element in scope of the xdsb and xop prefixes."""
    parts = ["<xdsb:DocumentResponse>"]
    for name, value in _document_fields(document):
        if value is not None:
            text = _escaped(value, _TEXT_SPECIAL, TEXT_ESCAPES)
            parts.append(f"<xdsb:{name}>{text}</xdsb:{name}>")
    href = _escaped(cid_href(cid), _ATTRIBUTE_SPECIAL, ATTRIBUTE_ESCAPES)
    parts.append(f'<xdsb:Document><xop:Include href="{href}"/></xdsb:Document>')
    parts.append("</xdsb:DocumentResponse>")
    return "".join(parts).encode("utf-8")


def retrieve_document_set_response_parts(
    response: RetrieveDocumentSetResponse, cids: Sequence[str]
) -> tuple[etree._Element, tuple[bytes, ...]]:
    """As :func:`retrieve_document_set_response`, the DocumentResponses left as bytes to
    write as the response's last children (``soap.splice``): a RAD-69 of a study answers
    hundreds, which as elements cost more than the rest of the request."""
    elem = _response_root(response, cids)
    fragments = tuple(
        document_response_bytes(document, cid)
        for document, cid in zip(response.documents, cids, strict=True)
    )
    return elem, fragments


def parse_retrieve_document_set_response(
    elem: etree._Element,
    attachments: Mapping[str, AttachmentLike],
    *,
    default_code: ErrorCode = ErrorCode.XDSRepositoryError,
) -> RetrieveDocumentSetResponse:
    """xdsb:RetrieveDocumentSetResponse as a Document Consumer reads it.  A
    DocumentResponse whose content is not among ``attachments`` is left out and
    reported in ``errors``."""
    registry = elem.find(RS.RegistryResponse)
    outcome = (
        RegistryResponse(ResponseStatus.FAILURE)
        if registry is None
        else parse_registry_response(registry)
    )
    status, errors = outcome.status, list(outcome.errors)
    documents: list[RetrievedDocument] = []
    for n, doc in enumerate(elem.iterfind(XDSB.DocumentResponse), 1):
        content = doc.find(XDSB.Document)
        cid = None if content is None else include_content_id(content)
        attachment = None if cid is None else attachments.get(cid)
        unique_id = _text(doc, XDSB.DocumentUniqueId) or ""
        if attachment is None:
            context = f"No attachment holds the content of document {unique_id}"
            errors.append(RegistryError(default_code, context, f"DocumentResponse[{n}]"))
            continue
        documents.append(
            RetrievedDocument(
                repository_unique_id=_text(doc, XDSB.RepositoryUniqueId) or "",
                document_unique_id=unique_id,
                mime_type=_text(doc, XDSB.mimeType) or "",
                path=attachment.path,
                size=attachment.size,
                home_community_id=_text(doc, XDSB.HomeCommunityId),
                new_repository_unique_id=_text(doc, XDSB.NewRepositoryUniqueId),
                new_document_unique_id=_text(doc, XDSB.NewDocumentUniqueId),
            )
        )
    return RetrieveDocumentSetResponse(status, tuple(documents), tuple(errors))


__all__ = [
    "document_ids",
    "document_response_bytes",
    "parse_retrieve_document_set_request",
    "parse_retrieve_document_set_response",
    "parse_retrieve_imaging_document_set_request",
    "retrieve_document_set_request",
    "retrieve_document_set_response",
    "retrieve_document_set_response_parts",
    "retrieve_imaging_document_set_request",
]
