"""ITI-57 Update Document Set at the Document Registry (XDS Metadata Update option).

ITI TF-2 3.57.4.1.3: an Update Document Set request is a SubmitObjectsRequest with one
SubmissionSet and any number of these operations, all done or none:

* Update DocumentEntry Metadata (3.57.4.1.3.3.1): a DocumentEntry whose ``lid`` is the
  logicalID of a stored one and whose entryUUID is new, a member of the SubmissionSet
  through a HasMember carrying the ``PreviousVersion`` slot.  PreviousVersion must name
  the latest stored version (``XDSMetadataVersionError``); uniqueId, objectType, hash,
  size and repositoryUniqueId stay as they were (``XDSMetadataUpdateError``), and so
  does the patient (``XDSPatientIDReconciliationError``: a patient changes only by the
  Patient Identity Feed).  The new version is numbered latest + 1, takes the latest
  version's availabilityStatus, and the latest version becomes Deprecated.  Unless the
  HasMember says ``AssociationPropagation`` = ``no`` (3.57.4.1.3.3.1.5), the new version
  joins every Approved Folder the previous one is in and inherits its Approved
  relationship Associations.
* Update DocumentEntry / Folder / Association status (3.57.4.1.3.3.2, .4, .6): an
  ``UpdateAvailabilityStatus`` Association from the SubmissionSet to the object, with
  ``OriginalStatus`` (must be the current status, ``XDSMetadataUpdateError``) and
  ``NewStatus`` (:data:`TRANSITIONS`).  Only the latest version of a DocumentEntry or
  Folder is changed; one whose metadata is updated in the same request has the change
  applied to its new version (3.57.4.1.3.1).  A SubmissionSet's HasMember cannot change
  status.
* Update Folder Metadata (3.57.4.1.3.3.3): as for a DocumentEntry; uniqueId and patient
  stay, and the new version holds the previous one's Approved members.
* Folder membership: a Folder -> DocumentEntry HasMember between stored objects, itself
  a member of the SubmissionSet, as in ITI-42 (ITI TF-3 4.2.2.1.4).

An initial version (no ``lid``, or ``lid`` = entryUUID) and a document relationship
(RPLC, APND, ...) are not Update Document Set operations: ``XDSMetadataUpdateError`` and
``XDSMetadataUpdateOperationError``.  SubmissionSets are not versioned.  Everything is
read and written in the caller's session, one transaction; the caller commits only a
response that is not a Failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import Association, DocumentEntry, Folder, Submission, SubmissionSet
from ebxml.validate.formats import is_uuid_urn
from ebxml.vocabulary import (
    RELATIONSHIP_TYPES,
    SUBMISSION_SET_STATUS_ORIGINAL,
    AssociationType,
    AvailabilityStatus,
)
from registry import register
from registry.lifecycle import FolderJoin, LifecyclePlan
from registry.locks import lock_submission
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow, SubmissionSetRow

APPROVED = AvailabilityStatus.APPROVED
DEPRECATED = AvailabilityStatus.DEPRECATED

# ITI TF-2 3.57.4.1.3.3.1.5: AssociationPropagation = "no" keeps the associations of
# the previous version where they are
NO_PROPAGATION = "no"


class Target(StrEnum):
    """The kinds of object an ITI-57 operation may change."""

    DOCUMENT_ENTRY = "DocumentEntry"
    FOLDER = "Folder"
    ASSOCIATION = "Association"
    SUBMISSION_SET = "SubmissionSet"


# ITI TF-2 3.57.4.1.3.3.2, .4, .6: (OriginalStatus, NewStatus) an UpdateAvailabilityStatus
# may ask for, per kind of target; a SubmissionSet's status never changes
TRANSITIONS: dict[Target, frozenset[tuple[str, str]]] = {
    Target.DOCUMENT_ENTRY: frozenset({(APPROVED, DEPRECATED), (DEPRECATED, APPROVED)}),
    Target.FOLDER: frozenset({(APPROVED, DEPRECATED), (DEPRECATED, APPROVED)}),
    Target.ASSOCIATION: frozenset({(APPROVED, DEPRECATED), (DEPRECATED, APPROVED)}),
    Target.SUBMISSION_SET: frozenset(),
}

# ITI TF-2 3.57.4.1.3.3.1: attributes a new DocumentEntry version keeps from the
# previous one - (attribute name, model field, row column)
DOCUMENT_ENTRY_FIXED: tuple[tuple[str, str, str], ...] = (
    ("uniqueId", "unique_id", "unique_id"),
    ("objectType", "object_type", "object_type"),
    ("hash", "hash", "hash"),
    ("size", "size", "size"),
    ("repositoryUniqueId", "repository_unique_id", "repository_unique_id"),
)
# ITI TF-2 3.57.4.1.3.3.3: ... and a new Folder version from the previous one
FOLDER_FIXED: tuple[tuple[str, str, str], ...] = (("uniqueId", "unique_id", "unique_id"),)

_TABLES: dict[Target, type[DocumentEntryRow] | type[FolderRow] | type[AssociationRow]] = {
    Target.DOCUMENT_ENTRY: DocumentEntryRow,
    Target.FOLDER: FolderRow,
    Target.ASSOCIATION: AssociationRow,
}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A row whose availabilityStatus the update sets."""

    target: Target
    entry_uuid: str
    status: str


