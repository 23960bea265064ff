"""GetFolders (3.18.4.1.2.3.7.6), GetFolderAndContents (3.18.4.1.2.3.7.11) and
GetFoldersForDocument (3.18.4.1.2.3.7.12), ITI TF-2."""

from __future__ import annotations

import pytest
from query_data import P1, Store, Submitted, ids

from ebxml.model import Code
from ebxml.vocabulary import ResponseStatus, StoredQuery


@pytest.fixture
def submitted(store: Store) -> Submitted:
    """Folders f (with entries a, b) and g (empty); entry c outside both."""
    a = store.doc(format_code=Code("pdf", "f"))
    b = store.doc(format_code=Code("xml", "f"))
    c = store.doc()
    f, g = store.folder(), store.folder()
    return store.submit(P1, a, b, c, folders=[f, g], folder_members=[(f, a), (f, b)])


def member(submitted: Submitted, folder, entry) -> str:
    return next(
        x.entry_uuid
        for x in submitted.associations
        if (x.source, x.target) == (folder.entry_uuid, entry.entry_uuid)
    )


def test_get_folders_by_uuid_and_unique_id(query, submitted: Submitted) -> None:
    f, g = submitted.folders
    by_uuid = query(StoredQuery.GET_FOLDERS, XDSFolderEntryUUID=f"('{g.entry_uuid}')")
    by_uid = query(StoredQuery.GET_FOLDERS, XDSFolderUniqueId=f"('{f.unique_id}', '{g.unique_id}')")
    assert ids(by_uuid) == [g.entry_uuid]
    assert ids(by_uid) == [f.entry_uuid, g.entry_uuid]


def test_get_folder_and_contents(query, submitted: Submitted) -> None:
    a, b, _ = submitted.entries
    f, _ = submitted.folders
    response = query(StoredQuery.GET_FOLDER_AND_CONTENTS, XDSFolderEntryUUID=f"'{f.entry_uuid}'")
    assert response.status == ResponseStatus.SUCCESS
    assert ids(response) == [
        a.entry_uuid,
        b.entry_uuid,
        f.entry_uuid,
        member(submitted, f, a),
        member(submitted, f, b),
    ]


def test_get_folder_and_contents_filters_by_format(query, submitted: Submitted) -> None:
    a, b, _ = submitted.entries
    f, _ = submitted.folders
    response = query(
        StoredQuery.GET_FOLDER_AND_CONTENTS,
        XDSFolderUniqueId=f"'{f.unique_id}'",
        XDSDocumentEntryFormatCode="('xml^^f')",
    )
    assert ids(response) == [b.entry_uuid, f.entry_uuid, member(submitted, f, b)]


def test_get_folders_for_document(query, submitted: Submitted) -> None:
    a, _, c = submitted.entries
    f, _ = submitted.folders
    assert ids(
        query(StoredQuery.GET_FOLDERS_FOR_DOCUMENT, XDSDocumentEntryEntryUUID=f"'{a.entry_uuid}'")
    ) == [f.entry_uuid]
    assert (
        ids(
            query(StoredQuery.GET_FOLDERS_FOR_DOCUMENT, XDSDocumentEntryUniqueId=f"'{c.unique_id}'")
        )
        == []
    )
