"""Folders (ITI TF-3 4.2.2.1.3-4, 4.2.3.4): created in a submission, documents added to
existing Folders by later submissions, lastUpdateTime kept by the registry."""

from __future__ import annotations

from dataclasses import replace

import pytest
from registry_builders import (
    OTHER_PATIENT,
    document_entry,
    folder,
    has_member,
    known_patients,
    new_uuid,
    submission_set,
    submit,
)
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.model import Code, Folder, Submission
from ebxml.vocabulary import SUBMISSION_SET_STATUS_REFERENCE, AvailabilityStatus
from registry.register import register_submission, stored_folder
from registry.tables import AssociationRow, FolderCodeRow, FolderRow

CREATED = "20240105121500"
LATER = "20240106080000"


@pytest.fixture(autouse=True)
def _patients(session: Session) -> None:
    known_patients(session)


def register(session: Session, submission: Submission, now: str = CREATED) -> list[ErrorCode]:
    outcome = register_submission(session, submission, now=lambda: now)
    if outcome.response.ok:
        session.commit()
    else:
        session.rollback()
    return [e.code for e in outcome.response.errors]


def stored_row(session: Session, f: Folder) -> FolderRow:
    return session.scalars(
        select(FolderRow)
        .where(FolderRow.entry_uuid == f.entry_uuid)
        .execution_options(populate_existing=True)
    ).one()


def existing_folder(session: Session) -> Folder:
    f = folder()
    assert register(session, submit(folders=(f,))) == []
    return f


def add_to_folder(folder_uuid: str, patient: str | None = None) -> Submission:
    """ITI TF-3 4.2.2.1.4: a new DocumentEntry put into a stored Folder: the Folder's
    HasMember and the SubmissionSet's HasMember to that association."""
    entry = document_entry(patient) if patient else document_entry()
    ss = submission_set(entry.patient_id)
    membership = has_member(folder_uuid, entry.entry_uuid)
    return submit(
        entry,
        ss=ss,
        patient=entry.patient_id,
        extra=(membership, has_member(ss.entry_uuid, membership.entry_uuid)),
    )


def test_registry_sets_last_update_time_of_new_folder(session: Session) -> None:
    # ITI TF-3 4.2.3.4.6: lastUpdateTime is set by the registry, a submitted one replaced
    f = folder(last_update_time="19990101000000")
    assert register(session, submit(folders=(f,))) == []
    assert stored_row(session, f).last_update_time == CREATED


def test_new_folder_metadata_carries_registry_last_update_time(session: Session) -> None:
    f = folder(last_update_time="19990101000000")
    register(session, submit(folders=(f,)))
    assert stored_folder(stored_row(session, f).xml).last_update_time == CREATED


def test_new_folder_metadata_is_approved(session: Session) -> None:
    f = folder()
    register(session, submit(folders=(f,)))
    assert stored_folder(stored_row(session, f).xml).availability_status == (
        AvailabilityStatus.APPROVED
    )


def test_folder_codes_are_stored(session: Session) -> None:
    codes = (
        Code("Referrals", "1.3.6.1.4.1.21367.2017.3"),
        Code("Allergy", "1.3.6.1.4.1.21367.2017.3"),
    )
    f = folder(code_list=codes)
    register(session, submit(folders=(f,)))
    stored = session.execute(
        select(FolderCodeRow.code, FolderCodeRow.scheme).where(
            FolderCodeRow.folder_id == stored_row(session, f).id
        )
    ).all()
    assert set(stored) == {(c.code, c.scheme) for c in codes}


def test_empty_folder_may_be_created(session: Session) -> None:
    # ITI TF-3 4.2.2.1.3: a Folder may be submitted with no documents in it
    f = folder()
    ss = submission_set()
    sub = Submission(ss, folders=(f,), associations=(has_member(ss.entry_uuid, f.entry_uuid),))
    assert register(session, sub) == []


