"""repository/service.py: /xds/repository over the real SOAP stack (in-process ASGI),
with the real ebxml parser, serialiser and validator; the registry is scripted, or the
real registry actor for start-up recovery."""

from __future__ import annotations

import errno
import hashlib
import os
import time
import uuid
from datetime import timedelta
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree
from registry_actor import registrable_entry, registrable_request
from repository_fixtures import REPOSITORY_ID, ScriptedRegistry
from sqlalchemy import Engine, select, update
from starlette.applications import Starlette

import repository.service as repository_service_module
from ebxml.errors import ErrorCode
from ebxml.messages import DocumentRequest, RetrieveDocumentSetRequest
from ebxml.retrieve import parse_retrieve_document_set_response, retrieve_document_set_request
from ebxml.tags import RS
from ebxml.vocabulary import NS_XDSB, Action, ResponseStatus
from ebxml.wire import parse_registry_response
from repository.blobs import BlobStore, BlobStoreFull
from repository.registry_client import InProcessRegistryClient
from repository.service import DocumentRepository, RepositoryConfig, repository_service
from repository.tables import DocumentState, RepositoryDocument, utcnow
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits
from soap.message import Addressing, Attachment, Service, SoapRequest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "e2e"
SOAP = "{http://www.w3.org/2003/05/soap-envelope}"
PDF = b"%PDF-1.4 imaging report\n" * 500
URL = "http://xdsi.test/xds/repository"


def iti41_body(doc_unique_id: str, content_id: str) -> etree._Element:
    """The ProvideAndRegisterDocumentSetRequest of the hand-written e2e fixture."""
    values = dict(
        message_id=uuid.uuid4(),
        to=URL,
        patient_id="PID42^^^&1.3.6.1.4.1.21367.13.20.1000&ISO",
        doc_unique_id=doc_unique_id,
        ss_unique_id=f"1.2.3.4.5.6.6.{uuid.uuid4().int % 10**12}",
        source_id="1.2.3.4.5.6",
        title="Imaging report",
        mime_type="application/pdf",
        format_code="urn:ihe:iti:xds-sd:pdf:2008",
        content_id=content_id,
        creation_time=time.strftime("%Y%m%d%H%M%S", time.gmtime()),
    )
    template = Template((FIXTURES / "iti41_one_document.xml").read_text())
    text = template.substitute({k: escape(str(v)) for k, v in values.items()})
    envelope = etree.fromstring(text.encode())
    return envelope.find(f"{SOAP}Body")[0]


@pytest.fixture
def repository(engine: Engine, blobs: BlobStore, registry: ScriptedRegistry) -> DocumentRepository:
    return DocumentRepository(
        engine, blobs, InProcessRegistryClient(registry), RepositoryConfig(REPOSITORY_ID)
    )


@pytest.fixture
def service(repository: DocumentRepository) -> Service:
    return repository_service(repository)


@pytest.fixture
def client(service: Service, tmp_path: Path) -> SoapClient:
    app = Starlette(routes=build_soap_routes([service], Limits()))
    # the answers' parts land in the test's own directory
    return SoapClient(
        URL, transport=httpx.ASGITransport(app=app), limits=Limits(spool_dir=tmp_path)
    )


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(PDF)
    return path


async def provide(service: Service, pdf: Path, unique_id: str, *, with_document: bool = True):
    """ITI-41 handed to the endpoint's handler as soap/ hands it over: the body, and the
    MTOM part spooled to disk and hashed."""
    cid = f"doc1.{uuid.uuid4().hex}@xdsi.test"
    body = iti41_body(unique_id, cid)
    attachments = {
        cid: Attachment(cid, "application/pdf", pdf, len(PDF), hashlib.sha1(PDF).hexdigest())
    }
    if not with_document:
        for document in body.iterfind(f"{{{NS_XDSB}}}Document"):
            body.remove(document)
        attachments = {}
    request = SoapRequest(URL, Addressing(Action.ITI41), body, attachments, mtom=True)
    response = service.operations[Action.ITI41].handler(request)  # a blocking handler
    return parse_registry_response(response.body)


async def test_iti41_stores_document_and_registers_it(service, pdf, registry, blobs) -> None:
    response = await provide(service, pdf, "1.2.3.4.5.6.5.1")
    assert response.status == ResponseStatus.SUCCESS, [e.context for e in response.errors]
    [entry] = registry.submissions[0].document_entries
    assert (entry.hash, entry.size, entry.repository_unique_id) == (
        hashlib.sha1(PDF).hexdigest(),
        len(PDF),
        REPOSITORY_ID,
    )
    assert blobs.path(entry.hash).read_bytes() == PDF


async def test_iti41_without_its_document_is_missing_document(service, pdf, registry) -> None:
    response = await provide(service, pdf, "1.2.3.4.5.6.5.2", with_document=False)
    assert [e.code for e in response.errors] == [ErrorCode.XDSMissingDocument]
    assert registry.submissions == []


async def test_iti41_unreachable_registry_is_registry_not_available(
    service, pdf, registry, blobs
) -> None:
    registry.raises = ConnectionRefusedError("registry down")
    response = await provide(service, pdf, "1.2.3.4.5.6.5.3")
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryNotAvailable]
    assert not blobs.exists(hashlib.sha1(PDF).hexdigest())


