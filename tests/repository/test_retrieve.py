"""repository/retrieve.py: ITI-43 (ITI TF-2 3.43.4.1.3), on every database."""

from __future__ import annotations

import hashlib

import pytest
from repository_fixtures import HOME, OTHER_REPOSITORY_ID, REPOSITORY_ID
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode
from ebxml.messages import DocumentRequest, RetrieveDocumentSetRequest, RetrieveDocumentSetResponse
from ebxml.vocabulary import ResponseStatus
from repository.blobs import BlobStore
from repository.retrieve import retrieve_document_set
from repository.tables import DocumentState, RepositoryDocument

PDF = b"%PDF-1.7 report" * 100
XML = b"<ClinicalDocument/>"


@pytest.fixture
def stored(sessions: sessionmaker[Session], blobs: BlobStore) -> dict[str, str]:
    """Two documents in the repository: uniqueId -> sha1."""
    documents = {"1.2.3.1": (PDF, "application/pdf"), "1.2.3.2": (XML, "text/xml")}
    with sessions.begin() as session:
        for unique_id, (data, mime_type) in documents.items():
            blob = blobs.store_file(_spooled(blobs, data))
            session.add(
                RepositoryDocument(
                    document_unique_id=unique_id,
                    sha1=blob.sha1,
                    size=blob.size,
                    mime_type=mime_type,
                    state=DocumentState.COMMITTED,
                )
            )
    return {uid: hashlib.sha1(data).hexdigest() for uid, (data, _) in documents.items()}


def _spooled(blobs: BlobStore, data: bytes):
    path = blobs.root.parent / f"spool-{hashlib.sha1(data).hexdigest()}"
    path.write_bytes(data)
    return path


@pytest.fixture
def retrieve(sessions: sessionmaker[Session], blobs: BlobStore):
    def run(*requests: DocumentRequest, home: str | None = HOME) -> RetrieveDocumentSetResponse:
        return retrieve_document_set(
            RetrieveDocumentSetRequest(requests),
            sessions=sessions,
            blobs=blobs,
            repository_unique_id=REPOSITORY_ID,
            home_community_id=home,
        )

    return run


def test_known_document_is_returned_from_its_blob(retrieve, blobs, stored) -> None:
    response = retrieve(DocumentRequest(REPOSITORY_ID, "1.2.3.1"))
    assert response.status == ResponseStatus.SUCCESS and response.errors == ()
    [document] = response.documents
    assert document.path == blobs.path(stored["1.2.3.1"])
    assert document.path.read_bytes() == PDF
    assert (document.document_unique_id, document.repository_unique_id) == (
        "1.2.3.1",
        REPOSITORY_ID,
    )
    assert (document.mime_type, document.size) == ("application/pdf", len(PDF))


def test_several_documents_are_returned_in_request_order(retrieve, stored) -> None:
    response = retrieve(
        DocumentRequest(REPOSITORY_ID, "1.2.3.2"), DocumentRequest(REPOSITORY_ID, "1.2.3.1")
    )
    assert response.status == ResponseStatus.SUCCESS
    assert [d.document_unique_id for d in response.documents] == ["1.2.3.2", "1.2.3.1"]


def test_unknown_document_is_document_unique_id_error(retrieve, stored) -> None:
    response = retrieve(DocumentRequest(REPOSITORY_ID, "1.2.3.404"))
    assert response.status == ResponseStatus.FAILURE
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSDocumentUniqueIdError, "1.2.3.404")
    ]


def test_other_repository_is_unknown_repository_id(retrieve, stored) -> None:
    response = retrieve(DocumentRequest(OTHER_REPOSITORY_ID, "1.2.3.1"))
    assert response.status == ResponseStatus.FAILURE
    [error] = response.errors
    assert error.code == ErrorCode.XDSUnknownRepositoryId
    assert OTHER_REPOSITORY_ID in error.context


def test_some_found_some_not_is_partial_success(retrieve, stored) -> None:
    response = retrieve(
        DocumentRequest(REPOSITORY_ID, "1.2.3.1"),
        DocumentRequest(REPOSITORY_ID, "1.2.3.404"),
        DocumentRequest(OTHER_REPOSITORY_ID, "1.2.3.2"),
    )
    assert response.status == ResponseStatus.PARTIAL_SUCCESS
    assert [d.document_unique_id for d in response.documents] == ["1.2.3.1"]
    assert [e.code for e in response.errors] == [
        ErrorCode.XDSUnknownRepositoryId,
        ErrorCode.XDSDocumentUniqueIdError,
    ]


def test_other_home_community_is_unknown_community(retrieve, stored) -> None:
    response = retrieve(DocumentRequest(REPOSITORY_ID, "1.2.3.1", "urn:oid:9.9.9"))
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownCommunity]


def test_our_home_community_is_echoed(retrieve, stored) -> None:
    response = retrieve(DocumentRequest(REPOSITORY_ID, "1.2.3.1", HOME))
    assert response.documents[0].home_community_id == HOME


def test_indexed_document_without_blob_is_not_retrievable(
    retrieve, sessions, blobs, stored
) -> None:
    blobs.delete(stored["1.2.3.2"])
    response = retrieve(DocumentRequest(REPOSITORY_ID, "1.2.3.2"))
    assert [e.code for e in response.errors] == [ErrorCode.XDSDocumentUniqueIdError]


def test_empty_request_is_failure(retrieve) -> None:
    response = retrieve()
    assert response.status == ResponseStatus.FAILURE and response.errors
