"""repository/remove.py and repository/soap_remove.py: ITI-86 Remove Documents
(RMD 3.86.4.1.3), on SQLite and PostgreSQL, directly and over the SOAP stack."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from repository_fixtures import HOME, OTHER_REPOSITORY_ID, REPOSITORY_ID, ScriptedRegistry
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.messages import DocumentRequest, RegistryResponse
from ebxml.remove import RemoveDocumentsRequest, remove_documents_request
from ebxml.vocabulary import Action, ResponseStatus
from ebxml.wire import parse_registry_response
from repository.blobs import BlobStore
from repository.registry_client import InProcessRegistryClient
from repository.remove import remove_documents
from repository.service import DocumentRepository, RepositoryConfig
from repository.soap_remove import remove_documents_operation
from repository.tables import DocumentState, RepositoryDocument
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits
from soap.message import Service

PDF = b"%PDF-1.7 report" * 100
XML = b"<ClinicalDocument/>"
URL = "http://xdsi.test/xds/repository"


@pytest.fixture
def store(sessions: sessionmaker[Session], blobs: BlobStore, tmp_path: Path):
    """Put a document in the index (committed unless told) and its content in the store."""

    def put(unique_id: str, data: bytes, state: DocumentState = DocumentState.COMMITTED) -> str:
        spooled = tmp_path / f"spool-{unique_id}"
        spooled.write_bytes(data)
        blob = blobs.store_file(spooled)
        with sessions.begin() as session:
            session.add(
                RepositoryDocument(
                    document_unique_id=unique_id,
                    sha1=blob.sha1,
                    size=blob.size,
                    mime_type="application/pdf",
                    state=state,
                )
            )
        return blob.sha1

    return put


@pytest.fixture
def remove(sessions: sessionmaker[Session], blobs: BlobStore):
    def run(*requests: DocumentRequest) -> RegistryResponse:
        return remove_documents(
            RemoveDocumentsRequest(requests),
            sessions=sessions,
            blobs=blobs,
            repository_unique_id=REPOSITORY_ID,
            home_community_id=HOME,
        )

    return run


def indexed(sessions: sessionmaker[Session], unique_id: str) -> bool:
    with sessions() as session:
        query = select(RepositoryDocument.id).where(
            RepositoryDocument.document_unique_id == unique_id
        )
        return session.scalar(query) is not None


def codes(response: RegistryResponse) -> list[tuple[ErrorCode, str]]:
    return [(e.code, e.location) for e in response.errors]


def test_removed_document_loses_its_row_and_blob(store, remove, sessions, blobs) -> None:
    sha1 = store("1.2.3.1", PDF)
    response = remove(DocumentRequest(REPOSITORY_ID, "1.2.3.1"))
    assert (response.status, response.errors) == (ResponseStatus.SUCCESS, ())
    assert not indexed(sessions, "1.2.3.1")
    assert not blobs.exists(sha1)


def test_blob_shared_with_another_document_stays(store, remove, blobs) -> None:
    sha1 = store("1.2.3.1", PDF)
    store("1.2.3.2", PDF)
    remove(DocumentRequest(REPOSITORY_ID, "1.2.3.1"))
    assert blobs.exists(sha1)


def test_unknown_document_is_document_unique_id_error(store, remove) -> None:
    response = remove(DocumentRequest(REPOSITORY_ID, "9.9.9"))
    assert response.status == ResponseStatus.FAILURE
    assert codes(response) == [(ErrorCode.XDSDocumentUniqueIdError, "9.9.9")]


def test_other_repository_is_unknown_repository_id(store, remove, sessions) -> None:
    store("1.2.3.1", PDF)
    response = remove(DocumentRequest(OTHER_REPOSITORY_ID, "1.2.3.1"))
    assert codes(response) == [(ErrorCode.XDSUnknownRepositoryId, "1.2.3.1")]
    assert indexed(sessions, "1.2.3.1")


def test_other_community_is_unknown_community(store, remove) -> None:
    store("1.2.3.1", PDF)
    response = remove(DocumentRequest(REPOSITORY_ID, "1.2.3.1", "urn:oid:9.9"))
    assert [code for code, _ in codes(response)] == [ErrorCode.XDSUnknownCommunity]


def test_some_removed_is_partial_success(store, remove, sessions) -> None:
    store("1.2.3.1", PDF)
    response = remove(
        DocumentRequest(REPOSITORY_ID, "1.2.3.1"), DocumentRequest(REPOSITORY_ID, "9")
    )
    assert response.status == ResponseStatus.PARTIAL_SUCCESS
    assert codes(response) == [(ErrorCode.XDSDocumentUniqueIdError, "9")]
    assert not indexed(sessions, "1.2.3.1")


def test_pending_document_is_not_removable(store, remove, sessions) -> None:
    store("1.2.3.1", PDF, DocumentState.PENDING)
    response = remove(DocumentRequest(REPOSITORY_ID, "1.2.3.1"))
    assert codes(response) == [(ErrorCode.XDSDocumentUniqueIdError, "1.2.3.1")]
    assert indexed(sessions, "1.2.3.1")


def test_empty_request_fails(remove) -> None:
    response = remove()
    assert response.status == ResponseStatus.FAILURE
    assert [code for code, _ in codes(response)] == [ErrorCode.XDSRepositoryError]


# --- over SOAP ------------------------------------------------------------------------------


@pytest.fixture
def client(engine: Engine, blobs: BlobStore) -> SoapClient:
    repository = DocumentRepository(
        engine,
        blobs,
        InProcessRegistryClient(ScriptedRegistry()),
        RepositoryConfig(REPOSITORY_ID, home_community_id=HOME),
    )
    service = Service("/xds/repository", {Action.ITI86: remove_documents_operation(repository)})
    app = Starlette(routes=build_soap_routes([service], Limits()))
    return SoapClient(URL, transport=httpx.ASGITransport(app=app))


async def test_soap_removal_answers_with_the_response_action(store, client, blobs) -> None:
    sha1 = store("1.2.3.1", XML)
    body = remove_documents_request(
        RemoveDocumentsRequest((DocumentRequest(REPOSITORY_ID, "1.2.3.1", HOME),))
    )
    reply = await client.call(Action.ITI86, body, mtom=False)
    assert reply.addressing.action == Action.ITI86_RESPONSE
    assert parse_registry_response(reply.body).status == ResponseStatus.SUCCESS
    assert not blobs.exists(sha1)
    assert sha1 == hashlib.sha1(XML).hexdigest()


async def test_soap_incomplete_document_request_is_partial_success(store, client) -> None:
    store("1.2.3.1", XML)
    body = remove_documents_request(
        RemoveDocumentsRequest(
            (DocumentRequest(REPOSITORY_ID, "1.2.3.1"), DocumentRequest(REPOSITORY_ID, "x"))
        )
    )
    second = body[1]
    second.remove(second[1])  # no DocumentUniqueId
    reply = await client.call(Action.ITI86, body, mtom=False)
    response = parse_registry_response(reply.body)
    assert response.status == ResponseStatus.PARTIAL_SUCCESS
    assert [e.code for e in response.errors] == [ErrorCode.XDSRepositoryError]


async def test_soap_wrong_body_fails(client) -> None:
    body = remove_documents_request(RemoveDocumentsRequest(()))
    body.tag = "{urn:ihe:iti:xds-b:2007}RetrieveDocumentSetRequest"
    reply = await client.call(Action.ITI86, body, mtom=False)
    assert parse_registry_response(reply.body).status == ResponseStatus.FAILURE
