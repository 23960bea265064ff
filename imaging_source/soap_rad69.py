"""The Imaging Document Source's SOAP endpoint ``/xdsi/imaging-source``: RAD-69.

RAD TF-3 4.69.4.1.2 and ITI TF-2 Appendix V: SOAP 1.2 with WS-Addressing, request Action
``urn:ihe:rad:2009:RetrieveImagingDocumentSet``, response Action
``urn:ihe:iti:2007:RetrieveDocumentSetResponse``, MTOM/XOP both ways (soap/ also
accepts a plain SOAP request from a lenient client).  The instances go out as MTOM parts
streamed from disk.  In front of a PACS that can stream (WADO-RS), the instances still
to be fetched go out as each lands in the cache, the message chunked
(``SoapResponse.streamed``); should one of them not come, the message is cut short
(``soap.mtom_stream``) and the consumer sees a failed exchange, not a Success missing
an instance.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import anyio
from starlette.concurrency import run_in_threadpool

from ebxml.errors import RegistryError
from ebxml.messages import RetrieveDocumentSetResponse
from ebxml.retrieve import (
    parse_retrieve_imaging_document_set_request,
    retrieve_document_set_response_parts,
)
from ebxml.vocabulary import RESPONSE_ACTION, Action
from imaging_source.pacs import InstanceSource, StreamingSource
from imaging_source.rad69 import (
    ImagingSourceIdentity,
    StreamedDocumentSet,
    response_status,
    retrieve_imaging_document_set,
    retrieve_imaging_document_set_streamed,
)
from imaging_source.transcode import DEFAULT_CACHE_BYTES, Delivery, Transcoder
from soap.message import Operation, OutgoingAttachment, Service, SoapRequest, SoapResponse
from soap.mtom import new_content_ids
from soap.mtom_response import OPEN_AHEAD
from soap.splice import XmlSplice

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


def imaging_source_wsdl() -> str:
    return resources.files("imaging_source").joinpath(WSDL_RESOURCE).read_text(encoding="utf-8")


def rad69_operation(
    source: InstanceSource, transcoder: Transcoder, identity: ImagingSourceIdentity
) -> Operation:
    """RAD-69 bound to ``source`` (local store or backing PACS)."""

    async def retrieve_handler(request: SoapRequest) -> SoapResponse:
        parsed = parse_retrieve_imaging_document_set_request(request.body)
        streamed: StreamedDocumentSet | None = None
        if isinstance(source, StreamingSource):
            streamed = await run_in_threadpool(
                retrieve_imaging_document_set_streamed,
                parsed.value,
                source=source,
                transcoder=transcoder,
                identity=identity,
            )
            response = streamed.response
        else:
            response = await run_in_threadpool(
                retrieve_imaging_document_set,
                parsed.value,
                source=source,
                transcoder=transcoder,
                identity=identity,
            )
        try:
            return _answer(parsed.errors, response, streamed)
        except BaseException:
            if streamed is not None:
                await anyio.to_thread.run_sync(streamed.close)
            raise

    return Operation(Action.RAD69, RESPONSE_ACTION[Action.RAD69], retrieve_handler, mtom=True)


def _answer(
    request_errors: Sequence[RegistryError],
    response: RetrieveDocumentSetResponse,
    streamed: StreamedDocumentSet | None,
) -> SoapResponse:
    """The response message: the instances on disk as parts at once, those still to come
    from the PACS as ``streamed`` parts."""
    pending = streamed.pending if streamed is not None else ()
    errors = (*request_errors, *response.errors)
    documents = (*response.documents, *pending)
    response = RetrieveDocumentSetResponse(
        response_status(len(documents), len(errors)), documents, errors
    )
    cids = new_content_ids("instance", len(documents))
    ready = len(documents) - len(pending)
    attachments = [
        OutgoingAttachment(cid, doc.mime_type, doc.path, doc.size)
        for cid, doc in zip(cids[:ready], documents[:ready], strict=True)
    ]
    body, fragments = retrieve_document_set_response_parts(response, cids)
    splices = (XmlSplice(body, fragments),)
    if streamed is None or not pending:
        return SoapResponse(body, attachments, splices=splices)
    parts = _Arriving(streamed, cids[ready:])
    return SoapResponse(body, attachments, splices=splices, streamed=parts)


class _Arriving:
    """The pending documents' parts as their instances land (taken off the event loop);
    IncompleteRetrieve from the deliveries ends the message short.  ``aclose`` ends the
    fetch from the PACS whether or not a part was asked for."""

    def __init__(self, streamed: StreamedDocumentSet, cids: Sequence[str]) -> None:
        self._streamed = streamed
        self._cids = cids
        self._deliveries: Iterator[list[tuple[int, Delivery]]] | None = None
        self._ready: list[OutgoingAttachment] = []
        self._landed: deque[tuple[int, Delivery]] = deque()  # landed, not opened yet
        # waiting for the PACS holds a thread: one of this response's own, so that slow
        # PACS answers never take the worker threads the other requests need
        self._limiter = anyio.CapacityLimiter(1)

    def __aiter__(self) -> _Arriving:
        return self

    async def __anext__(self) -> OutgoingAttachment:
        if self._deliveries is None:
            self._deliveries = self._streamed.deliveries()
        while not self._ready:
            batch = await anyio.to_thread.run_sync(
                self._next_batch, self._deliveries, limiter=self._limiter
            )
            if batch is None:
                raise StopAsyncIteration
            self._ready = batch
        return self._ready.pop(0)

    def _next_batch(
        self, deliveries: Iterator[list[tuple[int, Delivery]]]
    ) -> list[OutgoingAttachment] | None:
        """The next documents landed, their files opened here, in the thread that waited
        for them: one trip off the event loop a batch, not one a file more."""
        if not self._landed:
            batch = next(deliveries, None)
            if batch is None:
                return None
            self._landed.extend(batch)
        pending = self._streamed.pending
        ready: list[OutgoingAttachment] = []
        try:
            while self._landed and len(ready) < OPEN_AHEAD:  # a bounded number open
                i, delivery = self._landed[0]
                file = delivery.path.open("rb")
                self._landed.popleft()
                ready.append(
                    OutgoingAttachment(
                        self._cids[i], pending[i].mime_type, delivery.path, delivery.size, file
                    )
                )
        except BaseException:
            _close_files(ready)
            raise
        return ready

    async def aclose(self) -> None:
        _close_files(self._ready)  # landed, not sent: the message was cut short
        self._ready = []
        deliveries = self._deliveries
        with anyio.CancelScope(shield=True):
            if deliveries is not None:
                await anyio.to_thread.run_sync(deliveries.close, limiter=self._limiter)
            await anyio.to_thread.run_sync(self._streamed.close, limiter=self._limiter)


def _close_files(attachments: Sequence[OutgoingAttachment]) -> None:
    for attachment in attachments:
        if attachment.file is not None:
            attachment.file.close()


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
