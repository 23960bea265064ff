"""The ``on_event`` hooks of the DICOM routes: each finished operation is reported once,
with its peer, its operation, the instances it touched and its status."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from dicom_studies import make_study
from dimse_fixtures import MOVE_DESTINATION, destination_port, source
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from imaging_source.config import ImagingSourceConfig
from imaging_source.dicomweb import dicomweb_routes
from imaging_source.exchange import DicomExchange, DicomOperation, ExchangeStatus
from imaging_source.pacs import LocalSource
from imaging_source.requestor import REQUESTOR_HANDLERS
from imaging_source.service import ImagingSource
from imaging_source.stow import stow_endpoint
from imaging_source.transcode import Transcoder

STORAGE = (CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage)
SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
BOUNDARY = "xdsi-hook-boundary"


def _wait_for(events: list[DicomExchange], count: int) -> None:
    # the SCP's handlers run on its own threads; the last report follows the last response
    deadline = time.monotonic() + 5
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.fixture
def events(source: ImagingSource) -> list[DicomExchange]:
    seen: list[DicomExchange] = []
    source.dimse.on_event = seen.append
    return seen


@pytest.fixture
def assoc(source: ImagingSource, events: list[DicomExchange]) -> Iterator:
    ae = AE(ae_title="TESTSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    for sop_class in STORAGE:
        ae.add_requested_context(sop_class, SYNTAXES)
        ae.add_requested_context(sop_class, RLELossless)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    association = ae.associate(
        "127.0.0.1", source.dimse.port, ae_title="XDSI", evt_handlers=REQUESTOR_HANDLERS
    )
    assert association.is_established
    yield association
    association.release()


def _store(assoc, events: list[DicomExchange]) -> list[Dataset]:  # noqa: ANN001
    datasets = make_study()
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0x0000
    _wait_for(events, len(datasets))
    return datasets


def test_c_store_reports_the_instance_and_the_calling_ae(assoc, events) -> None:  # noqa: ANN001
    datasets = _store(assoc, events)
    first = events[0]
    assert (first.operation, first.peer, first.local, first.peer_address) == (
        DicomOperation.C_STORE,
        "TESTSCU",
        "XDSI",
        "127.0.0.1",
    )
    assert [e.instances[0].sop_instance_uid for e in events] == [
        ds.SOPInstanceUID for ds in datasets
    ]
    assert first.instances[0].patient_id == "PAT-1"


def test_c_store_failure_is_reported_with_its_status(assoc, events) -> None:  # noqa: ANN001
    ds = make_study()[0]
    del ds.StudyInstanceUID
    assert assoc.send_c_store(ds).Status != 0x0000
    _wait_for(events, 1)
    assert (events[0].outcome, events[0].instances) == (ExchangeStatus.FAILURE, ())


def test_c_find_reports_its_identifier_and_keys(assoc, events) -> None:  # noqa: ANN001
    datasets = _store(assoc, events)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "PAT-1"
    query.StudyInstanceUID = datasets[0].StudyInstanceUID
    list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    _wait_for(events, len(datasets) + 1)
    find = events[-1]
    assert (find.operation, find.patient_id, find.study_instance_uids) == (
        DicomOperation.C_FIND,
        "PAT-1",
        (datasets[0].StudyInstanceUID,),
    )
    assert find.query_sop_class_uid == StudyRootQueryRetrieveInformationModelFind
    assert find.query and find.query_transfer_syntax


def test_c_move_reports_the_instances_and_the_destination(
    assoc,  # noqa: ANN001
    events: list[DicomExchange],
    destination_port: int,
) -> None:
    datasets = _store(assoc, events)
    receiver = AE(ae_title=MOVE_DESTINATION)
    for sop_class in STORAGE:
        receiver.add_supported_context(sop_class, [*SYNTAXES, RLELossless])
    server = receiver.start_server(
        ("127.0.0.1", destination_port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, lambda _event: 0x0000)],
    )
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = datasets[0].StudyInstanceUID
        list(assoc.send_c_move(query, MOVE_DESTINATION, StudyRootQueryRetrieveInformationModelMove))
    finally:
        server.shutdown()
    _wait_for(events, len(datasets) + 1)
    move = events[-1]
    assert (move.operation, move.move_destination, move.peer) == (
        DicomOperation.C_MOVE,
        MOVE_DESTINATION,
        "TESTSCU",
    )
    assert {i.sop_instance_uid for i in move.instances} == {ds.SOPInstanceUID for ds in datasets}


def test_c_get_reports_the_instances_sent(
    source: ImagingSource,
    assoc,  # noqa: ANN001
    events: list[DicomExchange],
) -> None:
    datasets = _store(assoc, events)
    getter = AE(ae_title="GETSCU")
    getter.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    getter.add_requested_context(MRImageStorage, SYNTAXES)
    association = getter.associate(
        "127.0.0.1",
        source.dimse.port,
        ae_title="XDSI",
        ext_neg=[build_role(MRImageStorage, scp_role=True)],
        evt_handlers=[(evt.EVT_C_STORE, lambda _event: 0x0000)],
    )
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = datasets[3].StudyInstanceUID
    query.SeriesInstanceUID = datasets[3].SeriesInstanceUID
    list(association.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))
    association.release()
    _wait_for(events, len(datasets) + 1)
    get = events[-1]
    assert (get.operation, get.peer) == (DicomOperation.C_GET, "GETSCU")
    assert sorted(i.sop_instance_uid for i in get.instances) == sorted(
        ds.SOPInstanceUID for ds in datasets[3:5]
    )


# --- DICOMweb --------------------------------------------------------------------------
@pytest.fixture
def imaging(sqlite_index_engine: Engine, tmp_path: Path) -> Iterator[ImagingSource]:
    source = ImagingSource(
        ImagingSourceConfig(storage_dir=tmp_path / "store"), engine=sqlite_index_engine
    )
    source.start(dimse=False)
    yield source
    source.stop()


def _web(imaging: ImagingSource, tmp_path: Path, seen: list[DicomExchange]) -> httpx.AsyncClient:
    stow = stow_endpoint(imaging, seen.append)
    routes = [
        Route("/studies", stow, methods=["POST"]),
        *dicomweb_routes(
            LocalSource(imaging.store), Transcoder(tmp_path / "t"), on_event=seen.append
        ),
    ]
    app = Starlette(routes=[Mount("/dicomweb", routes=routes)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://xdsi.test")


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _multipart(datasets: list[Dataset]) -> bytes:
    out = b""
    for ds in datasets:
        out += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += _encode(ds) + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def test_stow_rs_reports_the_instances_stored(imaging, tmp_path: Path) -> None:  # noqa: ANN001
    seen: list[DicomExchange] = []
    datasets = make_study()
    async with _web(imaging, tmp_path, seen) as client:
        response = await client.post(
            "/dicomweb/studies",
            content=_multipart(datasets),
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            },
        )
    assert response.status_code == 200
    (stow,) = seen
    assert (stow.operation, stow.outcome, stow.status) == (
        DicomOperation.STOW_RS,
        ExchangeStatus.SUCCESS,
        200,
    )
    assert {i.sop_instance_uid for i in stow.instances} == {ds.SOPInstanceUID for ds in datasets}


async def test_wado_rs_reports_the_instances_sent(imaging, tmp_path: Path) -> None:  # noqa: ANN001
    seen: list[DicomExchange] = []
    datasets = make_study()[:3]  # the CT series
    for ds in datasets:
        imaging.store.add(ds)
    study, series = datasets[0].StudyInstanceUID, datasets[0].SeriesInstanceUID
    async with _web(imaging, tmp_path, seen) as client:
        response = await client.get(
            f"/dicomweb/studies/{study}/series/{series}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
    assert response.status_code == 200
    (wado,) = seen
    assert (wado.operation, wado.outcome, wado.peer_address) == (
        DicomOperation.WADO_RS,
        ExchangeStatus.SUCCESS,
        "127.0.0.1",
    )
    assert {i.sop_instance_uid for i in wado.instances} == {ds.SOPInstanceUID for ds in datasets}


async def test_wado_uri_of_an_unknown_instance_reports_a_failure(imaging, tmp_path: Path) -> None:  # noqa: ANN001
    seen: list[DicomExchange] = []
    async with _web(imaging, tmp_path, seen) as client:
        response = await client.get(
            "/dicomweb/wado",
            params={
                "requestType": "WADO",
                "studyUID": "1.2.3",
                "seriesUID": "1.2.3.4",
                "objectUID": "1.2.3.4.5",
                "contentType": "application/dicom",
            },
        )
    assert response.status_code == 404
    (wado,) = seen
    assert (wado.operation, wado.outcome, wado.status, wado.instances) == (
        DicomOperation.WADO_URI,
        ExchangeStatus.FAILURE,
        404,
        (),
    )


async def test_qido_rs_search_reports_its_query_and_keys(imaging, tmp_path: Path) -> None:  # noqa: ANN001
    seen: list[DicomExchange] = []
    ds = make_study()[0]
    imaging.store.add(ds)
    async with _web(imaging, tmp_path, seen) as client:
        response = await client.get(
            "/dicomweb/studies", params={"PatientID": ds.PatientID, "limit": "5"}
        )
    assert response.status_code == 200 and len(response.json()) == 1
    (search,) = seen
    assert (search.operation, search.outcome, search.patient_id, search.peer_address) == (
        DicomOperation.QIDO_RS,
        ExchangeStatus.SUCCESS,
        ds.PatientID,
        "127.0.0.1",
    )
    assert search.query == f"/dicomweb/studies?PatientID={ds.PatientID}&limit=5".encode()
    assert search.query_sop_class_uid == StudyRootQueryRetrieveInformationModelFind


async def test_qido_rs_refused_search_reports_a_failure(imaging, tmp_path: Path) -> None:  # noqa: ANN001
    seen: list[DicomExchange] = []
    async with _web(imaging, tmp_path, seen) as client:
        response = await client.get("/dicomweb/studies/1.2.3/series", params={"limit": "x"})
    assert response.status_code == 400
    (search,) = seen
    assert (search.operation, search.outcome, search.status, search.study_instance_uids) == (
        DicomOperation.QIDO_RS,
        ExchangeStatus.FAILURE,
        400,
        ("1.2.3",),
    )


# --- DIMSE over TLS (ITI-19, PS3.15 B.1) -------------------------------------------------
def test_dimse_over_tls_names_the_peer_certificate_subject(
    sqlite_index_engine: Engine, tmp_path: Path
) -> None:
    from xdsi.certs import make_test_pki
    from xdsi.tls import NodeTls, client_context, ensure_dh_params, socket_server_context

    pki = make_test_pki(tmp_path / "pki")
    node = NodeTls(
        pki.node_cert, pki.node_key, (pki.ca,), (), ensure_dh_params(tmp_path / "dh.pem")
    )
    config = ImagingSourceConfig(
        storage_dir=tmp_path / "store", dicom_host="127.0.0.1", dicom_port=0
    )
    seen: list[DicomExchange] = []
    imaging = ImagingSource(
        config,
        engine=sqlite_index_engine,
        ssl_context=socket_server_context(node, "dicom://127.0.0.1:0", None),
    )
    imaging.dimse.on_event = seen.append
    imaging.start()
    try:
        ae = AE(ae_title="TLSSCU")
        ae.add_requested_context(CTImageStorage, SYNTAXES)
        tls = (client_context(pki.client_cert, pki.client_key, (pki.ca,)), "localhost")
        assoc = ae.associate(
            "127.0.0.1", imaging.dimse.port, ae_title="XDSI", tls_args=tls,
            evt_handlers=REQUESTOR_HANDLERS,
        )  # fmt: skip
        assert assoc.is_established
        try:
            assert assoc.send_c_store(make_study()[0]).Status == 0x0000
        finally:
            assoc.release()
        _wait_for(seen, 1)
    finally:
        imaging.stop()
    subject = x509.load_pem_x509_certificate(pki.client_cert.read_bytes()).subject
    (stored,) = seen
    assert stored.peer_subject == subject.rfc4514_string()
