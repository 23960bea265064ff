"""``xdsi check``: is the registry consistent with the repository, and the repository
with its blob store?

ITI TF-2 3.41.4.1.3.2 makes a Provide and Register end with the documents stored and
registered, or with neither; ITI TF-3 4.2.3.2.9 and 4.2.3.2.19 make hash and size the
SHA-1 and byte count of the document as stored.  This module looks for what breaks
that, as :class:`Finding` values:

- every index row has its blob, with the row's size and SHA-1;
- every DocumentEntry the registry lists with this repositoryUniqueId has an index
  row (and, through it, a blob) with the hash and size the registry holds - when the
  registry can be listed (:class:`RegistryInventory`, the registry of this process);
  every committed index row is listed by the registry (ITI-18 GetDocuments, so a
  remote registry is asked too);
- no blob that no index row references is older than the grace period; no blob temp
  file is, nor a spooled MTOM part (``soap.mtom``) a killed process left in the spool
  directory; no ``pending`` index row is.

:func:`repair` settles what a crash may leave: pending rows through
``repository.provide.recover`` (asking the registry first), temp files, and blobs no
row references, each only when older than the grace period (other processes sharing
the store may be writing the younger ones).  A missing or damaged blob cannot be
repaired here: it is reported.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from repository.blob_references import delete_unreferenced
from repository.blobs import BlobStore, sha1_of_file
from repository.provide import RecoveryReport, recover
from repository.registry_client import RegistryClient, RegistryNotAvailable
from repository.tables import DocumentState, RepositoryDocument, utcnow
from soap.mtom import spooled_parts

log = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)
_REPAIR_BATCH = 500  # unreferenced blobs checked and removed per locked transaction


class Problem(StrEnum):
    """What a :class:`Finding` is about."""

    BLOB_MISSING = "blob-missing"  # an index row whose blob is not in the store
    BLOB_SIZE = "blob-size"  # the blob's byte count is not the row's size
    BLOB_HASH = "blob-hash"  # the blob's SHA-1 is not its name (the row's sha1)
    NOT_IN_REPOSITORY = "not-in-repository"  # listed by the registry here, no index row
    REGISTRY_MISMATCH = "registry-mismatch"  # the registry's hash/size differ from the row
    NOT_IN_REGISTRY = "not-in-registry"  # a committed row the registry does not list
    REGISTRY_UNAVAILABLE = "registry-unavailable"  # the registry could not be asked
    UNREFERENCED_BLOB = "unreferenced-blob"  # no row references it, older than the grace
    TEMP_FILE = "temp-file"  # a blob temp file or spooled part older than the grace
    PENDING = "pending"  # a pending row older than the grace


# What ``repair`` settles; the others need a person (or the document's source).
REPAIRABLE = frozenset({Problem.UNREFERENCED_BLOB, Problem.TEMP_FILE, Problem.PENDING})


@dataclass(frozen=True, slots=True)
class Finding:
    problem: Problem
    subject: str  # a document uniqueId, a blob SHA-1 or a file path
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.problem}: {self.subject}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True, slots=True)
class ListedDocument:
    """A DocumentEntry the registry lists for this repository: uniqueId, hash, size."""

    unique_id: str
    sha1: str | None
    size: int | None


class RegistryInventory(Protocol):
    """Every DocumentEntry a registry lists for a repository, in any status.  ITI-18
    cannot list a registry without a patient id, so only a registry whose database is
    at hand offers this."""

    def listed_documents(self, repository_unique_id: str) -> Iterable[ListedDocument]: ...


class RegistryTables:
    """The inventory of the registry of this process, read from its tables."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def listed_documents(self, repository_unique_id: str) -> Iterator[ListedDocument]:
        from registry.tables import DocumentEntryRow

        with self.sessions() as session:
            rows = session.execute(
                select(
                    DocumentEntryRow.unique_id, DocumentEntryRow.hash, DocumentEntryRow.size
                ).where(DocumentEntryRow.repository_unique_id == repository_unique_id)
            ).all()
        for unique_id, sha1, size in rows:
            yield ListedDocument(unique_id, sha1.lower() if sha1 else None, size)


@dataclass(frozen=True, slots=True)
class RepairReport:
    """What :func:`repair` did."""

    recovery: RecoveryReport
    blobs_removed: int
    spooled_parts_removed: int = 0

    def __str__(self) -> str:
        r = self.recovery
        return (
            f"pending rows committed {r.rows_committed}, removed {r.rows_removed}, "
            f"left unresolved {r.rows_unresolved}; blobs removed "
            f"{r.blobs_removed + self.blobs_removed}; temp files removed {r.temp_files_removed + self.spooled_parts_removed}"
        )


