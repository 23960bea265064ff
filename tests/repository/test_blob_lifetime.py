"""A blob shared by identical documents lives as long as any index row references it,
whatever runs at the same time on another connection (another process sharing the
database and the blob directory): ITI-86 Remove Documents (RMD 3.86.4.1.3), the undo
of a refused ITI-41 (ITI TF-2 3.41.4.1.3.2 (d)) and ``xdsi check --repair`` delete a
blob only when no row, committed or pending, references its SHA-1, decided under the
lock ITI-41 takes to insert its pending row (repository/blob_references.py)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from repository_fixtures import REPOSITORY_ID, ScriptedRegistry, document_entry, provide_request
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import DocumentContent, DocumentRequest, RegistryResponse
from ebxml.remove import RemoveDocumentsRequest
from repository.blob_references import delete_unreferenced
from repository.blobs import BlobStore, sha1_of_file
from repository.check import remove_unreferenced_blobs
from repository.db import make_engine, session_factory
from repository.provide import provide_and_register
from repository.remove import remove_documents
from repository.tables import DocumentState, RepositoryDocument, utcnow

Spool = Callable[..., DocumentContent]
CONTENT = b"one report, submitted twice\n" * 200
# how long a paused deleter waits for the other side to act: with the lock the other
# side cannot act (it queues behind the deleter), so the wait runs out and is the cost
PAUSE = 1.0


class PausingBlobStore(BlobStore):
    """The store as the deleting side sees it: before each delete it runs ``pause``,
    so the other side can act between the reference check and the unlink."""

    def __init__(self, root: Path, pause: Callable[[], None]) -> None:
        super().__init__(root)
        self.pause = pause

    def delete(self, sha1: str) -> bool:
        self.pause()
        return super().delete(sha1)


def provide(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    content: DocumentContent,
    unique_id: str,
    registry: ScriptedRegistry | None = None,
) -> RegistryResponse:
    return provide_and_register(
        provide_request((document_entry(unique_id=unique_id), content)),
        (),
        sessions=sessions,
        blobs=blobs,
        registry=registry or ScriptedRegistry(),
        repository_unique_id=REPOSITORY_ID,
    )


def assert_retrievable(sessions: sessionmaker[Session], blobs: BlobStore) -> None:
    """Every index row's blob is there with the row's SHA-1 and size."""
    with sessions() as session:
        rows = session.execute(select(RepositoryDocument.sha1, RepositoryDocument.size)).all()
    assert rows
    for sha1, size in rows:
        assert blobs.exists(sha1), f"blob {sha1} of an index row is gone"
        assert sha1_of_file(blobs.path(sha1)) == (sha1, size)


@pytest.fixture
def other_process(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on a second pool: another process's connections to the same database."""
    other = make_engine(engine.url.render_as_string(hide_password=False))
    yield session_factory(other)
    other.dispose()


def race_delete_against_provide(
    delete: Callable[[BlobStore], object],
    blobs: BlobStore,
    other_sessions: sessionmaker[Session],
    content: DocumentContent,
) -> RegistryResponse:
    """Run ``delete`` on a store that pauses before unlinking; during the pause an ITI-41
    of the same content runs on the other connection."""
    provided = threading.Event()
    outcome: list[RegistryResponse] = []

    def submit_same_content() -> None:
        outcome.append(provide(other_sessions, blobs, content, "1.2.3.4.5.6.9.2"))
        provided.set()

    submitter = threading.Thread(target=submit_same_content)
    started = threading.Event()

    def pause() -> None:
        if not started.is_set():
            started.set()
            submitter.start()
            provided.wait(PAUSE)

    delete(PausingBlobStore(blobs.root, pause))
    if started.is_set():
        submitter.join(timeout=30)
    else:
        submitter.start()
        submitter.join(timeout=30)
    [response] = outcome
    return response


def test_removal_does_not_take_a_blob_an_iti41_in_flight_just_referenced(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    spool: Spool,
    other_process: sessionmaker[Session],
) -> None:
    assert provide(sessions, blobs, spool(CONTENT), "1.2.3.4.5.6.9.1").ok

    def remove_first(store: BlobStore) -> object:
        return remove_documents(
            RemoveDocumentsRequest((DocumentRequest(REPOSITORY_ID, "1.2.3.4.5.6.9.1"),)),
            sessions=sessions,
            blobs=store,
            repository_unique_id=REPOSITORY_ID,
        )

    response = race_delete_against_provide(remove_first, blobs, other_process, spool(CONTENT))
    assert response.ok, response.errors
    assert_retrievable(sessions, blobs)


def test_a_refused_iti41_does_not_take_the_blob_of_a_concurrent_identical_one(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    spool: Spool,
    other_process: sessionmaker[Session],
) -> None:
    refusing = ScriptedRegistry(
        RegistryResponse.from_errors([RegistryError(ErrorCode.XDSRegistryError, "refused")])
    )

    def refused_submission(store: BlobStore) -> object:
        return provide(sessions, store, spool(CONTENT), "1.2.3.4.5.6.9.3", refusing)

    response = race_delete_against_provide(refused_submission, blobs, other_process, spool(CONTENT))
    assert response.ok, response.errors
    assert_retrievable(sessions, blobs)


def test_repair_does_not_take_a_blob_an_iti41_in_flight_just_referenced(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    spool: Spool,
    other_process: sessionmaker[Session],
) -> None:
    # an unreferenced blob left by a crash, older than the grace period
    orphan = blobs.store_stream(spool(CONTENT).path.open("rb"))

    def repair(store: BlobStore) -> object:
        return remove_unreferenced_blobs(sessions, store, older_than=utcnow() + timedelta(1))

    response = race_delete_against_provide(repair, blobs, other_process, spool(CONTENT))
    assert response.ok, response.errors
    assert blobs.exists(orphan.sha1)
    assert_retrievable(sessions, blobs)


def test_unreferenced_blobs_go_referenced_ones_stay(
    sessions: sessionmaker[Session], blobs: BlobStore, spool: Spool
) -> None:
    kept = b"kept\n"
    assert provide(sessions, blobs, spool(kept), "1.2.3.4.5.6.9.4").ok
    orphan = blobs.store_stream(spool(b"orphan\n").path.open("rb"))
    kept_sha1 = hashlib.sha1(kept).hexdigest()
    assert delete_unreferenced(sessions, blobs, [kept_sha1, orphan.sha1]) == 1
    assert blobs.exists(kept_sha1) and not blobs.exists(orphan.sha1)


def test_a_pending_row_keeps_its_blob(
    sessions: sessionmaker[Session], blobs: BlobStore, spool: Spool
) -> None:
    blob = blobs.store_stream(spool(CONTENT).path.open("rb"))
    with sessions.begin() as session:
        session.add(
            RepositoryDocument(
                document_unique_id="1.2.3.4.5.6.9.5",
                sha1=blob.sha1,
                size=blob.size,
                mime_type="text/plain",
                state=DocumentState.PENDING,
            )
        )
    assert delete_unreferenced(sessions, blobs, [blob.sha1]) == 0
    assert blobs.exists(blob.sha1)


def test_a_blob_gone_before_the_rows_are_committed_is_stored_again(
    sessions: sessionmaker[Session], blobs: BlobStore, spool: Spool
) -> None:
    """A blob removed behind the store's back while the Register is under way."""
    sha1 = hashlib.sha1(CONTENT).hexdigest()
    registry = ScriptedRegistry(on_register=lambda: blobs.delete(sha1))
    assert provide(sessions, blobs, spool(CONTENT), "1.2.3.4.5.6.9.6", registry).ok
    assert_retrievable(sessions, blobs)
