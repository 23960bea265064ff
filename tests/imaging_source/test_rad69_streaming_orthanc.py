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
from http_proxy import Fault, RecordingProxy
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


@pytest.fixture
def proxy(orthanc: OrthancServer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy("127.0.0.1", orthanc.http_port)
    yield proxy
    proxy.close()


def _open_files_under(root: Path) -> list[str]:
    """The files under ``root`` this process holds open."""
    held = []
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = fd.readlink()
        except OSError:
            continue
        if target.is_relative_to(root.resolve()):
            held.append(str(target))
    return held


def _is_retrieve(target: str) -> bool:
    """A WADO-RS Retrieve Series or Instance (not a QIDO-RS search)."""
    path = target.split("?", 1)[0]
    return "/series/" in path and not path.endswith("/instances")


@pytest.fixture
def seen() -> list[httpx.Response]:
    return []


def _source(proxy: RecordingProxy, store: InstanceStore) -> PacsSource:
    fetcher = WadoRsFetcher(proxy.url("/dicom-web"), client=httpx.Client(timeout=30))
    return PacsSource(store, fetcher, max_bytes=10**9)


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
    # the answers' parts land in the test's own directory
    client = SoapClient(
        f"http://xdsi.test{IMAGING_SOURCE_PATH}",
        transport=transport,
        limits=Limits(spool_dir=tmp_path),
    )
    return client, transport


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
    proxy: RecordingProxy,
) -> None:
    client, _ = _client(_source(proxy, store), tmp_path, seen)

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

    fetched = len(proxy.targets)
    assert any(_is_retrieve(t) for t in proxy.targets)
    again = await _retrieve(client, request_for(study))
    assert parse_retrieve_document_set_response(again.body, again.attachments).status is (
        ResponseStatus.SUCCESS
    )
    assert len(proxy.targets) == fetched  # the cache answers: nothing asked of Orthanc
    assert "content-length" in seen[1].headers


async def test_an_instance_orthanc_lacks_is_named_in_the_status_before_the_others_stream(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
    proxy: RecordingProxy,
) -> None:
    client, _ = _client(_source(proxy, store), tmp_path, seen)
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


async def test_an_instance_in_a_syntax_not_asked_for_is_transcoded_as_it_arrives(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
    proxy: RecordingProxy,
) -> None:
    client, _ = _client(_source(proxy, store), tmp_path, seen)
    ct = study[:3]  # the third is stored RLE Lossless
    request = request_for(ct)
    request = RetrieveImagingDocumentSetRequest(request.studies, (ExplicitVRLittleEndian,))

    result = await _retrieve(client, request)

    parsed = parse_retrieve_document_set_response(result.body, result.attachments)
    assert parsed.status is ResponseStatus.SUCCESS
    for document in parsed.documents:
        ds = dcmread(document.path)
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.parametrize("reset", [True, False], ids=["reset", "closed"])
async def test_orthanc_failing_mid_stream_cuts_the_answer_short_and_caches_whole_instances(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
    proxy: RecordingProxy,
    reset: bool,
) -> None:
    ct = study[:3]
    first_part = len(orthanc.original(ct[0].SOPInstanceUID))
    cuts: list[str] = []

    def cut_first_retrieve(target: str) -> Fault | None:
        if not _is_retrieve(target) or cuts:
            return None
        cuts.append(target)  # one part and a piece of the next
        return Fault(limit=first_part + 400, reset=reset)

    proxy.fault = cut_first_retrieve
    client, _ = _client(_source(proxy, store), tmp_path, seen)

    # the root part said Success for all three: the message must not end as complete
    with pytest.raises(IncompleteRetrieve):
        await _retrieve(client, request_for(ct))

    assert len(cuts) == 1
    cached = [i for s in store.studies() for i in store.instances(s)]
    assert 1 <= len(cached) < len(ct)  # what came whole before the break, no more
    for instance in cached:
        assert is_intact(instance)
        assert_pixels_are_orthancs(orthanc, instance.sop_instance_uid, instance.path.read_bytes())
    assert not any((store.root / INCOMING_DIR).iterdir())
    assert not _open_files_under(store.root)  # landed, opened, not sent: closed

    # a failed PACS is not a missing instance: asked again, all come
    again = await _retrieve(client, request_for(ct))
    parsed = parse_retrieve_document_set_response(again.body, again.attachments)
    assert parsed.status is ResponseStatus.SUCCESS and len(parsed.documents) == len(ct)


async def test_an_instance_orthanc_lists_but_gives_broken_is_unknown_once_it_failed(
    orthanc: OrthancServer,
    store: InstanceStore,
    study: list[Dataset],
    tmp_path: Path,
    seen: list[httpx.Response],
    proxy: RecordingProxy,
) -> None:
    # the first part of a Retrieve loses its "DICM" prefix (PS3.10 7.1)
    proxy.fault = lambda target: Fault(old=b"DICM", new=b"XXXX") if _is_retrieve(target) else None
    client, _ = _client(_source(proxy, store), tmp_path, seen)
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
