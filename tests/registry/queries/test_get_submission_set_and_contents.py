"""GetSubmissionSetAndContents (ITI TF-2 3.18.4.1.2.3.7.10)."""

from __future__ import annotations

import pytest
from query_data import P1, Store, Submitted, ids

from ebxml.model import Code
from ebxml.vocabulary import DOC_ENTRY_ON_DEMAND, ResponseStatus, StoredQuery

GET = StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS


@pytest.fixture
def submitted(store: Store) -> Submitted:
    """A SubmissionSet with entries a (pdf, N), b (xml, R) and on-demand c, a Folder,
    and a in the Folder; plus a second SubmissionSet that must not show."""
    a = store.doc(format_code=Code("pdf", "f"), confidentiality_codes=(Code("N", "c"),))
    b = store.doc(format_code=Code("xml", "f"), confidentiality_codes=(Code("R", "c"),))
    c = store.doc(object_type=DOC_ENTRY_ON_DEMAND)
    folder = store.folder()
    result = store.submit(P1, a, b, c, folders=[folder], folder_members=[(folder, a)])
    store.submit(P1, store.doc())
    return result


def expected(submitted: Submitted, *entries) -> list[str]:
    """SubmissionSet, the given entries, the Folder, and the HasMember Associations
    that connect them (in the response order: kind, then registration order)."""
    keep = {e.entry_uuid for e in entries} | {f.entry_uuid for f in submitted.folders}
    inner = [x for x in submitted.associations if x.source != submitted.submission_set.entry_uuid]
    kept_inner = {x.entry_uuid for x in inner if x.target in keep}
    links = [
        x.entry_uuid
        for x in submitted.associations
        if x.target in keep or x.target in kept_inner or x.entry_uuid in kept_inner
    ]
    return [
        submitted.submission_set.entry_uuid,
        *(e.entry_uuid for e in entries),
        *(f.entry_uuid for f in submitted.folders),
        *links,
    ]


def test_by_entry_uuid(query, submitted: Submitted) -> None:
    a, b, _ = submitted.entries
    response = query(GET, XDSSubmissionSetEntryUUID=f"'{submitted.submission_set.entry_uuid}'")
    assert response.status == ResponseStatus.SUCCESS
    assert ids(response) == expected(submitted, a, b)


def test_by_unique_id(query, submitted: Submitted) -> None:
    a, b, _ = submitted.entries
    response = query(GET, XDSSubmissionSetUniqueId=f"'{submitted.submission_set.unique_id}'")
    assert ids(response) == expected(submitted, a, b)


def test_format_code_filters_entries_and_their_associations(query, submitted: Submitted) -> None:
    a, b, _ = submitted.entries
    response = query(
        GET,
        XDSSubmissionSetUniqueId=f"'{submitted.submission_set.unique_id}'",
        XDSDocumentEntryFormatCode="('xml^^f')",
    )
    assert ids(response) == expected(submitted, b)


def test_confidentiality_code_filters_entries(query, submitted: Submitted) -> None:
    a, b, _ = submitted.entries
    response = query(
        GET,
        XDSSubmissionSetUniqueId=f"'{submitted.submission_set.unique_id}'",
        XDSDocumentEntryConfidentialityCode="('N^^c')",
    )
    assert ids(response) == expected(submitted, a)


def test_entry_type_selects_on_demand(query, submitted: Submitted) -> None:
    a, b, c = submitted.entries
    response = query(
        GET,
        XDSSubmissionSetUniqueId=f"'{submitted.submission_set.unique_id}'",
        XDSDocumentEntryType=f"('{DOC_ENTRY_ON_DEMAND}')",
    )
    assert ids(response) == expected(submitted, c)


def test_unknown_submission_set_is_an_empty_success(query, submitted: Submitted) -> None:
    response = query(GET, XDSSubmissionSetUniqueId="'9.9.9'")
    assert (response.status, ids(response)) == (ResponseStatus.SUCCESS, [])
