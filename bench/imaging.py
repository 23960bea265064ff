"""RAD-69 and C-MOVE of a whole study beside Orthanc, measured in the same run.

    .venv/bin/python bench/imaging.py [--instances 500] [--rounds 3] [--scenario N ...]

A synthetic CT study (``--instances`` images of 512 x 512, 16 bits allocated, Explicit
VR Little Endian, two series) is written with pydicom and sent by dcmtk ``storescu`` to
a real ``xdsi serve`` and to a private Orthanc (own configuration, ports and storage,
with its DICOMweb plugin), so both hold the same instances.  Three scenarios, each
figure beside its reference from the same run, best of ``--rounds`` (``--scenario N``,
repeatable, runs only those):

1. RAD-69 (RAD TF-3 4.69) of every instance of the study from xdsi's local store, one
   RetrieveImagingDocumentSetRequest asking for Explicit VR Little Endian (what both
   sides store, so nothing is transcoded), beside Orthanc's WADO-RS Retrieve Study
   (PS3.18 10.4.1, ``multipart/related; type="application/dicom"``).  Throughput of the
   whole response as the client reads it (MB/s, 10^6 bytes).
2. The same RAD-69 from an ``xdsi serve --pacs-wado-rs`` fronting that Orthanc, its
   cache empty (a fresh server and data directory each round), beside the same WADO-RS
   request made to Orthanc directly.
3. C-MOVE (PS3.4 C.4.2) of the study by dcmtk ``movescu`` to a dcmtk ``storescp
   --ignore``, asked of xdsi and of Orthanc: wall time of ``movescu``.

Both HTTP clients are the same streaming reader (httpx, bytes counted and dropped, the
parts counted by their boundary), asking ``Accept-Encoding: identity`` (Orthanc would
otherwise gzip the pixel data).  The dcmtk tools run with ``TCP_NODELAY=1``: as Debian
builds them they keep Nagle's algorithm, and a storescp would then hold every C-STORE
response for the sender's delayed ACK (~40 ms an instance, whoever sends).  Every
process and temp file is gone at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import REPO_ROOT, Figure, free_port, higher_is_better, lower_is_better, main_of

sys.path.insert(0, str(REPO_ROOT / "tests" / "imaging_source"))

from e2e_support import TEST_CONFIG, ServerProcess, mtom_request, rad69_request  # noqa: E402
from orthanc_fixtures import ORTHANC_AET, OrthancServer, start_orthanc, stop_orthanc  # noqa: E402

__all__ = ["StudyFiles", "make_ct_study", "run"]

TITLE = "RAD-69 and C-MOVE of a whole study beside Orthanc"
IMAGING_SOURCE_ID = "1.3.6.1.4.1.21367.13.40.3901"
XDSI_AET = "XDSI"
STORESCP_AET = "STORESCP"
MOVESCU_AET = "BENCHSCU"
RAD69_ACTION = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# PS3.18 8.7.3.5.2 / 10.4.1.2: the whole study as stored, each instance one part
WADO_ACCEPT = (
    f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_VR_LITTLE_ENDIAN}'
)
SUCCESS = b"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
MB = 1_000_000
SCENARIOS = (1, 2, 3)
READ_CHUNK = 1024 * 1024

XDSI_CONFIG = f"""{TEST_CONFIG}
[imaging_source]
repository_unique_id = "{IMAGING_SOURCE_ID}"
ae_title = "{XDSI_AET}"
auto_publish = false
peers = ["{STORESCP_AET}@127.0.0.1:{{storescp_port}}"]
"""


# --- the study ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyFiles:
    """The study written as Part 10 files: its UID, its series and their instances."""

    study_instance_uid: str
    series: dict[str, list[str]]  # Series Instance UID -> SOP Instance UIDs
    directory: Path
    size: int  # bytes of all files

    @property
    def count(self) -> int:
        return sum(len(uids) for uids in self.series.values())


def make_ct_study(directory: Path, instances: int, *, series_count: int = 2) -> StudyFiles:
    """A CT study of ``instances`` axial slices (PS3.3 A.3 CT Image IOD: patient, study,
    series, frame of reference, equipment, image plane, image pixel, CT image, SOP
    common), 512 x 512 MONOCHROME2, 12 of 16 bits stored: a water cylinder with noise."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filewriter import dcmwrite
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    directory.mkdir(parents=True, exist_ok=True)
    rows = columns = 512
    y, x = np.mgrid[:rows, :columns]
    cylinder = ((x - 256) ** 2 + (y - 256) ** 2 < 200**2).astype(np.int32)
    base = 24 + cylinder * 1000  # air -1000 HU, water 0 HU with intercept -1024
    rng = np.random.default_rng(20240115)
    study_uid, frame_uid = generate_uid(), generate_uid()
    series_uids = [generate_uid() for _ in range(series_count)]
    series: dict[str, list[str]] = {uid: [] for uid in series_uids}
    size = 0
    for n in range(instances):
        series_index = n * series_count // instances
        series_uid = series_uids[series_index]
        number = len(series[series_uid]) + 1
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240115"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
        ds.AccessionNumber = "BENCH-1"
        ds.Modality = "CT"
        ds.Manufacturer = "xdsi bench"
        ds.ReferringPhysicianName = ""
        ds.StudyDescription = "CT CHEST"
        ds.SeriesDescription = f"AXIAL {series_index + 1}"
        ds.PatientName = "Bench^Patient"
        ds.PatientID = "BENCH-1"
        ds.PatientBirthDate = "19600101"
        ds.PatientSex = "O"
        ds.BodyPartExamined = "CHEST"
        ds.SliceThickness = "1.0"
        ds.KVP = "120"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.StudyID = "1"
        ds.SeriesNumber = series_index + 1
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = number
        ds.ImagePositionPatient = ["-250.0", "-250.0", f"{-number:.1f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = frame_uid
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{-number:.1f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = rows, columns
        ds.PixelSpacing = ["0.9765625", "0.9765625"]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        noise = rng.integers(0, 40, size=(rows, columns), dtype=np.int32)
        ds.PixelData = np.clip(base + noise, 0, 4095).astype("<u2").tobytes()
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        size += path.stat().st_size
        series[series_uid].append(ds.SOPInstanceUID)
    return StudyFiles(study_uid, series, directory, size)


# --- processes ----------------------------------------------------------------------------


# dcmtk as Debian builds it leaves Nagle's algorithm on unless TCP_NODELAY is set: a
# storescp would then hold each C-STORE response up to the peer's delayed ACK (~40 ms
# an instance), whoever sends
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _run(argv: list[str], timeout: float = 600) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=DCMTK_ENV)
    if done.returncode != 0:
        command = " ".join(argv[:8])
        raise RuntimeError(f"{command} exited with {done.returncode}: {done.stderr[-2000:]}")


def store_scu(study: StudyFiles, ae_title: str, port: int) -> None:
    """dcmtk storescu of every file of the study (stored as they are: Explicit VR LE)."""
    _run(["storescu", "-aec", ae_title, "+sd", "127.0.0.1", str(port), str(study.directory)])


@contextmanager
def storescp(port: int) -> Iterator[None]:
    """dcmtk storescp receiving and dropping what comes (``--ignore``)."""
    process = subprocess.Popen(
        ["storescp", "--ignore", "-aet", STORESCP_AET, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=DCMTK_ENV,
    )
    try:
        time.sleep(0.3)
        if process.poll() is not None:
            raise RuntimeError(f"storescp exited with {process.returncode}")
        yield
    finally:
        process.terminate()
        process.wait(10)


def move_scu(study: StudyFiles, ae_title: str, port: int) -> float:
    """Study Root C-MOVE of the study to storescp (dcmtk movescu); wall seconds."""
    started = time.perf_counter()
    _run(
        ["movescu", "-S", "-aet", MOVESCU_AET, "-aec", ae_title, "-aem", STORESCP_AET,
         "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study.study_instance_uid}",
         "127.0.0.1", str(port)]
    )  # fmt: skip
    return time.perf_counter() - started


class ImagingServer(ServerProcess):
    """``xdsi serve`` with extra flags (``--pacs-wado-rs``)."""

    extra: tuple[str, ...] = ()

    def command(self) -> list[str]:
        return [*super().command(), *self.extra]


def xdsi_server(data_dir: Path, storescp_port: int, *extra: str) -> ImagingServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = XDSI_CONFIG.replace("{storescp_port}", str(storescp_port))
    (data_dir / "xdsi.toml").write_text(config, encoding="utf-8")
    server = ImagingServer(data_dir)
    server.extra = extra
    server.start(timeout=90.0)
    return server


# --- the clients --------------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    seconds: float
    size: int  # bytes read
    parts: int  # body parts after the first (RAD-69: after the SOAP envelope)

    @property
    def mb_per_s(self) -> float:
        return self.size / MB / self.seconds


def _client() -> httpx.Client:
    """The consumer: bodies asked as they are (no gzip), read as they come."""
    return httpx.Client(timeout=600, headers={"Accept-Encoding": "identity"})


def _boundary(content_type: str) -> bytes:
    for item in content_type.split(";"):
        name, _, value = item.strip().partition("=")
        if name.lower() == "boundary":
            return b"--" + value.strip('"').encode()
    raise RuntimeError(f"no boundary in {content_type!r}")


def read_multipart(
    client: httpx.Client, method: str, url: str, check: Callable[[bytes], None], **kwargs: object
) -> Transfer:
    """One request, the multipart response read as a stream: bytes counted and
    dropped, delimiters counted across chunk edges; ``check`` sees the first 64 KiB."""
    started = time.perf_counter()
    size = delimiters = 0
    head = b""
    with client.stream(method, url, **kwargs) as response:  # type: ignore[arg-type]
        if response.status_code != 200:
            raise RuntimeError(f"{method} {url}: HTTP {response.status_code}")
        delimiter = _boundary(response.headers["content-type"])
        tail = b""
        for chunk in response.iter_raw(READ_CHUNK):
            size += len(chunk)
            if len(head) < 65536:
                head += chunk[:65536]
            window = tail + chunk[: len(delimiter) - 1]  # straddling only
            delimiters += chunk.count(delimiter) + window.count(delimiter)
            tail = chunk[-len(delimiter) + 1 :]
    seconds = time.perf_counter() - started
    check(head)
    return Transfer(seconds, size, delimiters - 2)  # the first part and the close delimiter


def rad69_mtom(study: StudyFiles, url: str) -> tuple[str, bytes]:
    """The whole study, series by series, in explicit VR little endian only."""
    envelope = rad69_request(
        url,
        [
            (study.study_instance_uid, series_uid, uid, IMAGING_SOURCE_ID)
            for series_uid, uids in study.series.items()
            for uid in uids
        ],
        [EXPLICIT_VR_LITTLE_ENDIAN],
    )
    return mtom_request(envelope, [], RAD69_ACTION)


def _rad69_succeeded(head: bytes) -> None:
    # ITI TF-2 3.43.4.2.2: the RegistryResponse status comes first in the envelope
    if SUCCESS not in head:
        raise RuntimeError(f"RAD-69 did not succeed: {head[:3000]!r}")


def rad69(client: httpx.Client, study: StudyFiles, base_url: str) -> Transfer:
    url = f"{base_url}/xdsi/imaging-source"
    content_type, body = rad69_mtom(study, url)
    transfer = read_multipart(
        client, "POST", url, _rad69_succeeded, content=body, headers={"Content-Type": content_type}
    )
    return _complete(transfer, study, "RAD-69")


def wado_rs(client: httpx.Client, study: StudyFiles, dicomweb: str) -> Transfer:
    url = f"{dicomweb}/studies/{study.study_instance_uid}"
    transfer = read_multipart(client, "GET", url, lambda _: None, headers={"Accept": WADO_ACCEPT})
    return _complete(transfer, study, "WADO-RS")


def _complete(transfer: Transfer, study: StudyFiles, what: str) -> Transfer:
    # RAD-69 has the envelope as its first part; WADO-RS has none, so one more
    parts = transfer.parts if what == "RAD-69" else transfer.parts + 1
    if parts != study.count:
        raise RuntimeError(f"{what} returned {parts} instances of {study.count}")
    return transfer


# --- the run ------------------------------------------------------------------------------


@dataclass
class Measured:
    local_rad69: list[Transfer]
    local_wado: list[Transfer]
    pacs_rad69: list[Transfer]
    pacs_wado: list[Transfer]
    xdsi_move: list[float]
    orthanc_move: list[float]


def _rounds(args: argparse.Namespace, workdir: Path, study: StudyFiles) -> Measured:
    measured = Measured([], [], [], [], [], [])
    storescp_port = free_port()
    orthanc = start_orthanc(
        workdir / "orthanc", free_port(), free_port(),
        {"storescp": [STORESCP_AET, "127.0.0.1", storescp_port]},
    )  # fmt: skip
    try:
        store_scu(study, ORTHANC_AET, orthanc.dicom_port)
        if args.scenario & {1, 3}:
            _local_rounds(args, measured, study, workdir, orthanc, storescp_port)
        if 2 in args.scenario:
            _pacs_rounds(args, measured, study, workdir, orthanc, storescp_port)
    finally:
        stop_orthanc(orthanc)
    return measured


def _local_rounds(
    args: argparse.Namespace,
    measured: Measured,
    study: StudyFiles,
    workdir: Path,
    orthanc: OrthancServer,
    storescp_port: int,
) -> None:
    """Scenarios 1 and 3: xdsi's own store beside Orthanc."""
    server = xdsi_server(workdir / "xdsi-local", storescp_port)
    try:
        store_scu(study, XDSI_AET, server.dicom_port)
        with _client() as client, storescp(storescp_port):
            if 1 in args.scenario:
                rad69(client, study, server.base_url)  # warm: both read once, not counted
                wado_rs(client, study, orthanc.dicomweb)
                for _ in range(args.rounds):
                    measured.local_rad69.append(rad69(client, study, server.base_url))
                    measured.local_wado.append(wado_rs(client, study, orthanc.dicomweb))
            for _ in range(args.rounds if 3 in args.scenario else 0):
                measured.xdsi_move.append(move_scu(study, XDSI_AET, server.dicom_port))
                measured.orthanc_move.append(move_scu(study, ORTHANC_AET, orthanc.dicom_port))
    finally:
        server.stop()


def _pacs_rounds(
    args: argparse.Namespace,
    measured: Measured,
    study: StudyFiles,
    workdir: Path,
    orthanc: OrthancServer,
    storescp_port: int,
) -> None:
    """Scenario 2: xdsi in front of Orthanc, an empty cache each round."""
    with _client() as client:
        for n in range(args.rounds):
            data_dir = workdir / f"xdsi-pacs-{n}"
            pacs = xdsi_server(data_dir, storescp_port, "--pacs-wado-rs", orthanc.dicomweb)
            try:
                measured.pacs_rad69.append(rad69(client, study, pacs.base_url))
            finally:
                pacs.stop()
            shutil.rmtree(data_dir, ignore_errors=True)
            measured.pacs_wado.append(wado_rs(client, study, orthanc.dicomweb))


def run(args: argparse.Namespace) -> list[Figure]:
    args.scenario = set(args.scenario or SCENARIOS)
    for tool in ("storescu", "storescp", "movescu"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"dcmtk {tool} is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="xdsi-bench-imaging-"))
    try:
        study = make_ct_study(workdir / "study", args.instances)
        measured = _rounds(args, workdir, study)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    def best(transfers: list[Transfer]) -> float:
        return max(t.mb_per_s for t in transfers)

    label = f"{study.count} instances, {study.size / MB:.0f} MB"
    figures = {
        1: lambda: higher_is_better(
            f"RAD-69 local store, {label}", best(measured.local_rad69),
            best(measured.local_wado), "MB/s", min_ratio=1.0, reference_name="Orthanc WADO-RS",
        ),
        2: lambda: higher_is_better(
            f"RAD-69 through Orthanc (WADO-RS), cold cache, {label}", best(measured.pacs_rad69),
            best(measured.pacs_wado), "MB/s", min_ratio=0.8, reference_name="Orthanc WADO-RS",
        ),
        3: lambda: lower_is_better(
            f"C-MOVE to storescp, {label}, wall time", min(measured.xdsi_move),
            min(measured.orthanc_move), "s", max_ratio=1.25, reference_name="Orthanc C-MOVE",
        ),
    }  # fmt: skip
    return [figure() for number, figure in figures.items() if number in args.scenario]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--scenario",
        type=int,
        choices=SCENARIOS,
        action="append",
        help="run only this scenario (1, 2 or 3 as the docstring numbers them; repeatable; "
        "default: all)",
    )


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
