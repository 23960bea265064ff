"""ITI-42 Register Document Set-b against stored state (ITI TF-2 3.42.4.1.3).

The metadata has been validated on its own (``ebxml.validate``) before it gets here;
this module checks it against what the registry holds and stores it:

1. every patient id is known (ITI TF-2 3.42.4.1.3.4 -> ``XDSUnknownPatientId``);
2. no entryUUID is stored already;
3. uniqueIds (ITI TF-2 3.42.4.1.3.3): a DocumentEntry uniqueId already stored must
   come with the same hash and size (an identical resubmission is accepted);
   a SubmissionSet or Folder uniqueId must not be any stored uniqueId;
4. association ends not in the submission resolve to stored objects, of the same
   patient (ITI TF-2 3.42.4.1.3.5), and relationships obey ``registry.lifecycle``;
5. a stored object that gets a member is an Approved Folder (ITI TF-3 4.2.2.1.4);
6. then everything is inserted in the caller's transaction, and every stored Folder
   that got a member gets a new lastUpdateTime, in its column and in its stored
   metadata (ITI TF-3 4.2.3.4.6).

Round trips do not grow with the submission: checks 1 to 3 are one statement
(:func:`stored_state`), on PostgreSQL sent with the advisory locks in one round trip
(:func:`lock_and_read_state`), and on PostgreSQL the rows go in by one statement
(``registry.insert``): a one-document registration is three round trips, the locks and
checks, the rows, the commit.

Nothing is written unless every check passed; the caller commits only a response
that is not a Failure, so a submission is stored whole or not at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import (
    Association,
    Code,
    DocumentEntry,
    Folder,
    RegistryObject,
    Submission,
    SubmissionSet,
)
from ebxml.parse import parse_registry_object_list
from ebxml.serialize import leaf_class_bytes
from ebxml.tags import RIM
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    UUID_PREFIX,
    AssociationType,
    AvailabilityStatus,
    Transaction,
)
from registry import lifecycle
from registry.insert import PARENT, RegistrationRows, insert_rows
from registry.locks import lock_submission
from registry.tables import (
    CODE_KIND_CONFIDENTIALITY,
    CODE_KIND_EVENT,
    AssociationRow,
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
    dtm_key,
)

# The tables that hold identifiable objects, for entryUUID and reference lookups
_OBJECT_TABLES = (DocumentEntryRow, SubmissionSetRow, FolderRow, AssociationRow)
# The tables whose rows carry a patient id
_PATIENT_TABLES = (DocumentEntryRow, FolderRow, SubmissionSetRow)


@dataclass(frozen=True, slots=True)
class Registered:
    """The outcome of one registration: the response, and what changed if it stored."""

    response: RegistryResponse
    patient_id: str | None = None
    stored: tuple[str, ...] = ()  # entryUUIDs of every object inserted
    deprecated: tuple[str, ...] = ()  # DocumentEntries set to Deprecated


def dtm_now() -> str:
    """The current UTC time as an ITI TF-3 DTM to the second."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def new_uuid() -> str:
    return f"{UUID_PREFIX}{uuid.uuid4()}"


def register_document_set(
    session: Session,
    submission: Submission,
    *,
    transaction: Transaction = Transaction.ITI42,
) -> RegistryResponse:
    """Check ``submission`` against the registry and store it in ``session``'s
    transaction; the caller commits only if the response is not a Failure."""
    return register_submission(session, submission, transaction=transaction).response


def register_submission(
    session: Session,
    submission: Submission,
    *,
    transaction: Transaction = Transaction.ITI42,
    now: Callable[[], str] = dtm_now,
    uuid_factory: Callable[[], str] = new_uuid,
) -> Registered:
    """As :func:`register_document_set`, also saying what was stored."""
    # the checks below hold until commit: conflicting submissions wait (registry.locks)
    stored = lock_and_read_state(session, submission)
    errors = _check(session, submission, stored)
    relationship_errors, plan = lifecycle.check_relationships(session, submission)
    errors.extend(relationship_errors)
    if errors:
        return Registered(RegistryResponse.from_errors(errors))
    added = _store(session, submission, plan, now(), uuid_factory)
    lifecycle.deprecate(session, plan.deprecate)
    session.flush()
    ss = submission.submission_set
    return Registered(
        RegistryResponse.from_errors([]),
        patient_id=ss.patient_id if ss else None,
        stored=tuple(added),
        deprecated=tuple(plan.deprecate),
    )


