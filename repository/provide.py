"""ITI-41 Provide and Register Document Set-b at the Document Repository.

ITI TF-2 3.41.4.1.3.2 fixes the order, followed here step by step:

(a) validate: the metadata (``ebxml.validate``) and the documents against it;
(b) make the documents durable and retrievable (blob stored, index row committed as
    ``pending``) and set hash, size and repositoryUniqueId on each DocumentEntry;
(c) send ITI-42 Register Document Set-b to the registry (``RegistryClient``);
(d) if the registry fails, remove what this transaction stored, answer its errors;
    if it succeeds, mark the index rows ``committed``.

:func:`recover` is the start-up pass for what a crash left between (b) and (d): it asks
the registry which pending documents it lists before it removes any.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError, TransactionAborted
from ebxml.messages import DocumentContent, ProvideAndRegisterRequest, RegistryResponse
from ebxml.model import DocumentEntry, Submission
from ebxml.validate import validate_provide, validate_submission
from ebxml.vocabulary import DOC_ENTRY_STABLE, ResponseStatus, Transaction
from repository.blob_references import delete_unreferenced, lock_blobs
from repository.blobs import BlobIntegrityError, BlobStore, BlobStoreFull, sha1_of_file
from repository.registry_client import RegistryClient, RegistryNotAvailable
from repository.tables import DocumentState, RepositoryDocument, utcnow

log = logging.getLogger(__name__)

DEFAULT_MIME_TYPE = "application/octet-stream"

Validator = Callable[[ProvideAndRegisterRequest, Sequence[str]], list[RegistryError]]


def ebxml_validator(repository_unique_id: str) -> Validator:
    """The metadata validation of ``ebxml.validate`` for ITI-41 at this repository."""

    def validate(
        request: ProvideAndRegisterRequest, unreferenced_cids: Sequence[str]
    ) -> list[RegistryError]:
        return [
            *validate_submission(
                request.submission,
                Transaction.ITI41,
                default_code=ErrorCode.XDSRepositoryMetadataError,
                repository_unique_id=repository_unique_id,
            ),
            *validate_provide(request, unreferenced_cids),
        ]

    return validate


# --- (a) the documents against their metadata ------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedDocument:
    """One Document to store, matched to its DocumentEntry, with its computed hash/size."""

    entry: DocumentEntry
    content: DocumentContent
    sha1: str
    size: int

    @property
    def mime_type(self) -> str:
        return self.entry.mime_type or self.content.content_type or DEFAULT_MIME_TYPE


def _entry_key(submission: Submission, document_id: str) -> str:
    # Document/@id is the ExtrinsicObject id as sent; parsing resolved symbolic ids
    return submission.symbolic_ids.get(document_id, document_id)


def _location(submission: Submission, entry_uuid: str) -> str:
    sent = {uuid: symbolic for symbolic, uuid in submission.symbolic_ids.items()}
    return sent.get(entry_uuid, entry_uuid)


def _measured(content: DocumentContent) -> tuple[str, int]:
    """The SHA-1 and size of a document as received (soap/ hashes while spooling)."""
    if content.sha1 and content.path is not None:
        return content.sha1.lower(), content.size
    assert content.path is not None
    return sha1_of_file(content.path)


def _metadata_checks(
    entry: DocumentEntry, sha1: str, size: int, repository_unique_id: str, location: str
) -> list[RegistryError]:
    """ITI TF-2 3.41.4.1.3.2: hash and size, if sent, must be the document's; a
    repositoryUniqueId, if sent, must be this repository's."""
    code = ErrorCode.XDSRepositoryMetadataError
    errors = []
    if entry.hash is not None and entry.hash.lower() != sha1:
        errors.append(
            RegistryError(
                code, f"hash {entry.hash} does not match the document's SHA-1 {sha1}", location
            )
        )
    if entry.size_text is not None:
        errors.append(RegistryError(code, f"size {entry.size_text!r} is not an integer", location))
    elif entry.size is not None and entry.size != size:
        errors.append(
            RegistryError(
                code, f"size {entry.size} does not match the document's size {size}", location
            )
        )
    if (
        entry.repository_unique_id is not None
        and entry.repository_unique_id != repository_unique_id
    ):
        errors.append(
            RegistryError(
                code,
                f"repositoryUniqueId {entry.repository_unique_id} is not this repository's ({repository_unique_id})",
                location,
            )
        )
    return errors


