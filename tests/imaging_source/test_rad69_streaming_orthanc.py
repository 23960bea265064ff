"""RAD-69 through xdsi in front of a real Orthanc (WADO-RS mode), cold cache: the answer
streams while the instances arrive (chunked, no Content-Length), its status and
RegistryErrors decided by QIDO-RS before any pixel data; an Orthanc that fails
mid-stream cuts the answer short and leaves only whole instances in the cache."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from orthanc_fixtures import OrthancServer
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from starlette.applications import Starlette
from test_pacs_orthanc import (
    AS_STORED,
    IDENTITY,
    OUR_ID,
    assert_pixels_are_orthancs,
    orthanc,
    request_for,
    store,
    study,
    xdsi_dicom_port,
)

from ebxml.errors import ErrorCode
from ebxml.messages import (
    DocumentRequest,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.retrieve import (
    parse_retrieve_document_set_response,
    retrieve_imaging_document_set_request,
)
from ebxml.vocabulary import Action, ResponseStatus
from imaging_source.instances import INCOMING_DIR, InstanceStore, is_intact
from imaging_source.pacs import PacsSource, WadoRsFetcher
from imaging_source.rad69 import IncompleteRetrieve
from imaging_source.soap_rad69 import IMAGING_SOURCE_PATH, imaging_source_service
from imaging_source.transcode import Transcoder
from soap.app import build_soap_routes
from soap.client import ClientResponse, SoapClient
from soap.limits import Limits


class _CutStream(httpx.SyncByteStream):
    """A response body that ends after ``limit`` bytes: with a reset connection, or
    closed as if it were complete (a body delimited by the end of the connection)."""

    def __init__(self, inner: httpx.SyncByteStream, limit: int, *, reset: bool) -> None:
        self.inner = inner
        self.limit = limit
        self.reset = reset

    def __iter__(self) -> Iterator[bytes]:
        sent = 0
        for chunk in self.inner:
            if sent + len(chunk) >= self.limit:
                yield chunk[: self.limit - sent]
                if self.reset:
                    raise httpx.ReadError("connection reset by the PACS")
                return
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _PacsFailingMidStream(httpx.BaseTransport):
    """Orthanc as it is, but its first WADO-RS Retrieve Series breaks off after
    ``limit`` bytes of its multipart body."""

    def __init__(self, limit: int, *, reset: bool) -> None:
        self.inner = httpx.HTTPTransport()
        self.limit = limit
        self.reset = reset
        self.cut = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        path = request.url.path
        if "/series/" not in path or path.endswith("/instances") or self.cut:
            return response
        self.cut += 1
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_CutStream(response.stream, self.limit, reset=self.reset),
        )

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def seen() -> list[httpx.Response]:
    return []


def _source(orthanc: OrthancServer, store: InstanceStore, client: httpx.Client) -> PacsSource:
    return PacsSource(store, WadoRsFetcher(orthanc.dicomweb, client=client), max_bytes=10**9)


def _client(
    source: PacsSource, tmp_path: Path, seen: list[httpx.Response]
) -> tuple[SoapClient, httpx.ASGITransport]:
    service = imaging_source_service(source, Transcoder(tmp_path / "t"), IDENTITY)
    app = Starlette(routes=build_soap_routes([service], Limits()))
    transport = httpx.ASGITransport(app=app)
    handle = transport.handle_async_request

    async def recording(request: httpx.Request) -> httpx.Response:
        response = await handle(request)
        seen.append(response)
        return response

    transport.handle_async_request = recording  # type: ignore[method-assign]
    return SoapClient(f"http://xdsi.test{IMAGING_SOURCE_PATH}", transport=transport), transport


async def _retrieve(
    client: SoapClient, request: RetrieveImagingDocumentSetRequest
) -> ClientResponse:
    body = retrieve_imaging_document_set_request(request)
    return await client.call(Action.RAD69, body, mtom=True)


async def test_a_cold_cache_answer_streams_orthancs_instances_and_keeps_them(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
) -> None:
    asked: list[str] = []
    http = httpx.Client(timeout=30, event_hooks={"request": [lambda r: asked.append(r.url.path)]})
    client, _ = _client(_source(orthanc, store, http), tmp_path, seen)

    result = await _retrieve(client, request_for(study))

    parsed = parse_retrieve_document_set_response(result.body, result.attachments)
    assert parsed.status is ResponseStatus.SUCCESS and not parsed.errors
    assert [d.document_unique_id for d in parsed.documents] == [ds.SOPInstanceUID for ds in study]
    for document in parsed.documents:
        assert_pixels_are_orthancs(orthanc, document.document_unique_id, document.path.read_bytes())
    # streamed: sent as it came, so no length was known before the first byte
    assert "content-length" not in seen[0].headers
    assert {i.sop_instance_uid for s in store.studies() for i in store.instances(s)} == {
        ds.SOPInstanceUID for ds in study
    }
    assert not any((store.root / INCOMING_DIR).iterdir())

    fetched = len(asked)
    again = await _retrieve(client, request_for(study))
    assert parse_retrieve_document_set_response(again.body, again.attachments).status is (
        ResponseStatus.SUCCESS
    )
    assert len(asked) == fetched  # the cache answers: nothing asked of Orthanc
    assert "content-length" in seen[1].headers
    http.close()


async def test_an_instance_orthanc_lacks_is_named_in_the_status_before_the_others_stream(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
) -> None:
    http = httpx.Client(timeout=30)
    client, _ = _client(_source(orthanc, store, http), tmp_path, seen)
    absent = generate_uid()
    ct = study[:3]
    request = RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                ct[0].StudyInstanceUID,
                (
                    SeriesRequest(
                        ct[0].SeriesInstanceUID,
                        tuple(
                            DocumentRequest(OUR_ID, uid)
                            for uid in [absent] + [ds.SOPInstanceUID for ds in ct]
                        ),
                    ),
                ),
            ),
        ),
        AS_STORED,
    )

    result = await _retrieve(client, request)

    parsed = parse_retrieve_document_set_response(result.body, result.attachments)
    # RAD TF-3 4.69.4.2 / ITI TF-2 3.43.4.2.3: some found, one not
    assert parsed.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in parsed.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, absent)
    ]
    assert [d.document_unique_id for d in parsed.documents] == [ds.SOPInstanceUID for ds in ct]
    for document in parsed.documents:
        assert_pixels_are_orthancs(orthanc, document.document_unique_id, document.path.read_bytes())
    assert "content-length" not in seen[0].headers
    http.close()


async def test_an_instance_in_a_syntax_not_asked_for_is_transcoded_as_it_arrives(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
) -> None:
    http = httpx.Client(timeout=30)
    client, _ = _client(_source(orthanc, store, http), tmp_path, seen)
    ct = study[:3]  # the third is stored RLE Lossless
    request = request_for(ct)
    request = RetrieveImagingDocumentSetRequest(request.studies, (ExplicitVRLittleEndian,))

    result = await _retrieve(client, request)

    parsed = parse_retrieve_document_set_response(result.body, result.attachments)
    assert parsed.status is ResponseStatus.SUCCESS
    for document in parsed.documents:
        ds = dcmread(document.path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    http.close()


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
async def test_orthanc_failing_mid_stream_cuts_the_answer_short_and_caches_whole_instances(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
    reset: bool,
) -> None:
    ct = study[:3]
    first_part = len(orthanc.original(ct[0].SOPInstanceUID))
    # one part and a piece of the next
    pacs = _PacsFailingMidStream(limit=first_part + 400, reset=reset)
    http = httpx.Client(timeout=30, transport=pacs)
    client, _ = _client(_source(orthanc, store, http), tmp_path, seen)

    # the root part said Success for all three: the message must not end as complete
    with pytest.raises(IncompleteRetrieve):
        await _retrieve(client, request_for(ct))

    assert pacs.cut == 1
    cached = [i for s in store.studies() for i in store.instances(s)]
    assert 1 <= len(cached) < len(ct)  # what came whole before the break, no more
    for instance in cached:
        assert is_intact(instance)
        assert_pixels_are_orthancs(orthanc, instance.sop_instance_uid, instance.path.read_bytes())
    assert not any((store.root / INCOMING_DIR).iterdir())

    # a failed PACS is not a missing instance: asked again, all come
    again = await _retrieve(client, request_for(ct))
    parsed = parse_retrieve_document_set_response(again.body, again.attachments)
    assert parsed.status is ResponseStatus.SUCCESS and len(parsed.documents) == len(ct)
    http.close()


class _GarbledFirstPart(httpx.SyncByteStream):
    """A response body whose first DICOM part lost its "DICM" prefix (PS3.10 7.1)."""

    def __init__(self, inner: httpx.SyncByteStream) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[bytes]:
        garbled = False
        for chunk in self.inner:
            if not garbled and b"DICM" in chunk:
                chunk, garbled = chunk.replace(b"DICM", b"XXXX", 1), True
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _PacsGivingABrokenPart(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        path = request.url.path
        if "/series/" not in path or path.endswith("/instances"):
            return response
        assert isinstance(response.stream, httpx.SyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_GarbledFirstPart(response.stream),
        )

    def close(self) -> None:
        self.inner.close()


async def test_an_instance_orthanc_lists_but_gives_broken_is_unknown_once_it_failed(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
) -> None:
    http = httpx.Client(timeout=30, transport=_PacsGivingABrokenPart())
    client, _ = _client(_source(orthanc, store, http), tmp_path, seen)
    mr = study[3:5]

    # promised by the QIDO-RS answer, refused when it came: the answer is cut short
    with pytest.raises(IncompleteRetrieve):
        await _retrieve(client, request_for(mr))
    (broken,) = {ds.SOPInstanceUID for ds in mr} - {
        i.sop_instance_uid for s in store.studies() for i in store.instances(s)
    }

    # asked again, it is not promised: one error, the rest from the cache
    again = await _retrieve(client, request_for(mr))
    parsed = parse_retrieve_document_set_response(again.body, again.attachments)
    assert parsed.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in parsed.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, broken)
    ]
    http.close()
