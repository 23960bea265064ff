"""ITI-42 against stored state (ITI TF-2 3.42.4.1.3): rows stored, uniqueId rules,
unknown patients, references, and all-or-nothing storage."""

from __future__ import annotations

from dataclasses import replace

import pytest
from lxml import etree
from registry_builders import (
    OTHER_HASH,
    OTHER_PATIENT,
    PATIENT,
    document_entry,
    folder,
    has_member,
    known_patients,
    new_uuid,
    submission_set,
    submit,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.model import Submission
from ebxml.vocabulary import NS_RIM, AvailabilityStatus, ResponseStatus
from registry.register import register_document_set, register_submission
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
    RegistryBase,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
)


@pytest.fixture(autouse=True)
def _patients(session: Session) -> None:
    known_patients(session)


def register(session: Session, submission: Submission) -> list[ErrorCode]:
    """Register and commit when accepted; the error codes of the response."""
    response = register_document_set(session, submission)
    if response.ok:
        session.commit()
    else:
        session.rollback()
    return [e.code for e in response.errors]


def count(session: Session, table: type) -> int:
    return session.scalar(select(func.count()).select_from(table))


def test_valid_submission_is_accepted(session: Session) -> None:
    response = register_document_set(session, submit())
    assert response.status == ResponseStatus.SUCCESS
    assert response.errors == ()


def test_document_entry_row_holds_query_columns(session: Session) -> None:
    entry = document_entry()
    sub = submit(entry)
    register(session, sub)
    row = session.scalars(select(DocumentEntryRow)).one()
    assert (row.entry_uuid, row.unique_id, row.patient_id) == (
        entry.entry_uuid,
        entry.unique_id,
        PATIENT,
    )
    assert row.status == AvailabilityStatus.APPROVED
    assert (row.class_code, row.class_code_scheme) == (
        entry.class_code.code,
        entry.class_code.scheme,
    )
    assert row.healthcare_facility_type_code == "RADDX"
    assert row.practice_setting_code_scheme == "SRT"
    assert (row.hash, row.size, row.repository_unique_id) == (
        entry.hash,
        1024,
        entry.repository_unique_id,
    )
    assert row.logical_id == entry.entry_uuid and row.version == "1"
    assert row.submission_set_uuid == sub.submission_set.entry_uuid


def test_document_entry_xml_is_its_canonical_leaf_class(session: Session) -> None:
    entry = document_entry()
    register(session, submit(entry))
    element = etree.fromstring(session.scalars(select(DocumentEntryRow.xml)).one())
    assert element.tag == f"{{{NS_RIM}}}ExtrinsicObject"
    assert element.get("id") == entry.entry_uuid


def test_every_object_is_stored_approved_whatever_the_submission_said(session: Session) -> None:
    submitted = AvailabilityStatus.SUBMITTED
    sub = submit(
        document_entry(availability_status=submitted),
        ss=submission_set(availability_status=submitted),
        folders=(folder(availability_status=submitted),),
    )
    sub = replace(
        sub, associations=tuple(replace(a, availability_status=submitted) for a in sub.associations)
    )
    assert register(session, sub) == []
    stored = [
        etree.fromstring(xml)
        for table in (DocumentEntryRow, SubmissionSetRow, FolderRow, AssociationRow)
        for xml in session.scalars(select(table.xml))
    ]
    assert len(stored) == 3 + len(sub.associations)
    assert {element.get("status") for element in stored} == {AvailabilityStatus.APPROVED}


def test_submission_without_submission_set_is_refused(session: Session) -> None:
    sub = replace(submit(), submission_set=None, associations=())
    assert register(session, sub) == [ErrorCode.XDSRegistryMetadataError]


def test_document_entry_times_get_sortable_keys(session: Session) -> None:
    register(session, submit(document_entry(service_start_time="2024")))
    row = session.scalars(select(DocumentEntryRow)).one()
    assert row.creation_time == "20240105120000"
    assert row.creation_time_key == "20240105120000"
    assert row.service_start_time_key == "20240000000000"


