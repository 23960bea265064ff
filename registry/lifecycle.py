"""Document relationships against stored state: RPLC, XFRM, APND, XFRM_RPLC, signs and
IsSnapshotOf.

ITI TF-2 3.42.4.1.3.5 and ITI TF-3 4.2.2.2: the target of a relationship is a
DocumentEntry already in the registry (UnresolvedReferenceException otherwise),
Approved (XDSRegistryDeprecatedDocumentError), of the same patient
(XDSPatientIdDoesNotMatch).  What each association type adds is a row of
``RELATIONSHIPS``:

* RPLC, XFRM_RPLC replace: the original and the addenda and transformations made of it
  become Deprecated, and the replacement joins every Folder the original is in
  (ITI TF-3 4.2.2.2.3, 4.2.2.2.5).  An On-Demand entry is replaced only by an On-Demand
  entry and a stable one only by a stable one (ITI TF-2 3.61.4.1.3).
* APND, XFRM leave the original Approved (ITI TF-3 4.2.2.2.2, 4.2.2.2.4).
* signs goes from a signature to the DocumentEntry it signs, which may be submitted with
  it (ITI TF-3 4.2.2.2.6); the signature's formatCode (DSG, ITI TF-3 5.5, or an
  affinity domain's older one) is not judged here.
* IsSnapshotOf goes from a stable entry to the On-Demand entry it is a snapshot of; the
  On-Demand entry stays Approved (ITI TF-3 4.2.2.2.7, Persistence of Retrieved
  Documents option).

Merges need no special case because a merge re-points stored patient ids
(``registry.patients``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import Association, DocumentEntry, Submission
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    DOC_ENTRY_STABLE,
    AssociationType,
    AvailabilityStatus,
)
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow

STABLE = frozenset({DOC_ENTRY_STABLE})
ON_DEMAND = frozenset({DOC_ENTRY_ON_DEMAND})


@dataclass(frozen=True, slots=True)
class Relationship:
    """What one relationship type requires of its ends and does to its stored target."""

    replaces: bool = False  # target and its APND/XFRM children become Deprecated
    same_object_type: bool = False  # target has the source's objectType
    target_types: frozenset[str] | None = None  # objectTypes the target may have
    source_types: frozenset[str] | None = None  # objectTypes the source may have
    target_may_be_new: bool = False  # target may be a DocumentEntry of the submission


# ITI TF-3 4.2.2.2: the relationship association types checked against the registry
RELATIONSHIPS: dict[str, Relationship] = {
    AssociationType.RPLC: Relationship(replaces=True, same_object_type=True),
    AssociationType.XFRM_RPLC: Relationship(
        replaces=True, target_types=STABLE, source_types=STABLE
    ),
    AssociationType.APND: Relationship(target_types=STABLE, source_types=STABLE),
    AssociationType.XFRM: Relationship(target_types=STABLE, source_types=STABLE),
    AssociationType.SIGNS: Relationship(target_may_be_new=True),
    AssociationType.IS_SNAPSHOT_OF: Relationship(target_types=ON_DEMAND, source_types=STABLE),
}

# ITI TF-3 4.2.2.2.3: replacing a document also deprecates these children of it
DEPRECATED_WITH_ORIGINAL = (AssociationType.APND, AssociationType.XFRM)

# Human names of the objectTypes, for error messages
_TYPE_NAMES = {DOC_ENTRY_STABLE: "stable", DOC_ENTRY_ON_DEMAND: "On-Demand"}


@dataclass(frozen=True, slots=True)
class FolderJoin:
    """ITI TF-2 3.42.4.1.3.5: the replacement becomes a member of the original's folder."""

    folder_uuid: str
    replacement_uuid: str


@dataclass(slots=True)
class LifecyclePlan:
    """The status changes and folder memberships a submission causes."""

    deprecate: list[str] = field(default_factory=list)
    folder_joins: list[FolderJoin] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Target:
    """A relationship target as the checks need it, stored or in the submission."""

    status: str
    patient_id: str | None
    object_type: str
    stored: bool


def check_relationships(
    session: Session, submission: Submission
) -> tuple[list[RegistryError], LifecyclePlan]:
    """Every finding against stored state for the submission's relationships, and
    the plan to apply when there are none."""
    errors: list[RegistryError] = []
    plan = LifecyclePlan()
    entries = {d.entry_uuid: d for d in submission.document_entries}
    relationships = [a for a in submission.associations if a.association_type in RELATIONSHIPS]
    stored = _stored_entries(session, {a.target for a in relationships} - set(entries))
    for association in relationships:
        rule = RELATIONSHIPS[association.association_type]
        target = _target(association.target, rule, entries, stored)
        found = _check_one(association, rule, entries.get(association.source), target)
        errors.extend(found)
        if not found and rule.replaces:
            _plan_replacement(session, plan, association)
    return errors, plan


