"""GetDocuments and GetDocumentsAndAssociations (ITI TF-2 3.18.4.1.2.3.7.5, 3.18.4.1.2.3.7.8)."""

from __future__ import annotations

from query_data import P1, P2, Store, ids

from ebxml.errors import ErrorCode
from ebxml.vocabulary import ResponseStatus, StoredQuery

GET = StoredQuery.GET_DOCUMENTS


def quoted_list(*values: str) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def test_by_entry_uuid(store: Store, query) -> None:
    a, b, c = store.doc(), store.doc(), store.doc()
    store.submit(P1, a, b, c)
    response = query(GET, XDSDocumentEntryEntryUUID=quoted_list(c.entry_uuid, a.entry_uuid))
    assert response.status == ResponseStatus.SUCCESS
    assert ids(response) == [a.entry_uuid, c.entry_uuid]


def test_by_unique_id(store: Store, query) -> None:
    a, b = store.doc(), store.doc()
    store.submit(P1, a, b)
    assert ids(query(GET, XDSDocumentEntryUniqueId=quoted_list(b.unique_id))) == [b.entry_uuid]


def test_unknown_uuid_is_an_empty_success(store: Store, query) -> None:
    store.submit(P1, store.doc())
    response = query(GET, XDSDocumentEntryEntryUUID=quoted_list("urn:uuid:0"))
    assert (response.status, response.objects) == (ResponseStatus.SUCCESS, ())


def test_entries_of_two_patients_are_refused(store: Store, query) -> None:
    a, b = store.doc(), store.doc()
    store.submit(P1, a)
    store.submit(P2, b)
    response = query(GET, XDSDocumentEntryEntryUUID=quoted_list(a.entry_uuid, b.entry_uuid))
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSResultNotSinglePatient]
    assert response.objects == ()


def test_uuid_and_unique_id_together_are_refused(store: Store, query) -> None:
    a = store.doc()
    store.submit(P1, a)
    response = query(
        GET,
        XDSDocumentEntryEntryUUID=quoted_list(a.entry_uuid),
        XDSDocumentEntryUniqueId=quoted_list(a.unique_id),
    )
    assert [e.code for e in response.errors] == [ErrorCode.XDSStoredQueryParamNumber]


def test_documents_and_associations(store: Store, query) -> None:
    a, b = store.doc(), store.doc()
    submitted = store.submit(P1, a, b)
    response = query(
        StoredQuery.GET_DOCUMENTS_AND_ASSOCIATIONS,
        XDSDocumentEntryEntryUUID=quoted_list(a.entry_uuid),
    )
    links = [x.entry_uuid for x in submitted.associations if x.target == a.entry_uuid]
    assert ids(response) == [a.entry_uuid, *links]
