"""ITI-41 submissions of one uniqueId that overlap: each keeps its own pending index row,
only the one the registry accepted is committed, and a refused one removes only what
it stored itself (ITI TF-2 3.41.4.1.3.2, 3.42.4.1.3.3.1)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from repository_fixtures import REPOSITORY_ID, ScriptedRegistry, document_entry, provide_request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentContent,
    DocumentRequest,
    ProvideAndRegisterRequest,
    RegistryResponse,
    RetrieveDocumentSetRequest,
)
from ebxml.vocabulary import ResponseStatus
from repository.blobs import BlobStore
from repository.provide import provide_and_register, recover
from repository.retrieve import retrieve_document_set
from repository.tables import DocumentState, RepositoryDocument, utcnow

Spool = Callable[..., DocumentContent]
UNIQUE_ID = "1.2.3.4.5.6.5.777"
FIRST = b"first content\n" * 100
SECOND = b"second, different content\n" * 50


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def request(spool: Spool, data: bytes) -> ProvideAndRegisterRequest:
    return provide_request((document_entry(unique_id=UNIQUE_ID), spool(data)))


def provide(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    registry: ScriptedRegistry,
    req: ProvideAndRegisterRequest,
) -> RegistryResponse:
    return provide_and_register(
        req,
        (),
        sessions=sessions,
        blobs=blobs,
        registry=registry,
        repository_unique_id=REPOSITORY_ID,
    )


def rows(sessions: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with sessions() as session:
        return [
            (r.document_unique_id, r.sha1, r.state)
            for r in session.scalars(select(RepositoryDocument).order_by(RepositoryDocument.id))
        ]


def retrieved(sessions: sessionmaker[Session], blobs: BlobStore) -> bytes:
    response = retrieve_document_set(
        RetrieveDocumentSetRequest((DocumentRequest(REPOSITORY_ID, UNIQUE_ID),)),
        sessions=sessions,
        blobs=blobs,
        repository_unique_id=REPOSITORY_ID,
    )
    [document] = response.documents
    return document.path.read_bytes()


def refused(code: ErrorCode) -> ScriptedRegistry:
    registry = ScriptedRegistry()
    registry.fail_with(RegistryError(code, f"uniqueId {UNIQUE_ID} is registered otherwise"))
    return registry


def test_refused_submission_leaves_the_document_the_registry_accepted(
    sessions, blobs: BlobStore, spool: Spool
) -> None:
    # the first stores its pending row, then the second is registered before it
    first_registry = refused(ErrorCode.XDSNonIdenticalHash)
    answers: list[RegistryResponse] = []
    first_registry.on_register = lambda: answers.append(
        provide(sessions, blobs, ScriptedRegistry(), request(spool, SECOND))
    )
    first = provide(sessions, blobs, first_registry, request(spool, FIRST))
    assert first.status == ResponseStatus.FAILURE
    assert [a.status for a in answers] == [ResponseStatus.SUCCESS]
    assert rows(sessions) == [(UNIQUE_ID, sha1(SECOND), DocumentState.COMMITTED)]
    assert retrieved(sessions, blobs) == SECOND
    assert not blobs.exists(sha1(FIRST))


def test_committed_document_is_retrieved_while_a_refused_one_is_pending(
    sessions, blobs: BlobStore, spool: Spool
) -> None:
    seen: list[bytes] = []

    def second_wins() -> None:
        provide(sessions, blobs, ScriptedRegistry(), request(spool, SECOND))
        seen.append(retrieved(sessions, blobs))

    first_registry = refused(ErrorCode.XDSNonIdenticalHash)
    first_registry.on_register = second_wins
    provide(sessions, blobs, first_registry, request(spool, FIRST))
    assert seen == [SECOND]


def test_refused_submission_removes_only_its_own_row(
    sessions, blobs: BlobStore, spool: Spool
) -> None:
    # the second is refused while the first (registered later) is still pending
    first_registry = ScriptedRegistry()
    first_registry.on_register = lambda: provide(
        sessions, blobs, refused(ErrorCode.XDSNonIdenticalSize), request(spool, SECOND)
    )
    assert provide(sessions, blobs, first_registry, request(spool, FIRST)).status == (
        ResponseStatus.SUCCESS
    )
    assert rows(sessions) == [(UNIQUE_ID, sha1(FIRST), DocumentState.COMMITTED)]
    assert retrieved(sessions, blobs) == FIRST


def test_overlapping_identical_submissions_commit_one_row(
    sessions, blobs: BlobStore, spool: Spool
) -> None:
    first_registry = ScriptedRegistry()
    answers: list[RegistryResponse] = []
    first_registry.on_register = lambda: answers.append(
        provide(sessions, blobs, ScriptedRegistry(), request(spool, FIRST))
    )
    first = provide(sessions, blobs, first_registry, request(spool, FIRST))
    assert [first.status, *(a.status for a in answers)] == [ResponseStatus.SUCCESS] * 2
    assert rows(sessions) == [(UNIQUE_ID, sha1(FIRST), DocumentState.COMMITTED)]
    assert retrieved(sessions, blobs) == FIRST


def test_pending_rows_of_one_unique_id_coexist(sessions) -> None:
    with sessions.begin() as session:
        for data in (FIRST, SECOND):
            session.add(pending_row(data))
    assert len(rows(sessions)) == 2


def test_one_unique_id_cannot_be_committed_twice(sessions) -> None:
    with sessions.begin() as session:
        session.add(pending_row(FIRST, state=DocumentState.COMMITTED))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(pending_row(SECOND, state=DocumentState.COMMITTED))


# --- recovery after a crash during such a race -------------------------------------------


def pending_row(data: bytes, state: str = DocumentState.PENDING) -> RepositoryDocument:
    return RepositoryDocument(
        document_unique_id=UNIQUE_ID,
        sha1=sha1(data),
        size=len(data),
        mime_type="text/plain",
        state=state,
        created=utcnow() - timedelta(hours=1),
    )


def recover_listed(sessions, blobs: BlobStore):  # noqa: ANN201
    registry = ScriptedRegistry(listed={UNIQUE_ID: REPOSITORY_ID})
    return recover(sessions, blobs, registry, REPOSITORY_ID, grace=timedelta(minutes=5))


def test_recovery_commits_one_of_identical_pending_rows(sessions, blobs: BlobStore) -> None:
    with sessions.begin() as session:
        session.add_all([pending_row(FIRST), pending_row(FIRST)])
    recover_listed(sessions, blobs)
    assert rows(sessions) == [(UNIQUE_ID, sha1(FIRST), DocumentState.COMMITTED)]


def test_recovery_leaves_pending_rows_of_different_content_unresolved(
    sessions, blobs: BlobStore
) -> None:
    with sessions.begin() as session:
        session.add_all([pending_row(FIRST), pending_row(SECOND)])
    report = recover_listed(sessions, blobs)
    assert report.rows_unresolved == 2
    assert [state for *_, state in rows(sessions)] == [DocumentState.PENDING] * 2
