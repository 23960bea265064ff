"""registry/remove.py: ITI-62 Remove Metadata against stored state (RMD profile), on
SQLite and PostgreSQL.

ITI TF-2 3.62.4.1.3: every named object is removed with its child rows, or nothing is;
"UnresolvedReferenceException" for an object the registry does not hold,
"ReferencesExistException" where the removal would leave a reference behind.
"""

from __future__ import annotations

import pytest
from registry_builders import (
    document_entry,
    folder,
    known_patients,
    relationship,
    submit,
)
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.model import Association, Submission
from ebxml.remove import RemoveObjectsRequest
from ebxml.vocabulary import AssociationType, ResponseStatus
from registry.remove import RemoveConfig, remove_metadata
from registry.service import DocumentRegistry
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


@pytest.fixture
def registry(engine: Engine, session: Session) -> DocumentRegistry:
    known_patients(session)
    return DocumentRegistry(engine)


def stored(registry: DocumentRegistry, submission: Submission) -> Submission:
    response = registry.register(submission)
    assert response.status == ResponseStatus.SUCCESS, response.errors
    return submission


def remove(
    registry: DocumentRegistry, *uuids: str, config: RemoveConfig | None = None
) -> tuple[ResponseStatus, list[ErrorCode]]:
    with registry.write_sessions() as session:
        outcome = remove_metadata(session, RemoveObjectsRequest(tuple(uuids)), config)
        if outcome.response.ok:
            session.commit()
    return outcome.response.status, [e.code for e in outcome.response.errors]


def count(registry: DocumentRegistry, table: type) -> int:
    with registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(table))


def exists(registry: DocumentRegistry, table: type, uuid: str) -> bool:
    with registry.sessions() as session:
        return session.scalar(select(table.id).where(table.entry_uuid == uuid)) is not None


def uuids_of(submission: Submission) -> list[str]:
    return [
        submission.submission_set.entry_uuid,
        *(d.entry_uuid for d in submission.document_entries),
        *(f.entry_uuid for f in submission.folders),
        *(a.entry_uuid for a in submission.associations),
    ]


def member_of(submission: Submission, target: str) -> Association:
    return next(
        a
        for a in submission.associations
        if a.source == submission.submission_set.entry_uuid and a.target == target
    )


# --- what is removed ------------------------------------------------------------------------


def test_whole_submission_is_removed_with_its_child_rows(registry: DocumentRegistry) -> None:
    submission = stored(registry, submit(folders=(folder(),)))
    assert remove(registry, *uuids_of(submission)) == (ResponseStatus.SUCCESS, [])
    for table in (
        DocumentEntryRow,
        DocumentEntryCodeRow,
        DocumentEntryAuthorRow,
        DocumentEntryReferenceIdRow,
        SubmissionSetRow,
        SubmissionSetAuthorRow,
        FolderRow,
        FolderCodeRow,
        AssociationRow,
    ):
        assert count(registry, table) == 0, table.__tablename__


def test_one_document_leaves_its_submission_set_with_the_others(
    registry: DocumentRegistry,
) -> None:
    first, second = document_entry(), document_entry()
    submission = stored(registry, submit(first, second))
    status, _ = remove(
        registry, first.entry_uuid, member_of(submission, first.entry_uuid).entry_uuid
    )
    assert status == ResponseStatus.SUCCESS
    assert not exists(registry, DocumentEntryRow, first.entry_uuid)
    assert exists(registry, DocumentEntryRow, second.entry_uuid)
    assert exists(registry, SubmissionSetRow, submission.submission_set.entry_uuid)


def test_folder_membership_alone_may_be_removed(registry: DocumentRegistry) -> None:
    f = folder()
    submission = stored(registry, submit(folders=(f,)))
    entry = submission.document_entries[0]
    membership = next(a for a in submission.associations if a.source == f.entry_uuid)
    ss_link = member_of(submission, membership.entry_uuid)
    status, _ = remove(registry, membership.entry_uuid, ss_link.entry_uuid)
    assert status == ResponseStatus.SUCCESS
    assert exists(registry, FolderRow, f.entry_uuid)
    assert exists(registry, DocumentEntryRow, entry.entry_uuid)


# --- UnresolvedReferenceException -----------------------------------------------------------