# --- checks against stored state ------------------------------------------------------


def _check(session: Session, submission: Submission, stored: StoredState) -> list[RegistryError]:
    if submission.submission_set is None:  # validation refuses this first (ITI TF-3 4.1.4)
        return [
            RegistryError(ErrorCode.XDSRegistryMetadataError, "no SubmissionSet in the request")
        ]
    return [
        *_patient_errors(submission, stored),
        *_entry_uuid_errors(submission, stored),
        *_document_unique_id_errors(submission, stored),
        *_package_unique_id_errors(submission, stored),
        *_check_references(session, submission),
        *_check_folder_members(session, submission),
    ]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """What ITI TF-2 3.42.4.1.3.3.1 compares of a stored DocumentEntry with its uniqueId."""

    object_type: str
    hash: str | None
    size: int | None


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the registry holds of a submission's patient ids, entryUUIDs and uniqueIds,
    read by :func:`stored_state` in one statement."""

    known_patients: frozenset[str] = frozenset()
    entry_uuids: frozenset[str] = frozenset()
    documents: dict[str, list[StoredDocument]] = field(default_factory=dict)
    package_unique_ids: frozenset[str] = frozenset()  # of SubmissionSets and Folders


# One statement, made once: a UNION ALL of lookups, a kind of row per check: (kind, table,
# key column, what else is read, the parameter of the wanted keys, a further condition).
# The typed columns come first: PostgreSQL types a UNION pairwise from the left.
_NO_MORE = "NULL, NULL, NULL"
_STATE_LOOKUPS = (
    ("d", "document_entry", "unique_id", "hash, size, object_type", "unique_ids", ""),
    (
        "p", "patient", "patient_id", _NO_MORE, "patient_ids",
        "NOT EXISTS (SELECT 1 FROM patient_merge WHERE subsumed_id = patient.patient_id)",
    ),
    ("u", "document_entry", "entry_uuid", _NO_MORE, "entry_uuids", ""),
    ("u", "submission_set", "entry_uuid", _NO_MORE, "entry_uuids", ""),
    ("u", "folder", "entry_uuid", _NO_MORE, "entry_uuids", ""),
    ("u", "association", "entry_uuid", _NO_MORE, "entry_uuids", ""),
    ("s", "submission_set", "unique_id", _NO_MORE, "unique_ids", ""),
    ("s", "folder", "unique_id", _NO_MORE, "unique_ids", ""),
)  # fmt: skip


def _state_sql(source: Callable[[str, str, str], tuple[str, str]]) -> str:
    """The lookups, each reading from ``source(table, column, parameter)``: (FROM clause,
    condition or "")."""
    branches = []
    for kind, table, column, more, parameter, condition in _STATE_LOOKUPS:
        rows, match = source(table, column, parameter)
        where = " AND ".join(c for c in (match, condition) if c)
        branches.append(
            f"SELECT '{kind}', {table}.{column}, {more} FROM {rows}"
            + (f" WHERE {where}" if where else "")
        )
    return "\nUNION ALL ".join(branches)


_STATE_KEYS = ("patient_ids", "entry_uuids", "unique_ids")
_STORED_STATE = text(
    _state_sql(lambda table, column, parameter: (table, f"{table}.{column} IN :{parameter}"))
).bindparams(*(bindparam(k, expanding=True) for k in _STATE_KEYS))
# On PostgreSQL one text as well, whatever the number of values: each list travels as one
# array, so the driver prepares the statement once.  Each wanted key is looked up by
# itself (a LATERAL subquery kept apart by OFFSET 0, PostgreSQL 15 7.2.1.5): an index
# probe per key however small the table or stale its statistics.  "column = ANY(array)"
# on a table the planner chose to scan whole compared every row with every value (100 x
# 4,000 for a 100-document submission to 4,000 entries), and a join of the keys to the
# table let a prepared plan, sized for 100 keys, scan the whole table for one key.
_STORED_STATE_PG = _state_sql(
    lambda table, column, parameter: (
        f"unnest(CAST(%({parameter})s AS text[])) AS wanted(key) CROSS JOIN LATERAL"
        f" (SELECT * FROM {table} WHERE {table}.{column} = wanted.key OFFSET 0) AS {table}",
        "",
    )
)


def _state_parameters(submission: Submission) -> dict[str, list[str]]:
    objects = (*_packages(submission), *submission.document_entries)
    return {
        "patient_ids": sorted({o.patient_id for o in objects if o.patient_id}),
        "entry_uuids": sorted(submission.object_ids()),
        "unique_ids": sorted({o.unique_id for o in objects if o.unique_id}),
    }


def lock_and_read_state(session: Session, submission: Submission) -> StoredState:
    """Begin the write transaction holding the submission's locks (``registry.locks``)
    and read :func:`stored_state` under them; on PostgreSQL both in one round trip."""
    parameters = _state_parameters(submission)
    # the stored-state read probes an index per key and registry.insert's statement
    # inserts what it is given: generic plans serve them.  Planned again for each
    # registration's values, as PostgreSQL otherwise chooses for them, they cost it
    # about twice the CPU (PostgreSQL 15 PREPARE, plan_cache_mode)
    rows = lock_submission(
        session, submission, then=(_STORED_STATE_PG, parameters), generic_plans=True
    )
    if rows is None:
        rows = list(session.connection().execute(_STORED_STATE, parameters))
    return _stored_state_of(rows)


def stored_state(session: Session, submission: Submission) -> StoredState:
    """One round trip for every check of :func:`_check` that is not about associations:
    the known patient ids (registered through the feed and not subsumed by a merge,
    ``registry.patients``), the stored entryUUIDs, the stored DocumentEntries and the
    SubmissionSet/Folder uniqueIds among the submission's."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        rows = connection.exec_driver_sql(_STORED_STATE_PG, _state_parameters(submission))
    else:
        rows = connection.execute(_STORED_STATE, _state_parameters(submission))
    return _stored_state_of(rows)


