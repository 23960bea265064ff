"""Relationships against stored state (ITI TF-2 3.42.4.1.3.5, ITI TF-3 4.2.2.2)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

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
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.model import Code, DocumentEntry, Submission
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    DSG_FORMAT_CODING_SCHEME,
    AssociationType,
    AvailabilityStatus,
)
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


def on_demand_entry(**changes: object) -> DocumentEntry:
    """An On-Demand DocumentEntry (ITI TF-3 Table 4.3.1-3, XDS OD: no hash, size,
    creationTime or legalAuthenticator)."""
    attributes = {"object_type": DOC_ENTRY_ON_DEMAND, "hash": None, "size": None}
    return replace(document_entry(), **{**attributes, "creation_time": None, **changes})


def signature_entry() -> DocumentEntry:
    """A DSG Digital Signature Document (ITI TF-3 5.5): detached signature formatCode."""
    return document_entry(
        format_code=Code("urn:ihe:iti:dsg:detached:2014", DSG_FORMAT_CODING_SCHEME, "DSG"),
        mime_type="text/xml",
    )


# For each relationship type, the source a valid submission uses and the kind of
# entry its stored target is (ITI TF-3 4.2.2.2)
VALID_ENDS: dict[str, tuple[Callable[[], DocumentEntry], Callable[[], DocumentEntry]]] = {
    AssociationType.RPLC: (document_entry, document_entry),
    AssociationType.XFRM_RPLC: (document_entry, document_entry),
    AssociationType.APND: (document_entry, document_entry),
    AssociationType.XFRM: (document_entry, document_entry),
    AssociationType.SIGNS: (signature_entry, document_entry),
    AssociationType.IS_SNAPSHOT_OF: (document_entry, on_demand_entry),
}


def store(session: Session, entry: DocumentEntry) -> DocumentEntry:
    assert register(session, submit(entry)) == []
    return entry


def relate(kind: str, source: DocumentEntry, target: str) -> Submission:
    return submit(source, patient=source.patient_id, extra=(relationship(kind, source, target),))


def test_every_relationship_type_has_valid_ends() -> None:
    assert set(VALID_ENDS) == set(RELATIONSHIPS)


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_target_must_exist(session: Session, kind: str) -> None:
    source, _ = VALID_ENDS[kind]
    assert register(session, relate(kind, source(), new_uuid())) == [
        ErrorCode.UnresolvedReferenceException
    ]


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_to_stored_approved_document_is_accepted(session: Session, kind: str) -> None:
    source, target = VALID_ENDS[kind]
    original = store(session, target())
    assert register(session, relate(kind, source(), original.entry_uuid)) == []


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_target_must_be_approved(session: Session, kind: str) -> None:
    source, target = VALID_ENDS[kind]
    original = store(session, target())
    session.execute(
        update(DocumentEntryRow)
        .where(DocumentEntryRow.entry_uuid == original.entry_uuid)
        .values(status=AvailabilityStatus.DEPRECATED)
    )
    session.commit()
    assert register(session, relate(kind, source(), original.entry_uuid)) == [
        ErrorCode.XDSRegistryDeprecatedDocumentError
    ]


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_target_must_be_of_same_patient(session: Session, kind: str) -> None:
    source, target = VALID_ENDS[kind]
    original = store(session, target())
    other = replace(source(), patient_id=OTHER_PATIENT)
    assert register(session, relate(kind, other, original.entry_uuid)) == [
        ErrorCode.XDSPatientIdDoesNotMatch
    ]


@pytest.mark.parametrize("kind", sorted(RELATIONSHIPS))
def test_relationship_target_may_not_be_a_folder(session: Session, kind: str) -> None:
    f = folder()
    store_with_folder = submit(document_entry(), folders=(f,))
    assert register(session, store_with_folder) == []
    source, _ = VALID_ENDS[kind]
    assert register(session, relate(kind, source(), f.entry_uuid)) == [
        ErrorCode.UnresolvedReferenceException
    ]


def test_signs_target_may_be_submitted_with_the_signature(session: Session) -> None:
    # ITI TF-3 4.2.2.2.6: the signed document and its signature in one submission
    signed, signature = document_entry(), signature_entry()
    sub = submit(
        signed,
        signature,
        extra=(relationship(AssociationType.SIGNS, signature, signed.entry_uuid),),
    )
    assert register(session, sub) == []


def test_signs_source_formatcode_is_not_checked(session: Session) -> None:
    # ITI TF-3 4.2.2.2: signs links a signature to what it signs; which formatCode a
    # signature carries is the affinity domain's (DSG 2014 codes, or the older
    # xmldsig one), so the registry does not judge it
    original = store(session, document_entry())
    sub = relate(AssociationType.SIGNS, document_entry(), original.entry_uuid)
    assert register(session, sub) == []


def test_signs_leaves_signed_document_approved(session: Session) -> None:
    original = store(session, document_entry())
    register(session, relate(AssociationType.SIGNS, signature_entry(), original.entry_uuid))
    assert status(session, original) == AvailabilityStatus.APPROVED


def test_snapshot_target_must_be_on_demand(session: Session) -> None:
    # ITI TF-3 4.2.2.2.7: IsSnapshotOf points at an On-Demand DocumentEntry
    original = store(session, document_entry())
    sub = relate(AssociationType.IS_SNAPSHOT_OF, document_entry(), original.entry_uuid)
    assert register(session, sub) == [ErrorCode.XDSRegistryMetadataError]


def test_snapshot_source_must_be_stable(session: Session) -> None:
    original = store(session, on_demand_entry())
    sub = relate(AssociationType.IS_SNAPSHOT_OF, on_demand_entry(), original.entry_uuid)
    assert register(session, sub) == [ErrorCode.XDSRegistryMetadataError]


def test_snapshot_leaves_on_demand_entry_approved(session: Session) -> None:
    original = store(session, on_demand_entry())
    sub = relate(AssociationType.IS_SNAPSHOT_OF, document_entry(), original.entry_uuid)
    assert register(session, sub) == []
    assert status(session, original) == AvailabilityStatus.APPROVED


def test_on_demand_entry_is_replaced_by_on_demand_entry(session: Session) -> None:
    # ITI TF-2 3.61.4.1.3: an On-Demand entry is replaced by an On-Demand entry
    original = store(session, on_demand_entry())
    replacement = on_demand_entry()
    assert register(session, relate(RPLC, replacement, original.entry_uuid)) == []
    assert status(session, original) == AvailabilityStatus.DEPRECATED


def test_on_demand_entry_is_not_replaced_by_stable_entry(session: Session) -> None:
    original = store(session, on_demand_entry())
    sub = relate(RPLC, document_entry(), original.entry_uuid)
    assert register(session, sub) == [ErrorCode.XDSRegistryMetadataError]


@pytest.mark.parametrize(
    "kind", [AssociationType.APND, AssociationType.XFRM, AssociationType.XFRM_RPLC]
)
def test_on_demand_entry_is_not_appended_or_transformed(session: Session, kind: str) -> None:
    original = store(session, on_demand_entry())
    sub = relate(kind, document_entry(), original.entry_uuid)
    assert register(session, sub) == [ErrorCode.XDSRegistryMetadataError]


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


@pytest.mark.parametrize("kind", [AssociationType.APND, AssociationType.XFRM])
def test_non_replacing_relationship_keeps_original_approved(session: Session, kind: str) -> None:
    original = stored(session)
    sub, _ = replace_with(kind, original)
    register(session, sub)
    assert status(session, original) == AvailabilityStatus.APPROVED


@pytest.mark.parametrize("replacing", [RPLC, AssociationType.XFRM_RPLC])
@pytest.mark.parametrize("kind", [AssociationType.APND, AssociationType.XFRM])
def test_replacement_deprecates_addenda_and_transforms_of_original(
    session: Session, kind: str, replacing: str
) -> None:
    original = stored(session)
    child_sub, child = replace_with(kind, original)
    register(session, child_sub)
    sub, _ = replace_with(replacing, original)
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


def test_replacement_does_not_deprecate_signatures_of_original(session: Session) -> None:
    # ITI TF-3 4.2.2.2.3: only addenda and transformations go with the original
    original = stored(session)
    signature = signature_entry()
    register(session, relate(AssociationType.SIGNS, signature, original.entry_uuid))
    sub, _ = replace_with(RPLC, original)
    assert register(session, sub) == []
    assert status(session, signature) == AvailabilityStatus.APPROVED


def test_replacement_does_not_join_deprecated_folder(session: Session) -> None:
    f = folder()
    original = stored(session, folders=(f,))
    session.execute(
        update(FolderRow)
        .where(FolderRow.entry_uuid == f.entry_uuid)
        .values(status=AvailabilityStatus.DEPRECATED)
    )
    session.commit()
    sub, replacement = replace_with(RPLC, original)
    assert register(session, sub) == []
    joined = session.scalar(
        select(AssociationRow.entry_uuid).where(
            AssociationRow.source_uuid == f.entry_uuid,
            AssociationRow.target_uuid == replacement.entry_uuid,
        )
    )
    assert joined is None


def test_replacement_joining_folder_updates_its_stored_metadata(session: Session) -> None:
    from registry.register import register_submission, stored_folder

    f = folder()
    original = stored(session, folders=(f,))
    sub, _ = replace_with(RPLC, original)
    assert register_submission(session, sub, now=lambda: "20300102030405").response.ok
    xml = session.scalar(select(FolderRow.xml).where(FolderRow.entry_uuid == f.entry_uuid))
    assert stored_folder(xml).last_update_time == "20300102030405"
