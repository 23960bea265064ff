"""FindDocumentsByReferenceId (ITI TF-2 3.18.4.1.2.3.7.14), on every backend."""

from __future__ import annotations

from query_data import P1, P2, Store, ids

from ebxml.errors import ErrorCode
from ebxml.vocabulary import AvailabilityStatus, StoredQuery

BY_REF = StoredQuery.FIND_DOCUMENTS_BY_REFERENCE_ID
APPROVED = f"('{AvailabilityStatus.APPROVED}')"
ACC = "2013001^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession"
UID = "20061223^^^&1.2.5643.2&ISO^urn:ihe:iti:xds:2013:uniqueId"
STUDY = "1.2.3.4^^^^urn:ihe:iti:xds:2016:studyInstanceUID"


def by_ref(query, *groups: tuple[str, ...], patient_id: str = P1):
    slots = [["(" + ", ".join(f"'{v}'" for v in group) + ")"] for group in groups]
    return query(
        BY_REF,
        XDSDocumentEntryPatientId=f"'{patient_id}'",
        XDSDocumentEntryStatus=APPROVED,
        XDSDocumentEntryReferenceIdList=slots,
    )


def test_entry_with_a_requested_reference_id_is_found(store: Store, query) -> None:
    both, one, none = (
        store.doc(reference_ids=(ACC, UID)),
        store.doc(reference_ids=(UID,)),
        store.doc(),
    )
    store.submit(P1, both, one, none)
    assert ids(by_ref(query, (ACC,))) == [both.entry_uuid]
    assert ids(by_ref(query, (ACC, STUDY))) == [both.entry_uuid]
    assert ids(by_ref(query, (UID,))) == [both.entry_uuid, one.entry_uuid]


def test_repeated_slots_are_anded(store: Store, query) -> None:
    both, one = store.doc(reference_ids=(ACC, UID)), store.doc(reference_ids=(UID,))
    store.submit(P1, both, one)
    assert ids(by_ref(query, (ACC,), (UID,))) == [both.entry_uuid]


def test_other_patients_entries_are_not_found(store: Store, query) -> None:
    store.submit(P2, store.doc(reference_ids=(ACC,)))
    assert ids(by_ref(query, (ACC,))) == []


def test_reference_id_list_is_required(query) -> None:
    response = query(BY_REF, XDSDocumentEntryPatientId=f"'{P1}'", XDSDocumentEntryStatus=APPROVED)
    assert [e.code for e in response.errors] == [ErrorCode.XDSStoredQueryMissingParam]