def _stored_state_of(rows: Iterable[Any]) -> StoredState:
    found: dict[str, set[str]] = {"p": set(), "u": set(), "s": set()}
    documents: dict[str, list[StoredDocument]] = {}
    for kind, key, hash_, size, object_type in rows:
        if kind == "d":
            documents.setdefault(key, []).append(StoredDocument(object_type, hash_, size))
        else:
            found[kind].add(key)
    return StoredState(
        known_patients=frozenset(found["p"]),
        entry_uuids=frozenset(found["u"]),
        documents=documents,
        package_unique_ids=frozenset(found["s"]),
    )


def _packages(submission: Submission) -> list[SubmissionSet | Folder]:
    return [
        *([submission.submission_set] if submission.submission_set else []),
        *submission.folders,
    ]


def _check_patients(session: Session, submission: Submission) -> list[RegistryError]:
    return _patient_errors(submission, stored_state(session, submission))


def _patient_errors(submission: Submission, stored: StoredState) -> list[RegistryError]:
    # ITI TF-2 3.42.4.1.3.4: the patient id must be known from the Patient Identity Feed
    objects: list[SubmissionSet | DocumentEntry | Folder] = [
        *([submission.submission_set] if submission.submission_set else []),
        *submission.document_entries,
        *submission.folders,
    ]
    errors = []
    checked: set[str] = set()
    for obj in objects:
        pid = obj.patient_id
        if pid is None or pid in checked:
            continue
        checked.add(pid)
        if pid not in stored.known_patients:
            errors.append(
                RegistryError(
                    ErrorCode.XDSUnknownPatientId,
                    f"patient id {pid} is not known to the registry",
                    obj.entry_uuid,
                )
            )
    return errors


