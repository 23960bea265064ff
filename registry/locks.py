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
- ``obj:<uuid>`` for every association end outside the submission (relationship
  targets, Folders that get a member, the targets of status updates) and every
  logicalId the submission versions;
- ``patient:<id>`` for every patient id, shared, so registrations for one patient run
  side by side while a merge (exclusive, :func:`lock_patients`) waits for them.

SQLite needs none of this: its write transactions begin with ``BEGIN IMMEDIATE``
(``registry.db``) and so run one at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.orm import Session

from ebxml.model import Submission

READ_COMMITTED = "READ COMMITTED"

_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_LOCK_SHARED = text("SELECT pg_advisory_xact_lock_shared(:key)")


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of ``name`` (first 8 bytes of its SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def lock_names(submission: Submission) -> tuple[list[str], list[str]]:
    """The (exclusive, shared) lock names of a submission, each sorted."""
    in_message = submission.object_ids()
    packages = [
        *([submission.submission_set] if submission.submission_set else []),
        *submission.folders,
    ]
    exclusive = {
        *(f"uid:{e.unique_id}" for e in submission.document_entries if e.unique_id),
        *(f"uid:{p.unique_id}" for p in packages if p.unique_id),
        *(
            f"obj:{end}"
            for a in submission.associations
            for end in (a.source, a.target)
            if end not in in_message
        ),
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


def _take(session: Session, names: Iterable[str], *, shared: bool = False) -> None:
    statement = _LOCK_SHARED if shared else _LOCK
    # one statement per key, in the caller's order: a set-returning call would not fix it
    for name in names:
        session.execute(statement, {"key": lock_key(name)})


def lock_submission(session: Session, submission: Submission) -> None:
    """Begin ``session``'s write transaction for ``submission`` (ITI-42, ITI-57): on
    PostgreSQL at READ COMMITTED holding the advisory locks of :func:`lock_names`,
    exclusive ones first.  Call it before anything else runs in the transaction."""
    if not _begin(session):
        return
    exclusive, shared = lock_names(submission)
    _take(session, exclusive)
    _take(session, shared, shared=True)


def lock_patients(session: Session, patient_ids: Iterable[str]) -> None:
    """Begin ``session``'s write transaction holding exclusive locks on ``patient_ids``
    (a merge): registrations for them wait, and it waits for those running."""
    if _begin(session):
        _take(session, sorted({f"patient:{p}" for p in patient_ids}))


__all__ = ["READ_COMMITTED", "lock_key", "lock_names", "lock_patients", "lock_submission"]