async def test_iti43_streams_the_stored_document(service, client, pdf) -> None:
    await provide(service, pdf, "1.2.3.4.5.6.5.4")
    request = RetrieveDocumentSetRequest(
        (
            DocumentRequest(REPOSITORY_ID, "1.2.3.4.5.6.5.4"),
            DocumentRequest(REPOSITORY_ID, "1.2.3.404"),
        )
    )
    reply = await client.call(Action.ITI43, retrieve_document_set_request(request), mtom=True)
    response = parse_retrieve_document_set_response(reply.body, reply.attachments)
    assert reply.body.find(RS.RegistryResponse).get("status") == ResponseStatus.PARTIAL_SUCCESS
    [document] = response.documents
    assert (document.document_unique_id, document.mime_type) == (
        "1.2.3.4.5.6.5.4",
        "application/pdf",
    )
    assert document.path.read_bytes() == PDF
    assert [e.code for e in response.errors] == [ErrorCode.XDSDocumentUniqueIdError]


def test_wsdl_names_both_operations_with_their_actions(service) -> None:
    wsdl = etree.fromstring(service.wsdl.encode())
    soap12 = "{http://schemas.xmlsoap.org/wsdl/soap12/}"
    actions = {op.get("soapAction") for op in wsdl.iter(f"{soap12}operation")}
    assert actions == {Action.ITI41, Action.ITI43} == set(service.operations)
    assert wsdl.find(f".//{soap12}binding") is not None


# --- start-up recovery against the real registry ----------------------------------------


class Crash(BaseException):
    """The process dying at a given step."""


def crash(*_args: object) -> None:
    raise Crash


@pytest.fixture
def with_registry(engine: Engine, blobs: BlobStore, document_registry) -> DocumentRepository:
    """The repository with the real registry actor in its process, as ``xdsi serve`` runs."""
    return DocumentRepository(
        engine,
        blobs,
        InProcessRegistryClient(document_registry),
        RepositoryConfig(REPOSITORY_ID, pending_grace=timedelta(hours=1)),
    )


def age_pending(repository: DocumentRepository) -> list[RepositoryDocument]:
    with repository.sessions.begin() as session:
        session.execute(update(RepositoryDocument).values(created=utcnow() - timedelta(hours=2)))
        return list(session.scalars(select(RepositoryDocument)))


def test_recovery_keeps_what_the_registry_registered_before_a_crash(
    with_registry: DocumentRepository, spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the registry answered Success; the process died before (d) marked the row committed
    entry = registrable_entry()
    monkeypatch.setattr("repository.provide._mark_committed", crash)
    with pytest.raises(Crash):
        with_registry.provide_and_register(registrable_request((entry, spool(PDF))))
    monkeypatch.undo()
    [row] = age_pending(with_registry)
    assert row.state == DocumentState.PENDING

    report = with_registry.recover()
    assert (report.rows_committed, report.rows_removed) == (1, 0)
    request = RetrieveDocumentSetRequest((DocumentRequest(REPOSITORY_ID, entry.unique_id),))
    [document] = with_registry.retrieve(request).documents
    assert document.path.read_bytes() == PDF


def test_recovery_removes_what_the_registry_never_registered(
    with_registry: DocumentRepository, document_registry, spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the process died while the registry was being asked: it registered nothing, and
    # the undo of (d) never ran
    monkeypatch.setattr(document_registry, "register", crash)
    monkeypatch.setattr("repository.provide.remove_stored", lambda *_args: None)
    with pytest.raises(Crash):
        with_registry.provide_and_register(registrable_request((registrable_entry(), spool(PDF))))
    [row] = age_pending(with_registry)

    report = with_registry.recover()
    assert (report.rows_removed, report.blobs_removed, report.rows_committed) == (1, 1, 0)
    assert age_pending(with_registry) == [] and not with_registry.blobs.exists(row.sha1)


# --- disk full: ITI TF-3 Table 4.2.4.1-2 XDSRepositoryOutOfResources -----------------------


def _full_filesystem(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def test_iti41_on_a_full_blob_store_is_out_of_resources_and_keeps_nothing(
    service, pdf, registry, blobs, engine, monkeypatch
) -> None:
    monkeypatch.setattr(os, "fsync", _full_filesystem)
    response = await provide(service, pdf, "1.2.3.4.5.6.5.20")
    monkeypatch.undo()
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSRepositoryOutOfResources]
    assert registry.submissions == []
    with engine.connect() as connection:
        assert connection.execute(select(RepositoryDocument.id)).all() == []
    assert not blobs.exists(hashlib.sha1(PDF).hexdigest())
    assert list(blobs.temp_files()) == []


def test_blob_store_full_escaping_iti41_is_answered_out_of_resources(
    repository, monkeypatch
) -> None:
    def full(*_args: object, **_kwargs: object) -> None:
        raise BlobStoreFull(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(repository_service_module, "provide_and_register", full)
    response = repository.provide_and_register(None)  # type: ignore[arg-type]
    assert response.status == ResponseStatus.FAILURE
    [error] = response.errors
    assert error.code == ErrorCode.XDSRepositoryOutOfResources
    assert os.strerror(errno.EDQUOT) in error.context