@dataclass(slots=True)
class UpdatePlan:
    """What a checked request does, beyond inserting what it carries."""

    versions: dict[str, str] = field(default_factory=dict)  # new entryUUID -> version
    status_changes: list[StatusChange] = field(default_factory=list)
    folder_joins: list[FolderJoin] = field(default_factory=list)
    propagated: list[Association] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Updated:
    """The outcome of one ITI-57 request: the response and what changed if it stored."""

    response: RegistryResponse
    patient_id: str | None = None
    stored: tuple[str, ...] = ()  # entryUUIDs of every object inserted
    deprecated: tuple[str, ...] = ()  # DocumentEntries that became Deprecated
    status_changed: tuple[str, ...] = ()  # entryUUIDs whose status the request set


_Row = DocumentEntryRow | FolderRow | AssociationRow | SubmissionSetRow
_StoredKinds = dict[str, tuple["Target", _Row]]


@dataclass(frozen=True, slots=True)
class _Latest:
    """The latest stored version of a logical DocumentEntry or Folder."""

    target: Target
    row: DocumentEntryRow | FolderRow


def _error(code: ErrorCode, context: str, location: str = "") -> RegistryError:
    return RegistryError(code, context, location)


def _update_error(context: str, location: str = "") -> RegistryError:
    return _error(ErrorCode.XDSMetadataUpdateError, context, location)


def _version_number(version: str) -> int:
    # versions the registry assigns count up from 1; a stored non-number sorts first
    return int(version) if version.isdigit() else 0


# --- reading the stored state ------------------------------------------------------------


def _latest_versions(session: Session, logical_ids: Iterable[str]) -> dict[str, _Latest]:
    """logicalID -> its latest stored version, DocumentEntries and Folders."""
    wanted = set(logical_ids)
    latest: dict[str, _Latest] = {}
    if not wanted:
        return latest
    for target, table in ((Target.DOCUMENT_ENTRY, DocumentEntryRow), (Target.FOLDER, FolderRow)):
        for row in session.scalars(select(table).where(table.logical_id.in_(wanted))):
            known = latest.get(row.logical_id)
            if known is None or _version_number(row.version) > _version_number(known.row.version):
                latest[row.logical_id] = _Latest(target, row)
    return latest