def plan_documents(
    request: ProvideAndRegisterRequest,
    unreferenced_cids: Sequence[str],
    repository_unique_id: str,
) -> tuple[list[PlannedDocument], list[RegistryError]]:
    """Match every Document to its DocumentEntry and check them against each other."""
    submission = request.submission
    entries = {e.entry_uuid: e for e in submission.document_entries}
    contents: dict[str, DocumentContent] = {}
    errors: list[RegistryError] = []

    for content in request.documents:
        key = _entry_key(submission, content.id)
        name = _location(submission, key)
        if key in contents:
            errors.append(
                RegistryError(
                    ErrorCode.XDSRepositoryMetadataError, f"Document {name} sent twice", name
                )
            )
        elif key not in entries:
            # ITI TF-2 3.41.4.1.3.2: a Document without a DocumentEntry
            errors.append(
                RegistryError(
                    ErrorCode.XDSMissingDocumentMetadata,
                    f"Document {name} has no DocumentEntry",
                    name,
                )
            )
        else:
            contents[key] = content
    for cid in dict.fromkeys((*unreferenced_cids, *request.unreferenced_attachments)):
        errors.append(
            RegistryError(
                ErrorCode.XDSMissingDocumentMetadata,
                f"MIME part {cid} is not referenced by any Document",
                cid,
            )
        )

    planned: list[PlannedDocument] = []
    seen_unique_ids: set[str] = set()
    for entry in submission.document_entries:
        location = _location(submission, entry.entry_uuid)
        if entry.unique_id is not None:
            if entry.unique_id in seen_unique_ids:
                errors.append(
                    RegistryError(
                        ErrorCode.XDSRepositoryDuplicateUniqueIdInMessage,
                        f"uniqueId {entry.unique_id} is used by more than one DocumentEntry",
                        location,
                    )
                )
            seen_unique_ids.add(entry.unique_id)
        if entry.object_type != DOC_ENTRY_STABLE:
            continue
        content = contents.get(entry.entry_uuid)
        if content is None or content.path is None:
            # ITI TF-2 3.41.4.1.3.2: every stable DocumentEntry needs its Document
            errors.append(
                RegistryError(
                    ErrorCode.XDSMissingDocument,
                    f"DocumentEntry {location} has no Document",
                    location,
                )
            )
            continue
        if entry.unique_id is None:
            errors.append(
                RegistryError(
                    ErrorCode.XDSRepositoryMetadataError,
                    f"DocumentEntry {location} has no uniqueId",
                    location,
                )
            )
            continue
        sha1, size = _measured(content)
        errors += _metadata_checks(entry, sha1, size, repository_unique_id, location)
        planned.append(PlannedDocument(entry, content, sha1, size))
    return planned, errors


def _merged(
    submission: Submission,
    metadata_errors: Sequence[RegistryError],
    document_errors: Sequence[RegistryError],
) -> list[RegistryError]:
    """The metadata validator's findings, then those of the document checks here that it
    did not already report (same code about the same object, by symbolic id or UUID)."""
    reported = Counter((e.code, _entry_key(submission, e.location)) for e in metadata_errors)
    merged = list(metadata_errors)
    for error in document_errors:
        key = (error.code, _entry_key(submission, error.location))
        if reported[key] > 0:
            reported[key] -= 1
        else:
            merged.append(error)
    return merged


# --- (b) durable and retrievable ------------------------------------------------------


@dataclass(slots=True)
class StoredSet:
    """What this transaction added: index rows and the blobs they reference."""

    row_ids: list[int]
    blobs: set[str]
    documents: list[PlannedDocument] = field(default_factory=list)


def _insert_rows(
    sessions: sessionmaker[Session], planned: Sequence[PlannedDocument]
) -> tuple[list[int], list[PlannedDocument]]:
    """Insert this transaction's own pending row per document, in one database
    transaction.  A uniqueId already committed is left alone: identical content is a
    resubmission the registry accepts, different content one it refuses
    (XDSNonIdenticalHash/Size, ITI TF-2 3.42.4.1.3.3.1).  Pending rows of concurrent
    submissions are not looked at: which of them is registered is the registry's call.

    The rows are inserted holding the blobs' locks (``repository.blob_references``), so
    a concurrent removal of another document with the same content either sees them
    and keeps the blob, or deleted the blob before them and ``store_documents`` writes
    it again."""
    with sessions.begin() as session:
        lock_blobs(session, (p.sha1 for p in planned))
        committed = {
            row.document_unique_id: row
            for row in session.scalars(
                select(RepositoryDocument).where(
                    RepositoryDocument.document_unique_id.in_([p.entry.unique_id for p in planned]),
                    RepositoryDocument.state == DocumentState.COMMITTED,
                )
            )
        }
        rows: list[RepositoryDocument] = []
        new: list[PlannedDocument] = []
        for p in planned:
            known = committed.get(p.entry.unique_id)  # type: ignore[arg-type]
            if known is not None:
                if (known.sha1, known.size) != (p.sha1, p.size):
                    log.info(
                        "uniqueId %s already stored with other content; left to the registry",
                        p.entry.unique_id,
                    )
                continue
            row = RepositoryDocument(
                document_unique_id=p.entry.unique_id,
                sha1=p.sha1,
                size=p.size,
                mime_type=p.mime_type,
                state=DocumentState.PENDING,
                created=utcnow(),
            )
            session.add(row)
            rows.append(row)
            new.append(p)
        session.flush()
        return [row.id for row in rows], new


