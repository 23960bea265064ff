"""dcmtk as the independent DICOM peer: echoscu, storescu into xdsi, findscu, movescu to a
storescp started here, getscu.  Skipped without dcmtk unless XDSI_REQUIRE_INTEROP=1."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_studies import make_study, write_files
from dimse_fixtures import MOVE_DESTINATION, destination_port, running_storescp, source
from instance_fixtures import migrated_sqlite, require_interop, sqlite_index_engine
from pydicom import dcmread
from pydicom.uid import RLELossless

from imaging_source.service import ImagingSource

TOOLS = ("echoscu", "storescu", "findscu", "movescu", "getscu", "storescp")
_missing = [tool for tool in TOOLS if shutil.which(tool) is None]
if _missing and not require_interop():
    pytest.skip(f"dcmtk not installed: {', '.join(_missing)}", allow_module_level=True)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


@pytest.fixture
def study_files(tmp_path: Path) -> list[Path]:
    return write_files(make_study(patient_id="DCMTK-1"), tmp_path / "study")


@pytest.fixture
def stored(source: ImagingSource, study_files: list[Path]) -> list[Path]:
    port = str(source.dimse.port)
    compressed = [p for p in study_files if dcmread(p).file_meta.TransferSyntaxUID == RLELossless]
    plain = [p for p in study_files if p not in compressed]
    for option, files in (("-R", plain), ("-xr", compressed)):  # -xr: propose RLE Lossless
        result = _run("storescu", option, "-aec", "XDSI", "127.0.0.1", port, *map(str, files))
        assert result.returncode == 0, result.stderr
    return study_files


def test_echoscu(source: ImagingSource) -> None:
    result = _run("echoscu", "-aec", "XDSI", "127.0.0.1", str(source.dimse.port))
    assert result.returncode == 0, result.stderr


def test_storescu_stores_every_file_byte_for_byte_in_pixel_data(
    source: ImagingSource, stored: list[Path]
) -> None:
    for path in stored:
        original = dcmread(path)
        instance = source.store.get(original.SOPInstanceUID)
        assert instance is not None
        assert instance.transfer_syntax_uid == original.file_meta.TransferSyntaxUID
        assert dcmread(instance.path).PixelData == original.PixelData


def test_findscu_study_level(source: ImagingSource, stored: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "find"
    out.mkdir()
    result = _run(
        "findscu", "-S", "-aec", "XDSI", "-X", "-od", str(out),
        "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=DCMTK-1",
        "-k", "StudyInstanceUID", "-k", "ModalitiesInStudy",
        "127.0.0.1", str(source.dimse.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [answer] = [dcmread(p, force=True) for p in out.iterdir()]
    assert answer.StudyInstanceUID == dcmread(stored[0]).StudyInstanceUID
    assert list(answer.ModalitiesInStudy) == ["CT", "MR", "OT"]


@pytest.fixture
def storescp(tmp_path: Path, destination_port: int) -> Iterator[Path]:
    with running_storescp(tmp_path / "moved", destination_port) as out:
        yield out


def test_movescu_to_storescp(source: ImagingSource, stored: list[Path], storescp: Path) -> None:
    study_uid = dcmread(stored[0]).StudyInstanceUID
    result = _run(
        "movescu", "-S", "-aec", "XDSI", "-aem", MOVE_DESTINATION,
        "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
        "127.0.0.1", str(source.dimse.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    moved = {ds.SOPInstanceUID: ds.PixelData for ds in map(dcmread, storescp.iterdir())}
    assert moved == {ds.SOPInstanceUID: ds.PixelData for ds in map(dcmread, stored)}


def test_getscu_series(source: ImagingSource, stored: list[Path], tmp_path: Path) -> None:
    mr = dcmread(stored[3])
    out = tmp_path / "got"
    out.mkdir()
    result = _run(
        "getscu", "-S", "-aec", "XDSI", "-od", str(out),
        "-k", "QueryRetrieveLevel=SERIES", "-k", f"StudyInstanceUID={mr.StudyInstanceUID}",
        "-k", f"SeriesInstanceUID={mr.SeriesInstanceUID}",
        "127.0.0.1", str(source.dimse.port),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = sorted(dcmread(p).SOPInstanceUID for p in out.iterdir())
    assert got == sorted(dcmread(p).SOPInstanceUID for p in stored[3:5])
