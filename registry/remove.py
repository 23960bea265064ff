"""ITI-62 Remove Metadata at the Document Registry (RMD profile).

ITI TF-2 3.62.4.1.3 (RMD supplement): the Document Registry removes every object the
request names - DocumentEntries, SubmissionSets, Folders and Associations - or, when
one rule fails, nothing.  The errors are the two the transaction defines
(ITI TF-2 3.62.4.2.2):

- ``UnresolvedReferenceException``: an ObjectRef names no object of this registry;
- ``ReferencesExistException``: the removal would leave the registry inconsistent -
  an Association not in the request still references a removed object, a
  SubmissionSet's HasMember would be removed without its member, a SubmissionSet
  would be left without members, or a document relationship would be removed
  without the document that made it.

The rules are a table (:data:`ASSOCIATION_RULES`) checked against the stored objects;
everything is read and removed in the caller's session, one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.remove import RemoveObjectsRequest
from ebxml.vocabulary import RELATIONSHIP_TYPES, REPLACING_TYPES, AssociationType
from registry.tables import (
    AssociationRow,
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
)


class ObjectKind(StrEnum):
    DOCUMENT_ENTRY = "DocumentEntry"
    SUBMISSION_SET = "SubmissionSet"
    FOLDER = "Folder"
    ASSOCIATION = "Association"


# kind -> its table; the child tables a removal empties first (keyed by parent id column)
_TABLES = {
    ObjectKind.DOCUMENT_ENTRY: DocumentEntryRow,
    ObjectKind.SUBMISSION_SET: SubmissionSetRow,
    ObjectKind.FOLDER: FolderRow,
    ObjectKind.ASSOCIATION: AssociationRow,
}
_CHILDREN = {
    ObjectKind.DOCUMENT_ENTRY: (
        (DocumentEntryCodeRow, DocumentEntryCodeRow.document_entry_id),
        (DocumentEntryAuthorRow, DocumentEntryAuthorRow.document_entry_id),
        (DocumentEntryReferenceIdRow, DocumentEntryReferenceIdRow.document_entry_id),
    ),
    ObjectKind.SUBMISSION_SET: (
        (SubmissionSetAuthorRow, SubmissionSetAuthorRow.submission_set_id),
    ),
    ObjectKind.FOLDER: ((FolderCodeRow, FolderCodeRow.folder_id),),
    ObjectKind.ASSOCIATION: (),
}


@dataclass(frozen=True, slots=True)
class RemoveConfig:
    """``metadata_update``: the registry supports the Metadata Update option (ITI-57);
    without it an RPLC or XFRM_RPLC Association cannot be removed, since the
    replaced document would stay Deprecated with nothing replacing it."""

    metadata_update: bool = False


@dataclass(frozen=True, slots=True)
class StoredAssociation:
    entry_uuid: str
    association_type: str
    source_uuid: str
    target_uuid: str


@dataclass(frozen=True, slots=True)
class RemovalPlan:
    """What a request names, resolved against the stored objects."""

    kinds: dict[str, ObjectKind]  # every stored object the request names
    associations: dict[str, StoredAssociation]  # every Association touching one of them
    stored_kinds: dict[str, ObjectKind]  # the kind of every object those touch
    requested: frozenset[str]
    metadata_update: bool

    def kind(self, uuid: str) -> ObjectKind | None:
        return self.kinds.get(uuid) or self.stored_kinds.get(uuid)


@dataclass(frozen=True, slots=True)
class Removed:
    """The outcome: the response, the removed entryUUIDs and their patient ids."""

    response: RegistryResponse
    removed: tuple[str, ...] = ()
    patient_ids: tuple[str, ...] = ()


def _references_exist(context: str, location: str) -> RegistryError:
    return RegistryError(ErrorCode.ReferencesExistException, context, location)


# --- the rules on Associations in the request (ITI TF-2 3.62.4.1.3) ---------------------

AssociationRule = Callable[[StoredAssociation, RemovalPlan], RegistryError | None]


def _ss_member_goes_with_member(a: StoredAssociation, plan: RemovalPlan) -> RegistryError | None:
    # A SubmissionSet's HasMember is removed only together with its member
    # (DocumentEntry, Folder or Folder membership Association).
    if (
        a.association_type == AssociationType.HAS_MEMBER
        and plan.kind(a.source_uuid) == ObjectKind.SUBMISSION_SET
        and a.target_uuid not in plan.requested
    ):
        return _references_exist(
            f"HasMember {a.entry_uuid} of SubmissionSet {a.source_uuid} cannot be removed "
            f"without its member {a.target_uuid}",
            a.entry_uuid,
        )
    return None


def _is_document_relationship(a: StoredAssociation, plan: RemovalPlan) -> bool:
    return (
        a.association_type in RELATIONSHIP_TYPES
        and plan.kind(a.source_uuid) == ObjectKind.DOCUMENT_ENTRY
        and plan.kind(a.target_uuid) == ObjectKind.DOCUMENT_ENTRY
    )


def _relationship_goes_with_source(a: StoredAssociation, plan: RemovalPlan) -> RegistryError | None:
    # APND, XFRM, signs, IsSnapshotOf (and RPLC, XFRM_RPLC where allowed) are removed
    # only together with the DocumentEntry that made them, their sourceObject.
    if _is_document_relationship(a, plan) and a.source_uuid not in plan.requested:
        return _references_exist(
            f"{a.association_type} {a.entry_uuid} cannot be removed without its "
            f"source DocumentEntry {a.source_uuid}",
            a.entry_uuid,
        )
    return None


def _replacement_needs_metadata_update(
    a: StoredAssociation, plan: RemovalPlan
) -> RegistryError | None:
    if (
        not plan.metadata_update
        and a.association_type in REPLACING_TYPES
        and _is_document_relationship(a, plan)
    ):
        return _references_exist(
            f"{a.association_type} {a.entry_uuid} cannot be removed: the registry does "
            "not support the Metadata Update option",
            a.entry_uuid,
        )
    return None


ASSOCIATION_RULES: tuple[AssociationRule, ...] = (
    _ss_member_goes_with_member,
    _relationship_goes_with_source,
    _replacement_needs_metadata_update,
)


# --- reading what the request names ---------------------------------------------------


def _kinds_of(session: Session, uuids: Iterable[str]) -> dict[str, ObjectKind]:
    wanted = set(uuids)
    found: dict[str, ObjectKind] = {}
    if not wanted:
        return found
    for kind, table in _TABLES.items():
        for uuid in session.scalars(select(table.entry_uuid).where(table.entry_uuid.in_(wanted))):
            found[uuid] = kind
    return found


def _associations_touching(session: Session, uuids: set[str]) -> dict[str, StoredAssociation]:
    rows = session.execute(
        select(
            AssociationRow.entry_uuid,
            AssociationRow.association_type,
            AssociationRow.source_uuid,
            AssociationRow.target_uuid,
        ).where(
            or_(
                AssociationRow.entry_uuid.in_(uuids),
                AssociationRow.source_uuid.in_(uuids),
                AssociationRow.target_uuid.in_(uuids),
            )
        )
    ).all()
    return {row[0]: StoredAssociation(*row) for row in rows}


def _members_of(session: Session, submission_sets: set[str]) -> dict[str, set[str]]:
    members: dict[str, set[str]] = {uuid: set() for uuid in submission_sets}
    if submission_sets:
        rows = session.execute(
            select(AssociationRow.source_uuid, AssociationRow.entry_uuid).where(
                AssociationRow.source_uuid.in_(submission_sets),
                AssociationRow.association_type == AssociationType.HAS_MEMBER,
            )
        )
        for source, association in rows:
            members[source].add(association)
    return members


def plan_removal(
    session: Session, request: RemoveObjectsRequest, config: RemoveConfig
) -> tuple[RemovalPlan, list[RegistryError]]:
    """Resolve the request and check it; the errors say why it cannot be done."""
    requested = frozenset(request.object_refs)
    kinds = _kinds_of(session, requested)
    errors = [
        RegistryError(
            ErrorCode.UnresolvedReferenceException,
            f"{uuid} is not an object of this registry",
            uuid,
        )
        for uuid in request.object_refs
        if uuid not in kinds
    ]
    associations = _associations_touching(session, set(kinds))
    ends = {u for a in associations.values() for u in (a.source_uuid, a.target_uuid)}
    plan = RemovalPlan(
        kinds=kinds,
        associations=associations,
        stored_kinds=_kinds_of(session, ends - set(kinds)),
        requested=requested,
        metadata_update=config.metadata_update,
    )
    errors += _dangling_references(plan)
    errors += [
        error
        for uuid, kind in kinds.items()
        if kind == ObjectKind.ASSOCIATION
        for rule in ASSOCIATION_RULES
        if (error := rule(associations[uuid], plan)) is not None
    ]
    errors += _emptied_submission_sets(session, plan)
    return plan, errors


def _dangling_references(plan: RemovalPlan) -> list[RegistryError]:
    # No Association may be left referencing a removed object.
    errors: list[RegistryError] = []
    for a in plan.associations.values():
        if a.entry_uuid in plan.requested:
            continue
        for end in (a.source_uuid, a.target_uuid):
            if end in plan.kinds:
                errors.append(
                    _references_exist(
                        f"{plan.kinds[end]} {end} is still referenced by "
                        f"{a.association_type} {a.entry_uuid}, which is not removed",
                        end,
                    )
                )
    return errors


def _emptied_submission_sets(session: Session, plan: RemovalPlan) -> list[RegistryError]:
    # A SubmissionSet that stays is not left without any member.
    touched = {
        a.source_uuid
        for uuid, a in plan.associations.items()
        if uuid in plan.requested
        and a.association_type == AssociationType.HAS_MEMBER
        and plan.kind(a.source_uuid) == ObjectKind.SUBMISSION_SET
        and a.source_uuid not in plan.requested
    }
    return [
        _references_exist(
            f"SubmissionSet {ss} would be left without members; remove it as well", ss
        )
        for ss, members in _members_of(session, touched).items()
        if members <= plan.requested
    ]


# --- removing ---------------------------------------------------------------------------


def _patient_ids(session: Session, plan: RemovalPlan) -> tuple[str, ...]:
    found: list[str] = []
    for kind in (ObjectKind.DOCUMENT_ENTRY, ObjectKind.SUBMISSION_SET, ObjectKind.FOLDER):
        table = _TABLES[kind]
        uuids = [u for u, k in plan.kinds.items() if k == kind]
        if uuids:
            for patient in session.scalars(
                select(table.patient_id).where(table.entry_uuid.in_(uuids)).distinct()
            ):
                if patient not in found:
                    found.append(patient)
    return tuple(found)


def _delete(session: Session, plan: RemovalPlan) -> None:
    for kind in (
        ObjectKind.ASSOCIATION,
        ObjectKind.DOCUMENT_ENTRY,
        ObjectKind.FOLDER,
        ObjectKind.SUBMISSION_SET,
    ):
        uuids = [u for u, k in plan.kinds.items() if k == kind]
        if not uuids:
            continue
        table = _TABLES[kind]
        ids = select(table.id).where(table.entry_uuid.in_(uuids)).scalar_subquery()
        for child, parent_id in _CHILDREN[kind]:
            session.execute(delete(child).where(parent_id.in_(ids)))
        session.execute(delete(table).where(table.entry_uuid.in_(uuids)))
    session.flush()


def remove_metadata(
    session: Session, request: RemoveObjectsRequest, config: RemoveConfig | None = None
) -> Removed:
    """ITI-62 in ``session``: all named objects removed, or none and the errors why.
    The caller commits when ``response.ok``."""
    plan, errors = plan_removal(session, request, config or RemoveConfig())
    if errors:
        return Removed(RegistryResponse.from_errors(errors))
    patients = _patient_ids(session, plan)
    _delete(session, plan)
    return Removed(RegistryResponse.from_errors([]), tuple(request.object_refs), patients)


__all__ = [
    "ASSOCIATION_RULES",
    "ObjectKind",
    "RemovalPlan",
    "RemoveConfig",
    "Removed",
    "StoredAssociation",
    "plan_removal",
    "remove_metadata",
]
