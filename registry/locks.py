"""Write transactions that touch the same registry objects queue instead of aborting.

A registration's checks (ITI TF-2 3.42.4.1.3: a DocumentEntry uniqueId only with the
same hash and size, a SubmissionSet or Folder uniqueId once; ITI TF-3 4.2.2.2: a
relationship's target still Approved) read stored state and then write.  On
PostgreSQL the write transaction takes, before any check, a transaction-scoped
advisory lock on every name the submission touches, in sorted order (so two
transactions never wait for each other in a cycle), and then runs at READ COMMITTED:
each check reads what the transactions that held the lock before it committed.
Conflicting submissions wait for each other; unrelated ones never do.  The unique
constraints stay as the last line of defence: a violation is retried by
``registry.uow.transact``, and the re-run checks answer it with the XDS error.

Names locked (:func:`lock_names`):

- ``uid:<uniqueId>`` for every DocumentEntry, SubmissionSet and Folder uniqueId (one
  namespace, as a SubmissionSet uniqueId must not be any stored uniqueId);
- ``obj:<logicalId>`` for every association end outside the submission (relationship
  targets, Folders that get a member, the targets of status updates) and every
  logicalId the submission versions.  A stored DocumentEntry or Folder is locked by
  its logicalId, whichever version the end names: an RPLC of version 2 (ITI TF-3
  4.2.2) and an ITI-57 version 3 of the same document (ITI TF-2 3.57.4.1.3.3.1) must
  queue on one lock.  An initial version's logicalId is its entryUUID, so an end not
  (yet) stored is locked by its UUID and re-resolved once the locks are held;
- ``patient:<id>`` for every patient id, shared, so registrations for one patient run
  side by side while a merge (exclusive, :func:`lock_patients`) waits for them.

SQLite needs none of this: its write transactions begin with ``BEGIN IMMEDIATE``
(``registry.db``) and so run one at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from ebxml.model import Submission
from registry.tables import DocumentEntryRow, FolderRow

READ_COMMITTED = "READ COMMITTED"

_LOCK = "pg_advisory_xact_lock"
_LOCK_SHARED = "pg_advisory_xact_lock_shared"
_LOCKS_PER_STATEMENT = 1000
# SET LOCAL plan_cache_mode (PostgreSQL 15 20.7.2) as a call in the lock statement: the
# rest of the transaction runs the driver's prepared statements on their generic plans
_GENERIC_PLANS = "set_config('plan_cache_mode', 'force_generic_plan', true)"


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def outside_ends(submission: Submission) -> set[str]:
    """The association ends of ``submission`` that are not in it (stored objects)."""
    in_message = submission.object_ids()
    return {
        end
        for a in submission.associations
        for end in (a.source, a.target)
        if end not in in_message
    }


def logical_ids(session: Session, entry_uuids: Iterable[str]) -> dict[str, str]:
    """entryUUID -> logicalId of the stored DocumentEntries and Folders among
    ``entry_uuids``.  A version's logicalId never changes, so reading it before the
    locks are held is safe."""
    wanted = set(entry_uuids)
    found: dict[str, str] = {}
    if not wanted:
        return found
    for table in (DocumentEntryRow, FolderRow):
        rows = session.execute(
            select(table.entry_uuid, table.logical_id).where(table.entry_uuid.in_(wanted))
        )
        found.update({uuid: lid for uuid, lid in rows if lid})
    return found


def lock_names(
    submission: Submission, logical_id_of: Mapping[str, str] | None = None
) -> tuple[list[str], list[str]]:
    """The (exclusive, shared) lock names of a submission, each sorted; an outside end
    found in ``logical_id_of`` (:func:`logical_ids`) is named by its logicalId."""
    resolve = logical_id_of or {}
    packages = [
        *([submission.submission_set] if submission.submission_set else []),
        *submission.folders,
    ]
    exclusive = {
        *(f"uid:{e.unique_id}" for e in submission.document_entries if e.unique_id),
        *(f"uid:{p.unique_id}" for p in packages if p.unique_id),
        *(f"obj:{resolve.get(end, end)}" for end in outside_ends(submission)),
        *(
            f"obj:{o.logical_id}"
            for o in (*submission.document_entries, *submission.folders)
            if o.logical_id
        ),
    }
    shared = {
        f"patient:{o.patient_id}" for o in (*packages, *submission.document_entries) if o.patient_id
    }
    return sorted(exclusive), sorted(shared)


def _begin(session: Session) -> bool:
    """Start ``session``'s transaction at READ COMMITTED on PostgreSQL; False elsewhere.
    A transaction already begun keeps its isolation level (the locks still queue it)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    if not session.in_transaction():
        session.connection(execution_options={"isolation_level": READ_COMMITTED})
    return True


# A statement for the driver (psycopg's %(name)s placeholders) and its parameters
DriverQuery = tuple[str, Mapping[str, Any]]