@dataclass(frozen=True, slots=True)
class CheckReport:
    """The findings of a check (after the repair, when one was asked for)."""

    findings: tuple[Finding, ...]
    documents: int
    blobs: int
    repair: RepairReport | None = None
    registry_listed: bool = field(default=False)

    @property
    def consistent(self) -> bool:
        return not self.findings


@dataclass(frozen=True, slots=True)
class _Row:
    unique_id: str
    sha1: str
    size: int
    state: str
    created: datetime


def _rows(sessions: sessionmaker[Session]) -> list[_Row]:
    with sessions() as session:
        return [
            _Row(*row)
            for row in session.execute(
                select(
                    RepositoryDocument.document_unique_id,
                    RepositoryDocument.sha1,
                    RepositoryDocument.size,
                    RepositoryDocument.state,
                    RepositoryDocument.created,
                )
            )
        ]


def _aware(moment: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; they were written in UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


def _mtime(path: Path) -> float | None:
    with contextlib.suppress(FileNotFoundError):
        return path.stat().st_mtime
    return None


def _blob_findings(
    rows: Iterable[_Row], blobs: BlobStore, *, verify_hashes: bool
) -> Iterator[Finding]:
    """ITI TF-3 4.2.3.2.9, 4.2.3.2.19: each row's blob is there with its size and SHA-1."""
    verified: dict[str, tuple[str, int] | None] = {}
    for row in rows:
        if row.sha1 not in verified:
            path = blobs.path(row.sha1)
            if not path.is_file():
                verified[row.sha1] = None
            elif verify_hashes:
                verified[row.sha1] = sha1_of_file(path)
            else:
                verified[row.sha1] = (row.sha1, path.stat().st_size)
        measured = verified[row.sha1]
        if measured is None:
            yield Finding(Problem.BLOB_MISSING, row.unique_id, f"blob {row.sha1}")
            continue
        sha1, size = measured
        if size != row.size:
            yield Finding(
                Problem.BLOB_SIZE, row.unique_id, f"blob has {size} bytes, row {row.size}"
            )
        if sha1 != row.sha1:
            yield Finding(Problem.BLOB_HASH, row.unique_id, f"blob {row.sha1} has SHA-1 {sha1}")


def _inventory_findings(
    rows: dict[str, _Row], listed: Iterable[ListedDocument]
) -> tuple[list[Finding], set[str]]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for document in listed:
        seen.add(document.unique_id)
        row = rows.get(document.unique_id)
        if row is None:
            findings.append(Finding(Problem.NOT_IN_REPOSITORY, document.unique_id))
        elif (document.sha1, document.size) != (row.sha1, row.size):
            findings.append(
                Finding(
                    Problem.REGISTRY_MISMATCH,
                    document.unique_id,
                    f"registry hash {document.sha1} size {document.size}, "
                    f"repository {row.sha1} size {row.size}",
                )
            )
    return findings, seen


def _registry_findings(
    rows: dict[str, _Row],
    registry: RegistryClient,
    inventory: RegistryInventory | None,
    repository_unique_id: str,
) -> list[Finding]:
    committed = [uid for uid, row in rows.items() if row.state == DocumentState.COMMITTED]
    findings: list[Finding] = []
    if inventory is not None:
        findings, listed = _inventory_findings(
            rows, inventory.listed_documents(repository_unique_id)
        )
    else:
        try:
            listed = registry.registered_documents(committed, repository_unique_id)
        except RegistryNotAvailable as exc:
            return [Finding(Problem.REGISTRY_UNAVAILABLE, repository_unique_id, str(exc))]
    findings += [Finding(Problem.NOT_IN_REGISTRY, uid) for uid in committed if uid not in listed]
    return findings


def _old_files(paths: Iterable[Path], cutoff: datetime) -> Iterator[Path]:
    for path in paths:
        mtime = _mtime(path)
        if mtime is not None and mtime <= cutoff.timestamp():
            yield path


def _store_findings(
    rows: Iterable[_Row], blobs: BlobStore, cutoff: datetime, spool_dir: Path | None
) -> tuple[list[Finding], int]:
    referenced = {row.sha1 for row in rows}
    findings: list[Finding] = []
    count = 0
    for sha1, path in blobs.blob_files():
        count += 1
        mtime = _mtime(path)
        if sha1 not in referenced and mtime is not None and mtime <= cutoff.timestamp():
            findings.append(Finding(Problem.UNREFERENCED_BLOB, sha1))
    temps = [*blobs.temp_files(), *(spooled_parts(spool_dir) if spool_dir else ())]
    findings += [Finding(Problem.TEMP_FILE, str(temp)) for temp in _old_files(temps, cutoff)]
    return findings, count


def check(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    registry: RegistryClient,
    repository_unique_id: str,
    *,
    grace: timedelta = DEFAULT_GRACE,
    inventory: RegistryInventory | None = None,
    verify_hashes: bool = True,
    spool_dir: Path | None = None,
    now: datetime | None = None,
) -> CheckReport:
    """Every inconsistency between registry, index and blob store, as findings."""
    cutoff = (now or utcnow()) - grace
    rows = _rows(sessions)
    by_unique_id = {row.unique_id: row for row in rows}
    findings = list(_blob_findings(rows, blobs, verify_hashes=verify_hashes))
    findings += _registry_findings(by_unique_id, registry, inventory, repository_unique_id)
    store, blob_count = _store_findings(rows, blobs, cutoff, spool_dir)
    findings += store
    findings += [
        Finding(Problem.PENDING, row.unique_id, f"pending since {row.created.isoformat()}")
        for row in rows
        if row.state == DocumentState.PENDING and _aware(row.created) < cutoff
    ]
    return CheckReport(
        tuple(findings), len(rows), blob_count, registry_listed=inventory is not None
    )


def remove_unreferenced_blobs(
    sessions: sessionmaker[Session], blobs: BlobStore, *, older_than: datetime
) -> int:
    """Remove blobs no index row references, last modified before ``older_than``.
    Each is checked again and unlinked under its lock (``repository.blob_references``),
    so an ITI-41 of the same content in flight in any process keeps it."""
    moment = older_than.timestamp()
    candidates = [
        sha1
        for sha1, path in blobs.blob_files()
        if (mtime := _mtime(path)) is not None and mtime <= moment
    ]
    if not candidates:
        return 0
    with sessions() as session:
        referenced = set(session.scalars(select(RepositoryDocument.sha1).distinct()))
    unreferenced = [sha1 for sha1 in candidates if sha1 not in referenced]
    removed = 0
    # in batches: each holds its blobs' locks only while it checks and unlinks them
    for start in range(0, len(unreferenced), _REPAIR_BATCH):
        batch = unreferenced[start : start + _REPAIR_BATCH]
        removed += delete_unreferenced(sessions, blobs, batch, modified_before=moment)
    return removed


def repair(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    registry: RegistryClient,
    repository_unique_id: str,
    *,
    grace: timedelta = DEFAULT_GRACE,
    spool_dir: Path | None = None,
    now: datetime | None = None,
) -> RepairReport:
    """Settle pending rows and temp files older than ``grace`` (``recover``), then
    remove unreferenced blobs and spooled parts older than ``grace``."""
    now = now or utcnow()
    recovery = recover(sessions, blobs, registry, repository_unique_id, grace=grace, now=now)
    removed = remove_unreferenced_blobs(sessions, blobs, older_than=now - grace)
    parts = 0
    for part in _old_files(spooled_parts(spool_dir) if spool_dir else (), now - grace):
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
            parts += 1
    report = RepairReport(recovery, removed, parts)
    log.info("repair: %s", report)
    return report


def check_and_repair(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    registry: RegistryClient,
    repository_unique_id: str,
    *,
    grace: timedelta = DEFAULT_GRACE,
    inventory: RegistryInventory | None = None,
    verify_hashes: bool = True,
    spool_dir: Path | None = None,
) -> CheckReport:
    """:func:`repair`, then :func:`check`: the findings are what the repair left."""
    repaired = repair(
        sessions, blobs, registry, repository_unique_id, grace=grace, spool_dir=spool_dir
    )
    report = check(
        sessions,
        blobs,
        registry,
        repository_unique_id,
        grace=grace,
        inventory=inventory,
        verify_hashes=verify_hashes,
        spool_dir=spool_dir,
    )
    return CheckReport(
        report.findings, report.documents, report.blobs, repaired, report.registry_listed
    )


__all__ = [
    "DEFAULT_GRACE",
    "REPAIRABLE",
    "CheckReport",
    "Finding",
    "ListedDocument",
    "Problem",
    "RegistryInventory",
    "RegistryTables",
    "RepairReport",
    "check",
    "check_and_repair",
    "remove_unreferenced_blobs",
    "repair",
]
