"""$MetadataLevel (ITI TF-2 3.18.4.1.2.3.5.1) and the logicalID parameters of GetDocuments
and GetFolders, on every backend.

A level-1 consumer does not understand Metadata Update, so a level-1 answer leaves out
what only Metadata Update makes: older versions of a DocumentEntry or Folder, Deprecated
Folders, Deprecated Associations and UpdateAvailabilityStatus Associations; level 2
returns them.  Metadata Update (ITI-57) is not registered here yet, so its results are
written to the tables as it will write them: a new version is a new row with the same
logical_id and the next version.
"""

from __future__ import annotations

import pytest
from query_data import P1, Store, Submitted, ids, new_uuid
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ebxml.vocabulary import AssociationType, AvailabilityStatus, ResponseStatus, StoredQuery
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow

APPROVED = f"('{AvailabilityStatus.APPROVED}')"
DEPRECATED = f"('{AvailabilityStatus.DEPRECATED}')"


def copy_row(session: Session, row_type: type, entry_uuid: str, **changes: object) -> str:
    """A new row of ``row_type`` like the one of ``entry_uuid``, with a new entryUUID."""
    row = session.scalars(select(row_type).where(row_type.entry_uuid == entry_uuid)).one()
    columns = {c.key: getattr(row, c.key) for c in row_type.__table__.columns if c.key != "id"}
    copy = row_type(**{**columns, "entry_uuid": new_uuid(), **changes})
    session.add(copy)
    session.flush()
    return copy.entry_uuid


@pytest.fixture
def submitted(store: Store) -> Submitted:
    return store.submit(P1, store.doc(), folders=[store.folder()])


def find_documents(query, level: str | None = None, status: str = APPROVED):
    level_slot = {} if level is None else {"MetadataLevel": level}
    return query(
        StoredQuery.FIND_DOCUMENTS,
        XDSDocumentEntryPatientId=f"'{P1}'",
        XDSDocumentEntryStatus=status,
        **level_slot,
    )


def test_level_1_returns_only_the_latest_version(session: Session, query, submitted) -> None:
    v1 = submitted.entries[0].entry_uuid
    v2 = copy_row(session, DocumentEntryRow, v1, version="2")
    assert ids(find_documents(query)) == [v2]
    assert ids(find_documents(query, "1")) == [v2]


def test_level_2_returns_every_version(session: Session, query, submitted) -> None:
    v1 = submitted.entries[0].entry_uuid
    v2 = copy_row(session, DocumentEntryRow, v1, version="2")
    assert ids(find_documents(query, "2")) == [v1, v2]


def test_versions_compare_as_numbers(session: Session, query, submitted) -> None:
    v1 = submitted.entries[0].entry_uuid
    copy_row(session, DocumentEntryRow, v1, version="9")
    v10 = copy_row(session, DocumentEntryRow, v1, version="10")
    assert ids(find_documents(query)) == [v10]


def test_get_documents_by_logical_id(session: Session, query, submitted) -> None:
    v1 = submitted.entries[0].entry_uuid  # the first version's entryUUID is the logicalID
    v2 = copy_row(session, DocumentEntryRow, v1, version="2")
    by_logical_id = {"XDSDocumentEntryLogicalID": f"('{v1}')"}
    assert ids(query(StoredQuery.GET_DOCUMENTS, MetadataLevel="2", **by_logical_id)) == [v1, v2]
    assert ids(query(StoredQuery.GET_DOCUMENTS, **by_logical_id)) == [v2]


def test_get_folders_by_logical_id(session: Session, query, submitted) -> None:
    f1 = submitted.folders[0].entry_uuid
    f2 = copy_row(session, FolderRow, f1, version="2", unique_id="2.25.7")
    by_logical_id = {"XDSFolderLogicalID": f"('{f1}')"}
    assert ids(query(StoredQuery.GET_FOLDERS, MetadataLevel="2", **by_logical_id)) == [f1, f2]
    assert ids(query(StoredQuery.GET_FOLDERS, **by_logical_id)) == [f2]


def test_deprecated_folder_only_at_level_2(session: Session, query, submitted) -> None:
    folder = submitted.folders[0].entry_uuid
    session.execute(
        update(FolderRow)
        .where(FolderRow.entry_uuid == folder)
        .values(status=AvailabilityStatus.DEPRECATED)
    )
    find = {"XDSFolderPatientId": f"'{P1}'", "XDSFolderStatus": DEPRECATED}
    assert ids(query(StoredQuery.FIND_FOLDERS, **find)) == []
    assert ids(query(StoredQuery.FIND_FOLDERS, MetadataLevel="2", **find)) == [folder]


def association_to(submitted: Submitted) -> str:
    entry = submitted.entries[0].entry_uuid
    return next(a.entry_uuid for a in submitted.associations if a.target == entry)


def test_deprecated_association_only_at_level_2(session: Session, query, submitted) -> None:
    entry = submitted.entries[0].entry_uuid
    hidden = copy_row(
        session, AssociationRow, association_to(submitted), status=AvailabilityStatus.DEPRECATED
    )
    assert hidden not in ids(query(StoredQuery.GET_ASSOCIATIONS, uuid=f"('{entry}')"))
    assert hidden in ids(
        query(StoredQuery.GET_ASSOCIATIONS, uuid=f"('{entry}')", MetadataLevel="2")
    )


def test_update_availability_status_association_only_at_level_2(
    session: Session, query, submitted
) -> None:
    entry = submitted.entries[0].entry_uuid
    uas = copy_row(
        session,
        AssociationRow,
        association_to(submitted),
        association_type=AssociationType.UPDATE_AVAILABILITY_STATUS,
    )
    assert uas not in ids(query(StoredQuery.GET_ASSOCIATIONS, uuid=f"('{entry}')"))
    assert uas in ids(query(StoredQuery.GET_ASSOCIATIONS, uuid=f"('{entry}')", MetadataLevel="2"))


def test_deprecated_relationship_relates_nothing_at_level_1(
    session: Session, store: Store, query, submitted
) -> None:
    original = submitted.entries[0].entry_uuid
    appendix = store.doc()
    store.submit(P1, appendix)
    copy_row(
        session,
        AssociationRow,
        association_to(submitted),
        association_type=AssociationType.APND,
        source_uuid=appendix.entry_uuid,
        target_uuid=original,
        status=AvailabilityStatus.DEPRECATED,
    )
    related = {
        "XDSDocumentEntryEntryUUID": f"'{original}'",
        "AssociationTypes": f"('{AssociationType.APND}')",
    }
    assert ids(query(StoredQuery.GET_RELATED_DOCUMENTS, **related)) == []
    level_2 = ids(query(StoredQuery.GET_RELATED_DOCUMENTS, MetadataLevel="2", **related))
    assert level_2[:2] == [original, appendix.entry_uuid]


def test_a_version_name_that_is_not_a_number_does_not_fail(store: Store, query) -> None:
    # ebRIM 3.0 VersionInfo/@versionName defaults to "1.1"; it is kept as submitted
    entry = store.doc(version="1.1")
    store.submit(P1, entry)
    response = find_documents(query)
    assert response.status == ResponseStatus.SUCCESS
    assert entry.entry_uuid in ids(response)
