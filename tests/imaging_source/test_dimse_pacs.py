"""imaging_source/dimse.py in front of a real Orthanc (WADO-RS mode): dcmtk's findscu
sees Orthanc's study through xdsi, and movescu gets every instance, fetched into the
cache first, with Orthanc's pixel data (issue item 6: served transparently from the
backing PACS)."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_studies import make_study
from dimse_fixtures import MOVE_DESTINATION, free_port, running_storescp
from instance_fixtures import require_interop
from orthanc_fixtures import OrthancServer, orthanc_server
from pydicom import dcmread
from pydicom.dataset import Dataset

from imaging_source.config import ImagingSourceConfig
from imaging_source.instances import make_engine
from imaging_source.pacs import PacsSource, WadoRsFetcher
from imaging_source.peers import DicomPeer
from imaging_source.service import ImagingSource

TOOLS = ("echoscu", "findscu", "movescu", "storescp")
_missing = [tool for tool in TOOLS if shutil.which(tool) is None]
if _missing and not require_interop():
    pytest.skip(f"dcmtk not installed: {', '.join(_missing)}", allow_module_level=True)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def study() -> list[Dataset]:
    return make_study(patient_id="PACS-7")


@pytest.fixture(scope="module")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, study: list[Dataset]
) -> Iterator[OrthancServer]:
    directory = tmp_path_factory.mktemp("orthanc")
    for server in orthanc_server(directory, free_port(), free_port(), {}):
        server.upload(study)
        yield server


@pytest.fixture
def destination_port() -> int:
    return free_port()


@pytest.fixture
def fronting(
    orthanc: OrthancServer, tmp_path: Path, destination_port: int
) -> Iterator[ImagingSource]:
    """xdsi with an empty cache, answering DIMSE through Orthanc's DICOMweb."""
    config = ImagingSourceConfig(
        storage_dir=tmp_path / "cache",
        dicom_host="127.0.0.1",
        dicom_port=0,
        peers=(DicomPeer(MOVE_DESTINATION, "127.0.0.1", destination_port),),
        acse_timeout=10,
        dimse_timeout=30,
        network_timeout=30,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'cache.sqlite'}")
    imaging = ImagingSource(config, engine=engine)
    imaging.start()
    fetcher = WadoRsFetcher(orthanc.dicomweb)
    imaging.dimse.serve_from(PacsSource(imaging.store, fetcher, max_bytes=10**9))
    try:
        yield imaging
    finally:
        imaging.stop()
        fetcher.close()
        engine.dispose()


@pytest.fixture
def storescp(tmp_path: Path, destination_port: int) -> Iterator[Path]:
    with running_storescp(tmp_path / "moved", destination_port) as out:
        yield out


def test_findscu_sees_the_pacs_study_through_xdsi(
    fronting: ImagingSource, study: list[Dataset], tmp_path: Path
) -> None:
    out = tmp_path / "find"
    out.mkdir()
    result = _run(
        "findscu", "-S", "-aec", "XDSI", "-X", "-od", str(out),
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=PACS-7", "-k", "StudyInstanceUID",
        "127.0.0.1", str(fronting.dimse.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    answers = [dcmread(p, force=True).StudyInstanceUID for p in out.iterdir()]
    assert answers == [study[0].StudyInstanceUID]
    assert fronting.store.total_size() == 0  # a query fetches nothing


def test_movescu_gets_the_pacs_instances_with_their_pixel_data(
    fronting: ImagingSource, orthanc: OrthancServer, study: list[Dataset], storescp: Path
) -> None:
    result = _run(
        "movescu", "-S", "-aec", "XDSI", "-aem", MOVE_DESTINATION,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study[0].StudyInstanceUID}",
        "127.0.0.1", str(fronting.dimse.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    moved = {ds.SOPInstanceUID: ds.PixelData for ds in map(dcmread, storescp.iterdir())}
    originals = {ds.SOPInstanceUID: ds for ds in study}
    assert set(moved) == set(originals)
    for uid, pixels in moved.items():
        assert pixels == dcmread(io.BytesIO(orthanc.original(uid))).PixelData