def _place_blobs(blobs: BlobStore, planned: Iterable[PlannedDocument]) -> None:
    """Write each document's blob unless it is there (content addressing); a blob that
    vanished since it was last seen is written again from the spooled part."""
    for p in planned:
        assert p.content.path is not None
        # the SHA-1 was computed here (soap/ while spooling, or _measured): a second
        # pass over the file would only read it again
        blobs.store_file(p.content.path, sha1=p.sha1, size=p.size, verify_hash=False)


def store_documents(
    sessions: sessionmaker[Session], blobs: BlobStore, planned: Sequence[PlannedDocument]
) -> StoredSet:
    """Index rows first (pending, committed), then the blobs: a row whose blob is not
    there yet is not retrievable, and recovery removes it after a crash.  Once its
    pending row is committed, no other transaction deletes a blob (see
    ``repository.blob_references``)."""
    row_ids, new = _insert_rows(sessions, planned)
    stored = StoredSet(row_ids, {p.sha1 for p in new}, new)
    try:
        _place_blobs(blobs, new)
    except BaseException:
        remove_stored(sessions, blobs, stored)
        raise
    return stored


def _restore_missing(blobs: BlobStore, stored: StoredSet) -> None:
    """Before the rows are committed: every blob is there, else it is written again
    from the spooled part (a blob removed behind the store's back, by hand or by a
    process not taking the blobs' locks, must not leave a committed row without it)."""
    missing = [p for p in stored.documents if not blobs.exists(p.sha1)]
    if missing:
        log.warning(
            "%d blobs vanished before their rows were committed; stored again", len(missing)
        )
        _place_blobs(blobs, missing)


def remove_stored(sessions: sessionmaker[Session], blobs: BlobStore, stored: StoredSet) -> None:
    """ITI TF-2 3.41.4.1.3.2 (d): undo (b) - this transaction's rows, then its blobs that
    no row references any more (a blob shared with another document stays, committed
    or pending, in this process or another)."""
    with sessions.begin() as session:
        if stored.row_ids:
            session.execute(
                delete(RepositoryDocument).where(
                    RepositoryDocument.id.in_(stored.row_ids),
                    RepositoryDocument.state == DocumentState.PENDING,
                )
            )
    delete_unreferenced(sessions, blobs, stored.blobs)


PROMOTE_ATTEMPTS = 5


def _promote_once(session: Session, row_ids: Sequence[int]) -> list[int]:
    """Mark this transaction's rows committed, unless their uniqueId already has a
    committed row (a concurrent identical submission promoted first): then the own
    row goes and the committed one serves the document.  Returns the ids removed."""
    own = list(
        session.scalars(
            select(RepositoryDocument).where(
                RepositoryDocument.id.in_(row_ids),
                RepositoryDocument.state == DocumentState.PENDING,
            )
        )
    )
    committed = {
        row.document_unique_id: row
        for row in session.scalars(
            select(RepositoryDocument).where(
                RepositoryDocument.document_unique_id.in_([r.document_unique_id for r in own]),
                RepositoryDocument.state == DocumentState.COMMITTED,
            )
        )
    }
    dropped = []
    for row in own:
        served = committed.get(row.document_unique_id)
        if served is None:
            row.state = DocumentState.COMMITTED
            continue
        if (served.sha1, served.size) != (row.sha1, row.size):
            log.error(
                "registry accepted uniqueId %s with SHA-1 %s, but the repository holds "
                "it committed with SHA-1 %s; the stored document is kept",
                row.document_unique_id,
                row.sha1,
                served.sha1,
            )
        session.delete(row)
        dropped.append(row.id)
    session.flush()
    return dropped