def test_document_is_added_to_existing_folder(session: Session) -> None:
    f = existing_folder(session)
    sub = add_to_folder(f.entry_uuid)
    assert register(session, sub, LATER) == []
    members = session.scalars(
        select(AssociationRow.target_uuid).where(AssociationRow.source_uuid == f.entry_uuid)
    ).all()
    assert sub.document_entries[0].entry_uuid in members


def test_adding_to_folder_updates_last_update_time_column(session: Session) -> None:
    f = existing_folder(session)
    register(session, add_to_folder(f.entry_uuid), LATER)
    row = stored_row(session, f)
    assert (row.last_update_time, row.last_update_time_key) == (LATER, LATER)


def test_adding_to_folder_updates_last_update_time_in_metadata(session: Session) -> None:
    f = existing_folder(session)
    register(session, add_to_folder(f.entry_uuid), LATER)
    assert stored_folder(stored_row(session, f).xml).last_update_time == LATER


def test_adding_to_folder_keeps_the_rest_of_its_metadata(session: Session) -> None:
    f = existing_folder(session)
    before = stored_folder(stored_row(session, f).xml)
    register(session, add_to_folder(f.entry_uuid), LATER)
    after = stored_folder(stored_row(session, f).xml)
    assert replace(after, last_update_time=before.last_update_time) == before


def test_existing_document_is_added_to_existing_folder(session: Session) -> None:
    f = existing_folder(session)
    entry = document_entry()
    assert register(session, submit(entry)) == []
    ss = submission_set()
    membership = has_member(f.entry_uuid, entry.entry_uuid)
    sub = Submission(
        ss,
        associations=(
            membership,
            has_member(ss.entry_uuid, membership.entry_uuid),
        ),
    )
    assert register(session, sub, LATER) == []
    assert stored_row(session, f).last_update_time == LATER


def test_existing_document_is_put_into_new_folder(session: Session) -> None:
    entry = document_entry()
    assert register(session, submit(entry)) == []
    f = folder()
    ss = submission_set()
    membership = has_member(f.entry_uuid, entry.entry_uuid)
    sub = Submission(
        ss,
        folders=(f,),
        associations=(
            has_member(ss.entry_uuid, f.entry_uuid),
            has_member(ss.entry_uuid, entry.entry_uuid, SUBMISSION_SET_STATUS_REFERENCE),
            membership,
            has_member(ss.entry_uuid, membership.entry_uuid),
        ),
    )
    assert register(session, sub) == []


def test_missing_folder_is_unresolved(session: Session) -> None:
    assert register(session, add_to_folder(new_uuid())) == [ErrorCode.UnresolvedReferenceException]


def test_folder_of_other_patient_is_refused(session: Session) -> None:
    f = existing_folder(session)
    assert register(session, add_to_folder(f.entry_uuid, OTHER_PATIENT)) == [
        ErrorCode.XDSPatientIdDoesNotMatch
    ]


def test_deprecated_folder_takes_no_new_member(session: Session) -> None:
    f = existing_folder(session)
    session.execute(
        update(FolderRow)
        .where(FolderRow.entry_uuid == f.entry_uuid)
        .values(status=AvailabilityStatus.DEPRECATED)
    )
    session.commit()
    assert register(session, add_to_folder(f.entry_uuid)) == [ErrorCode.XDSRegistryMetadataError]


def test_stored_document_entry_takes_no_member(session: Session) -> None:
    # ITI TF-3 4.2.2.1: only a SubmissionSet or a Folder has members
    entry = document_entry()
    assert register(session, submit(entry)) == []
    assert register(session, add_to_folder(entry.entry_uuid)) == [
        ErrorCode.XDSRegistryMetadataError
    ]


def test_refused_addition_leaves_folder_untouched(session: Session) -> None:
    f = existing_folder(session)
    register(session, add_to_folder(f.entry_uuid, OTHER_PATIENT), LATER)
    assert stored_row(session, f).last_update_time == CREATED