def _stored_kinds(session: Session, uuids: Iterable[str]) -> _StoredKinds:
    wanted = set(uuids)
    found: _StoredKinds = {}
    if not wanted:
        return found
    tables = (*_TABLES.items(), (Target.SUBMISSION_SET, SubmissionSetRow))
    for target, table in tables:
        for row in session.scalars(select(table).where(table.entry_uuid.in_(wanted))):
            found[row.entry_uuid] = (target, row)
    return found


# --- the request, taken apart ------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    submission: Submission
    submission_set: SubmissionSet

    @property
    def ss_uuid(self) -> str:
        return self.submission_set.entry_uuid

    def trigger(self, entry_uuid: str) -> Association | None:
        """The SubmissionSet's HasMember to a submitted object (PreviousVersion)."""
        for a in self.submission.associations:
            if a.is_has_member and a.source == self.ss_uuid and a.target == entry_uuid:
                return a
        return None

    @property
    def versioned(self) -> tuple[DocumentEntry | Folder, ...]:
        return (*self.submission.document_entries, *self.submission.folders)

    @property
    def status_updates(self) -> tuple[Association, ...]:
        return tuple(
            a
            for a in self.submission.associations
            if a.association_type == AssociationType.UPDATE_AVAILABILITY_STATUS
        )


def _check_shape(request: _Request) -> Iterator[RegistryError]:
    """What the request itself shows: each object is a new version of a logical one,
    with its PreviousVersion, and no operation ITI-57 does not define."""
    seen: set[str] = set()
    for obj in request.versioned:
        kind = type(obj).__name__
        lid = obj.logical_id
        if lid is None or lid == obj.entry_uuid:
            # ITI TF-2 3.57.4.1.3.1: an update carries no initial version
            yield _update_error(
                f"{kind} {obj.entry_uuid} is an initial version (logicalID missing or equal "
                "to its entryUUID); Update Document Set only submits new versions",
                obj.entry_uuid,
            )
            continue
        if not is_uuid_urn(lid):
            yield _update_error(f"{kind} {obj.entry_uuid} logicalID {lid} is not a UUID", lid)
        if lid in seen:
            yield _error(
                ErrorCode.XDSMetadataUpdateOperationError,
                f"logicalID {lid} is updated twice in one request",
                obj.entry_uuid,
            )
        seen.add(lid)
        trigger = request.trigger(obj.entry_uuid)
        if trigger is None or trigger.previous_version is None:
            yield _update_error(
                f"{kind} {obj.entry_uuid} has no SubmissionSet HasMember with a "
                "PreviousVersion slot",
                obj.entry_uuid,
            )
    for a in request.submission.associations:
        if a.association_type in RELATIONSHIP_TYPES:
            yield _error(
                ErrorCode.XDSMetadataUpdateOperationError,
                f"{a.association_type} {a.entry_uuid} is a document relationship; it is "
                "submitted with a new document (ITI-42), not by Update Document Set",
                a.entry_uuid,
            )
        elif not a.is_has_member and a.association_type != (
            AssociationType.UPDATE_AVAILABILITY_STATUS
        ):
            yield _error(
                ErrorCode.XDSMetadataUpdateOperationError,
                f"association type {a.association_type} is not an Update Document Set operation",
                a.entry_uuid,
            )


# --- new versions ------------------------------------------------------------------------