def _mark_committed(sessions: sessionmaker[Session], blobs: BlobStore, stored: StoredSet) -> None:
    """ITI TF-2 3.41.4.1.3.2 (d) after Success: this transaction's rows become
    ``committed``; never another transaction's.  Two identical submissions that both
    succeeded race here: the committed-row index lets one win, the other re-reads."""
    if not stored.row_ids:
        return
    for attempt in range(1, PROMOTE_ATTEMPTS + 1):
        try:
            with sessions.begin() as session:
                dropped = _promote_once(session, stored.row_ids)
            break
        except IntegrityError:
            if attempt == PROMOTE_ATTEMPTS:
                raise
    if dropped:
        delete_unreferenced(sessions, blobs, stored.blobs)


def with_repository_attributes(
    submission: Submission, planned: Sequence[PlannedDocument], repository_unique_id: str
) -> Submission:
    """ITI TF-2 3.41.4.1.3.2: the repository sets hash, size and repositoryUniqueId."""
    by_uuid = {p.entry.entry_uuid: p for p in planned}
    entries = tuple(
        replace(
            e, hash=p.sha1, size=p.size, size_text=None, repository_unique_id=repository_unique_id
        )
        if (p := by_uuid.get(e.entry_uuid)) is not None
        else e
        for e in submission.document_entries
    )
    return replace(submission, document_entries=entries)


# --- (c), (d) -------------------------------------------------------------------------


def _register(registry: RegistryClient, submission: Submission) -> RegistryResponse:
    try:
        return registry.register(submission)
    except TransactionAborted as aborted:
        return RegistryResponse.from_errors(aborted.errors)
    except ConnectionError as exc:
        return RegistryResponse.from_errors(
            [RegistryError(ErrorCode.XDSRegistryNotAvailable, f"registry not reachable: {exc}")]
        )


def provide_and_register(
    request: ProvideAndRegisterRequest,
    unreferenced_cids: Sequence[str],
    *,
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    registry: RegistryClient,
    repository_unique_id: str,
    validate: Validator | None = None,
) -> RegistryResponse:
    """ITI-41 at the Document Repository; returns the rs:RegistryResponse to answer."""
    # (a)
    planned, document_errors = plan_documents(request, unreferenced_cids, repository_unique_id)
    metadata_errors = validate(request, unreferenced_cids) if validate is not None else []
    findings = _merged(request.submission, metadata_errors, document_errors)
    if any(e.is_error for e in findings):
        return RegistryResponse.from_errors(findings)
    warnings = tuple(findings)

    # (b)
    try:
        stored = store_documents(sessions, blobs, planned)
    except BlobIntegrityError as exc:
        return RegistryResponse.from_errors(
            [
                RegistryError(
                    ErrorCode.XDSRepositoryError, f"document content changed while stored: {exc}"
                )
            ]
        )
    except BlobStoreFull as exc:
        # ITI TF-3 Table 4.2.4.1-2: resources are low
        return RegistryResponse.from_errors(
            [
                RegistryError(
                    ErrorCode.XDSRepositoryOutOfResources,
                    f"documents could not be stored: {exc.strerror or exc}",
                )
            ]
        )
    except OSError as exc:
        log.exception("storing documents failed")
        return RegistryResponse.from_errors(
            [
                RegistryError(
                    ErrorCode.XDSRepositoryError,
                    f"documents could not be stored: {exc.strerror or exc}",
                )
            ]
        )
    submission = with_repository_attributes(request.submission, planned, repository_unique_id)

    # (c)
    try:
        response = _register(registry, submission)
    except BaseException:
        remove_stored(sessions, blobs, stored)
        raise

    # (d) the registry's errors are answered as the registry gave them
    if response.status == ResponseStatus.FAILURE:
        remove_stored(sessions, blobs, stored)
        return response
    _restore_missing(blobs, stored)
    _mark_committed(sessions, blobs, stored)
    return RegistryResponse(response.status, warnings + response.errors)


