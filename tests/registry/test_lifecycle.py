"""Relationships against stored state (ITI TF-2 3.42.4.1.3.5, ITI TF-3 4.2.2.2)."""

from __future__ import annotations

import pytest
from registry_builders import (
    OTHER_PATIENT,
    document_entry,
    folder,
    known_patients,
    new_uuid,
    relationship,
    submit,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.model import DocumentEntry, Submission
from ebxml.vocabulary import AssociationType, AvailabilityStatus
from registry.lifecycle import RELATIONSHIPS
from registry.register import register_document_set
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow

RPLC = AssociationType.RPLC


@pytest.fixture(autouse=True)
def _patients(session: Session) -> None:
    known_patients(session)


def register(session: Session, submission: Submission) -> list[ErrorCode]:
    response = register_document_set(session, submission)
    if response.ok:
        session.commit()
    else:
        session.rollback()
    return [e.code for e in response.errors]


def status(session: Session, entry: DocumentEntry) -> str:
    return session.scalar(
        select(DocumentEntryRow.status).where(DocumentEntryRow.entry_uuid == entry.entry_uuid)
    )


def stored(session: Session, *, folders: tuple = ()) -> DocumentEntry:  # noqa: ANN001
    entry = document_entry()
    assert register(session, submit(entry, folders=folders)) == []
    return entry


def replace_with(
    kind: str, original: DocumentEntry, patient: str | None = None
) -> tuple[Submission, DocumentEntry]:
    replacement = document_entry(patient) if patient else document_entry()
    sub = submit(
        replacement,
        patient=replacement.patient_id,
        extra=(relationship(kind, replacement, original.entry_uuid),),
    )
    return sub, replacement


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_target_must_exist(session: Session, kind: str) -> None:
    replacement = document_entry()
    sub = submit(replacement, extra=(relationship(kind, replacement, new_uuid()),))
    assert register(session, sub) == [ErrorCode.UnresolvedReferenceException]


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_to_stored_approved_document_is_accepted(session: Session, kind: str) -> None:
    sub, _ = replace_with(kind, stored(session))
    assert register(session, sub) == []


def test_rplc_deprecates_original(session: Session) -> None:
    original = stored(session)
    sub, replacement = replace_with(RPLC, original)
    register(session, sub)
    assert status(session, original) == AvailabilityStatus.DEPRECATED
    assert status(session, replacement) == AvailabilityStatus.APPROVED


def test_xfrm_rplc_deprecates_original(session: Session) -> None:
    original = stored(session)
    sub, _ = replace_with(AssociationType.XFRM_RPLC, original)
    register(session, sub)
    assert status(session, original) == AvailabilityStatus.DEPRECATED


@pytest.mark.parametrize(
    "kind", [AssociationType.APND, AssociationType.XFRM, AssociationType.SIGNS]
)
def test_non_replacing_relationship_keeps_original_approved(session: Session, kind: str) -> None:
    original = stored(session)
    sub, _ = replace_with(kind, original)
    register(session, sub)
    assert status(session, original) == AvailabilityStatus.APPROVED


@pytest.mark.parametrize("kind", [AssociationType.APND, AssociationType.XFRM])
def test_rplc_deprecates_addenda_and_transforms_of_original(session: Session, kind: str) -> None:
    original = stored(session)
    child_sub, child = replace_with(kind, original)
    register(session, child_sub)
    sub, _ = replace_with(RPLC, original)
    assert register(session, sub) == []
    assert status(session, child) == AvailabilityStatus.DEPRECATED


def test_rplc_of_deprecated_document_is_refused(session: Session) -> None:
    original = stored(session)
    first, _ = replace_with(RPLC, original)
    register(session, first)
    second, _ = replace_with(RPLC, original)
    assert register(session, second) == [ErrorCode.XDSRegistryDeprecatedDocumentError]


def test_rplc_of_other_patients_document_is_refused(session: Session) -> None:
    original = stored(session)
    sub, _ = replace_with(RPLC, original, patient=OTHER_PATIENT)
    assert register(session, sub) == [ErrorCode.XDSPatientIdDoesNotMatch]


def test_refused_rplc_leaves_original_approved(session: Session) -> None:
    original = stored(session)
    sub, _ = replace_with(RPLC, original, patient=OTHER_PATIENT)
    register(session, sub)
    assert status(session, original) == AvailabilityStatus.APPROVED


def test_rplc_after_merge_matches_surviving_patient(session: Session) -> None:
    from registry.patients import merge_patients

    original = stored(session)  # of PATIENT
    merge_patients(session, OTHER_PATIENT, original.patient_id)
    session.commit()
    sub, _ = replace_with(RPLC, original, patient=OTHER_PATIENT)
    assert register(session, sub) == []


def test_replacement_joins_original_folders(session: Session) -> None:
    f = folder()
    original = stored(session, folders=(f,))
    sub, replacement = replace_with(RPLC, original)
    register(session, sub)
    members = session.scalars(
        select(AssociationRow.target_uuid).where(
            AssociationRow.source_uuid == f.entry_uuid,
            AssociationRow.association_type == AssociationType.HAS_MEMBER,
        )
    ).all()
    assert set(members) == {original.entry_uuid, replacement.entry_uuid}


def test_replacement_folder_membership_is_member_of_submission_set(session: Session) -> None:
    f = folder()
    original = stored(session, folders=(f,))
    sub, replacement = replace_with(RPLC, original)
    register(session, sub)
    membership = session.scalar(
        select(AssociationRow.entry_uuid).where(
            AssociationRow.source_uuid == f.entry_uuid,
            AssociationRow.target_uuid == replacement.entry_uuid,
        )
    )
    ss_members = session.scalars(
        select(AssociationRow.target_uuid).where(
            AssociationRow.source_uuid == sub.submission_set.entry_uuid
        )
    ).all()
    assert membership in ss_members


def test_replacement_joining_folder_updates_its_last_update_time(session: Session) -> None:
    f = folder()
    original = stored(session, folders=(f,))
    session.execute(FolderRow.__table__.update().values(last_update_time="20000101000000"))
    session.commit()
    sub, _ = replace_with(RPLC, original)
    register(session, sub)
    assert session.scalar(select(FolderRow.last_update_time)) != "20000101000000"
