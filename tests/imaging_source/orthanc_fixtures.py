"""A real Orthanc with its DICOMweb plugin as the backing PACS: its own JSON
configuration on free HTTP and DICOM ports, storage in a temp folder, xdsi's AE
registered as a DICOM modality (move destination).  Skipped when Orthanc or the plugin
is missing, unless XDSI_REQUIRE_INTEROP=1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
ORTHANC_AET = "ORTHANC"


def require_interop() -> bool:
    return os.environ.get("XDSI_REQUIRE_INTEROP") == "1"


def orthanc_available() -> None:
    """Skip (or fail under XDSI_REQUIRE_INTEROP=1) without Orthanc and its plugin."""
    missing = [str(p) for p in (ORTHANC, DICOMWEB_PLUGIN) if not p.exists()]
    if missing:
        if require_interop():
            pytest.fail(f"Orthanc not installed: {', '.join(missing)}")
        pytest.skip(f"Orthanc not installed: {', '.join(missing)}")


@dataclass
class OrthancServer:
    http_port: int
    dicom_port: int
    process: subprocess.Popen
    # SOP Instance UID -> Orthanc's instance id, for what was uploaded
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def upload(self, datasets: Iterable[Dataset]) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            for ds in datasets:
                buffer = DicomBytesIO()
                dcmwrite(buffer, ds, enforce_file_format=True)
                response = client.post("/instances", content=buffer.getvalue())
                response.raise_for_status()
                self.ids[ds.SOPInstanceUID] = response.json()["ID"]

    def original(self, sop_instance_uid: str) -> bytes:
        """The file Orthanc stores for an instance."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            response = client.get(f"/instances/{self.ids[sop_instance_uid]}/file")
            response.raise_for_status()
            return response.content


def start_orthanc(
    directory: Path, http_port: int, dicom_port: int, modalities: dict[str, list]
) -> OrthancServer:
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "xdsi-test-pacs",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomModalities": modalities,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowMove": True,
        "Plugins": [str(DICOMWEB_PLUGIN)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "StudiesMetadata": "Full"},
    }
    path = directory / "orthanc.json"
    path.write_text(json.dumps(config))
    log = open(directory / "orthanc.log", "wb")  # noqa: SIM115 - handed to the process
    process = subprocess.Popen([str(ORTHANC), str(path)], stdout=log, stderr=subprocess.STDOUT)
    server = OrthancServer(http_port, dicom_port, process)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited: {(directory / 'orthanc.log').read_text()}")
        try:
            if httpx.get(f"{server.url}/system", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            stop_orthanc(server)
            raise RuntimeError("Orthanc did not start within 30 s")
        time.sleep(0.2)


def stop_orthanc(server: OrthancServer) -> None:
    """SIGTERM, and SIGKILL if Orthanc is still there after 15 s (it takes ~5 s)."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


def orthanc_server(
    directory: Path, http_port: int, dicom_port: int, modalities: dict[str, list]
) -> Iterator[OrthancServer]:
    """For a fixture: Orthanc running until the fixture ends."""
    orthanc_available()
    server = start_orthanc(directory, http_port, dicom_port, modalities)
    try:
        yield server
    finally:
        stop_orthanc(server)
