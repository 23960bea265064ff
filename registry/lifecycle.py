"""Document relationships against stored state: RPLC, XFRM, APND, XFRM_RPLC, signs.

ITI TF-2 3.42.4.1.3.5 and ITI TF-3 4.2.2.2: the target of a relationship is a
DocumentEntry already in the registry, Approved, of the same patient.  A replacing
relationship (RPLC, XFRM_RPLC) deprecates the original and the addenda and
transformations made of it, and the replacement joins every Folder the original is
in.  The rules per association type are a table (``RELATIONSHIPS``); merges need no
special case because a merge re-points stored patient ids (``registry.patients``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import Association, DocumentEntry, Submission
from ebxml.vocabulary import AssociationType, AvailabilityStatus
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow


@dataclass(frozen=True, slots=True)
class Relationship:
    """What registering one relationship of this type does to its stored target."""

    replaces: bool  # target and its APND/XFRM children become Deprecated; folders carry over


# ITI TF-3 4.2.2.2: the relationship association types xdsi checks against the registry
RELATIONSHIPS: dict[str, Relationship] = {
    AssociationType.RPLC: Relationship(replaces=True),
    AssociationType.XFRM_RPLC: Relationship(replaces=True),
    AssociationType.APND: Relationship(replaces=False),
    AssociationType.XFRM: Relationship(replaces=False),
    AssociationType.SIGNS: Relationship(replaces=False),
}

# ITI TF-3 4.2.2.2.1: replacing a document also deprecates these children of it
DEPRECATED_WITH_ORIGINAL = (AssociationType.APND, AssociationType.XFRM)


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


def check_relationships(
    session: Session, submission: Submission
) -> tuple[list[RegistryError], LifecyclePlan]:
    """Every finding against stored state for the submission's relationships, and
    the plan to apply when there are none."""
    errors: list[RegistryError] = []
    plan = LifecyclePlan()
    entries = {d.entry_uuid: d for d in submission.document_entries}
    relationships = [a for a in submission.associations if a.association_type in RELATIONSHIPS]
    targets = _stored_entries(session, {a.target for a in relationships})
    for association in relationships:
        found = _check_one(association, entries.get(association.source), targets)
        errors.extend(found)
        if not found and RELATIONSHIPS[association.association_type].replaces:
            _plan_replacement(session, plan, association)
    return errors, plan


def _check_one(
    association: Association,
    source: DocumentEntry | None,
    targets: dict[str, DocumentEntryRow],
) -> list[RegistryError]:
    target = targets.get(association.target)
    location = association.entry_uuid
    if target is None:
        # ITI TF-2 3.42.4.1.3.5: the original must be in the registry
        return [
            RegistryError(
                ErrorCode.UnresolvedReferenceException,
                f"{association.association_type} target {association.target} is not a "
                "DocumentEntry in the registry",
                location,
            )
        ]
    errors = []
    if target.status != AvailabilityStatus.APPROVED:
        errors.append(
            RegistryError(
                ErrorCode.XDSRegistryDeprecatedDocumentError,
                f"{association.association_type} target {association.target} is not Approved",
                location,
            )
        )
    if source is not None and source.patient_id != target.patient_id:
        errors.append(
            RegistryError(
                ErrorCode.XDSPatientIdDoesNotMatch,
                f"{association.association_type} source patient {source.patient_id} differs "
                f"from target {association.target} patient {target.patient_id}",
                location,
            )
        )
    return errors


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
    "RELATIONSHIPS",
    "FolderJoin",
    "LifecyclePlan",
    "Relationship",
    "check_relationships",
    "deprecate",
]