def _check_entry_uuids(session: Session, submission: Submission) -> list[RegistryError]:
    return _entry_uuid_errors(submission, stored_state(session, submission))


def _entry_uuid_errors(submission: Submission, stored: StoredState) -> list[RegistryError]:
    return [
        RegistryError(
            ErrorCode.XDSRegistryMetadataError,
            f"entryUUID {uuid_} is already present in the registry",
            uuid_,
        )
        for uuid_ in sorted(stored.entry_uuids & submission.object_ids())
    ]


def _document_unique_id_errors(submission: Submission, stored: StoredState) -> list[RegistryError]:
    # ITI TF-2 3.42.4.1.3.3.1: the same uniqueId is accepted only with the same hash and size
    errors = []
    for entry in submission.document_entries:
        if entry.unique_id in stored.package_unique_ids:
            errors.append(_duplicate(entry.unique_id, entry.entry_uuid))
        rows = stored.documents.get(entry.unique_id or "", [])
        if any(DOC_ENTRY_ON_DEMAND in (entry.object_type, row.object_type) for row in rows):
            # An On-Demand entry has no hash or size (ITI TF-3 Table 4.3.1-3, XDS OD), so
            # no resubmission of it can be shown identical: its uniqueId stays unique
            errors.append(_duplicate(entry.unique_id, entry.entry_uuid))
            continue
        for row in rows:
            if entry.hash and row.hash and entry.hash.lower() != row.hash.lower():
                errors.append(
                    RegistryError(
                        ErrorCode.XDSNonIdenticalHash,
                        f"uniqueId {entry.unique_id} is registered with hash {row.hash}",
                        entry.entry_uuid,
                    )
                )
            if entry.size is not None and row.size is not None and entry.size != row.size:
                errors.append(
                    RegistryError(
                        ErrorCode.XDSNonIdenticalSize,
                        f"uniqueId {entry.unique_id} is registered with size {row.size}",
                        entry.entry_uuid,
                    )
                )
    return errors


def _package_unique_id_errors(submission: Submission, stored: StoredState) -> list[RegistryError]:
    # ITI TF-2 3.42.4.1.3.3: a SubmissionSet or Folder uniqueId is unique in the registry
    taken = stored.package_unique_ids | stored.documents.keys()
    return [
        _duplicate(p.unique_id, p.entry_uuid)
        for p in _packages(submission)
        if p.unique_id and p.unique_id in taken
    ]


def _duplicate(unique_id: str | None, location: str) -> RegistryError:
    return RegistryError(
        ErrorCode.XDSDuplicateUniqueIdInRegistry,
        f"uniqueId {unique_id} is already present in the registry",
        location,
    )


def _check_references(session: Session, submission: Submission) -> list[RegistryError]:
    """ITI TF-2 3.42.4.1.3.5: association ends outside the submission resolve to stored
    objects, and those belong to the submission's patient."""
    in_message = submission.object_ids()
    outside = {
        end
        for a in submission.associations
        if a.association_type not in lifecycle.RELATIONSHIPS
        for end in (a.source, a.target)
        if end not in in_message
    }
    found = _stored_uuids(session, outside)
    patients = _stored_patients(session, found)
    ss = submission.submission_set
    patient = ss.patient_id if ss else None
    errors = []
    for a in submission.associations:
        if a.association_type in lifecycle.RELATIONSHIPS:
            continue
        for end in (a.source, a.target):
            if end in in_message:
                continue
            if end not in found:
                errors.append(
                    RegistryError(
                        ErrorCode.UnresolvedReferenceException,
                        f"association {a.entry_uuid} refers to {end}, which is neither in the "
                        "submission nor in the registry",
                        a.entry_uuid,
                    )
                )
            elif patient and end in patients and patients[end] != patient:
                errors.append(
                    RegistryError(
                        ErrorCode.XDSPatientIdDoesNotMatch,
                        f"association {a.entry_uuid} links {end} of patient {patients[end]} "
                        f"into a submission for patient {patient}",
                        a.entry_uuid,
                    )
                )
    return errors


