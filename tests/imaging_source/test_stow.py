"""STOW-RS (PS3.18 10.5) through httpx's ASGI transport, and with dicomweb-client."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from dicom_studies import make_study
from dimse_fixtures import free_port
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import generate_uid
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Route

from imaging_source.config import ImagingSourceConfig
from imaging_source.service import ImagingSource, StudyChanged
from imaging_source.stow import stow_endpoint

BOUNDARY = "xdsi-stow-boundary"
BASE = "http://xdsi.test/dicomweb"


@pytest.fixture
def imaging(sqlite_index_engine: Engine, tmp_path: Path) -> Iterator[ImagingSource]:
    config = ImagingSourceConfig(storage_dir=tmp_path / "store", wado_rs_base_url=BASE)
    source = ImagingSource(config, engine=sqlite_index_engine)
    source.start(dimse=False)
    yield source
    source.stop()


def _app(imaging: ImagingSource) -> Starlette:
    endpoint = stow_endpoint(imaging)
    return Starlette(
        routes=[
            Route("/dicomweb/studies", endpoint, methods=["POST"]),
            Route("/dicomweb/studies/{study}", endpoint, methods=["POST"]),
        ]
    )


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def _body(parts: list[bytes], content_type: str = "application/dicom") -> bytes:
    out = b""
    for part in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n\r\n".encode() + part + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def _post(imaging: ImagingSource, body: bytes, path: str = "/dicomweb/studies", **headers):  # noqa: ANN003, ANN202
    transport = httpx.ASGITransport(app=_app(imaging))
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        return await client.post(
            path, content=body, headers={"Content-Type": content_type, **headers}
        )


async def test_stow_stores_every_instance(imaging: ImagingSource) -> None:
    changes: list[StudyChanged] = []
    imaging.subscribe(changes.append)
    datasets = make_study()
    response = await _post(imaging, _body([_encode(ds) for ds in datasets]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dicom+json")
    body = Dataset.from_json(response.json())
    assert {i.ReferencedSOPInstanceUID for i in body.ReferencedSOPSequence} == {
        ds.SOPInstanceUID for ds in datasets
    }
    assert body.ReferencedSOPSequence[0].RetrieveURL.startswith(f"{BASE}/studies/")
    assert all(imaging.store.get(ds.SOPInstanceUID) for ds in datasets)
    assert len(changes) == len(datasets)


async def test_stow_part_that_is_not_dicom_fails_alone(imaging: ImagingSource) -> None:
    good = make_study()[0]
    response = await _post(imaging, _body([_encode(good), b"garbage" * 50]))
    assert response.status_code == 202  # PS3.18 10.5.3: some stored
    body = Dataset.from_json(response.json())
    assert body.FailedSOPSequence[0].FailureReason == 0xC000
    assert imaging.store.get(good.SOPInstanceUID) is not None


async def test_stow_to_a_study_refuses_instances_of_another(imaging: ImagingSource) -> None:
    ds = make_study()[0]
    response = await _post(imaging, _body([_encode(ds)]), f"/dicomweb/studies/{generate_uid()}")
    assert response.status_code == 409  # none stored
    body = Dataset.from_json(response.json())
    assert body.FailedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID
    assert body.FailedSOPSequence[0].FailureReason == 0xA900
    assert imaging.store.get(ds.SOPInstanceUID) is None


async def test_stow_of_other_media_type_is_415(imaging: ImagingSource) -> None:
    transport = httpx.ASGITransport(app=_app(imaging))
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        response = await client.post(
            "/dicomweb/studies", content=b"{}", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 415


async def test_stow_leaves_no_spooled_parts(imaging: ImagingSource) -> None:
    await _post(imaging, _body([_encode(make_study()[0]), b"garbage"]))
    assert list((Path(imaging.config.storage_dir) / ".incoming").iterdir()) == []


@pytest.fixture
def http_base(imaging: ImagingSource) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_app(imaging), host="127.0.0.1", port=port, log_level="warning")
    )
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


def test_dicomweb_client_store_instances(imaging: ImagingSource, http_base: str) -> None:
    from dicomweb_client.api import DICOMwebClient

    datasets = make_study()
    client = DICOMwebClient(url=http_base)
    result = client.store_instances(datasets=datasets)
    assert {i.ReferencedSOPInstanceUID for i in result.ReferencedSOPSequence} == {
        ds.SOPInstanceUID for ds in datasets
    }
    stored = imaging.store.get(datasets[2].SOPInstanceUID)
    assert (
        stored is not None and stored.transfer_syntax_uid == datasets[2].file_meta.TransferSyntaxUID
    )
