"""Patients of the affinity domain and their merges (ITI-8 / ITI-44 Patient Identity Feed).

ITI TF-2 3.8.4.1.3: the Document Registry accepts metadata only for patient ids it
received from the Patient Identity Source (``is_known``).

Merges (ITI TF-2 3.8.4.2.3): the subsumed id is merged into the surviving one.  xdsi
*re-points* the stored objects: every DocumentEntry, SubmissionSet and Folder whose
``patient_id`` column holds the subsumed id gets the surviving id, so a query stays
one indexed statement on one id.  The merge itself is recorded in ``patient_merge``
(subsumed -> surviving), which keeps the history needed to answer
``resolve_for_query`` and to refuse the subsumed id from then on.  The canonical
xml of each object keeps the patient id as it was submitted.

Merge chains: A merged into B, then B into C.  After the second merge every object of
A and B carries C; ``resolve_for_query(C)`` is [C, B, A]; A and B resolve to [].
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.serialize import with_patient_id
from registry.locks import lock_patients
from registry.tables import (
    DocumentEntryRow,
    FolderRow,
    PatientMergeRow,
    PatientRow,
    SubmissionSetRow,
)

# the tables whose patient_id column a merge re-points
_PATIENT_OBJECT_TABLES = (DocumentEntryRow, SubmissionSetRow, FolderRow)


class PatientMergeError(Exception):
    """A merge the Patient Identity Feed must reject (ITI TF-2 3.8.4.2.3); ``reason``
    says why, for the acknowledgement's error text."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _patient(session: Session, patient_id: str) -> PatientRow | None:
    return session.scalars(select(PatientRow).where(PatientRow.patient_id == patient_id)).first()


def _surviving_of(session: Session, patient_id: str) -> str | None:
    return session.scalars(
        select(PatientMergeRow.surviving_id).where(PatientMergeRow.subsumed_id == patient_id)
    ).first()


def register_patient(
    session: Session, patient_id: str, demographics: dict[str, Any] | None = None
) -> bool:
    """Make ``patient_id`` known (ITI-8 A01/A04/A05).  Idempotent: True if it is new.

    An id already known keeps its demographics unless new ones are given.
    """
    row = _patient(session, patient_id)
    if row is not None:
        if demographics is not None:
            row.demographics = demographics
            row.updated = datetime.now(UTC)
        return False
    session.add(PatientRow(patient_id=patient_id, demographics=demographics))
    session.flush()
    return True


def update_patient(session: Session, patient_id: str, demographics: dict[str, Any] | None) -> bool:
    """Replace the demographics of a registered patient (ITI-8 A08); False if unknown."""
    row = _patient(session, patient_id)
    if row is None:
        return False
    row.demographics = demographics
    row.updated = datetime.now(UTC)
    session.flush()
    return True


def is_known(session: Session, patient_id: str) -> bool:
    """Registered through the feed and not subsumed by a merge."""
    return _patient(session, patient_id) is not None and _surviving_of(session, patient_id) is None


def merge_patients(session: Session, surviving_id: str, subsumed_id: str) -> None:
    """Merge ``subsumed_id`` into ``surviving_id`` (ITI-8 A40, ITI-44 merge).

    Rejected with :class:`PatientMergeError` when the ids are equal, when the
    surviving id is not known (never registered, or itself subsumed), or when the
    subsumed id was merged before.  A subsumed id the feed never registered is
    accepted: it is recorded, so submissions on it are refused from then on.
    """
    # registrations for either id wait for the merge, and it for them (registry.locks)
    lock_patients(session, [surviving_id, subsumed_id])
    if surviving_id == subsumed_id:
        raise PatientMergeError(f"surviving and subsumed patient id are the same: {surviving_id}")
    if (earlier := _surviving_of(session, subsumed_id)) is not None:
        raise PatientMergeError(f"patient id {subsumed_id} was already merged into {earlier}")
    if not is_known(session, surviving_id):
        raise PatientMergeError(f"surviving patient id {surviving_id} is not known")
    if _patient(session, subsumed_id) is None:
        session.add(PatientRow(patient_id=subsumed_id))
    session.add(PatientMergeRow(subsumed_id=subsumed_id, surviving_id=surviving_id))
    for table in _PATIENT_OBJECT_TABLES:
        # ITI TF-2 3.8.4.2.3: the merged objects now belong to the surviving id, both in
        # the indexed column and in the metadata the registry answers with.
        rows = session.execute(
            select(table.id, table.xml).where(table.patient_id == subsumed_id)
        ).all()
        for row_id, xml in rows:
            session.execute(
                update(table)
                .where(table.id == row_id)
                .values(patient_id=surviving_id, xml=with_patient_id(xml, surviving_id))
            )
    session.flush()


def resolve_for_query(session: Session, patient_id: str) -> list[str]:
    """The ids a query on ``patient_id`` covers: itself and every id merged into it,
    transitively (breadth first).  A subsumed id covers nothing: []."""
    if _surviving_of(session, patient_id) is not None:
        return []
    resolved = [patient_id]
    frontier = [patient_id]
    while frontier:
        merged = session.scalars(
            select(PatientMergeRow.subsumed_id)
            .where(PatientMergeRow.surviving_id.in_(frontier))
            .order_by(PatientMergeRow.id)
        ).all()
        frontier = [m for m in merged if m not in resolved]
        resolved.extend(frontier)
    return resolved


__all__ = [
    "PatientMergeError",
    "is_known",
    "merge_patients",
    "register_patient",
    "resolve_for_query",
    "update_patient",
]
