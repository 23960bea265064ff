"""xdsi in front of a real Orthanc (the backing PACS) in both modes: WADO-RS/QIDO-RS and
C-FIND + C-MOVE to xdsi's own storage SCP.  RAD-69 through xdsi from a cold cache gives
Orthanc's original pixel data; the cache stays within its bound; unknown UIDs are
counted, not trusted."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dicom_studies import make_instance, make_study
from dimse_fixtures import free_port
from http_proxy import RecordingProxy
from lxml import etree
from orthanc_fixtures import ORTHANC_AET, OrthancServer, orthanc_server
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from starlette.applications import Starlette
from starlette.routing import Mount

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
from imaging_source.config import ImagingSourceConfig
from imaging_source.dicomweb import dicomweb_routes
from imaging_source.instances import InstanceStore, QueryLevel, make_engine, upgrade
from imaging_source.pacs import DimseFetcher, InstanceRef, PacsSource, WadoRsFetcher
from imaging_source.peers import DicomPeer
from imaging_source.rad69 import ImagingSourceIdentity, retrieve_imaging_document_set
from imaging_source.service import ImagingSource
from imaging_source.soap_rad69 import IMAGING_SOURCE_PATH, imaging_source_service
from imaging_source.transcode import Transcoder
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits

OUR_ID = "1.3.6.1.4.1.21367.13.80.110"
IDENTITY = ImagingSourceIdentity(OUR_ID)
XDSI_AET = "XDSI"
# what the instances are stored as: no transcoding, so the pixel data must be Orthanc's
AS_STORED = (ExplicitVRLittleEndian, RLELossless)


@pytest.fixture(scope="module")
def xdsi_dicom_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def study() -> list[Dataset]:
    return make_study()


@pytest.fixture(scope="module")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, xdsi_dicom_port: int, study: list[Dataset]
) -> Iterator[OrthancServer]:
    modalities = {"xdsi": [XDSI_AET, "127.0.0.1", xdsi_dicom_port]}
    directory = tmp_path_factory.mktemp("orthanc")
    for server in orthanc_server(directory, free_port(), free_port(), modalities):
        server.upload(study)
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InstanceStore]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    upgrade(engine)
    yield InstanceStore(tmp_path / "cache", engine)
    engine.dispose()


@pytest.fixture
def proxy(orthanc: OrthancServer) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy("127.0.0.1", orthanc.http_port)
    yield proxy
    proxy.close()


@pytest.fixture
def requests_seen(proxy: RecordingProxy) -> list[str]:
    """The paths (without the query) of what xdsi asked of Orthanc."""
    return proxy.targets


@pytest.fixture
def wado_source(proxy: RecordingProxy, store: InstanceStore) -> Iterator[PacsSource]:
    fetcher = WadoRsFetcher(proxy.url("/dicom-web"), client=httpx.Client(timeout=30))
    yield PacsSource(store, fetcher, max_bytes=10**9)
    fetcher.close()


@pytest.fixture(scope="module")
def imaging(
    tmp_path_factory: pytest.TempPathFactory, xdsi_dicom_port: int
) -> Iterator[ImagingSource]:
    directory = tmp_path_factory.mktemp("xdsi")
    config = ImagingSourceConfig(
        storage_dir=directory / "store",
        ae_title=XDSI_AET,
        dicom_host="127.0.0.1",
        dicom_port=xdsi_dicom_port,
        acse_timeout=10,
        dimse_timeout=30,
        network_timeout=30,
    )
    source = ImagingSource(config)
    source.start()
    yield source
    source.stop()


@pytest.fixture
def dimse_source(orthanc: OrthancServer, imaging: ImagingSource) -> PacsSource:
    for study_uid in list(imaging.store.studies()):  # a cold cache for every test
        imaging.store.remove(study_instance_uid=study_uid)
    pacs = DicomPeer(ORTHANC_AET, "127.0.0.1", orthanc.dicom_port)
    fetcher = DimseFetcher(pacs, XDSI_AET, acse_timeout=10, dimse_timeout=30)
    return PacsSource(imaging.store, fetcher, max_bytes=10**9)


def request_for(datasets: list[Dataset]) -> RetrieveImagingDocumentSetRequest:
    series: dict[str, list[DocumentRequest]] = {}
    for ds in datasets:
        series.setdefault(ds.SeriesInstanceUID, []).append(
            DocumentRequest(OUR_ID, ds.SOPInstanceUID)
        )
    return RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                datasets[0].StudyInstanceUID,
                tuple(SeriesRequest(uid, tuple(docs)) for uid, docs in series.items()),
            ),
        ),
        AS_STORED,
    )


def assert_pixels_are_orthancs(orthanc: OrthancServer, uid: str, content: bytes) -> None:
    original = dcmread(io.BytesIO(orthanc.original(uid)))
    got = dcmread(io.BytesIO(content))
    assert got.SOPInstanceUID == uid
    assert got.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
    assert got.PixelData == original.PixelData


async def test_rad69_by_wado_rs_from_a_cold_cache_gives_orthancs_pixel_data(
    orthanc: OrthancServer, wado_source: PacsSource, study: list[Dataset], tmp_path: Path
) -> None:
    assert wado_source.store.total_size() == 0
    service = imaging_source_service(wado_source, Transcoder(tmp_path / "t"), IDENTITY)
    transport = httpx.ASGITransport(app=Starlette(routes=build_soap_routes([service], Limits())))
    client = SoapClient(
        f"http://xdsi.test{IMAGING_SOURCE_PATH}",
        transport=transport,
        limits=Limits(spool_dir=tmp_path),  # the answer's parts: the test's to keep
    )
    body = retrieve_imaging_document_set_request(request_for(study))
    response = await client.call(Action.RAD69, body, mtom=True)
    parsed = parse_retrieve_document_set_response(response.body, response.attachments)
    assert parsed.status is ResponseStatus.SUCCESS
    assert [d.document_unique_id for d in parsed.documents] == [ds.SOPInstanceUID for ds in study]
    for document in parsed.documents:
        assert_pixels_are_orthancs(orthanc, document.document_unique_id, document.path.read_bytes())


def test_second_retrieve_is_served_from_the_cache(
    wado_source: PacsSource, study: list[Dataset], tmp_path: Path, requests_seen: list[str]
) -> None:
    transcoder = Transcoder(tmp_path / "t")
    request = request_for(study[:3])
    retrieve_imaging_document_set(
        request, source=wado_source, transcoder=transcoder, identity=IDENTITY
    )
    fetched = len(requests_seen)
    again = retrieve_imaging_document_set(
        request, source=wado_source, transcoder=transcoder, identity=IDENTITY
    )
    assert again.status is ResponseStatus.SUCCESS and fetched > 0
    assert len(requests_seen) == fetched  # nothing asked of Orthanc the second time


def test_a_whole_series_comes_in_one_retrieve_series(
    wado_source: PacsSource, study: list[Dataset], requests_seen: list[str]
) -> None:
    # study[:3] is the whole CT series; study[3] is one of the two MR instances
    wanted = [*study[:3], study[3]]
    found = wado_source.locate(
        [InstanceRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) for ds in wanted]
    )
    assert set(found) == {ds.SOPInstanceUID for ds in wanted}
    ct, mr = study[0], study[3]
    paths = [target.split("?")[0].removeprefix("/dicom-web") for target in requests_seen]
    assert sorted(paths) == sorted(
        [
            "/series",  # QIDO-RS: NumberOfSeriesRelatedInstances of the CT series
            f"/studies/{ct.StudyInstanceUID}/series/{ct.SeriesInstanceUID}",
            f"/studies/{mr.StudyInstanceUID}/series/{mr.SeriesInstanceUID}"
            f"/instances/{mr.SOPInstanceUID}",
        ]
    )


def test_cache_is_kept_within_its_bound(
    wado_source: PacsSource, study: list[Dataset], tmp_path: Path
) -> None:
    one = max(len(encoded(ds)) for ds in study)
    wado_source.max_bytes = 2 * one
    transcoder = Transcoder(tmp_path / "t")
    for ds in study:
        response = retrieve_imaging_document_set(
            request_for([ds]), source=wado_source, transcoder=transcoder, identity=IDENTITY
        )
        assert response.status is ResponseStatus.SUCCESS
    assert wado_source.store.total_size() <= 2 * one
    assert wado_source.store.get(study[-1].SOPInstanceUID) is not None  # most recent stays
    assert wado_source.store.get(study[0].SOPInstanceUID) is None  # least recent went


def encoded(ds: Dataset) -> bytes:
    buffer = DicomBytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def test_unknown_uid_by_wado_rs_is_a_document_unique_id_error(
    wado_source: PacsSource, study: list[Dataset], tmp_path: Path
) -> None:
    ghost = make_instance(study[0].StudyInstanceUID, study[0].SeriesInstanceUID)
    response = retrieve_imaging_document_set(
        request_for([study[0], ghost]),
        source=wado_source,
        transcoder=Transcoder(tmp_path / "t"),
        identity=IDENTITY,
    )
    assert response.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, ghost.SOPInstanceUID)
    ]


def test_rad69_by_c_move_gives_orthancs_pixel_data(
    orthanc: OrthancServer, dimse_source: PacsSource, study: list[Dataset], tmp_path: Path
) -> None:
    assert dimse_source.store.total_size() == 0
    response = retrieve_imaging_document_set(
        request_for(study),
        source=dimse_source,
        transcoder=Transcoder(tmp_path / "t"),
        identity=IDENTITY,
    )
    assert response.status is ResponseStatus.SUCCESS, response.errors
    for document in response.documents:
        assert_pixels_are_orthancs(orthanc, document.document_unique_id, document.path.read_bytes())


def test_c_move_counts_what_arrives(dimse_source: PacsSource, study: list[Dataset]) -> None:
    known = study[3]
    unknown = InstanceRef(known.StudyInstanceUID, known.SeriesInstanceUID, generate_uid())
    refs = [
        InstanceRef(known.StudyInstanceUID, known.SeriesInstanceUID, known.SOPInstanceUID),
        unknown,
    ]
    arrived = dimse_source.fetcher.fetch(refs, dimse_source.store)
    assert arrived == {known.SOPInstanceUID}


def test_c_find_lists_a_series_of_orthanc(dimse_source: PacsSource, study: list[Dataset]) -> None:
    found = list(
        dimse_source.find(
            QueryLevel.IMAGE,
            {
                "StudyInstanceUID": study[0].StudyInstanceUID,
                "SeriesInstanceUID": study[3].SeriesInstanceUID,
            },
        )
    )
    assert {m["SOPInstanceUID"] for m in found} == {
        study[3].SOPInstanceUID,
        study[4].SOPInstanceUID,
    }


async def test_qido_and_wado_rs_through_xdsi_answer_from_orthanc(
    wado_source: PacsSource, study: list[Dataset], tmp_path: Path
) -> None:
    routes = dicomweb_routes(wado_source, Transcoder(tmp_path / "t"))
    app = Starlette(routes=[Mount("/dicomweb", routes=routes)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://xdsi.test/dicomweb"
    ) as client:
        studies = (await client.get("/studies", params={"PatientID": "PAT-1"})).json()
        series = await client.get(
            f"/studies/{study[0].StudyInstanceUID}/series/{study[3].SeriesInstanceUID}",
            headers={"accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
    assert study[0].StudyInstanceUID in {Dataset.from_json(s).StudyInstanceUID for s in studies}
    assert series.status_code == 200
    assert series.content.count(b"DICM") == 2
