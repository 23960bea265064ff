"""RMD messages on the wire: ITI-62 Remove Metadata and ITI-86 Remove Documents.

ITI-62 (ITI TF-2 3.62.4.1.2, RMD supplement): an lcm:RemoveObjectsRequest naming the
registry objects to remove in an rim:ObjectRefList; no rim:AdhocQuery, no
``deletionScope`` attribute.  ITI-86 (RMD 3.86.4.1.2): an rmd:RemoveDocumentsRequest
holding one xdsb:DocumentRequest per document.  Both are answered with an
rs:RegistryResponse (``ebxml.serialize.registry_response``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import DocumentRequest
from ebxml.parse import ParseResult
from ebxml.tags import RIM, XDSB
from ebxml.vocabulary import NS_LCM, NS_RIM, NS_RMD, NSMAP

# lcm.xsd and rmd.xsd element names (Clark notation)
LCM_REMOVE_OBJECTS_REQUEST = f"{{{NS_LCM}}}RemoveObjectsRequest"
RIM_OBJECT_REF_LIST = f"{{{NS_RIM}}}ObjectRefList"
RMD_REMOVE_DOCUMENTS_REQUEST = f"{{{NS_RMD}}}RemoveDocumentsRequest"
DELETION_SCOPE = "deletionScope"


@dataclass(frozen=True, slots=True)
class RemoveObjectsRequest:
    """lcm:RemoveObjectsRequest (ITI-62): the entryUUIDs to remove, in request order,
    each once."""

    object_refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RemoveDocumentsRequest:
    """rmd:RemoveDocumentsRequest (ITI-86): the documents to remove."""

    documents: tuple[DocumentRequest, ...]


# --- ITI-62 -----------------------------------------------------------------------------


def parse_remove_objects_request(
    elem: etree._Element, *, code: ErrorCode = ErrorCode.XDSRegistryError
) -> ParseResult[RemoveObjectsRequest]:
    """lcm:RemoveObjectsRequest.  ITI TF-2 3.62.4.1.2: the ObjectRefList shall be
    present, AdhocQuery and deletionScope shall not; ObjectRef/@id is required
    (rim.xsd).  A repeated id counts once."""
    errors: list[RegistryError] = []
    if elem.get(DELETION_SCOPE) is not None:
        errors.append(RegistryError(code, "deletionScope shall not be specified", DELETION_SCOPE))
    if elem.find(RIM.AdhocQuery) is not None:
        errors.append(RegistryError(code, "AdhocQuery shall not be specified", "AdhocQuery"))
    ref_list = elem.find(RIM_OBJECT_REF_LIST)
    refs: list[str] = []
    if ref_list is None:
        errors.append(RegistryError(code, "ObjectRefList is missing", "ObjectRefList"))
    else:
        for n, ref in enumerate(ref_list.iterfind(RIM.ObjectRef), 1):
            ident = (ref.get("id") or "").strip()
            if not ident:
                errors.append(RegistryError(code, "ObjectRef without id", f"ObjectRef[{n}]"))
            elif ident not in refs:
                refs.append(ident)
        if not refs and not errors:
            errors.append(RegistryError(code, "ObjectRefList is empty", "ObjectRefList"))
    return ParseResult(RemoveObjectsRequest(tuple(refs)), tuple(errors))


def remove_objects_request(request: RemoveObjectsRequest) -> etree._Element:
    """lcm:RemoveObjectsRequest for ITI-62 (ITI TF-2 3.62.4.1.2)."""
    elem = etree.Element(
        LCM_REMOVE_OBJECTS_REQUEST, nsmap={"lcm": NSMAP["lcm"], "rim": NSMAP["rim"]}
    )
    ref_list = etree.SubElement(elem, RIM_OBJECT_REF_LIST)
    for ident in request.object_refs:
        etree.SubElement(ref_list, RIM.ObjectRef, id=ident)
    return elem


# --- ITI-86 -----------------------------------------------------------------------------


def _text(parent: etree._Element, tag: str) -> str | None:
    child = parent.find(tag)
    text = None if child is None else (child.text or "").strip()
    return text or None


def parse_remove_documents_request(
    elem: etree._Element, *, code: ErrorCode = ErrorCode.XDSRepositoryError
) -> ParseResult[RemoveDocumentsRequest]:
    """rmd:RemoveDocumentsRequest (RMD 3.86.4.1.2).  Each DocumentRequest needs a
    RepositoryUniqueId and a DocumentUniqueId (HomeCommunityId optional); incomplete
    ones are reported and left out."""
    errors: list[RegistryError] = []
    documents: list[DocumentRequest] = []
    for n, request in enumerate(elem.iterfind(XDSB.DocumentRequest), 1):
        repository = _text(request, XDSB.RepositoryUniqueId)
        document = _text(request, XDSB.DocumentUniqueId)
        location = f"DocumentRequest[{n}]"
        if repository is None:
            errors.append(RegistryError(code, "RepositoryUniqueId is missing", location))
        if document is None:
            errors.append(RegistryError(code, "DocumentUniqueId is missing", location))
        if repository is not None and document is not None:
            home = _text(request, XDSB.HomeCommunityId)
            documents.append(DocumentRequest(repository, document, home))
    if elem.find(XDSB.DocumentRequest) is None:
        errors.append(RegistryError(code, "no DocumentRequest in the request"))
    return ParseResult(RemoveDocumentsRequest(tuple(documents)), tuple(errors))


def remove_documents_request(request: RemoveDocumentsRequest) -> etree._Element:
    """rmd:RemoveDocumentsRequest for ITI-86 (RMD 3.86.4.1.2)."""
    elem = etree.Element(
        RMD_REMOVE_DOCUMENTS_REQUEST, nsmap={"rmd": NSMAP["rmd"], "xdsb": NSMAP["xdsb"]}
    )
    for document in request.documents:
        child = etree.SubElement(elem, XDSB.DocumentRequest)
        if document.home_community_id:
            etree.SubElement(child, XDSB.HomeCommunityId).text = document.home_community_id
        etree.SubElement(child, XDSB.RepositoryUniqueId).text = document.repository_unique_id
        etree.SubElement(child, XDSB.DocumentUniqueId).text = document.document_unique_id
    return elem


__all__ = [
    "LCM_REMOVE_OBJECTS_REQUEST",
    "RIM_OBJECT_REF_LIST",
    "RMD_REMOVE_DOCUMENTS_REQUEST",
    "RemoveDocumentsRequest",
    "RemoveObjectsRequest",
    "parse_remove_documents_request",
    "parse_remove_objects_request",
    "remove_documents_request",
    "remove_objects_request",
]