def _target(
    uuid: str,
    rule: Relationship,
    entries: dict[str, DocumentEntry],
    stored: dict[str, DocumentEntryRow],
) -> _Target | None:
    if uuid in stored:
        row = stored[uuid]
        return _Target(row.status, row.patient_id, row.object_type, stored=True)
    entry = entries.get(uuid)
    if entry is not None and rule.target_may_be_new:
        # ITI TF-3 4.2.2.2.6: a signature may be submitted with the document it signs
        return _Target(AvailabilityStatus.APPROVED, entry.patient_id, entry.object_type, False)
    return None


def _name(association: Association) -> str:
    return association.association_type.rsplit(":", 1)[-1]


def _check_one(
    association: Association,
    rule: Relationship,
    source: DocumentEntry | None,
    target: _Target | None,
) -> list[RegistryError]:
    kind, location = _name(association), association.entry_uuid
    if target is None:
        # ITI TF-2 3.42.4.1.3.5: the original must be in the registry
        return [
            RegistryError(
                ErrorCode.UnresolvedReferenceException,
                f"{kind} target {association.target} is not a DocumentEntry in the registry",
                location,
            )
        ]
    errors = []
    if target.status != AvailabilityStatus.APPROVED:
        errors.append(
            RegistryError(
                ErrorCode.XDSRegistryDeprecatedDocumentError,
                f"{kind} target {association.target} is not Approved",
                location,
            )
        )
    if source is None:  # validation refuses a source outside the submission
        return errors
    if source.patient_id != target.patient_id:
        errors.append(
            RegistryError(
                ErrorCode.XDSPatientIdDoesNotMatch,
                f"{kind} source patient {source.patient_id} differs from target "
                f"{association.target} patient {target.patient_id}",
                location,
            )
        )
    errors.extend(_object_type_errors(association, rule, source, target))
    return errors


def _object_type_errors(
    association: Association, rule: Relationship, source: DocumentEntry, target: _Target
) -> list[RegistryError]:
    kind, location = _name(association), association.entry_uuid
    wanted_target = {source.object_type} if rule.same_object_type else rule.target_types
    problems = []
    if rule.source_types is not None and source.object_type not in rule.source_types:
        problems.append(
            f"{kind} source {association.source} is a {_type_name(source.object_type)} "
            f"DocumentEntry; {_expected(rule.source_types)} expected"
        )
    if wanted_target is not None and target.object_type not in wanted_target:
        problems.append(
            f"{kind} target {association.target} is a {_type_name(target.object_type)} "
            f"DocumentEntry; {_expected(wanted_target)} expected"
        )
    # ITI TF-2 3.61.4.1.3, ITI TF-3 4.2.2.2.7: which kinds of entry each relationship links
    return [RegistryError(ErrorCode.XDSRegistryMetadataError, p, location) for p in problems]


def _type_name(object_type: str) -> str:
    return _TYPE_NAMES.get(object_type, object_type)


def _expected(types: Iterable[str]) -> str:
    return " or ".join(sorted(_type_name(t) for t in types))


def _stored_entries(session: Session, uuids: Iterable[str]) -> dict[str, DocumentEntryRow]:
    uuids = list(uuids)
    if not uuids:
        return {}
    rows = session.scalars(select(DocumentEntryRow).where(DocumentEntryRow.entry_uuid.in_(uuids)))
    return {row.entry_uuid: row for row in rows}


def _plan_replacement(session: Session, plan: LifecyclePlan, association: Association) -> None:
    original = association.target
    children = session.scalars(
        select(AssociationRow.source_uuid).where(
            AssociationRow.target_uuid == original,
            AssociationRow.association_type.in_(DEPRECATED_WITH_ORIGINAL),
        )
    ).all()
    plan.deprecate.extend(u for u in (original, *children) if u not in plan.deprecate)
    folders = session.scalars(
        select(AssociationRow.source_uuid)
        .join(FolderRow, FolderRow.entry_uuid == AssociationRow.source_uuid)
        .where(
            AssociationRow.target_uuid == original,
            AssociationRow.association_type == AssociationType.HAS_MEMBER,
            AssociationRow.status == AvailabilityStatus.APPROVED,
            FolderRow.status == AvailabilityStatus.APPROVED,
        )
        .order_by(AssociationRow.id)
    ).all()
    plan.folder_joins.extend(FolderJoin(f, association.source) for f in folders)


def deprecate(session: Session, entry_uuids: Iterable[str]) -> None:
    """Set Approved DocumentEntries to Deprecated (ITI TF-3 4.1.4)."""
    uuids = list(entry_uuids)
    if uuids:
        session.execute(
            update(DocumentEntryRow)
            .where(
                DocumentEntryRow.entry_uuid.in_(uuids),
                DocumentEntryRow.status == AvailabilityStatus.APPROVED,
            )
            .values(status=AvailabilityStatus.DEPRECATED)
        )


__all__ = [
    "DEPRECATED_WITH_ORIGINAL",
    "ON_DEMAND",
    "RELATIONSHIPS",
    "STABLE",
    "FolderJoin",
    "LifecyclePlan",
    "Relationship",
    "check_relationships",
    "deprecate",
]
