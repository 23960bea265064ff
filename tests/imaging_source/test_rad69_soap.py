"""RAD-69 over HTTP at /xdsi/imaging-source: MTOM request and response, the response
Action, a plain SOAP request from a lenient client, the WSDL."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dicom_studies import make_study
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from lxml import etree
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian
from sqlalchemy import Engine
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.messages import (
    DocumentRequest,
    RetrievedDocument,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.retrieve import (
    parse_retrieve_document_set_response,
    retrieve_imaging_document_set_request,
)
from ebxml.tags import XDSB, XDSI
from ebxml.vocabulary import Action, ResponseStatus
from imaging_source.instances import InstanceStore
from imaging_source.pacs import LocalSource
from imaging_source.rad69 import NOT_YET_LOCAL, ImagingSourceIdentity, StreamedDocumentSet
from imaging_source.soap_rad69 import IMAGING_SOURCE_PATH, _Arriving, imaging_source_service
from imaging_source.transcode import Delivery, Transcoder
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits
from soap.mtom_response import OPEN_AHEAD

OUR_ID = "1.3.6.1.4.1.21367.13.80.110"
URL = f"http://xdsi.test{IMAGING_SOURCE_PATH}"


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
def transport(store: InstanceStore, tmp_path: Path) -> httpx.ASGITransport:
    service = imaging_source_service(
        LocalSource(store), Transcoder(tmp_path / "t"), ImagingSourceIdentity(OUR_ID)
    )
    return httpx.ASGITransport(app=Starlette(routes=build_soap_routes([service], Limits())))


def body_for(datasets: list[Dataset]) -> etree._Element:
    series: dict[str, list[DocumentRequest]] = {}
    for ds in datasets:
        series.setdefault(ds.SeriesInstanceUID, []).append(
            DocumentRequest(OUR_ID, ds.SOPInstanceUID)
        )
    request = RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                datasets[0].StudyInstanceUID,
                tuple(SeriesRequest(uid, tuple(docs)) for uid, docs in series.items()),
            ),
        ),
        (ExplicitVRLittleEndian,),
    )
    return retrieve_imaging_document_set_request(request)


def _client(transport: httpx.ASGITransport, spool_dir: Path) -> SoapClient:
    """A client whose answers' parts land in ``spool_dir`` (the test's own)."""
    return SoapClient(URL, transport=transport, limits=Limits(spool_dir=spool_dir))


async def test_mtom_request_returns_every_instance_as_an_mtom_part(
    transport: httpx.ASGITransport, study: list[Dataset], store: InstanceStore, tmp_path: Path
) -> None:
    native = [study[0], study[1], study[3]]
    client = _client(transport, tmp_path)
    response = await client.call(Action.RAD69, body_for(native), mtom=True)
    assert response.addressing.action == Action.ITI43_RESPONSE
    parsed = parse_retrieve_document_set_response(response.body, response.attachments)
    assert parsed.status is ResponseStatus.SUCCESS
    for ds, document in zip(native, parsed.documents, strict=True):
        stored = store.get(ds.SOPInstanceUID)
        assert stored is not None
        assert document.mime_type == "application/dicom"
        assert document.path.read_bytes() == stored.path.read_bytes()


async def test_plain_soap_request_is_accepted(
    transport: httpx.ASGITransport, study: list[Dataset], tmp_path: Path
) -> None:
    client = _client(transport, tmp_path)
    response = await client.call(Action.RAD69, body_for(study[:1]), mtom=False)
    parsed = parse_retrieve_document_set_response(response.body, response.attachments)
    assert parsed.status is ResponseStatus.SUCCESS and len(parsed.documents) == 1


async def test_unknown_instance_answers_partial_success_over_the_wire(
    transport: httpx.ASGITransport, study: list[Dataset], tmp_path: Path
) -> None:
    body = body_for(study[:1])
    series = body.find(f"{XDSI.StudyRequest}/{XDSI.SeriesRequest}")
    extra = etree.SubElement(series, XDSB.DocumentRequest)
    etree.SubElement(extra, XDSB.RepositoryUniqueId).text = OUR_ID
    etree.SubElement(extra, XDSB.DocumentUniqueId).text = "1.2.3.4.5"
    response = await _client(transport, tmp_path).call(Action.RAD69, body, mtom=True)
    parsed = parse_retrieve_document_set_response(response.body, response.attachments)
    assert parsed.status is ResponseStatus.PARTIAL_SUCCESS
    assert [(e.code, e.location) for e in parsed.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, "1.2.3.4.5")
    ]


async def test_wsdl_is_served(transport: httpx.ASGITransport) -> None:
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(f"{URL}?wsdl")
    assert response.status_code == 200
    wsdl = etree.fromstring(response.content)
    actions = {e.get("{http://www.w3.org/2006/05/addressing/wsdl}Action") for e in wsdl.iter()} - {
        None
    }
    assert actions == {Action.RAD69, Action.ITI43_RESPONSE}


def _streamed(tmp_path: Path, landed: int) -> tuple[StreamedDocumentSet, list[Path]]:
    """A streamed answer whose ``landed`` pending documents all land in one batch."""
    paths = []
    for n in range(landed):
        path = tmp_path / f"instance{n}.dcm"
        path.write_bytes(bytes([n]) * 100)
        paths.append(path)
    pending = tuple(
        RetrievedDocument(OUR_ID, f"1.2.3.{n}", "application/dicom", NOT_YET_LOCAL, 0)
        for n in range(landed)
    )

    def deliveries() -> Iterator[list[tuple[int, Delivery]]]:
        yield [(n, Delivery(p, 100, ExplicitVRLittleEndian)) for n, p in enumerate(paths)]

    response = RetrieveDocumentSetResponse(ResponseStatus.SUCCESS, (), ())
    return StreamedDocumentSet(response, pending, deliveries, lambda: None), paths


async def test_landed_instances_go_out_of_files_opened_a_bounded_number_at_a_time(
    tmp_path: Path,
) -> None:
    streamed, paths = _streamed(tmp_path, OPEN_AHEAD + 5)
    arriving = _Arriving(streamed, [f"c{n}" for n in range(len(paths))])
    first = await arriving.__anext__()
    held = [first, *arriving._ready]
    assert len(held) == OPEN_AHEAD  # one batch landed; no more than OPEN_AHEAD opened
    assert all(a.file is not None and not a.file.closed for a in held)
    assert first.file is not None and first.file.read() == paths[0].read_bytes()
    first.file.close()  # sent (the sender closes it)
    # the message is cut short: what was opened and not sent is closed
    await arriving.aclose()
    assert all(a.file is not None and a.file.closed for a in held)
