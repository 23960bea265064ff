"""Patients known from the feed, and merges (ITI TF-2 3.8.4.2.3)."""

from __future__ import annotations

import pytest
from registry_builders import PATIENT, folder, known_patients, submit
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.patients import (
    PatientMergeError,
    is_known,
    merge_patients,
    register_patient,
    resolve_for_query,
    update_patient,
)
from registry.register import register_document_set
from registry.tables import DocumentEntryRow, FolderRow, PatientRow, SubmissionSetRow

A = "A^^^&1.2.3&ISO"
B = "B^^^&1.2.3&ISO"
C = "C^^^&1.2.3&ISO"


def test_register_patient_returns_true_when_new(session: Session) -> None:
    assert register_patient(session, A, {"name": "DOE^JOHN"}) is True


def test_register_patient_is_idempotent(session: Session) -> None:
    register_patient(session, A)
    assert register_patient(session, A) is False
    assert len(session.scalars(select(PatientRow)).all()) == 1


def test_register_patient_again_keeps_demographics_when_none_given(session: Session) -> None:
    register_patient(session, A, {"name": "DOE^JOHN"})
    register_patient(session, A)
    assert session.scalars(select(PatientRow.demographics)).one() == {"name": "DOE^JOHN"}


def test_update_patient_replaces_demographics(session: Session) -> None:
    register_patient(session, A, {"name": "DOE^JOHN"})
    assert update_patient(session, A, {"name": "DOE^JANE"}) is True
    assert session.scalars(select(PatientRow.demographics)).one() == {"name": "DOE^JANE"}


def test_update_unknown_patient_is_false(session: Session) -> None:
    assert update_patient(session, A, {"name": "DOE^JOHN"}) is False


def test_unregistered_patient_is_not_known(session: Session) -> None:
    assert is_known(session, A) is False


def test_registered_patient_is_known(session: Session) -> None:
    register_patient(session, A)
    assert is_known(session, A) is True


def test_subsumed_patient_is_no_longer_known(session: Session) -> None:
    register_patient(session, A)
    register_patient(session, B)
    merge_patients(session, B, A)
    assert is_known(session, A) is False
    assert is_known(session, B) is True


def test_merge_into_unknown_surviving_id_is_rejected(session: Session) -> None:
    register_patient(session, A)
    with pytest.raises(PatientMergeError, match="not known"):
        merge_patients(session, B, A)


def test_merge_into_itself_is_rejected(session: Session) -> None:
    register_patient(session, A)
    with pytest.raises(PatientMergeError, match="same"):
        merge_patients(session, A, A)


def test_merge_of_already_merged_id_is_rejected(session: Session) -> None:
    for p in (A, B, C):
        register_patient(session, p)
    merge_patients(session, B, A)
    with pytest.raises(PatientMergeError, match="already merged"):
        merge_patients(session, C, A)


def test_merge_into_subsumed_id_is_rejected(session: Session) -> None:
    for p in (A, B, C):
        register_patient(session, p)
    merge_patients(session, B, A)
    with pytest.raises(PatientMergeError, match="not known"):
        merge_patients(session, A, C)


def test_merge_of_unregistered_subsumed_id_is_recorded(session: Session) -> None:
    register_patient(session, B)
    merge_patients(session, B, A)
    assert is_known(session, A) is False
    assert resolve_for_query(session, B) == [B, A]


def test_resolve_unmerged_id_is_itself(session: Session) -> None:
    register_patient(session, A)
    assert resolve_for_query(session, A) == [A]


def test_merge_chain_surviving_id_resolves_all(session: Session) -> None:
    for p in (A, B, C):
        register_patient(session, p)
    merge_patients(session, B, A)
    merge_patients(session, C, B)
    assert resolve_for_query(session, C) == [C, B, A]


def test_merge_chain_subsumed_ids_resolve_to_nothing(session: Session) -> None:
    for p in (A, B, C):
        register_patient(session, p)
    merge_patients(session, B, A)
    merge_patients(session, C, B)
    assert resolve_for_query(session, A) == []
    assert resolve_for_query(session, B) == []


def test_merge_chain_repoints_stored_objects_to_last_survivor(session: Session) -> None:
    for p in (A, B, C, PATIENT):
        register_patient(session, p)
    for p in (A, B):
        assert register_document_set(session, submit(folders=(folder(p),), patient=p)).ok
    merge_patients(session, B, A)
    merge_patients(session, C, B)
    for table in (DocumentEntryRow, SubmissionSetRow, FolderRow):
        assert set(session.scalars(select(table.patient_id))) == {C}


def test_merge_leaves_other_patients_alone(session: Session) -> None:
    known_patients(session, A, B, PATIENT)
    assert register_document_set(session, submit(patient=PATIENT)).ok
    merge_patients(session, B, A)
    assert set(session.scalars(select(DocumentEntryRow.patient_id))) == {PATIENT}


def test_merge_rewrites_the_patient_id_in_the_stored_metadata(session: Session) -> None:
    # ITI TF-2 3.8.4.2.3: what the registry answers after a merge names the surviving id
    known_patients(session, A, B)
    assert register_document_set(session, submit(folders=(folder(A),), patient=A)).ok
    merge_patients(session, B, A)
    for table in (DocumentEntryRow, SubmissionSetRow, FolderRow):
        for xml in session.scalars(select(table.xml)):
            assert f'value="{B}"'.replace("&", "&amp;").encode() in xml
            assert f'value="{A}"'.replace("&", "&amp;").encode() not in xml
