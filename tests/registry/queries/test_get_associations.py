"""GetAssociations (ITI TF-2 3.18.4.1.2.3.7.7) and GetSubmissionSets (3.18.4.1.2.3.7.9)."""

from __future__ import annotations

from query_data import P1, Store, ids

from ebxml.errors import ErrorCode
from ebxml.vocabulary import ResponseStatus, StoredQuery


def test_associations_with_source_or_target_in_the_list(store: Store, query) -> None:
    a, b = store.doc(), store.doc()
    folder = store.folder()
    submitted = store.submit(P1, a, b, folders=[folder], folder_members=[(folder, a)])
    response = query(
        StoredQuery.GET_ASSOCIATIONS, uuid=f"('{a.entry_uuid}', '{folder.entry_uuid}')"
    )
    expected = [
        x.entry_uuid
        for x in submitted.associations
        if {x.source, x.target} & {a.entry_uuid, folder.entry_uuid}
    ]
    assert response.status == ResponseStatus.SUCCESS
    assert sorted(ids(response)) == sorted(expected)
    assert len(expected) == 3  # SS->a, SS->folder, folder->a; nothing of b


def test_uuid_is_required(query) -> None:
    response = query(StoredQuery.GET_ASSOCIATIONS)
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.XDSStoredQueryMissingParam, "$uuid")
    ]


def test_submission_sets_of_a_document(store: Store, query) -> None:
    a = store.doc()
    submitted = store.submit(P1, a, store.doc())
    response = query(StoredQuery.GET_SUBMISSION_SETS, uuid=f"('{a.entry_uuid}')")
    link = next(x.entry_uuid for x in submitted.associations if x.target == a.entry_uuid)
    assert ids(response) == [submitted.submission_set.entry_uuid, link]