def _check_folder_members(session: Session, submission: Submission) -> list[RegistryError]:
    """ITI TF-3 4.2.2.1.4: a document is added to an existing Folder by a HasMember from
    that Folder; the Folder must be Approved.  Any other stored object as the source of a
    HasMember (a DocumentEntry, an earlier SubmissionSet) is refused."""
    in_message = submission.object_ids()
    sources = {
        a.source: a
        for a in submission.associations
        if a.is_has_member and a.source not in in_message
    }
    if not sources:
        return []
    folders = dict(
        session.execute(
            select(FolderRow.entry_uuid, FolderRow.status).where(FolderRow.entry_uuid.in_(sources))
        ).all()
    )
    others = _stored_uuids(session, set(sources) - set(folders))
    errors = []
    for source, association in sources.items():
        if source in folders and folders[source] != AvailabilityStatus.APPROVED:
            context = f"Folder {source} is not Approved and cannot take new members"
        elif source in others:
            context = (
                f"HasMember {association.entry_uuid} has source {source}, which is not a Folder"
            )
        else:
            continue  # an Approved Folder, or unresolved (reported by _check_references)
        errors.append(
            RegistryError(ErrorCode.XDSRegistryMetadataError, context, association.entry_uuid)
        )
    return errors


def _stored_uuids(session: Session, uuids: Iterable[str]) -> set[str]:
    uuids = list(uuids)
    if not uuids:
        return set()
    found: set[str] = set()
    for table in _OBJECT_TABLES:
        found.update(session.scalars(select(table.entry_uuid).where(table.entry_uuid.in_(uuids))))
    return found


def _stored_unique_ids(
    session: Session, unique_ids: Iterable[str | None], tables: Iterable[type]
) -> set[str]:
    values = [u for u in unique_ids if u]
    if not values:
        return set()
    found: set[str] = set()
    for table in tables:
        found.update(session.scalars(select(table.unique_id).where(table.unique_id.in_(values))))
    return found


def _stored_patients(session: Session, uuids: Iterable[str]) -> dict[str, str]:
    uuids = list(uuids)
    if not uuids:
        return {}
    patients: dict[str, str] = {}
    for table in _PATIENT_TABLES:
        rows = session.execute(
            select(table.entry_uuid, table.patient_id).where(table.entry_uuid.in_(uuids))
        )
        patients.update({u: p for u, p in rows})
    return patients


# --- storing ---------------------------------------------------------------------------


def canonical_xml(obj: RegistryObject, status: str | None = None) -> bytes:
    """The canonical LeafClass bytes of one object, as stored and returned by ITI-18;
    ``status`` in place of the object's availabilityStatus when given."""
    return leaf_class_bytes(obj, status=status)


def _code(code: Code | None) -> tuple[str | None, str | None]:
    return (code.code, code.scheme) if code else (None, None)


