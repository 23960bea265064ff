"""The Imaging Document Source's SOAP endpoint ``/xdsi/imaging-source``: RAD-69.

RAD TF-3 4.69.4.1.2 and ITI TF-2 Appendix V: SOAP 1.2 with WS-Addressing, request Action
``urn:ihe:rad:2009:RetrieveImagingDocumentSet``, response Action
``urn:ihe:iti:2007:RetrieveDocumentSetResponse``, MTOM/XOP both ways (soap/ also
accepts a plain SOAP request from a lenient client).  The instances go out as MTOM parts
streamed from disk.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from starlette.concurrency import run_in_threadpool

from ebxml.messages import RetrieveDocumentSetResponse
from ebxml.retrieve import (
    parse_retrieve_imaging_document_set_request,
    retrieve_document_set_response,
)
from ebxml.vocabulary import RESPONSE_ACTION, Action
from imaging_source.pacs import InstanceSource
from imaging_source.rad69 import (
    ImagingSourceIdentity,
    response_status,
    retrieve_imaging_document_set,
)
from imaging_source.transcode import DEFAULT_CACHE_BYTES, Transcoder
from soap.message import Operation, OutgoingAttachment, Service, SoapRequest, SoapResponse

IMAGING_SOURCE_PATH = "/xdsi/imaging-source"
WSDL_RESOURCE = "wsdl/ImagingDocumentSource.wsdl"
TRANSCODED_DIR = ".transcoded"


@dataclass(frozen=True, slots=True)
class Rad69Config:
    """The RAD-69 endpoint's identity and where transcoded instances are kept."""

    repository_unique_id: str
    home_community_id: str | None = None
    # folder of converted instances (TRANSCODED_DIR under the imaging storage by default)
    transcode_dir: Path | None = None
    transcode_max_bytes: int = DEFAULT_CACHE_BYTES

    def identity(self) -> ImagingSourceIdentity:
        return ImagingSourceIdentity(self.repository_unique_id, self.home_community_id)

    def transcoder(self, storage_dir: Path) -> Transcoder:
        directory = self.transcode_dir or Path(storage_dir) / TRANSCODED_DIR
        return Transcoder(directory, self.transcode_max_bytes)


def _content_id(n: int) -> str:
    return f"instance{n}.{uuid.uuid4().hex}@xdsi"


def imaging_source_wsdl() -> str:
    return resources.files("imaging_source").joinpath(WSDL_RESOURCE).read_text(encoding="utf-8")


def rad69_operation(
    source: InstanceSource, transcoder: Transcoder, identity: ImagingSourceIdentity
) -> Operation:
    """RAD-69 bound to ``source`` (local store or backing PACS)."""

    async def retrieve_handler(request: SoapRequest) -> SoapResponse:
        parsed = parse_retrieve_imaging_document_set_request(request.body)
        response = await run_in_threadpool(
            retrieve_imaging_document_set,
            parsed.value,
            source=source,
            transcoder=transcoder,
            identity=identity,
        )
        errors = (*parsed.errors, *response.errors)
        response = RetrieveDocumentSetResponse(
            response_status(len(response.documents), len(errors)), response.documents, errors
        )
        cids = [_content_id(n) for n, _ in enumerate(response.documents, 1)]
        attachments = [
            OutgoingAttachment(cid, doc.mime_type, doc.path, doc.size)
            for cid, doc in zip(cids, response.documents, strict=True)
        ]
        return SoapResponse(retrieve_document_set_response(response, cids), attachments)

    return Operation(Action.RAD69, RESPONSE_ACTION[Action.RAD69], retrieve_handler, mtom=True)


def imaging_source_service(
    source: InstanceSource,
    transcoder: Transcoder,
    identity: ImagingSourceIdentity,
    *,
    path: str = IMAGING_SOURCE_PATH,
) -> Service:
    """``/xdsi/imaging-source``: RAD-69, MTOM/XOP, with its WSDL at ``?wsdl``."""
    operation = rad69_operation(source, transcoder, identity)
    return Service(path, {operation.action: operation}, imaging_source_wsdl())


__all__ = [
    "IMAGING_SOURCE_PATH",
    "Rad69Config",
    "imaging_source_service",
    "imaging_source_wsdl",
    "rad69_operation",
]
