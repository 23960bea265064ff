"""registry/update.py: ITI-57 Update Document Set (XDS Metadata Update option) against
stored state, on SQLite and PostgreSQL.  Each expectation is from ITI TF-2 3.57.4.1.3.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from registry_builders import (
    OTHER_HASH,
    OTHER_PATIENT,
    PATIENT,
    document_entry,
    folder,
    has_member,
    known_patients,
    new_oid,
    new_uuid,
    relationship,
    submission_set,
    submit,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.messages import RegistryResponse
from ebxml.model import Association, DocumentEntry, Folder, Submission
from ebxml.vocabulary import AssociationType, AvailabilityStatus
from registry.service import DocumentRegistry, RegistryEvent, RegistryEventKind
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow
from registry.update import availability_update, new_version, update_document_set

APPROVED = AvailabilityStatus.APPROVED
DEPRECATED = AvailabilityStatus.DEPRECATED


@pytest.fixture
def registry(registry: DocumentRegistry, session: Session) -> DocumentRegistry:
    known_patients(session)
    return registry


def stored_entry(registry: DocumentRegistry, **changes: object) -> DocumentEntry:
    entry = document_entry(**changes)
    assert registry.register(submit(entry)).ok
    return entry


def updated(entry: DocumentEntry, previous: str = "1", **changes: object) -> Submission:
    """An ITI-57 request making a new version of stored ``entry``."""
    logical_id = entry.logical_id or entry.entry_uuid
    new = replace(entry, logical_id=logical_id, **changes)
    return new_version(new, previous, submission_set(new.patient_id or PATIENT))


def codes(response: RegistryResponse) -> list[str]:
    return [e.code for e in response.errors]


def entry_rows(registry: DocumentRegistry, logical_id: str) -> dict[str, tuple[str, str]]:
    """version -> (entryUUID, status) of every stored version."""
    with registry.sessions() as session:
        rows = session.execute(
            select(
                DocumentEntryRow.version, DocumentEntryRow.entry_uuid, DocumentEntryRow.status
            ).where(DocumentEntryRow.logical_id == logical_id)
        ).all()
    return {version: (uuid, status) for version, uuid, status in rows}


def status_of(registry: DocumentRegistry, table: type, entry_uuid: str) -> str | None:
    with registry.sessions() as session:
        return session.scalar(select(table.status).where(table.entry_uuid == entry_uuid))


def members_of(registry: DocumentRegistry, folder_uuid: str) -> set[str]:
    with registry.sessions() as session:
        return set(
            session.scalars(
                select(AssociationRow.target_uuid).where(
                    AssociationRow.source_uuid == folder_uuid,
                    AssociationRow.association_type == AssociationType.HAS_MEMBER,
                )
            )
        )


def status_update(target: str, original: str, new: str, patient: str = PATIENT) -> Submission:
    return availability_update(submission_set(patient), target, original, new)


# --- Update DocumentEntry Metadata (ITI TF-2 3.57.4.1.3.3.1) -----------------------------


def test_new_version_is_numbered_after_the_latest(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    request = updated(entry, title="CT chest, corrected")
    assert registry.update(request).ok
    versions = entry_rows(registry, entry.entry_uuid)
    assert versions["2"][0] == request.document_entries[0].entry_uuid


def test_previous_version_becomes_deprecated(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(updated(entry)).ok
    versions = entry_rows(registry, entry.entry_uuid)
    assert versions["1"][1] == DEPRECATED
    assert versions["2"][1] == APPROVED


def test_third_version_follows_the_second(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(updated(entry)).ok
    assert registry.update(updated(entry, previous="2")).ok
    versions = entry_rows(registry, entry.entry_uuid)
    assert sorted(versions) == ["1", "2", "3"]
    assert [versions[v][1] for v in ("1", "2", "3")] == [DEPRECATED, DEPRECATED, APPROVED]


def test_previous_version_must_be_the_latest(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    response = registry.update(updated(entry, previous="2"))
    assert codes(response) == [ErrorCode.XDSMetadataVersionError]
    assert sorted(entry_rows(registry, entry.entry_uuid)) == ["1"]


def test_stale_previous_version_is_refused(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(updated(entry)).ok
    assert codes(registry.update(updated(entry, previous="1"))) == [
        ErrorCode.XDSMetadataVersionError
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"unique_id": "1.2.3.999"},
        {"hash": OTHER_HASH},
        {"size": 2048},
        {"repository_unique_id": "1.3.6.1.4.1.21367.13.40.99"},
    ],
    ids=["uniqueId", "hash", "size", "repositoryUniqueId"],
)
def test_new_version_keeps_document_attributes(
    registry: DocumentRegistry, change: dict[str, object]
) -> None:
    entry = stored_entry(registry)
    assert codes(registry.update(updated(entry, **change))) == [ErrorCode.XDSMetadataUpdateError]


def test_new_version_keeps_hash_whatever_its_case(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(updated(entry, hash=entry.hash.upper())).ok


def test_new_version_keeps_the_patient(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    response = registry.update(updated(entry, patient_id=OTHER_PATIENT))
    assert codes(response) == [ErrorCode.XDSPatientIDReconciliationError]


def test_initial_version_is_not_an_update(registry: DocumentRegistry) -> None:
    entry = document_entry()
    request = new_version(entry, "1", submission_set())
    assert codes(registry.update(request)) == [ErrorCode.XDSMetadataUpdateError]


def test_unknown_logical_id_is_refused(registry: DocumentRegistry) -> None:
    entry = replace(document_entry(), logical_id=new_uuid())
    request = new_version(entry, "1", submission_set())
    assert codes(registry.update(request)) == [ErrorCode.XDSMetadataUpdateError]


def test_previous_version_slot_is_required(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    request = updated(entry)
    member = replace(request.associations[0], previous_version=None)
    response = registry.update(replace(request, associations=(member,)))
    assert codes(response) == [ErrorCode.XDSMetadataUpdateError]


def test_deprecated_document_gives_a_deprecated_new_version(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(status_update(entry.entry_uuid, APPROVED, DEPRECATED)).ok
    assert registry.update(updated(entry)).ok
    assert entry_rows(registry, entry.entry_uuid)["2"][1] == DEPRECATED


def test_same_logical_id_twice_in_one_request_is_refused(
    registry: DocumentRegistry, session: Session
) -> None:
    # validation refuses the repeated uniqueId first; the registry rule stands on its own
    entry = stored_entry(registry)
    first = updated(entry)
    second = updated(entry)
    ss = first.submission_set
    member = replace(second.associations[0], source=ss.entry_uuid)
    request = replace(
        first,
        document_entries=(*first.document_entries, *second.document_entries),
        associations=(*first.associations, member),
    )
    outcome = update_document_set(session, request)
    assert codes(outcome.response) == [ErrorCode.XDSMetadataUpdateOperationError]


def test_relationship_is_not_an_update_operation(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    request = updated(entry)
    rplc = relationship(AssociationType.RPLC, request.document_entries[0], entry.entry_uuid)
    response = registry.update(replace(request, associations=(*request.associations, rplc)))
    assert ErrorCode.XDSMetadataUpdateOperationError in codes(response)


# --- Association propagation (ITI TF-2 3.57.4.1.3.3.1.5) ---------------------------------


def stored_in_folder(registry: DocumentRegistry) -> tuple[DocumentEntry, Folder]:
    entry, f = document_entry(), folder()
    assert registry.register(submit(entry, folders=(f,))).ok
    return entry, f


def test_new_version_joins_the_folders_of_the_previous_one(registry: DocumentRegistry) -> None:
    entry, f = stored_in_folder(registry)
    request = updated(entry)
    assert registry.update(request).ok
    assert members_of(registry, f.entry_uuid) == {
        entry.entry_uuid,
        request.document_entries[0].entry_uuid,
    }


def test_association_propagation_no_leaves_the_folders(registry: DocumentRegistry) -> None:
    entry, f = stored_in_folder(registry)
    request = updated(entry)
    member = replace(request.associations[0], association_propagation="no")
    assert registry.update(replace(request, associations=(member,))).ok
    assert members_of(registry, f.entry_uuid) == {entry.entry_uuid}


def test_new_version_inherits_relationships(registry: DocumentRegistry) -> None:
    original = stored_entry(registry)
    addendum = document_entry()
    apnd = relationship(AssociationType.APND, addendum, original.entry_uuid)
    assert registry.register(submit(addendum, extra=(apnd,))).ok
    request = updated(original)
    assert registry.update(request).ok
    new_uuid_ = request.document_entries[0].entry_uuid
    with registry.sessions() as session:
        targets = set(
            session.scalars(
                select(AssociationRow.target_uuid).where(
                    AssociationRow.source_uuid == addendum.entry_uuid,
                    AssociationRow.association_type == AssociationType.APND,
                )
            )
        )
    assert targets == {original.entry_uuid, new_uuid_}


# --- Update Folder Metadata (ITI TF-2 3.57.4.1.3.3.3) ------------------------------------


def folder_update(f: Folder, previous: str = "1", **changes: object) -> Submission:
    ss = submission_set()
    new = replace(f, entry_uuid=new_uuid(), logical_id=f.entry_uuid, **changes)
    member = Association(
        new_uuid(),
        AssociationType.HAS_MEMBER,
        ss.entry_uuid,
        new.entry_uuid,
        previous_version=previous,
    )
    return Submission(submission_set=ss, folders=(new,), associations=(member,))


def test_folder_new_version_keeps_its_unique_id(registry: DocumentRegistry) -> None:
    _, f = stored_in_folder(registry)
    request = folder_update(f, title="Referrals 2024")
    assert registry.update(request).ok
    with registry.sessions() as session:
        rows = session.execute(
            select(FolderRow.version, FolderRow.unique_id, FolderRow.status).where(
                FolderRow.logical_id == f.entry_uuid
            )
        ).all()
    assert sorted(rows) == [("1", f.unique_id, DEPRECATED), ("2", f.unique_id, APPROVED)]


def test_folder_new_version_holds_the_previous_members(registry: DocumentRegistry) -> None:
    entry, f = stored_in_folder(registry)
    request = folder_update(f)
    assert registry.update(request).ok
    assert members_of(registry, request.folders[0].entry_uuid) == {entry.entry_uuid}


def test_folder_new_version_keeps_its_unique_id_rule(registry: DocumentRegistry) -> None:
    _, f = stored_in_folder(registry)
    response = registry.update(folder_update(f, unique_id=new_oid()))
    assert codes(response) == [ErrorCode.XDSMetadataUpdateError]


def test_folder_version_error(registry: DocumentRegistry) -> None:
    _, f = stored_in_folder(registry)
    assert codes(registry.update(folder_update(f, previous="7"))) == [
        ErrorCode.XDSMetadataVersionError
    ]


def test_new_folder_may_not_reuse_a_folder_unique_id(registry: DocumentRegistry) -> None:
    # ITI TF-2 3.42.4.1.3.3: the per-version constraint still refuses a second Folder
    _, f = stored_in_folder(registry)
    again = folder(unique_id=f.unique_id)
    response = registry.register(submit(folders=(again,)))
    assert codes(response) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


# --- Update availabilityStatus (ITI TF-2 3.57.4.1.3.3.2, .4, .6) -------------------------


def test_status_update_deprecates_a_document(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(status_update(entry.entry_uuid, APPROVED, DEPRECATED)).ok
    assert status_of(registry, DocumentEntryRow, entry.entry_uuid) == DEPRECATED


def test_status_update_approves_a_deprecated_document(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(status_update(entry.entry_uuid, APPROVED, DEPRECATED)).ok
    assert registry.update(status_update(entry.entry_uuid, DEPRECATED, APPROVED)).ok
    assert status_of(registry, DocumentEntryRow, entry.entry_uuid) == APPROVED


def test_original_status_must_be_the_current_one(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    response = registry.update(status_update(entry.entry_uuid, DEPRECATED, APPROVED))
    assert codes(response) == [ErrorCode.XDSMetadataUpdateError]


def test_new_status_must_be_approved_or_deprecated(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    request = status_update(entry.entry_uuid, APPROVED, AvailabilityStatus.SUBMITTED)
    assert codes(registry.update(request)) == [ErrorCode.XDSMetadataUpdateError]


def test_status_of_an_older_version_cannot_change(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    assert registry.update(updated(entry)).ok
    response = registry.update(status_update(entry.entry_uuid, DEPRECATED, APPROVED))
    assert codes(response) == [ErrorCode.XDSMetadataVersionError]


def test_status_update_of_a_folder(registry: DocumentRegistry) -> None:
    _, f = stored_in_folder(registry)
    assert registry.update(status_update(f.entry_uuid, APPROVED, DEPRECATED)).ok
    assert status_of(registry, FolderRow, f.entry_uuid) == DEPRECATED


def test_status_update_of_a_folder_membership(registry: DocumentRegistry) -> None:
    entry, f = stored_in_folder(registry)
    with registry.sessions() as session:
        membership = session.scalar(
            select(AssociationRow.entry_uuid).where(
                AssociationRow.source_uuid == f.entry_uuid,
                AssociationRow.target_uuid == entry.entry_uuid,
            )
        )
    assert registry.update(status_update(membership, APPROVED, DEPRECATED)).ok
    assert status_of(registry, AssociationRow, membership) == DEPRECATED


def test_submission_set_member_status_cannot_change(registry: DocumentRegistry) -> None:
    entry = document_entry()
    submission = submit(entry)
    assert registry.register(submission).ok
    member = submission.associations[0].entry_uuid
    response = registry.update(status_update(member, APPROVED, DEPRECATED))
    assert ErrorCode.XDSMetadataUpdateError in codes(response)
    assert status_of(registry, AssociationRow, member) == APPROVED


def test_submission_set_status_cannot_change(registry: DocumentRegistry) -> None:
    submission = submit()
    assert registry.register(submission).ok
    target = submission.submission_set.entry_uuid
    response = registry.update(status_update(target, APPROVED, DEPRECATED))
    assert codes(response) == [ErrorCode.XDSMetadataUpdateOperationError]


def test_status_update_must_come_from_the_submission_set(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    request = status_update(entry.entry_uuid, APPROVED, DEPRECATED)
    moved = replace(request.associations[0], source=new_uuid())
    response = registry.update(replace(request, associations=(moved,)))
    assert ErrorCode.XDSMetadataUpdateError in codes(response)


def test_status_update_of_unknown_object_is_unresolved(registry: DocumentRegistry) -> None:
    response = registry.update(status_update(new_uuid(), APPROVED, DEPRECATED))
    assert codes(response) == [ErrorCode.UnresolvedReferenceException]


def test_status_update_of_another_patients_document(registry: DocumentRegistry) -> None:
    entry = stored_entry(registry)
    request = status_update(entry.entry_uuid, APPROVED, DEPRECATED, patient=OTHER_PATIENT)
    assert codes(registry.update(request)) == [ErrorCode.XDSPatientIdDoesNotMatch]


def test_metadata_and_status_update_together_change_the_new_version(
    registry: DocumentRegistry,
) -> None:
    # ITI TF-2 3.57.4.1.3.1: the status change applies to the new version
    entry = stored_entry(registry)
    request = updated(entry)
    new = request.document_entries[0].entry_uuid
    change = Association(
        new_uuid(),
        AssociationType.UPDATE_AVAILABILITY_STATUS,
        request.submission_set.entry_uuid,
        entry.entry_uuid,
        original_status=APPROVED,
        new_status=DEPRECATED,
    )
    assert registry.update(replace(request, associations=(*request.associations, change))).ok
    assert status_of(registry, DocumentEntryRow, new) == DEPRECATED


# --- all or nothing, events --------------------------------------------------------------


def test_one_failing_operation_stores_nothing(registry: DocumentRegistry) -> None:
    good, bad = stored_entry(registry), stored_entry(registry)
    request = updated(good)
    wrong = status_update(bad.entry_uuid, DEPRECATED, APPROVED).associations[0]
    wrong = replace(wrong, source=request.submission_set.entry_uuid)
    response = registry.update(replace(request, associations=(*request.associations, wrong)))
    assert codes(response) == [ErrorCode.XDSMetadataUpdateError]
    assert sorted(entry_rows(registry, good.entry_uuid)) == ["1"]
    assert entry_rows(registry, good.entry_uuid)["1"][1] == APPROVED


def test_update_publishes_its_events(registry: DocumentRegistry) -> None:
    events: list[RegistryEvent] = []
    registry.subscribe(events.append)
    entry = stored_entry(registry)
    events.clear()
    request = updated(entry)
    assert registry.update(request).ok
    kinds = {e.kind: e.entry_uuids for e in events}
    assert request.document_entries[0].entry_uuid in kinds[RegistryEventKind.SUBMITTED]
    assert kinds[RegistryEventKind.DEPRECATED] == (entry.entry_uuid,)
    assert all(e.patient_id == PATIENT for e in events)


def test_refused_update_publishes_nothing(registry: DocumentRegistry) -> None:
    events: list[RegistryEvent] = []
    entry = stored_entry(registry)
    registry.subscribe(events.append)
    assert not registry.update(updated(entry, previous="5")).ok
    assert events == []


def test_folder_gets_a_new_last_update_time_when_a_version_joins(
    registry: DocumentRegistry,
) -> None:
    entry, f = stored_in_folder(registry)
    with registry.sessions() as session:
        session.execute(
            FolderRow.__table__.update()
            .where(FolderRow.entry_uuid == f.entry_uuid)
            .values(last_update_time="20000101000000")
        )
        session.commit()
    assert registry.update(updated(entry)).ok
    with registry.sessions() as session:
        value = session.scalar(
            select(FolderRow.last_update_time).where(FolderRow.entry_uuid == f.entry_uuid)
        )
    assert value != "20000101000000"


def test_stored_document_joins_a_stored_folder(registry: DocumentRegistry) -> None:
    # ITI TF-3 4.2.2.1.4: a Folder membership between stored objects, as in ITI-42
    _, f = stored_in_folder(registry)
    entry = stored_entry(registry)
    ss = submission_set()
    membership = has_member(f.entry_uuid, entry.entry_uuid)
    request = Submission(
        submission_set=ss,
        associations=(membership, has_member(ss.entry_uuid, membership.entry_uuid)),
    )
    assert registry.update(request).ok
    assert entry.entry_uuid in members_of(registry, f.entry_uuid)