def _lock_calls(names: Sequence[str], shared: Sequence[str]) -> list[tuple[str, str]]:
    return [*((_LOCK, n) for n in names), *((_LOCK_SHARED, n) for n in shared)]


def _take_then(
    session: Session,
    names: Sequence[str],
    shared: Sequence[str],
    then: DriverQuery,
    generic_plans: bool = False,
) -> list[tuple[Any, ...]]:
    """Take the locks as :func:`_take` does, and run ``then`` right after them, both in
    one round trip (psycopg pipeline mode, PostgreSQL 15 34.5): the server runs
    ``then`` only once the locks are held, and at READ COMMITTED its snapshot is taken
    then, so it reads what every earlier holder committed.  Returns ``then``'s rows."""
    calls = _lock_calls(names, shared)
    if len(calls) > _LOCKS_PER_STATEMENT:
        _take(session, names, shared, generic_plans)
        return list(session.connection().exec_driver_sql(*then))
    targets = [f"{f}(%(k{i})s)" for i, (f, _) in enumerate(calls)]
    lock_sql = "SELECT " + ", ".join([_GENERIC_PLANS, *targets] if generic_plans else targets)
    lock_params = {f"k{i}": lock_key(n) for i, (_, n) in enumerate(calls)}
    driver = session.connection().connection.driver_connection
    try:
        with driver.cursor() as locks, driver.cursor() as cursor:
            with driver.pipeline():  # both sent, then the results of both read
                locks.execute(lock_sql, lock_params)
                cursor.execute(*then)
            return cursor.fetchall()
    except psycopg.Error as error:
        # as SQLAlchemy would raise it, so registry.uow retries a deadlock
        raise DBAPIError.instance(f"{lock_sql}; {then[0]}", None, error, psycopg.Error) from error


def _take(
    session: Session, names: Sequence[str], shared: Sequence[str] = (), generic_plans: bool = False
) -> None:
    """Take the exclusive locks ``names``, then the shared ones ``shared``, in the order
    given, one round trip per 1000: a SELECT whose target list calls the lock functions
    (PostgreSQL evaluates a target list from left to right; a set-returning call would
    fix no order).  Were the order ever lost, two such transactions would deadlock,
    which PostgreSQL detects and ``registry.uow.transact`` retries."""
    calls = _lock_calls(names, shared)
    connection = session.connection()
    if generic_plans:
        connection.execute(text(f"SELECT {_GENERIC_PLANS}"))
    # a target list holds at most 1664 entries (PostgreSQL MaxTupleAttributeNumber)
    for start in range(0, len(calls), _LOCKS_PER_STATEMENT):
        batch = calls[start : start + _LOCKS_PER_STATEMENT]
        sql = "SELECT " + ", ".join(f"{function}(:k{i})" for i, (function, _) in enumerate(batch))
        connection.execute(text(sql), {f"k{i}": lock_key(n) for i, (_, n) in enumerate(batch)})


def lock_submission(
    session: Session,
    submission: Submission,
    then: DriverQuery | None = None,
    generic_plans: bool = False,
) -> list[tuple[Any, ...]] | None:
    """Begin ``session``'s write transaction for ``submission`` (ITI-42, ITI-57): on
    PostgreSQL at READ COMMITTED holding the advisory locks of :func:`lock_names`,
    exclusive ones first.  Call it before anything else runs in the transaction.

    ``then``, a PostgreSQL statement, runs once the locks are held (in the same round
    trip when it can) and its rows are returned; None on other databases, where the
    caller reads for itself.  ``generic_plans``: the rest of the transaction runs
    prepared statements on their generic plans (``plan_cache_mode``), for statements
    whose best plan does not depend on their values."""
    if not _begin(session):
        return None
    ends = outside_ends(submission)
    resolved = logical_ids(session, ends)
    exclusive, shared = lock_names(submission, resolved)
    unresolved = ends - set(resolved)
    if not unresolved:  # every end resolved (or none): all locks in one round trip
        if then is not None:
            return _take_then(session, exclusive, shared, then, generic_plans)
        _take(session, exclusive, shared, generic_plans)
        return None
    _take(session, exclusive, generic_plans=generic_plans)
    # an end a transaction committed between the read and the locks: its logicalId
    # too (out of order: a deadlock this rare is detected and retried, registry.uow)
    late = logical_ids(session, unresolved)
    _take(session, sorted({f"obj:{lid}" for lid in late.values()} - set(exclusive)), shared)
    return None if then is None else list(session.connection().exec_driver_sql(*then))


def lock_patients(session: Session, patient_ids: Iterable[str]) -> None:
    """Begin ``session``'s write transaction holding exclusive locks on ``patient_ids``
    (a merge): registrations for them wait, and it waits for those running."""
    if _begin(session):
        _take(session, sorted({f"patient:{p}" for p in patient_ids}))


__all__ = [
    "READ_COMMITTED",
    "DriverQuery",
    "lock_key",
    "lock_names",
    "lock_patients",
    "lock_submission",
    "logical_ids",
    "outside_ends",
]