def _plan_versions(
    request: _Request, latest: dict[str, _Latest], plan: UpdatePlan
) -> Iterator[RegistryError]:
    for obj in request.versioned:
        lid = obj.logical_id
        trigger = request.trigger(obj.entry_uuid)
        if lid is None or lid == obj.entry_uuid or trigger is None:
            continue  # reported by _check_shape
        if trigger.previous_version is None:
            continue
        target = Target.DOCUMENT_ENTRY if isinstance(obj, DocumentEntry) else Target.FOLDER
        stored = latest.get(lid)
        if stored is None or stored.target != target:
            yield _update_error(
                f"no {target} with logicalID {lid} is in the registry", obj.entry_uuid
            )
            continue
        row = stored.row
        if trigger.previous_version != row.version:
            # ITI TF-2 3.57.4.1.3.3.1: PreviousVersion names the latest version
            yield _error(
                ErrorCode.XDSMetadataVersionError,
                f"PreviousVersion {trigger.previous_version} of {target} {lid} is not its "
                f"latest version {row.version}",
                trigger.entry_uuid,
            )
            continue
        found = list(_fixed_attribute_errors(obj, row, target))
        yield from found
        if found:
            continue
        plan.versions[obj.entry_uuid] = str(_version_number(row.version) + 1)
        # the new version has the previous one's status; the previous one is Deprecated
        if row.status != APPROVED:
            plan.status_changes.append(StatusChange(target, obj.entry_uuid, row.status))
        plan.status_changes.append(StatusChange(target, row.entry_uuid, DEPRECATED))


def _fixed_attribute_errors(
    obj: DocumentEntry | Folder, row: DocumentEntryRow | FolderRow, target: Target
) -> Iterator[RegistryError]:
    fixed = DOCUMENT_ENTRY_FIXED if target == Target.DOCUMENT_ENTRY else FOLDER_FIXED
    for attribute, name, column in fixed:
        submitted, stored = getattr(obj, name), getattr(row, column)
        if isinstance(submitted, str) and isinstance(stored, str) and name == "hash":
            submitted, stored = submitted.lower(), stored.lower()
        if submitted != stored:
            yield _update_error(
                f"{target} {obj.entry_uuid} changes {attribute} from {stored} to {submitted}; "
                f"a new version keeps the {attribute} of {row.entry_uuid}",
                obj.entry_uuid,
            )
    if obj.patient_id != row.patient_id:
        # ITI TF-2 3.57.4.1.3.3.1: the patient changes by the Patient Identity Feed only
        yield _error(
            ErrorCode.XDSPatientIDReconciliationError,
            f"{target} {obj.entry_uuid} moves logicalID {row.logical_id} from patient "
            f"{row.patient_id} to {obj.patient_id}",
            obj.entry_uuid,
        )


def _plan_propagation(
    session: Session, request: _Request, latest: dict[str, _Latest], plan: UpdatePlan
) -> None:
    """ITI TF-2 3.57.4.1.3.3.1.5: the new version takes the previous one's place in its
    Folders and relationships (copies; the previous version keeps its own)."""
    for obj in request.versioned:
        trigger = request.trigger(obj.entry_uuid)
        if obj.entry_uuid not in plan.versions or trigger is None:
            continue
        if (trigger.association_propagation or "").lower() == NO_PROPAGATION:
            continue
        previous = latest[obj.logical_id or ""].row.entry_uuid
        if isinstance(obj, DocumentEntry):
            _propagate_entry(session, plan, previous, obj.entry_uuid)
        else:
            members = session.scalars(
                select(AssociationRow.target_uuid)
                .join(DocumentEntryRow, DocumentEntryRow.entry_uuid == AssociationRow.target_uuid)
                .where(
                    AssociationRow.source_uuid == previous,
                    AssociationRow.association_type == AssociationType.HAS_MEMBER,
                    AssociationRow.status == APPROVED,
                )
                .order_by(AssociationRow.id)
            )
            plan.folder_joins.extend(FolderJoin(obj.entry_uuid, m) for m in members)


