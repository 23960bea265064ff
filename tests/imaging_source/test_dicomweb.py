"""WADO-RS, QIDO-RS and WADO-URI under /dicomweb through httpx's ASGI transport (a
protocol test: the index on SQLite; its matching is tested on both databases in
test_instances.py, RAD-69's reads in test_rad69.py)."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import copy
import json
from email import message_from_bytes
from email.policy import HTTP
from pathlib import Path

import httpx
import pytest
from dicom_studies import make_study
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Mount

from imaging_source.dicomweb import accepted_syntaxes, dicomweb_routes
from imaging_source.instances import InstanceStore
from imaging_source.pacs import LocalSource
from imaging_source.transcode import Transcoder

BASE = "http://xdsi.test/dicomweb"
DICOM_ACCEPT = 'multipart/related; type="application/dicom"'


@pytest.fixture
def store(sqlite_index_engine: Engine, tmp_path: Path) -> InstanceStore:
    return InstanceStore(tmp_path / "store", sqlite_index_engine)


@pytest.fixture
def study(store: InstanceStore) -> list[Dataset]:
    datasets = make_study()
    for ds in datasets:
        store.add(ds)
    return datasets


@pytest.fixture
def client(store: InstanceStore, tmp_path: Path) -> httpx.AsyncClient:
    routes = dicomweb_routes(LocalSource(store), Transcoder(tmp_path / "t"))
    app = Starlette(routes=[Mount("/dicomweb", routes=routes)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def parts(response: httpx.Response) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related response."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = message_from_bytes(head + response.content, policy=HTTP)
    return [
        (p.get_content_type() + _params(p), p.get_payload(decode=True))
        for p in message.iter_parts()
    ]


def _params(part) -> str:  # noqa: ANN001
    syntax = part.get_param("transfer-syntax")
    return f"; transfer-syntax={syntax}" if syntax else ""


def test_accept_without_transfer_syntax_means_explicit_vr_little_endian() -> None:
    assert accepted_syntaxes(DICOM_ACCEPT) == [ExplicitVRLittleEndian]


def test_accept_lists_every_named_transfer_syntax_in_order() -> None:
    header = f"{DICOM_ACCEPT}; transfer-syntax={RLELossless}, {DICOM_ACCEPT}; transfer-syntax=*"
    assert accepted_syntaxes(header) == [RLELossless, "*"]


async def test_study_retrieve_returns_every_instance_in_explicit_vr_little_endian(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    response = await client.get(
        f"/studies/{study[0].StudyInstanceUID}", headers={"accept": DICOM_ACCEPT}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(
        'multipart/related; type="application/dicom"'
    )
    got = {dcmread(DicomBytesIO(body)).SOPInstanceUID: ctype for ctype, body in parts(response)}
    assert set(got) == {ds.SOPInstanceUID for ds in study}
    assert set(got.values()) == {f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}"}


async def test_rle_instance_is_decompressed_for_the_default_syntax(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    rle = study[2]
    url = f"/studies/{rle.StudyInstanceUID}/series/{rle.SeriesInstanceUID}/instances/{rle.SOPInstanceUID}"
    response = await client.get(url, headers={"accept": DICOM_ACCEPT})
    [(_, body)] = parts(response)
    got = dcmread(DicomBytesIO(body))
    original = copy.deepcopy(rle)
    original.decompress(generate_instance_uid=False)
    assert got.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert got.PixelData == original.PixelData


async def test_transfer_syntax_star_returns_instances_as_stored(
    client: httpx.AsyncClient, study: list[Dataset], store: InstanceStore
) -> None:
    rle = study[2]
    url = f"/studies/{rle.StudyInstanceUID}/series/{rle.SeriesInstanceUID}"
    response = await client.get(url, headers={"accept": f"{DICOM_ACCEPT}; transfer-syntax=*"})
    bodies = {dcmread(DicomBytesIO(b)).SOPInstanceUID: b for _, b in parts(response)}
    stored = store.get(rle.SOPInstanceUID)
    assert stored is not None and bodies[rle.SOPInstanceUID] == stored.path.read_bytes()


async def test_unknown_instance_is_not_found(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    ds = study[0]
    url = f"/studies/{ds.StudyInstanceUID}/series/{study[3].SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    response = await client.get(url, headers={"accept": DICOM_ACCEPT})
    assert response.status_code == 404


async def test_unacceptable_media_type_is_406(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    response = await client.get(
        f"/studies/{study[0].StudyInstanceUID}", headers={"accept": "image/jpeg"}
    )
    assert response.status_code == 406


async def test_series_metadata_is_dicom_json_without_pixel_data(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    ds = study[3]
    response = await client.get(
        f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/metadata"
    )
    assert response.headers["content-type"].startswith("application/dicom+json")
    items = [Dataset.from_json(item) for item in json.loads(response.content)]
    assert {item.SOPInstanceUID for item in items} == {
        study[3].SOPInstanceUID,
        study[4].SOPInstanceUID,
    }
    assert all("PixelData" not in item for item in items)


async def test_frame_is_the_native_pixel_bytes(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    ds = study[0]
    url = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
    response = await client.get(
        url, headers={"accept": 'multipart/related; type="application/octet-stream"'}
    )
    [(ctype, body)] = parts(response)
    assert ctype == "application/octet-stream" and body == ds.PixelData


async def test_frame_out_of_range_is_not_found(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    ds = study[0]
    url = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/2"
    assert (await client.get(url)).status_code == 404


async def test_qido_studies_matches_patient_id_and_gives_retrieve_url(
    client: httpx.AsyncClient, study: list[Dataset], store: InstanceStore
) -> None:
    for ds in make_study(patient_id="OTHER"):
        store.add(ds)
    response = await client.get("/studies", params={"PatientID": "PAT-1"})
    [item] = [Dataset.from_json(i) for i in response.json()]
    assert item.StudyInstanceUID == study[0].StudyInstanceUID
    assert item.ModalitiesInStudy == ["CT", "MR", "OT"]
    assert item.NumberOfStudyRelatedInstances == 6
    assert item.RetrieveURL == f"{BASE}/studies/{study[0].StudyInstanceUID}"


async def test_qido_accepts_match_keys_by_tag(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    response = await client.get(
        f"/studies/{study[0].StudyInstanceUID}/series", params={"00080060": "MR"}
    )
    assert [Dataset.from_json(i).SeriesInstanceUID for i in response.json()] == [
        study[3].SeriesInstanceUID
    ]


async def test_qido_limit_and_offset_page_the_results(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    url = f"/studies/{study[0].StudyInstanceUID}/instances"
    everything = [Dataset.from_json(i).SOPInstanceUID for i in (await client.get(url)).json()]
    page = await client.get(url, params={"offset": "2", "limit": "3"})
    assert [Dataset.from_json(i).SOPInstanceUID for i in page.json()] == everything[2:5]


async def test_qido_names_unsupported_match_keys_in_a_warning(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    response = await client.get("/studies", params={"InstitutionName": "X"})
    assert response.status_code == 200
    assert "InstitutionName" in response.headers["warning"]


async def test_wado_uri_returns_the_instance(
    client: httpx.AsyncClient, study: list[Dataset], store: InstanceStore
) -> None:
    ds = study[0]
    params = {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
        "contentType": "application/dicom",
    }
    response = await client.get("/wado", params=params)
    stored = store.get(ds.SOPInstanceUID)
    assert response.status_code == 200 and response.headers["content-type"] == "application/dicom"
    assert stored is not None and response.content == stored.path.read_bytes()


async def test_wado_uri_without_request_type_is_a_bad_request(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    ds = study[0]
    params = {
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
    }
    assert (await client.get("/wado", params=params)).status_code == 400


async def test_wado_uri_image_jpeg_is_not_offered(
    client: httpx.AsyncClient, study: list[Dataset]
) -> None:
    ds = study[0]
    params = {
        "requestType": "WADO",
        "studyUID": ds.StudyInstanceUID,
        "seriesUID": ds.SeriesInstanceUID,
        "objectUID": ds.SOPInstanceUID,
    }
    assert (await client.get("/wado", params=params)).status_code == 406
