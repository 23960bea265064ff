"""How long a blob lives: while any index row, committed or pending, references it.

Content addressing (``repository.blobs``) lets identical documents share one blob, and
several processes share one blob directory and one database.  So a blob is deleted
only when no ``repository_document`` row references its SHA-1, and that is decided
under a lock per SHA-1 which ITI-41 takes too, in the transaction that inserts its
pending row (``repository.provide``):

- PostgreSQL: a transaction-scoped advisory lock keyed by ``blob:<sha1>``;
- SQLite: the database's one write lock (a write that changes nothing takes it).

ITI-41 places its blob only after its pending row is committed.  So either the
deleter sees that row and keeps the blob, or it unlinked the blob before the row
existed and the placement writes it again: no row is ever left without its blob by
ITI-86 Remove Documents (RMD 3.86.4.1.3), the undo of a refused ITI-41 (ITI TF-2
3.41.4.1.3.2 (d)), start-up recovery or ``xdsi check --repair``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from repository.blobs import BlobStore
from repository.tables import RepositoryDocument

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


def blob_lock_key(sha1: str) -> int:
    """The signed 64-bit advisory lock key of a blob (first 8 bytes of the SHA-256 of
    ``blob:<sha1>``)."""
    digest = hashlib.sha256(f"blob:{sha1}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_blobs(session: Session, sha1s: Iterable[str]) -> None:
    """Hold, until ``session``'s transaction ends, the lock of every blob of ``sha1s``
    (sorted, so two transactions never wait for each other in a cycle)."""
    wanted = sorted(set(sha1s))
    if not wanted:
        return
    if session.get_bind().dialect.name == "postgresql":
        for sha1 in wanted:
            session.execute(_ADVISORY_LOCK, {"key": blob_lock_key(sha1)})
        return
    # SQLite: one writer at a time; an UPDATE matching no row takes the write lock
    session.execute(
        update(RepositoryDocument)
        .where(RepositoryDocument.id.is_(None))
        .values(state=RepositoryDocument.state)
    )


def delete_unreferenced(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    sha1s: Iterable[str],
    *,
    modified_before: float | None = None,
) -> int:
    """Delete each blob of ``sha1s`` that no index row references (and, when given,
    last modified before ``modified_before``, a POSIX time); the count deleted.  The
    check and the unlink happen under the blobs' locks."""
    candidates = set(sha1s)
    if not candidates:
        return 0
    deleted = 0
    with sessions.begin() as session:
        lock_blobs(session, candidates)
        referenced = set(
            session.scalars(
                select(RepositoryDocument.sha1)
                .where(RepositoryDocument.sha1.in_(candidates))
                .distinct()
            )
        )
        for sha1 in sorted(candidates - referenced):
            if modified_before is not None and not _modified_before(blobs, sha1, modified_before):
                continue
            deleted += blobs.delete(sha1)
    return deleted


def _modified_before(blobs: BlobStore, sha1: str, moment: float) -> bool:
    with contextlib.suppress(FileNotFoundError):
        return blobs.path(sha1).stat().st_mtime <= moment
    return False


__all__ = ["blob_lock_key", "delete_unreferenced", "lock_blobs"]