def _propagate_entry(session: Session, plan: UpdatePlan, previous: str, new: str) -> None:
    folders = session.scalars(
        select(AssociationRow.source_uuid)
        .join(FolderRow, FolderRow.entry_uuid == AssociationRow.source_uuid)
        .where(
            AssociationRow.target_uuid == previous,
            AssociationRow.association_type == AssociationType.HAS_MEMBER,
            AssociationRow.status == APPROVED,
            FolderRow.status == APPROVED,
        )
        .order_by(AssociationRow.id)
    )
    plan.folder_joins.extend(FolderJoin(f, new) for f in folders)
    relationships = session.scalars(
        select(AssociationRow)
        .where(
            (AssociationRow.source_uuid == previous) | (AssociationRow.target_uuid == previous),
            AssociationRow.association_type.in_(RELATIONSHIP_TYPES),
            AssociationRow.status == APPROVED,
        )
        .order_by(AssociationRow.id)
    )
    for row in relationships:
        plan.propagated.append(
            Association(
                register.new_uuid(),
                row.association_type,
                new if row.source_uuid == previous else row.source_uuid,
                new if row.target_uuid == previous else row.target_uuid,
            )
        )


# --- status changes ----------------------------------------------------------------------


def _plan_status_updates(
    session: Session, request: _Request, latest: dict[str, _Latest], plan: UpdatePlan
) -> Iterator[RegistryError]:
    submitted = {o.entry_uuid: o for o in request.versioned}
    stored = _stored_kinds(session, {a.target for a in request.status_updates} - set(submitted))
    targets = {
        r.logical_id for _, r in stored.values() if isinstance(r, DocumentEntryRow | FolderRow)
    }
    latest = {**latest, **_latest_versions(session, targets - set(latest))}
    # a stored DocumentEntry or Folder versioned by this request -> its new version
    new_version_of = {
        latest[o.logical_id].row.entry_uuid: o.entry_uuid
        for o in request.versioned
        if o.entry_uuid in plan.versions and o.logical_id in latest
    }
    changed: set[str] = set()
    for a in request.status_updates:
        location = a.entry_uuid
        if a.source != request.ss_uuid:
            yield _update_error(
                f"UpdateAvailabilityStatus {a.entry_uuid} does not come from the SubmissionSet",
                location,
            )
            continue
        if a.original_status is None or a.new_status is None:
            yield _update_error(
                f"UpdateAvailabilityStatus {a.entry_uuid} lacks the OriginalStatus or "
                "NewStatus slot",
                location,
            )
            continue
        resolved = _resolve(a.target, submitted, stored, latest, plan, new_version_of)
        if resolved is None:
            continue  # not in the registry: UnresolvedReferenceException (check_references)
        if isinstance(resolved, RegistryError):
            yield replace(resolved, location=location)
            continue
        target, entry_uuid, current = resolved
        if entry_uuid in changed:
            yield _error(
                ErrorCode.XDSMetadataUpdateOperationError,
                f"the status of {entry_uuid} is updated twice in one request",
                location,
            )
            continue
        changed.add(entry_uuid)
        if a.original_status != current:
            yield _update_error(
                f"OriginalStatus {a.original_status} of {target} {a.target} is not its "
                f"current status {current}",
                location,
            )
        elif (a.original_status, a.new_status) not in TRANSITIONS[target]:
            code = (
                ErrorCode.XDSMetadataUpdateOperationError
                if target == Target.SUBMISSION_SET
                else ErrorCode.XDSMetadataUpdateError
            )
            yield _error(
                code,
                f"{target} {a.target} cannot change from {a.original_status} to {a.new_status}",
                location,
            )
        else:
            plan.status_changes.append(StatusChange(target, entry_uuid, a.new_status))


_Resolved = tuple[Target, str, str] | RegistryError | None