# --- start-up recovery ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover` did: stale pending rows removed (with their blobs), marked
    committed because the registry lists them, or left for the next recovery because
    the registry could not be asked."""

    rows_removed: int
    blobs_removed: int
    temp_files_removed: int
    rows_committed: int = 0
    rows_unresolved: int = 0


@dataclass(frozen=True, slots=True)
class _StaleRow:
    id: int
    document_unique_id: str
    sha1: str


def _stale_rows(sessions: sessionmaker[Session], cutoff: datetime) -> list[_StaleRow]:
    with sessions.begin() as session:
        return [
            _StaleRow(row.id, row.document_unique_id, row.sha1)
            for row in session.execute(
                select(
                    RepositoryDocument.id,
                    RepositoryDocument.document_unique_id,
                    RepositoryDocument.sha1,
                ).where(
                    RepositoryDocument.state == DocumentState.PENDING,
                    RepositoryDocument.created < cutoff,
                )
            )
        ]


def _settle(
    sessions: sessionmaker[Session],
    committed: Sequence[_StaleRow],
    removed: Sequence[_StaleRow],
) -> list[_StaleRow]:
    """One transaction: the registered rows become committed, the others go.  Only
    rows still pending are touched (another process may have settled them first).
    At most one row per uniqueId is committed: of registered rows with identical
    content the first is kept, those left over go; rows of one uniqueId with
    different content (a crash during a race) cannot be told apart by uniqueId alone
    and are returned unresolved, untouched."""
    still_pending = RepositoryDocument.state == DocumentState.PENDING
    with sessions.begin() as session:
        served = set(
            session.scalars(
                select(RepositoryDocument.document_unique_id).where(
                    RepositoryDocument.document_unique_id.in_(
                        [r.document_unique_id for r in committed]
                    ),
                    RepositoryDocument.state == DocumentState.COMMITTED,
                )
            )
        )
        by_unique_id: dict[str, list[_StaleRow]] = {}
        for row in sorted(committed, key=lambda r: r.id):
            by_unique_id.setdefault(row.document_unique_id, []).append(row)
        promote: list[int] = []
        drop = [r.id for r in removed]
        unresolved: list[_StaleRow] = []
        for unique_id, rows in by_unique_id.items():
            if len({r.sha1 for r in rows}) > 1:
                unresolved += rows
            elif unique_id in served:
                drop += [r.id for r in rows]
            else:
                promote.append(rows[0].id)
                drop += [r.id for r in rows[1:]]
        if promote:
            session.execute(
                update(RepositoryDocument)
                .where(RepositoryDocument.id.in_(promote), still_pending)
                .values(state=DocumentState.COMMITTED)
            )
        if drop:
            session.execute(
                delete(RepositoryDocument).where(RepositoryDocument.id.in_(drop), still_pending)
            )
    return unresolved


def recover(
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    registry: RegistryClient,
    repository_unique_id: str,
    *,
    grace: timedelta,
    now: datetime | None = None,
) -> RecoveryReport:
    """Settle what crashed ITI-41 transactions left between (b) and (d).

    ``pending`` rows older than ``grace`` are looked up in the registry (ITI-18
    GetDocuments): a document it lists for this repository, in any status, was
    registered before the crash - its row becomes ``committed``; the others are removed
    with their blobs (unless another row uses them), so a submission ends with both
    blobs and registry entries or neither.  If the registry cannot tell, nothing is
    removed and the rows wait for the next recovery.  Blob temp files older than
    ``grace`` are removed.  ``grace`` must exceed the longest ITI-41 (other processes
    may share the store)."""
    now = now or utcnow()
    stale = _stale_rows(sessions, now - grace)
    committed: list[_StaleRow] = []
    removed: list[_StaleRow] = []
    unresolved: list[_StaleRow] = []
    if stale:
        try:
            registered = registry.registered_documents(
                [row.document_unique_id for row in stale], repository_unique_id
            )
        except RegistryNotAvailable as exc:
            log.warning(
                "recovery left %d pending documents for the next start: "
                "the registry could not tell whether it lists them (%s)",
                len(stale),
                exc,
            )
            unresolved = stale
        else:
            for row in stale:
                (committed if row.document_unique_id in registered else removed).append(row)
            unresolved = _settle(sessions, committed, removed)
            if unresolved:
                log.warning(
                    "recovery left %d pending documents: their uniqueIds are registered "
                    "but stored with different content",
                    len(unresolved),
                )
                committed = [row for row in committed if row not in unresolved]
    blobs_removed = delete_unreferenced(sessions, blobs, (row.sha1 for row in removed))
    temps = blobs.remove_temp_files(older_than=grace.total_seconds(), now=now.timestamp())
    if committed or removed or temps:
        log.warning(
            "recovery committed %d pending documents the registry lists, removed %d "
            "it does not list with %d blobs, removed %d temp files",
            len(committed),
            len(removed),
            blobs_removed,
            temps,
        )
    return RecoveryReport(len(removed), blobs_removed, temps, len(committed), len(unresolved))


__all__ = [
    "DEFAULT_MIME_TYPE",
    "PlannedDocument",
    "RecoveryReport",
    "StoredSet",
    "Validator",
    "ebxml_validator",
    "plan_documents",
    "provide_and_register",
    "recover",
    "remove_stored",
    "store_documents",
    "with_repository_attributes",
]