def test_document_entry_multi_valued_codes_are_child_rows(session: Session) -> None:
    register(session, submit())
    codes = session.execute(select(DocumentEntryCodeRow.kind, DocumentEntryCodeRow.code)).all()
    assert sorted(codes) == [
        (CODE_KIND_CONFIDENTIALITY, "N"),
        (CODE_KIND_EVENT, "CT"),
        (CODE_KIND_EVENT, "T-D3000"),
    ]


def test_document_entry_authors_and_reference_ids_are_child_rows(session: Session) -> None:
    register(session, submit())
    assert session.scalars(select(DocumentEntryAuthorRow.author_person)).all() == [
        "^Welby^Marcus^^^Dr"
    ]
    assert session.scalars(select(DocumentEntryReferenceIdRow.value)).all() == [
        "1.2.3.4.5^^^^urn:ihe:iti:xds:2016:studyInstanceUID"
    ]


def test_submission_set_row_is_stored(session: Session) -> None:
    sub = submit()
    register(session, sub)
    row = session.scalars(select(SubmissionSetRow)).one()
    ss = sub.submission_set
    assert (row.entry_uuid, row.unique_id, row.source_id) == (
        ss.entry_uuid,
        ss.unique_id,
        ss.source_id,
    )
    assert row.content_type_code == "Imaging"
    assert row.submission_time_key == "20240105121500"
    assert session.scalars(select(SubmissionSetAuthorRow.author_person)).all() == ["^Blanca^Jane"]


def test_folder_row_is_stored_with_codes_and_update_time(session: Session) -> None:
    f = folder()
    register(session, submit(folders=(f,)))
    row = session.scalars(select(FolderRow)).one()
    assert (row.entry_uuid, row.unique_id, row.status) == (
        f.entry_uuid,
        f.unique_id,
        AvailabilityStatus.APPROVED,
    )
    assert row.last_update_time is not None and len(row.last_update_time) == 14
    assert session.scalars(select(FolderCodeRow.code)).all() == ["Referrals"]


def test_association_rows_are_stored(session: Session) -> None:
    sub = submit(folders=(folder(),))
    register(session, sub)
    stored = set(session.scalars(select(AssociationRow.entry_uuid)))
    assert stored == {a.entry_uuid for a in sub.associations}


def test_association_keeps_submission_set_status(session: Session) -> None:
    sub = submit()
    register(session, sub)
    assert session.scalars(select(AssociationRow.submission_set_status)).one() == "Original"


def test_identical_document_resubmission_is_accepted(session: Session) -> None:
    entry = document_entry()
    register(session, submit(entry))
    again = replace(entry, entry_uuid=new_uuid())
    assert register(session, submit(again)) == []
    assert count(session, DocumentEntryRow) == 2


def test_resubmission_with_other_hash_is_refused(session: Session) -> None:
    entry = document_entry()
    register(session, submit(entry))
    again = replace(entry, entry_uuid=new_uuid(), hash=OTHER_HASH)
    assert register(session, submit(again)) == [ErrorCode.XDSNonIdenticalHash]


def test_resubmission_hash_compares_case_insensitively(session: Session) -> None:
    entry = document_entry()
    register(session, submit(entry))
    again = replace(entry, entry_uuid=new_uuid(), hash=entry.hash.upper())
    assert register(session, submit(again)) == []


def test_resubmission_with_other_size_is_refused(session: Session) -> None:
    entry = document_entry()
    register(session, submit(entry))
    again = replace(entry, entry_uuid=new_uuid(), size=2048)
    assert register(session, submit(again)) == [ErrorCode.XDSNonIdenticalSize]


def test_submission_set_unique_id_already_registered_is_refused(session: Session) -> None:
    first = submit()
    register(session, first)
    second = submit(ss=submission_set(unique_id=first.submission_set.unique_id))
    assert register(session, second) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


def test_submission_set_unique_id_equal_to_document_unique_id_is_refused(session: Session) -> None:
    first = submit()
    register(session, first)
    second = submit(ss=submission_set(unique_id=first.document_entries[0].unique_id))
    assert register(session, second) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