def _resolve(
    uuid: str,
    submitted: dict[str, DocumentEntry | Folder],
    stored: _StoredKinds,
    latest: dict[str, _Latest],
    plan: UpdatePlan,
    new_version_of: dict[str, str],
) -> _Resolved:
    """(kind, entryUUID whose status changes, its status before this request)."""
    if uuid in submitted:
        obj = submitted[uuid]
        if uuid not in plan.versions:
            return None  # its version failed; reported there
        return _on_new_version(obj, latest)
    if uuid not in stored:
        return None
    target, row = stored[uuid]
    if target == Target.SUBMISSION_SET:
        return (target, uuid, row.status)
    if isinstance(row, AssociationRow):
        return _association_target(row)
    if not isinstance(row, DocumentEntryRow | FolderRow):
        return None
    newest = latest.get(row.logical_id)
    if newest is not None and newest.row.entry_uuid != uuid:
        return _error(
            ErrorCode.XDSMetadataVersionError,
            f"{target} {uuid} is version {row.version}, not the latest version "
            f"{newest.row.version} of logicalID {row.logical_id}",
        )
    if uuid in new_version_of:
        # ITI TF-2 3.57.4.1.3.1: with a metadata update in the same request, the status
        # change applies to the new version
        return (target, new_version_of[uuid], row.status)
    return (target, uuid, row.status)


def _on_new_version(obj: DocumentEntry | Folder, latest: dict[str, _Latest]) -> _Resolved:
    previous = latest[obj.logical_id or ""]
    return (previous.target, obj.entry_uuid, previous.row.status)


def _association_target(row: AssociationRow) -> _Resolved:
    # ITI TF-2 3.57.4.1.3.3.6: a Folder membership or a document relationship may
    # change status; a SubmissionSet's HasMember may not
    if row.association_type in RELATIONSHIP_TYPES | {AssociationType.HAS_MEMBER}:
        return (Target.ASSOCIATION, row.entry_uuid, row.status)
    return _error(
        ErrorCode.XDSMetadataUpdateOperationError,
        f"the status of a {row.association_type} Association cannot be updated",
    )


def _check_not_submission_set_member(
    session: Session, request: _Request
) -> Iterator[RegistryError]:
    targets = {a.target for a in request.status_updates}
    if not targets:
        return
    rows = session.execute(
        select(AssociationRow.entry_uuid, AssociationRow.source_uuid)
        .join(SubmissionSetRow, SubmissionSetRow.entry_uuid == AssociationRow.source_uuid)
        .where(AssociationRow.entry_uuid.in_(targets))
    ).all()
    for entry_uuid, source in rows:
        yield _update_error(
            f"HasMember {entry_uuid} of SubmissionSet {source} cannot change status",
            entry_uuid,
        )


# --- the transaction ---------------------------------------------------------------------


def _check_submission_set(session: Session, ss: SubmissionSet) -> Iterator[RegistryError]:
    # ITI TF-2 3.42.4.1.3.3 (by reference from 3.57.4.1.3): the SubmissionSet is new
    if ss.unique_id and register.stored_unique_ids(
        session, [ss.unique_id], (DocumentEntryRow, SubmissionSetRow, FolderRow)
    ):
        yield _error(
            ErrorCode.XDSDuplicateUniqueIdInRegistry,
            f"uniqueId {ss.unique_id} is already present in the registry",
            ss.entry_uuid,
        )


def update_document_set(
    session: Session,
    submission: Submission,
    *,
    now: Callable[[], str] = register.dtm_now,
    uuid_factory: Callable[[], str] = register.new_uuid,
) -> Updated:
    """Check an ITI-57 request against the registry and apply it in ``session``'s
    transaction; the caller commits only if the response is not a Failure."""
    ss = submission.submission_set
    if ss is None:  # ITI TF-2 3.57.4.1.3.1: the request holds a SubmissionSet
        return Updated(
            RegistryResponse.from_errors([_update_error("no SubmissionSet in the request")])
        )
    # the checks below hold until commit: conflicting updates wait (registry.locks)
    lock_submission(session, submission)
    request = _Request(submission, ss)
    plan = UpdatePlan()
    latest = _latest_versions(session, {o.logical_id for o in request.versioned if o.logical_id})
    errors = [
        *_check_shape(request),
        *register.check_patients(session, submission),
        *register.check_entry_uuids(session, submission),
        *_check_submission_set(session, ss),
        *register.check_references(session, submission),
        *register.check_folder_members(session, submission),
        *_plan_versions(request, latest, plan),
        *_check_not_submission_set_member(session, request),
        *_plan_status_updates(session, request, latest, plan),
    ]
    if errors:
        return Updated(RegistryResponse.from_errors(errors))
    _plan_propagation(session, request, latest, plan)
    stored = _store(session, request, plan, now(), uuid_factory)
    _apply_status_changes(session, plan.status_changes)
    session.flush()
    deprecated = tuple(
        c.entry_uuid
        for c in plan.status_changes
        if c.target == Target.DOCUMENT_ENTRY and c.status == DEPRECATED
    )
    return Updated(
        RegistryResponse.from_errors([]),
        patient_id=ss.patient_id,
        stored=tuple(stored),
        deprecated=deprecated,
        status_changed=tuple(dict.fromkeys(c.entry_uuid for c in plan.status_changes)),
    )


