"""registry.locks: conflicting write transactions queue on advisory locks (PostgreSQL)
or BEGIN IMMEDIATE (SQLite), so races are decided by the checks, never answered with a
serialization failure."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from registry_builders import (
    PATIENT,
    document_entry,
    has_member,
    known_patients,
    new_uuid,
    relationship,
    submission_set,
    submit,
)
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import Submission
from ebxml.vocabulary import AssociationType, AvailabilityStatus, Transaction
from registry.db import session_factory
from registry.locks import lock_key, lock_names, lock_patients, lock_submission
from registry.service import DocumentRegistry, RegistryConfig
from registry.tables import DocumentEntryRow, SubmissionSetRow
from registry.update import new_version

RACERS = 8


def no_findings(submission: Submission, transaction: Transaction) -> list[RegistryError]:
    return []


@pytest.fixture
def registry(engine: Engine, session: Session) -> DocumentRegistry:
    """A registry allowed no retry: a race answered right needs none."""
    known_patients(session)
    return DocumentRegistry(engine, RegistryConfig(retry_attempts=1), validator=no_findings)


def race(work: Callable[[int], RegistryResponse], n: int = RACERS) -> list[RegistryResponse]:
    barrier = threading.Barrier(n)

    def start(i: int) -> RegistryResponse:
        barrier.wait(timeout=10)
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(start, range(n)))


def codes(responses: list[RegistryResponse]) -> list[list[ErrorCode]]:
    return [[e.code for e in r.errors] for r in responses]


def count(registry: DocumentRegistry, table: type, *where: object) -> int:
    with registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table).where(*where))


# --- names and keys -----------------------------------------------------------------


def test_lock_names_cover_unique_ids_references_and_patients() -> None:
    entry = document_entry()
    target = "urn:uuid:00000000-0000-4000-8000-000000000001"
    sub = submit(entry, extra=(relationship(AssociationType.RPLC, entry, target),))
    exclusive, shared = lock_names(sub)
    assert exclusive == sorted(
        {
            f"uid:{entry.unique_id}",
            f"uid:{sub.submission_set.unique_id}",
            f"obj:{target}",
        }
    )
    assert shared == [f"patient:{PATIENT}"]


def test_lock_names_include_stored_folder_that_gets_a_member() -> None:
    stored_folder = "urn:uuid:00000000-0000-4000-8000-000000000002"
    entry = document_entry()
    sub = submit(entry, extra=(has_member(stored_folder, entry.entry_uuid),))
    assert f"obj:{stored_folder}" in lock_names(sub)[0]


def test_lock_names_include_logical_ids_of_new_versions() -> None:
    lid = "urn:uuid:00000000-0000-4000-8000-000000000003"
    sub = submit(document_entry(logical_id=lid))
    assert f"obj:{lid}" in lock_names(sub)[0]


def test_lock_names_name_a_stored_version_by_its_logical_id() -> None:
    entry = document_entry()
    lid = "urn:uuid:00000000-0000-4000-8000-000000000004"
    version_2 = "urn:uuid:00000000-0000-4000-8000-000000000005"
    sub = submit(entry, extra=(relationship(AssociationType.RPLC, entry, version_2),))
    exclusive = lock_names(sub, {version_2: lid})[0]
    assert f"obj:{lid}" in exclusive
    assert f"obj:{version_2}" not in exclusive


def test_document_and_submission_set_unique_ids_share_one_namespace() -> None:
    oid = "1.2.3.4.99"
    as_document = lock_names(submit(document_entry(unique_id=oid)))[0]
    as_set = lock_names(submit(ss=submission_set(unique_id=oid)))[0]
    assert f"uid:{oid}" in as_document
    assert f"uid:{oid}" in as_set


def test_lock_key_is_a_stable_signed_64_bit_integer() -> None:
    key = lock_key("uid:1.2.3")
    assert key == lock_key("uid:1.2.3") != lock_key("uid:1.2.4")
    assert -(2**63) <= key < 2**63


# --- the transaction ----------------------------------------------------------------


def test_locked_transaction_runs_at_read_committed_on_postgresql(pg_engine: Engine) -> None:
    with session_factory(pg_engine, write=True)() as session:
        lock_submission(session, submit())
        level = session.execute(text("SHOW transaction_isolation")).scalar()
    assert level == "read committed"


def test_second_transaction_on_one_unique_id_waits_for_the_first(engine: Engine) -> None:
    sub = submit()
    factory = session_factory(engine, write=True)
    first_holds = threading.Event()
    second_done = threading.Event()
    with factory() as first:
        lock_submission(first, sub)
        first.execute(select(1))  # SQLite takes its write lock with the first statement
        first_holds.set()

        def second() -> None:
            with factory() as session:
                lock_submission(session, sub)
                session.execute(select(1))
                session.commit()
            second_done.set()

        waiter = threading.Thread(target=second)
        waiter.start()
        assert not second_done.wait(0.5)
        first.commit()
    waiter.join(timeout=10)
    assert second_done.is_set()


def test_registration_waits_for_a_merge_of_its_patient(
    engine: Engine, registry: DocumentRegistry
) -> None:
    factory = session_factory(engine, write=True)
    done = threading.Event()
    with factory() as merge:
        lock_patients(merge, [PATIENT])
        merge.execute(select(1))
        waiter = threading.Thread(target=lambda: (registry.register(submit()), done.set()))
        waiter.start()
        assert not done.wait(0.5)
        merge.commit()
    waiter.join(timeout=10)
    assert done.is_set()


# --- races decided by the checks, without a retry --------------------------------------


def test_one_document_unique_id_with_different_content_registers_once(
    registry: DocumentRegistry,
) -> None:
    oid = "1.2.3.4.5.77"
    entries = [
        document_entry(unique_id=oid, hash=f"{n:040x}", size=1000 + n) for n in range(RACERS)
    ]
    responses = race(lambda n: registry.register(submit(entries[n])))
    results = sorted(codes(responses), key=len)
    assert results[0] == []
    assert all(
        r == [ErrorCode.XDSNonIdenticalHash, ErrorCode.XDSNonIdenticalSize] for r in results[1:]
    )
    assert count(registry, DocumentEntryRow, DocumentEntryRow.unique_id == oid) == 1


def test_one_document_unique_id_with_identical_content_is_accepted_every_time(
    registry: DocumentRegistry,
) -> None:
    entry = document_entry(unique_id="1.2.3.4.5.78")
    responses = race(lambda n: registry.register(submit(replace(entry, entry_uuid=new_uuid()))))
    assert codes(responses) == [[]] * RACERS


def test_one_submission_set_unique_id_registers_one_set(registry: DocumentRegistry) -> None:
    ss = submission_set()
    responses = race(lambda n: registry.register(submit(ss=replace(ss, entry_uuid=new_uuid()))))
    results = sorted(codes(responses), key=len)
    assert results == [[]] + [[ErrorCode.XDSDuplicateUniqueIdInRegistry]] * (RACERS - 1)
    assert count(registry, SubmissionSetRow, SubmissionSetRow.unique_id == ss.unique_id) == 1


def test_concurrent_replacements_let_exactly_one_succeed(registry: DocumentRegistry) -> None:
    original = document_entry()
    assert registry.register(submit(original)).ok
    replacements = [document_entry() for _ in range(RACERS)]

    def replace_original(n: int) -> RegistryResponse:
        rplc = relationship(AssociationType.RPLC, replacements[n], original.entry_uuid)
        return registry.register(submit(replacements[n], extra=(rplc,)))

    results = sorted(codes(race(replace_original)), key=len)
    assert results == [[]] + [[ErrorCode.XDSRegistryDeprecatedDocumentError]] * (RACERS - 1)
    approved = DocumentEntryRow.status == AvailabilityStatus.APPROVED
    assert count(registry, DocumentEntryRow, approved) == 1


def test_unrelated_registrations_for_one_patient_all_succeed(
    registry: DocumentRegistry,
) -> None:
    responses = race(lambda n: registry.register(submit()), n=2 * RACERS)
    assert codes(responses) == [[]] * (2 * RACERS)
    assert count(registry, SubmissionSetRow) == 2 * RACERS


# --- one logical document, whichever version is current ------------------------------

VERSION_RACE_ROUNDS = 12


def test_rplc_and_new_version_of_a_later_version_serialise_on_its_logical_id(
    registry: DocumentRegistry,
) -> None:
    """An RPLC of version 2 (ITI TF-3 4.2.2) and an ITI-57 version 3 of the same logical
    document (ITI TF-2 3.57.4.1.3.3.1) queue on one lock: never two Approved documents.
    ITI-57 first: the RPLC target is Deprecated (XDSRegistryDeprecatedDocumentError).
    RPLC first: the update of the now Deprecated version 2 is accepted and the new
    version takes its status, Deprecated (3.57.4.1.3.3.1)."""
    for _ in range(VERSION_RACE_ROUNDS):
        original = document_entry()
        assert registry.register(submit(original)).ok
        lid = original.entry_uuid
        second = replace(original, logical_id=lid, title="second version")
        assert registry.update(new_version(second, "1", submission_set())).ok
        with registry.sessions() as session:
            current = session.scalar(
                select(DocumentEntryRow.entry_uuid).where(
                    DocumentEntryRow.logical_id == lid, DocumentEntryRow.version == "2"
                )
            )
        replacement = document_entry()
        rplc = submit(
            replacement, extra=(relationship(AssociationType.RPLC, replacement, current),)
        )
        third = new_version(replace(second, title="third version"), "2", submission_set())

        def act(n: int, rplc: Submission = rplc, third: Submission = third) -> RegistryResponse:
            return registry.register(rplc) if n == 0 else registry.update(third)

        replaced, updated = race(act, n=2)
        assert [e.code for e in replaced.errors] in (
            [],
            [ErrorCode.XDSRegistryDeprecatedDocumentError],
        )
        assert updated.ok, codes([updated])
        approved = DocumentEntryRow.status == AvailabilityStatus.APPROVED
        chain = DocumentEntryRow.logical_id.in_([lid, replacement.entry_uuid])
        assert count(registry, DocumentEntryRow, chain, approved) == 1