def _store(
    session: Session,
    submission: Submission,
    plan: lifecycle.LifecyclePlan,
    now: str,
    uuid_factory: Callable[[], str],
) -> list[str]:
    """Insert the checked submission: every row built first, then written together by
    ``registry.insert`` (one statement on PostgreSQL, whatever the number of objects)."""
    ss = submission.submission_set
    if ss is None:  # validation refuses this before; nothing to anchor the objects to
        raise ValueError("a submission without a SubmissionSet cannot be registered")
    # every object is stored with the status the registry gives it, not the submission's
    approved = AvailabilityStatus.APPROVED
    ss_class, ss_scheme = _code(ss.content_type_code)
    rows = RegistrationRows()
    rows.add(
        SubmissionSetRow.__table__,
        {
            "entry_uuid": ss.entry_uuid,
            "unique_id": ss.unique_id,
            "source_id": ss.source_id,
            "patient_id": ss.patient_id,
            "status": approved,
            "home": ss.home,
            "submission_time": ss.submission_time,
            "submission_time_key": dtm_key(ss.submission_time),
            "content_type_code": ss_class,
            "content_type_code_scheme": ss_scheme,
            "xml": canonical_xml(ss, approved),
        },
    )
    rows.add(
        SubmissionSetAuthorRow.__table__,
        *({PARENT: ss.entry_uuid, "author_person": a.person} for a in ss.authors if a.person),
    )
    for entry in submission.document_entries:
        _add_document_entry(rows, entry, ss.entry_uuid)
    for folder in submission.folders:
        # ITI TF-3 4.2.3.4: the registry sets lastUpdateTime
        folder = replace(folder, last_update_time=now)
        rows.add(
            FolderRow.__table__,
            {
                "entry_uuid": folder.entry_uuid,
                "logical_id": folder.logical_id or folder.entry_uuid,
                "version": folder.version or "1",
                "unique_id": folder.unique_id,
                "patient_id": folder.patient_id,
                "status": approved,
                "home": folder.home,
                "last_update_time": now,
                "last_update_time_key": dtm_key(now),
                "xml": canonical_xml(folder, approved),
            },
        )
        rows.add(
            FolderCodeRow.__table__,
            *(
                {PARENT: folder.entry_uuid, "code": c.code, "scheme": c.scheme}
                for c in folder.code_list
            ),
        )
    joins = _folder_join_associations(plan, ss.entry_uuid, uuid_factory)
    associations = [*submission.associations, *joins]
    rows.add(
        AssociationRow.__table__,
        *(_association_values(a) for a in associations),
    )
    insert_rows(session.connection(), rows)
    _touch_folders(session, submission, associations, now)
    return [*submission.object_ids(), *(a.entry_uuid for a in joins)]


def _add_document_entry(rows: RegistrationRows, entry: DocumentEntry, ss_uuid: str) -> None:
    rows.add(DocumentEntryRow.__table__, _document_entry_values(entry, ss_uuid))
    parent = entry.entry_uuid
    rows.add(
        DocumentEntryCodeRow.__table__,
        *(
            {PARENT: parent, "kind": kind, "code": c.code, "scheme": c.scheme}
            for kind, codes in (
                (CODE_KIND_EVENT, entry.event_codes),
                (CODE_KIND_CONFIDENTIALITY, entry.confidentiality_codes),
            )
            for c in codes
        ),
    )
    rows.add(
        DocumentEntryAuthorRow.__table__,
        *({PARENT: parent, "author_person": a.person} for a in entry.authors if a.person),
    )
    rows.add(
        DocumentEntryReferenceIdRow.__table__,
        *({PARENT: parent, "value": v} for v in entry.reference_ids),
    )


def _document_entry_values(entry: DocumentEntry, submission_set_uuid: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "entry_uuid": entry.entry_uuid,
        "logical_id": entry.logical_id or entry.entry_uuid,
        "version": entry.version or "1",
        "unique_id": entry.unique_id,
        "patient_id": entry.patient_id,
        "status": AvailabilityStatus.APPROVED,
        "object_type": entry.object_type,
        "mime_type": entry.mime_type,
        "hash": entry.hash.lower() if entry.hash else None,
        "size": entry.size,
        "repository_unique_id": entry.repository_unique_id,
        "home": entry.home,
        "creation_time": entry.creation_time,
        "creation_time_key": dtm_key(entry.creation_time),
        "service_start_time": entry.service_start_time,
        "service_start_time_key": dtm_key(entry.service_start_time),
        "service_stop_time": entry.service_stop_time,
        "service_stop_time_key": dtm_key(entry.service_stop_time),
        "submission_set_uuid": submission_set_uuid,
        "xml": canonical_xml(entry, AvailabilityStatus.APPROVED),
    }
    for name in (
        "class_code",
        "type_code",
        "format_code",
        "practice_setting_code",
        "healthcare_facility_type_code",
    ):
        values[name], values[f"{name}_scheme"] = _code(getattr(entry, name))
    return values