def test_unknown_object_is_unresolved_reference(registry: DocumentRegistry) -> None:
    submission = stored(registry, submit())
    unknown = "urn:uuid:00000000-0000-4000-8000-000000000000"
    status, codes = remove(registry, *uuids_of(submission), unknown)
    assert (status, codes) == (ResponseStatus.FAILURE, [ErrorCode.UnresolvedReferenceException])


def test_refused_request_removes_nothing(registry: DocumentRegistry) -> None:
    submission = stored(registry, submit())
    remove(registry, *uuids_of(submission), "urn:uuid:00000000-0000-4000-8000-000000000001")
    assert exists(registry, DocumentEntryRow, submission.document_entries[0].entry_uuid)
    assert count(registry, AssociationRow) == 1


# --- ReferencesExistException ---------------------------------------------------------------


def test_document_entry_still_referenced_by_its_has_member(registry: DocumentRegistry) -> None:
    first, second = document_entry(), document_entry()
    stored(registry, submit(first, second))
    assert remove(registry, first.entry_uuid) == (
        ResponseStatus.FAILURE,
        [ErrorCode.ReferencesExistException],
    )
    assert exists(registry, DocumentEntryRow, first.entry_uuid)


def test_submission_set_has_member_goes_with_its_member(registry: DocumentRegistry) -> None:
    first, second = document_entry(), document_entry()
    submission = stored(registry, submit(first, second))
    status, codes = remove(registry, member_of(submission, first.entry_uuid).entry_uuid)
    assert (status, codes) == (ResponseStatus.FAILURE, [ErrorCode.ReferencesExistException])


def test_submission_set_is_not_left_empty(registry: DocumentRegistry) -> None:
    submission = stored(registry, submit())
    entry = submission.document_entries[0]
    status, codes = remove(
        registry, entry.entry_uuid, member_of(submission, entry.entry_uuid).entry_uuid
    )
    assert (status, codes) == (ResponseStatus.FAILURE, [ErrorCode.ReferencesExistException])


def test_document_in_a_folder_needs_the_folder_membership_removed(
    registry: DocumentRegistry,
) -> None:
    f = folder()
    first, second = document_entry(), document_entry()
    submission = stored(registry, submit(first, second, folders=(f,)))
    status, codes = remove(
        registry, first.entry_uuid, member_of(submission, first.entry_uuid).entry_uuid
    )
    assert status == ResponseStatus.FAILURE
    assert set(codes) == {ErrorCode.ReferencesExistException}


def appended(registry: DocumentRegistry) -> tuple[Submission, Submission, Association]:
    original = stored(registry, submit())
    addendum = document_entry()
    apnd = relationship(AssociationType.APND, addendum, original.document_entries[0].entry_uuid)
    return original, stored(registry, submit(addendum, extra=(apnd,))), apnd


def test_relationship_is_removed_only_with_its_source(registry: DocumentRegistry) -> None:
    _, _, apnd = appended(registry)
    status, codes = remove(registry, apnd.entry_uuid)
    assert (status, codes) == (ResponseStatus.FAILURE, [ErrorCode.ReferencesExistException])


def test_original_is_kept_while_an_addendum_references_it(registry: DocumentRegistry) -> None:
    original, _, _ = appended(registry)
    status, codes = remove(registry, *uuids_of(original))
    assert (status, codes) == (ResponseStatus.FAILURE, [ErrorCode.ReferencesExistException])


def test_addendum_submission_removed_with_its_relationship(registry: DocumentRegistry) -> None:
    original, addendum, _ = appended(registry)
    assert remove(registry, *uuids_of(addendum)) == (ResponseStatus.SUCCESS, [])
    assert exists(registry, DocumentEntryRow, original.document_entries[0].entry_uuid)


def replaced(registry: DocumentRegistry) -> Submission:
    original = stored(registry, submit())
    replacement = document_entry()
    rplc = relationship(AssociationType.RPLC, replacement, original.document_entries[0].entry_uuid)
    return stored(registry, submit(replacement, extra=(rplc,)))


def test_replacement_needs_the_metadata_update_option(registry: DocumentRegistry) -> None:
    replacement = replaced(registry)
    status, codes = remove(registry, *uuids_of(replacement))
    assert (status, codes) == (ResponseStatus.FAILURE, [ErrorCode.ReferencesExistException])


def test_replacement_removable_with_metadata_update(registry: DocumentRegistry) -> None:
    replacement = replaced(registry)
    config = RemoveConfig(metadata_update=True)
    assert remove(registry, *uuids_of(replacement), config=config) == (ResponseStatus.SUCCESS, [])
