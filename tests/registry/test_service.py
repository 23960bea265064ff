"""DocumentRegistry: validate, register in one unit of work, publish events, and
answer a lost uniqueness race from what the winner stored."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace

import pytest
from registry_builders import document_entry, known_patients, relationship, submission_set, submit
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import Submission
from ebxml.vocabulary import AssociationType, ResponseStatus, Transaction
from registry import register as register_module
from registry.db import make_engine
from registry.service import DocumentRegistry, RegistryEvent, RegistryEventKind
from registry.tables import DocumentEntryRow, SubmissionSetRow


def no_findings(submission: Submission, transaction: Transaction) -> list[RegistryError]:
    return []


@pytest.fixture
def registry(engine: Engine, session: Session) -> DocumentRegistry:
    known_patients(session)
    return DocumentRegistry(engine, validator=no_findings)


def count(registry: DocumentRegistry, table: type) -> int:
    with registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def test_register_stores_the_submission(registry: DocumentRegistry) -> None:
    assert registry.register(submit()).status == ResponseStatus.SUCCESS
    assert count(registry, DocumentEntryRow) == 1


def test_refused_submission_is_rolled_back(registry: DocumentRegistry) -> None:
    first = submit()
    registry.register(first)
    response = registry.register(
        submit(ss=submission_set(unique_id=first.submission_set.unique_id))
    )
    assert [e.code for e in response.errors] == [ErrorCode.XDSDuplicateUniqueIdInRegistry]
    assert count(registry, DocumentEntryRow) == 1


def test_validation_errors_stop_before_the_database(engine: Engine, session: Session) -> None:
    known_patients(session)
    seen = []

    def validator(submission: Submission, transaction: Transaction) -> list[RegistryError]:
        seen.append(transaction)
        return [RegistryError(ErrorCode.XDSRegistryMetadataError, "bad")]

    response = DocumentRegistry(engine, validator=validator).register(submit())
    assert response.status == ResponseStatus.FAILURE
    assert seen == [Transaction.ITI42]
    with session.bind.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(DocumentEntryRow)) == 0


def test_validation_warnings_are_returned_with_success(engine: Engine, session: Session) -> None:
    known_patients(session)
    warning = RegistryError.warning(ErrorCode.XDSExtraMetadataNotSaved, "extra")
    registry = DocumentRegistry(engine, validator=lambda s, t: [warning])
    response = registry.register(submit())
    assert response.status == ResponseStatus.SUCCESS
    assert response.errors == (warning,)


def test_database_error_is_xds_registry_error_without_internals(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")
    response = DocumentRegistry(engine, validator=no_findings).register(submit())
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryError]
    assert "table" not in response.errors[0].context.lower()


def test_register_publishes_submitted_event(registry: DocumentRegistry) -> None:
    events: list[RegistryEvent] = []
    registry.subscribe(events.append)
    sub = submit()
    registry.register(sub)
    assert [e.kind for e in events] == [RegistryEventKind.SUBMITTED]
    assert set(events[0].entry_uuids) == sub.object_ids()
    assert events[0].patient_id == sub.submission_set.patient_id


def test_refused_submission_publishes_nothing(registry: DocumentRegistry) -> None:
    events: list[RegistryEvent] = []
    registry.subscribe(events.append)
    registry.register(submit(patient="UNKNOWN^^^&1.2.3&ISO"))
    assert events == []


def test_replacement_publishes_deprecated_event(registry: DocumentRegistry) -> None:
    original = document_entry()
    registry.register(submit(original))
    events: list[RegistryEvent] = []
    registry.subscribe(events.append)
    replacement = document_entry()
    registry.register(
        submit(
            replacement,
            extra=(relationship(AssociationType.RPLC, replacement, original.entry_uuid),),
        )
    )
    assert events[-1] == RegistryEvent(
        RegistryEventKind.DEPRECATED, (original.entry_uuid,), original.patient_id
    )


def test_failing_subscriber_does_not_fail_registration(registry: DocumentRegistry) -> None:
    def broken(event: RegistryEvent) -> None:
        raise RuntimeError("subscriber down")

    registry.subscribe(broken)
    assert registry.register(submit()).ok
    assert count(registry, DocumentEntryRow) == 1


def test_transact_commits_work(registry: DocumentRegistry) -> None:
    from registry.patients import is_known, register_patient

    registry.transact(lambda s: register_patient(s, "NEW^^^&1.2.3&ISO"))
    with registry.sessions() as session:
        assert is_known(session, "NEW^^^&1.2.3&ISO")


def test_race_on_submission_set_unique_id_has_one_winner(
    registry: DocumentRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two registrations of one SubmissionSet uniqueId, both past their checks before
    either stores: one is stored, the other answered XDSDuplicateUniqueIdInRegistry."""
    barrier = threading.Barrier(2)
    original_store = register_module._store
    attempts: list[int] = []

    def store_after_both_checked(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        attempts.append(1)
        # BEGIN IMMEDIATE (SQLite) and the uniqueId lock (PostgreSQL, registry.locks)
        # serialise the two: the wait times out
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1)
        return original_store(*args, **kwargs)

    monkeypatch.setattr(register_module, "_store", store_after_both_checked)
    ss = submission_set()
    submissions = [submit(ss=replace(ss, entry_uuid=f"{ss.entry_uuid[:-1]}{i}")) for i in (0, 1)]
    responses = [None, None]

    def run(i: int) -> None:
        responses[i] = registry.register(submissions[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    codes = sorted((tuple(e.code for e in r.errors) for r in responses), key=len)
    assert codes == [(), (ErrorCode.XDSDuplicateUniqueIdInRegistry,)]
    assert count(registry, SubmissionSetRow) == 1
    assert count(registry, DocumentEntryRow) == 1
    assert len(attempts) == 1  # the loser waited, then its checks saw the winner


def test_register_with_standard_validation_accepts_a_valid_set(
    engine: Engine, session: Session
) -> None:
    known_patients(session)
    assert DocumentRegistry(engine).register(submit()).errors == ()


def test_register_with_standard_validation_refuses_invalid_metadata(
    engine: Engine, session: Session
) -> None:
    known_patients(session)
    response = DocumentRegistry(engine).register(submit(document_entry(language_code=None)))
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryMetadataError]
