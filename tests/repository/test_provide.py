"""repository/provide.py: ITI-41 in the order of ITI TF-2 3.41.4.1.3.2, on every database."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from repository_fixtures import (
    OTHER_REPOSITORY_ID,
    REPOSITORY_ID,
    ScriptedRegistry,
    document_entry,
    provide_request,
)
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentContent,
    DocumentRequest,
    ProvideAndRegisterRequest,
    RegistryResponse,
    RetrieveDocumentSetRequest,
)
from ebxml.model import DocumentEntry
from ebxml.vocabulary import DOC_ENTRY_ON_DEMAND, ResponseStatus
from repository.blobs import TEMP_PREFIX, BlobStore, BlobStoreFull
from repository.provide import (
    RecoveryReport,
    ebxml_validator,
    plan_documents,
    provide_and_register,
    recover,
    store_documents,
)
from repository.retrieve import retrieve_document_set
from repository.tables import DocumentState, RepositoryDocument, utcnow

Spool = Callable[..., DocumentContent]
TEXT = b"Discharge summary\n" * 1000
SHA1 = hashlib.sha1(TEXT).hexdigest()


@pytest.fixture
def provide(sessions: sessionmaker[Session], blobs: BlobStore, registry: ScriptedRegistry):
    def run(
        request: ProvideAndRegisterRequest, cids: tuple[str, ...] = (), **options
    ) -> RegistryResponse:
        return provide_and_register(
            request,
            cids,
            sessions=sessions,
            blobs=blobs,
            registry=registry,
            repository_unique_id=REPOSITORY_ID,
            **options,
        )

    return run


def rows(sessions: sessionmaker[Session]) -> list[RepositoryDocument]:
    with sessions() as session:
        return list(session.scalars(select(RepositoryDocument).order_by(RepositoryDocument.id)))


def codes(response: RegistryResponse) -> list[ErrorCode]:
    return [e.code for e in response.errors]


def test_provide_stores_blob_and_committed_row(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    entry = document_entry()
    response = provide(provide_request((entry, spool(TEXT))))
    assert response.status == ResponseStatus.SUCCESS
    assert blobs.path(SHA1).read_bytes() == TEXT
    [row] = rows(sessions)
    assert (row.document_unique_id, row.sha1, row.size, row.mime_type, row.state) == (
        entry.unique_id,
        SHA1,
        len(TEXT),
        "text/plain",
        DocumentState.COMMITTED,
    )


def test_register_carries_hash_size_and_repository_unique_id(
    provide, registry, spool: Spool
) -> None:
    provide(provide_request((document_entry(), spool(TEXT))))
    [submission] = registry.submissions
    [sent] = submission.document_entries
    assert (sent.hash, sent.size, sent.repository_unique_id) == (SHA1, len(TEXT), REPOSITORY_ID)


def test_document_is_retrievable_before_register_is_sent(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    seen: list[tuple[bool, int]] = []
    registry.on_register = lambda: seen.append((blobs.exists(SHA1), len(rows(sessions))))
    provide(provide_request((document_entry(), spool(TEXT))))
    assert seen == [(True, 1)]


def test_stable_document_entry_needs_a_document(provide, sessions, blobs, registry) -> None:
    response = provide(provide_request((document_entry(), None)))
    assert response.status == ResponseStatus.FAILURE
    assert codes(response) == [ErrorCode.XDSMissingDocument]
    assert response.errors[0].location == "Document01"
    assert registry.submissions == [] and rows(sessions) == []


def test_on_demand_document_entry_needs_no_document(provide, registry) -> None:
    response = provide(provide_request((document_entry(object_type=DOC_ENTRY_ON_DEMAND), None)))
    assert ErrorCode.XDSMissingDocument not in codes(response)


def test_document_needs_a_document_entry(provide, registry, spool: Spool) -> None:
    request = provide_request(
        (document_entry(), spool(TEXT)), extra=(spool(b"stray", doc_id="Stray"),)
    )
    response = provide(request)
    assert codes(response) == [ErrorCode.XDSMissingDocumentMetadata]
    assert registry.submissions == []


def test_unreferenced_mime_part_is_missing_metadata(provide, registry, spool: Spool) -> None:
    response = provide(provide_request((document_entry(), spool(TEXT))), cids=("part9@xdsi.test",))
    assert codes(response) == [ErrorCode.XDSMissingDocumentMetadata]
    assert registry.submissions == []


def test_submitted_hash_must_match_document(provide, sessions, registry, spool: Spool) -> None:
    entry = document_entry(hash=hashlib.sha1(b"other").hexdigest())
    response = provide(provide_request((entry, spool(TEXT))))
    assert codes(response) == [ErrorCode.XDSRepositoryMetadataError]
    assert registry.submissions == [] and rows(sessions) == []


def test_submitted_hash_is_compared_ignoring_case(provide, spool: Spool) -> None:
    response = provide(provide_request((document_entry(hash=SHA1.upper()), spool(TEXT))))
    assert response.status == ResponseStatus.SUCCESS


def test_submitted_size_must_match_document(provide, registry, spool: Spool) -> None:
    response = provide(provide_request((document_entry(size=len(TEXT) - 1), spool(TEXT))))
    assert codes(response) == [ErrorCode.XDSRepositoryMetadataError]
    assert registry.submissions == []


def test_submitted_repository_unique_id_must_be_ours(provide, registry, spool: Spool) -> None:
    entry = document_entry(repository_unique_id=OTHER_REPOSITORY_ID)
    response = provide(provide_request((entry, spool(TEXT))))
    assert codes(response) == [ErrorCode.XDSRepositoryMetadataError]
    assert OTHER_REPOSITORY_ID in response.errors[0].context
    assert registry.submissions == []


def test_unique_id_twice_in_one_request_is_refused(provide, registry, spool: Spool) -> None:
    first = document_entry("Document01", unique_id="1.2.3.9")
    second = document_entry("Document02", unique_id="1.2.3.9")
    response = provide(
        provide_request((first, spool(TEXT)), (second, spool(b"x", doc_id="Document02")))
    )
    assert codes(response) == [ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage]


def test_metadata_validator_errors_stop_the_transaction(
    provide, sessions, registry, spool: Spool
) -> None:
    finding = RegistryError(ErrorCode.XDSRepositoryMetadataError, "patientId missing", "Document01")
    response = provide(
        provide_request((document_entry(), spool(TEXT))), validate=lambda request, cids: [finding]
    )
    assert response.errors == (finding,)
    assert registry.submissions == [] and rows(sessions) == []


def test_validator_warnings_are_answered_with_success(provide, spool: Spool) -> None:
    warning = RegistryError.warning(ErrorCode.XDSExtraMetadataNotSaved, "slot dropped")
    response = provide(
        provide_request((document_entry(), spool(TEXT))), validate=lambda request, cids: [warning]
    )
    assert response.status == ResponseStatus.SUCCESS
    assert response.errors == (warning,)


def test_registry_failure_removes_rows_and_blobs(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    error = RegistryError(ErrorCode.XDSUnknownPatientId, "patient not known", "Document01")
    registry.fail_with(error)
    response = provide(provide_request((document_entry(), spool(TEXT))))
    assert response == RegistryResponse(ResponseStatus.FAILURE, (error,))
    assert rows(sessions) == []
    assert not blobs.exists(SHA1)


def test_registry_failure_leaves_earlier_identical_document(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    stored = document_entry("Document01", unique_id="1.2.3.100")
    provide(provide_request((stored, spool(TEXT))))
    registry.fail_with(RegistryError(ErrorCode.XDSRegistryError, "busy"))
    again = document_entry("Document01", unique_id="1.2.3.100")
    new = document_entry("Document02", unique_id="1.2.3.101")
    response = provide(
        provide_request((again, spool(TEXT)), (new, spool(b"new content", doc_id="Document02")))
    )
    assert response.status == ResponseStatus.FAILURE
    assert [(r.document_unique_id, r.state) for r in rows(sessions)] == [
        ("1.2.3.100", DocumentState.COMMITTED)
    ]
    assert blobs.exists(SHA1)
    assert not blobs.exists(hashlib.sha1(b"new content").hexdigest())


def test_registry_failure_keeps_blob_shared_with_earlier_document(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    provide(provide_request((document_entry(unique_id="1.2.3.200"), spool(TEXT))))
    registry.fail_with(RegistryError(ErrorCode.XDSRegistryError, "busy"))
    provide(provide_request((document_entry(unique_id="1.2.3.201"), spool(TEXT))))
    assert [r.document_unique_id for r in rows(sessions)] == ["1.2.3.200"]
    assert blobs.exists(SHA1)


def test_identical_resubmission_is_not_an_error(provide, sessions, registry, spool: Spool) -> None:
    provide(provide_request((document_entry(unique_id="1.2.3.300"), spool(TEXT))))
    response = provide(provide_request((document_entry(unique_id="1.2.3.300"), spool(TEXT))))
    assert response.status == ResponseStatus.SUCCESS
    assert len(registry.submissions) == 2
    assert len(rows(sessions)) == 1


def test_other_content_under_a_stored_unique_id_is_left_to_the_registry(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    provide(provide_request((document_entry(unique_id="1.2.3.400"), spool(TEXT))))
    error = RegistryError(ErrorCode.XDSNonIdenticalHash, "hash differs", "1.2.3.400")
    registry.fail_with(error)
    other = b"a different document"
    response = provide(provide_request((document_entry(unique_id="1.2.3.400"), spool(other))))
    assert codes(response) == [ErrorCode.XDSNonIdenticalHash]
    assert registry.submissions[-1].document_entries[0].hash == hashlib.sha1(other).hexdigest()
    [row] = rows(sessions)
    assert (row.sha1, row.state) == (SHA1, DocumentState.COMMITTED)
    assert blobs.path(SHA1).read_bytes() == TEXT


def test_unreachable_registry_is_registry_not_available(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    registry.raises = ConnectionRefusedError("connection refused")
    response = provide(provide_request((document_entry(), spool(TEXT))))
    assert codes(response) == [ErrorCode.XDSRegistryNotAvailable]
    assert rows(sessions) == [] and not blobs.exists(SHA1)


def test_registry_exception_rolls_back_and_propagates(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    registry.raises = RuntimeError("registry bug")
    with pytest.raises(RuntimeError):
        provide(provide_request((document_entry(), spool(TEXT))))
    assert rows(sessions) == [] and not blobs.exists(SHA1)


def test_document_without_sha1_is_hashed_from_its_file(provide, registry, spool: Spool) -> None:
    content = spool(TEXT)
    unhashed = DocumentContent(content.id, content.path, content.size, "", content.content_type)
    provide(provide_request((document_entry(), unhashed)))
    assert registry.submissions[0].document_entries[0].hash == SHA1


def _age_rows(sessions: sessionmaker[Session], by: timedelta) -> None:
    with sessions.begin() as session:
        session.execute(update(RepositoryDocument).values(created=utcnow() - by))


def crashed_after_store(
    sessions: sessionmaker[Session], blobs: BlobStore, *pairs: tuple[DocumentEntry, bytes], spool
) -> list[str]:
    """What a crash after (b) leaves: pending rows and their blobs, older than the
    grace period; the uniqueIds stored."""
    request = provide_request(*((entry, spool(data)) for entry, data in pairs))
    planned, errors = plan_documents(request, (), REPOSITORY_ID)
    assert errors == []
    store_documents(sessions, blobs, planned)
    _age_rows(sessions, timedelta(hours=2))
    stored = [p.entry.unique_id for p in planned]
    states = {r.state for r in rows(sessions) if r.document_unique_id in stored}
    assert states == {DocumentState.PENDING}
    return stored  # type: ignore[return-value]


def recover_with(
    sessions: sessionmaker[Session], blobs: BlobStore, registry: ScriptedRegistry
) -> RecoveryReport:
    return recover(sessions, blobs, registry, REPOSITORY_ID, grace=timedelta(hours=1))


def retrieved(sessions: sessionmaker[Session], blobs: BlobStore, unique_id: str) -> bytes:
    request = RetrieveDocumentSetRequest((DocumentRequest(REPOSITORY_ID, unique_id),))
    response = retrieve_document_set(
        request, sessions=sessions, blobs=blobs, repository_unique_id=REPOSITORY_ID
    )
    [document] = response.documents
    return document.path.read_bytes()


def test_recovery_commits_pending_rows_the_registry_lists(
    sessions, blobs, registry, spool: Spool
) -> None:
    # a crash after the registry answered Success, before (d) marked the rows committed
    [unique_id] = crashed_after_store(sessions, blobs, (document_entry(), TEXT), spool=spool)
    registry.listed[unique_id] = REPOSITORY_ID

    report = recover_with(sessions, blobs, registry)
    assert (report.rows_committed, report.rows_removed, report.blobs_removed) == (1, 0, 0)
    assert [r.state for r in rows(sessions)] == [DocumentState.COMMITTED]
    assert retrieved(sessions, blobs, unique_id) == TEXT


def test_recovery_removes_pending_rows_the_registry_does_not_list(
    sessions, blobs, registry, spool: Spool
) -> None:
    # a crash after (b), before the registry registered the documents
    [unique_id] = crashed_after_store(sessions, blobs, (document_entry(), TEXT), spool=spool)

    report = recover_with(sessions, blobs, registry)
    assert registry.asked == [[unique_id]]
    assert (report.rows_removed, report.blobs_removed, report.rows_committed) == (1, 1, 0)
    assert rows(sessions) == [] and not blobs.exists(SHA1)


def test_recovery_settles_each_document_of_a_submission_by_the_registry_answer(
    sessions, blobs, registry, spool: Spool
) -> None:
    other = b"Radiology report\n" * 100
    listed, unlisted = crashed_after_store(
        sessions,
        blobs,
        (document_entry("Document01"), TEXT),
        (document_entry("Document02"), other),
        spool=spool,
    )
    registry.listed[listed] = REPOSITORY_ID

    report = recover_with(sessions, blobs, registry)
    assert (report.rows_committed, report.rows_removed) == (1, 1)
    assert [(r.document_unique_id, r.state) for r in rows(sessions)] == [
        (listed, DocumentState.COMMITTED)
    ]
    assert blobs.exists(SHA1) and not blobs.exists(hashlib.sha1(other).hexdigest())


def test_recovery_keeps_a_blob_another_row_uses(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    provide(provide_request((document_entry(), spool(TEXT))))  # committed, same content
    crashed_after_store(sessions, blobs, (document_entry(), TEXT), spool=spool)

    report = recover_with(sessions, blobs, registry)
    assert (report.rows_removed, report.blobs_removed) == (1, 0)
    assert [r.state for r in rows(sessions)] == [DocumentState.COMMITTED]
    assert blobs.exists(SHA1)


def test_recovery_removes_nothing_when_the_registry_cannot_tell(
    sessions, blobs, registry, spool: Spool
) -> None:
    [unique_id] = crashed_after_store(sessions, blobs, (document_entry(), TEXT), spool=spool)
    registry.unreachable = True

    report = recover_with(sessions, blobs, registry)
    assert (report.rows_removed, report.blobs_removed, report.rows_unresolved) == (0, 0, 1)
    assert [r.state for r in rows(sessions)] == [DocumentState.PENDING] and blobs.exists(SHA1)

    # the next recovery, with the registry back, settles it
    registry.unreachable = False
    registry.listed[unique_id] = REPOSITORY_ID
    assert recover_with(sessions, blobs, registry).rows_committed == 1
    assert [r.state for r in rows(sessions)] == [DocumentState.COMMITTED]


def test_recovery_leaves_young_pending_and_committed_rows_alone(
    provide, sessions, blobs, registry, spool: Spool
) -> None:
    provide(provide_request((document_entry(), spool(TEXT))))
    _age_rows(sessions, timedelta(days=30))
    young = RepositoryDocument(
        document_unique_id="1.2.3.500",
        sha1="a" * 40,
        size=1,
        mime_type="text/plain",
        state=DocumentState.PENDING,
    )
    with sessions.begin() as session:
        session.add(young)
    report = recover_with(sessions, blobs, registry)
    assert report == RecoveryReport(0, 0, 0)
    assert registry.asked == []
    assert len(rows(sessions)) == 2 and blobs.exists(SHA1)


def test_recovery_removes_orphan_temp_files(sessions, blobs, registry, tmp_path: Path) -> None:
    blobs.root.mkdir(parents=True)
    leftover = blobs.root / f"{TEMP_PREFIX}4242-crashed"
    leftover.write_bytes(b"half a document")
    two_hours_ago = time.time() - 7200
    os.utime(leftover, (two_hours_ago, two_hours_ago))
    report = recover_with(sessions, blobs, registry)
    assert report.temp_files_removed == 1 and not leftover.exists()


def test_missing_document_is_reported_once_with_the_metadata_validator(provide) -> None:
    response = provide(
        provide_request((document_entry(), None)), validate=ebxml_validator(REPOSITORY_ID)
    )
    assert codes(response).count(ErrorCode.XDSMissingDocument) == 1


def test_hash_mismatch_is_reported_once_with_the_metadata_validator(provide, spool: Spool) -> None:
    entry = document_entry(hash=hashlib.sha1(b"other").hexdigest())
    response = provide(
        provide_request((entry, spool(TEXT))), validate=ebxml_validator(REPOSITORY_ID)
    )
    about_hash = [e for e in response.errors if e.location == "Document01" and "hash" in e.context]
    assert len(about_hash) == 1


def test_spooled_hash_is_not_computed_again_when_stored(
    provide, blobs, monkeypatch: pytest.MonkeyPatch, spool: Spool
) -> None:
    # soap/ hashed the part while spooling it: storing it must not read the file again
    def reread(path: Path) -> tuple[str, int]:
        raise AssertionError(f"{path} read again for its hash")

    monkeypatch.setattr("repository.blobs.sha1_of_file", reread)
    response = provide(provide_request((document_entry(), spool(TEXT))))
    assert response.status == ResponseStatus.SUCCESS
    assert blobs.path(SHA1).read_bytes() == TEXT


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BlobStoreFull(28, "No space left on device"), ErrorCode.XDSRepositoryOutOfResources),
        (PermissionError(13, "Permission denied"), ErrorCode.XDSRepositoryError),
    ],
)
def test_storage_failure_gets_its_own_code_and_stores_nothing(
    provide, sessions, blobs, monkeypatch: pytest.MonkeyPatch, spool: Spool, error, code
) -> None:
    # ITI TF-3 Table 4.2.4.1-2: only low resources are XDSRepositoryOutOfResources
    def fail(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(BlobStore, "store_file", fail)
    response = provide(provide_request((document_entry(), spool(TEXT))))
    assert codes(response) == [code]
    assert rows(sessions) == []
