"""dicomweb-client, an independent DICOMweb client, against xdsi's /dicomweb served by
uvicorn on a free port: QIDO-RS searches, WADO-RS retrieval, metadata and frames."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from dicom_studies import make_study
from dimse_fixtures import free_port
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.dataset import Dataset
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount

from imaging_source.dicomweb import dicomweb_routes
from imaging_source.instances import InstanceStore
from imaging_source.pacs import LocalSource
from imaging_source.transcode import Transcoder

dicomweb_client = pytest.importorskip("dicomweb_client.api")


@pytest.fixture
def study(sqlite_index_engine: Engine, tmp_path: Path) -> tuple[InstanceStore, list[Dataset]]:
    store = InstanceStore(tmp_path / "store", sqlite_index_engine)
    datasets = make_study()
    for ds in datasets:
        store.add(ds)
    return store, datasets


@pytest.fixture
def base_url(study: tuple[InstanceStore, list[Dataset]], tmp_path: Path) -> Iterator[str]:
    store, _ = study
    routes = dicomweb_routes(LocalSource(store), Transcoder(tmp_path / "t"))
    app = Starlette(routes=[Mount("/dicomweb", routes=routes)])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/dicomweb"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_search_for_series_of_a_study(
    base_url: str, study: tuple[InstanceStore, list[Dataset]]
) -> None:
    _, datasets = study
    client = dicomweb_client.DICOMwebClient(url=base_url)
    found = client.search_for_series(study_instance_uid=datasets[0].StudyInstanceUID)
    assert {Dataset.from_json(s).SeriesInstanceUID for s in found} == {
        ds.SeriesInstanceUID for ds in datasets
    }


def test_retrieve_study_gives_every_instance_with_its_pixels(
    base_url: str, study: tuple[InstanceStore, list[Dataset]]
) -> None:
    _, datasets = study
    client = dicomweb_client.DICOMwebClient(url=base_url)
    got = {ds.SOPInstanceUID: ds for ds in client.retrieve_study(datasets[0].StudyInstanceUID)}
    assert set(got) == {ds.SOPInstanceUID for ds in datasets}
    native = datasets[0]
    assert got[native.SOPInstanceUID].PixelData == native.PixelData


def test_retrieve_instance_as_stored(
    base_url: str, study: tuple[InstanceStore, list[Dataset]]
) -> None:
    store, datasets = study
    rle = datasets[2]
    client = dicomweb_client.DICOMwebClient(url=base_url)
    got = client.retrieve_instance(
        rle.StudyInstanceUID,
        rle.SeriesInstanceUID,
        rle.SOPInstanceUID,
        media_types=(("application/dicom", "*"),),
    )
    assert got.file_meta.TransferSyntaxUID == rle.file_meta.TransferSyntaxUID


def test_retrieve_instance_metadata(
    base_url: str, study: tuple[InstanceStore, list[Dataset]]
) -> None:
    _, datasets = study
    ds = datasets[3]
    client = dicomweb_client.DICOMwebClient(url=base_url)
    metadata = client.retrieve_instance_metadata(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    )
    assert Dataset.from_json(metadata).PatientID == "PAT-1"


def test_retrieve_frame(base_url: str, study: tuple[InstanceStore, list[Dataset]]) -> None:
    _, datasets = study
    ds = datasets[1]
    client = dicomweb_client.DICOMwebClient(url=base_url)
    [frame] = client.retrieve_instance_frames(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
    )
    assert frame == ds.PixelData