def _store(
    session: Session,
    request: _Request,
    plan: UpdatePlan,
    now: str,
    uuid_factory: Callable[[], str],
) -> list[str]:
    submission = request.submission
    versioned = replace(
        submission,
        document_entries=tuple(
            replace(d, version=plan.versions[d.entry_uuid]) for d in submission.document_entries
        ),
        folders=tuple(replace(f, version=plan.versions[f.entry_uuid]) for f in submission.folders),
        associations=(*submission.associations, *plan.propagated),
    )
    return register.store_submission(
        session, versioned, LifecyclePlan(folder_joins=plan.folder_joins), now, uuid_factory
    )


def _apply_status_changes(session: Session, changes: list[StatusChange]) -> None:
    # in order: a new version's inherited status first, then the requested changes
    for change in changes:
        table = _TABLES[change.target]
        session.execute(
            update(table).where(table.entry_uuid == change.entry_uuid).values(status=change.status)
        )


def availability_update(
    submission_set: SubmissionSet,
    target: str,
    original_status: str,
    new_status: str,
    *,
    uuid_factory: Callable[[], str] = register.new_uuid,
) -> Submission:
    """An ITI-57 request that changes the status of one DocumentEntry, Folder or
    Association (ITI TF-2 3.57.4.1.3.3.2): ``submission_set`` (complete, for the
    patient of ``target``) and its UpdateAvailabilityStatus Association."""
    association = Association(
        uuid_factory(),
        AssociationType.UPDATE_AVAILABILITY_STATUS,
        submission_set.entry_uuid,
        target,
        original_status=original_status,
        new_status=new_status,
    )
    return Submission(submission_set=submission_set, associations=(association,))


def new_version(
    entry: DocumentEntry,
    previous_version: str,
    submission_set: SubmissionSet,
    *,
    propagate: bool = True,
    uuid_factory: Callable[[], str] = register.new_uuid,
) -> Submission:
    """An ITI-57 request that makes ``entry`` the next version of its logical
    DocumentEntry (ITI TF-2 3.57.4.1.3.3.1): ``entry.logical_id`` names it, the entry
    gets a new entryUUID and the SubmissionSet's HasMember its PreviousVersion."""
    versioned = replace(entry, entry_uuid=uuid_factory(), version=None)
    member = Association(
        uuid_factory(),
        AssociationType.HAS_MEMBER,
        submission_set.entry_uuid,
        versioned.entry_uuid,
        submission_set_status=SUBMISSION_SET_STATUS_ORIGINAL,
        previous_version=previous_version,
        association_propagation=None if propagate else NO_PROPAGATION,
    )
    return Submission(
        submission_set=submission_set, document_entries=(versioned,), associations=(member,)
    )


__all__ = [
    "DOCUMENT_ENTRY_FIXED",
    "FOLDER_FIXED",
    "NO_PROPAGATION",
    "TRANSITIONS",
    "StatusChange",
    "Target",
    "UpdatePlan",
    "Updated",
    "availability_update",
    "new_version",
    "update_document_set",
]