def test_folder_unique_id_equal_to_document_unique_id_is_refused(session: Session) -> None:
    first = submit()
    register(session, first)
    second = submit(folders=(folder(unique_id=first.document_entries[0].unique_id),))
    assert register(session, second) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


def test_folder_unique_id_equal_to_submission_set_unique_id_is_refused(session: Session) -> None:
    first = submit()
    register(session, first)
    second = submit(folders=(folder(unique_id=first.submission_set.unique_id),))
    assert register(session, second) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


def test_document_unique_id_equal_to_folder_unique_id_is_refused(session: Session) -> None:
    f = folder()
    register(session, submit(folders=(f,)))
    second = submit(document_entry(unique_id=f.unique_id))
    assert register(session, second) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


def test_entry_uuid_already_registered_is_refused(session: Session) -> None:
    entry = document_entry()
    register(session, submit(entry))
    again = replace(entry, unique_id="2.25.1")
    assert register(session, submit(again)) == [ErrorCode.XDSRegistryMetadataError]


def test_unknown_patient_is_refused(session: Session) -> None:
    response = register_document_set(session, submit(patient="NEW^^^&1.2.3&ISO"))
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownPatientId]
    assert "NEW^^^&1.2.3&ISO" in response.errors[0].context


def test_reference_to_stored_document_is_accepted(session: Session) -> None:
    first = submit()
    register(session, first)
    f = folder()
    stored = first.document_entries[0].entry_uuid
    membership = has_member(f.entry_uuid, stored)
    ss = submission_set()
    sub = Submission(
        submission_set=ss,
        folders=(f,),
        associations=(
            has_member(ss.entry_uuid, f.entry_uuid),
            membership,
            has_member(ss.entry_uuid, membership.entry_uuid),
        ),
    )
    assert register(session, sub) == []


def test_reference_to_missing_object_is_unresolved(session: Session) -> None:
    sub = submit(extra=(has_member(new_uuid(), new_uuid()),))
    ss_uuid = sub.submission_set.entry_uuid
    sub = replace(sub, associations=(*sub.associations, has_member(ss_uuid, new_uuid())))
    codes = register(session, sub)
    assert set(codes) == {ErrorCode.UnresolvedReferenceException}


def test_stored_folder_of_other_patient_cannot_take_document(session: Session) -> None:
    f = folder(OTHER_PATIENT)
    register(session, submit(folders=(f,), patient=OTHER_PATIENT))
    entry = document_entry()
    membership = has_member(f.entry_uuid, entry.entry_uuid)
    ss = submission_set()
    sub = submit(entry, ss=ss, extra=(membership, has_member(ss.entry_uuid, membership.entry_uuid)))
    assert register(session, sub) == [ErrorCode.XDSPatientIdDoesNotMatch]


def test_refused_submission_stores_nothing(session: Session) -> None:
    first = submit()
    register(session, first)
    before = {t.name: count(session, t) for t in RegistryBase.metadata.sorted_tables}
    second = submit(document_entry(), ss=submission_set(unique_id=first.submission_set.unique_id))
    register(session, second)
    after = {t.name: count(session, t) for t in RegistryBase.metadata.sorted_tables}
    assert after == before


def test_failure_after_inserts_leaves_nothing(engine, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """A failure after the rows were written (here: while deprecating) rolls them back."""
    from registry import lifecycle
    from registry.db import session_factory
    from registry.uow import UnitOfWork

    flushed = []

    def failing_deprecate(session: Session, entry_uuids: object) -> None:
        session.flush()
        flushed.append(count(session, DocumentEntryRow))
        raise RuntimeError("disk full")

    monkeypatch.setattr(lifecycle, "deprecate", failing_deprecate)
    factory = session_factory(engine, write=True)
    with pytest.raises(RuntimeError), UnitOfWork(factory) as uow:
        register_submission(uow.session, submit(document_entry(), document_entry()))
        uow.commit()
    assert flushed == [2]
    with factory() as session:
        counts = [count(session, t) for t in (DocumentEntryRow, SubmissionSetRow, AssociationRow)]
    assert counts == [0, 0, 0]