def _association_values(association: Association) -> dict[str, Any]:
    return {
        "entry_uuid": association.entry_uuid,
        "association_type": association.association_type,
        "source_uuid": association.source,
        "target_uuid": association.target,
        "submission_set_status": association.submission_set_status,
        "status": AvailabilityStatus.APPROVED,
        "home": association.home,
        "xml": canonical_xml(association, AvailabilityStatus.APPROVED),
    }


def _folder_join_associations(
    plan: lifecycle.LifecyclePlan, submission_set_uuid: str, uuid_factory: Callable[[], str]
) -> list[Association]:
    """ITI TF-2 3.42.4.1.3.5: a replacement joins the original's folders, through a
    Folder->DocumentEntry HasMember that the SubmissionSet has as a member."""
    made: list[Association] = []
    for join in plan.folder_joins:
        membership = Association(
            uuid_factory(), AssociationType.HAS_MEMBER, join.folder_uuid, join.replacement_uuid
        )
        made.append(membership)
        made.append(
            Association(
                uuid_factory(),
                AssociationType.HAS_MEMBER,
                submission_set_uuid,
                membership.entry_uuid,
            )
        )
    return made


def _touch_folders(
    session: Session, submission: Submission, associations: list[Association], now: str
) -> None:
    """ITI TF-3 4.2.3.4.6: a stored Folder that gets a new member gets a new
    lastUpdateTime, in the query column and in the metadata queries return."""
    submitted = submission.object_ids()  # a stored Folder is not in the submission
    sources = {a.source for a in associations if a.is_has_member and a.source not in submitted}
    if not sources:
        return
    # Columns, not ORM objects: rows loaded earlier in this session may be stale
    stored = session.execute(
        select(FolderRow.entry_uuid, FolderRow.xml).where(FolderRow.entry_uuid.in_(sources))
    ).all()
    for entry_uuid, xml in stored:
        folder = replace(stored_folder(xml), last_update_time=now)
        session.execute(
            update(FolderRow)
            .where(FolderRow.entry_uuid == entry_uuid)
            .values(
                last_update_time=now,
                last_update_time_key=dtm_key(now),
                xml=canonical_xml(folder),
            )
        )


def stored_folder(xml: bytes) -> Folder:
    """The Folder of the registry's own canonical LeafClass bytes (parsed without entity
    or network access)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    object_list = etree.Element(RIM.RegistryObjectList)
    object_list.append(etree.fromstring(xml, parser))
    parsed = parse_registry_object_list(object_list, replace_symbolic_ids=False)
    folders = [o for o in parsed.value.objects if isinstance(o, Folder)]
    if len(folders) != 1:
        raise ValueError("stored Folder metadata does not hold exactly one Folder")
    return folders[0]


# The checks and the store step, for transactions that register metadata under other
# rules (ITI-57 Update Document Set, ``registry.update``)
check_patients = _check_patients
check_entry_uuids = _check_entry_uuids
check_references = _check_references
check_folder_members = _check_folder_members
stored_uuids = _stored_uuids
stored_unique_ids = _stored_unique_ids


def store_submission(
    session: Session,
    submission: Submission,
    plan: lifecycle.LifecyclePlan,
    now: str,
    uuid_factory: Callable[[], str] = new_uuid,
) -> list[str]:
    """Insert every object of an already checked ``submission`` (all Approved) plus the
    folder memberships ``plan`` asks for; returns the entryUUIDs inserted."""
    return _store(session, submission, plan, now, uuid_factory)


__all__ = [
    "Registered",
    "StoredDocument",
    "StoredState",
    "canonical_xml",
    "check_entry_uuids",
    "check_folder_members",
    "check_patients",
    "check_references",
    "dtm_now",
    "lock_and_read_state",
    "new_uuid",
    "register_document_set",
    "register_submission",
    "store_submission",
    "stored_folder",
    "stored_state",
    "stored_unique_ids",
    "stored_uuids",
]
