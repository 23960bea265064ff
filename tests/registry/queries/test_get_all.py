"""GetAll (ITI TF-2 3.18.4.1.2.3.7.4) against registered metadata, on every backend:
"all SubmissionSets, DocumentEntries, Folders and the Associations between them" for
one patient, each object kind filtered by its own status parameter."""

from __future__ import annotations

from query_data import P1, P2, Store, Submitted, ids, new_uuid

from ebxml.model import Association, Code
from ebxml.vocabulary import AssociationType, AvailabilityStatus, ResponseStatus, StoredQuery

APPROVED = f"('{AvailabilityStatus.APPROVED}')"
BOTH = f"('{AvailabilityStatus.APPROVED}', '{AvailabilityStatus.DEPRECATED}')"


def get_all(query, patient_id: str = P1, **slots):
    statuses = {
        "XDSDocumentEntryStatus": APPROVED,
        "XDSSubmissionSetStatus": APPROVED,
        "XDSFolderStatus": APPROVED,
    }
    return query(StoredQuery.GET_ALL, patientId=f"'{patient_id}'", **{**statuses, **slots})


def folder_submission(store: Store) -> Submitted:
    a, b = store.doc(format_code=Code("pdf", "f")), store.doc(format_code=Code("xml", "f"))
    f = store.folder()
    return store.submit(P1, a, b, folders=[f], folder_members=[(f, a)])


def test_returns_every_object_and_association_of_the_patient(store: Store, query) -> None:
    s = folder_submission(store)
    store.submit(P2, store.doc())
    response = get_all(query)
    assert response.status == ResponseStatus.SUCCESS
    # SubmissionSets, DocumentEntries, Folders, Associations (result.ResultKind order)
    assert ids(response) == [
        s.submission_set.entry_uuid,
        *(e.entry_uuid for e in s.entries),
        s.folders[0].entry_uuid,
        *(x.entry_uuid for x in s.associations),
    ]


def test_submission_set_hasmember_of_folder_membership_is_returned(store: Store, query) -> None:
    # the SubmissionSet -> (Folder -> DocumentEntry) HasMember targets an Association
    s = folder_submission(store)
    (entry,) = [
        x
        for x in s.associations
        if x.source == s.submission_set.entry_uuid
        and x.target not in {o.entry_uuid for o in (*s.entries, *s.folders)}
    ]
    assert entry.entry_uuid in ids(get_all(query))


def test_other_patients_objects_are_not_returned(store: Store, query) -> None:
    folder_submission(store)
    other = store.submit(P2, store.doc())
    assert set(ids(get_all(query, P2))) == {
        other.submission_set.entry_uuid,
        other.entries[0].entry_uuid,
        other.associations[0].entry_uuid,
    }


def test_format_code_filters_entries_and_their_associations(store: Store, query) -> None:
    s = folder_submission(store)
    a, b = s.entries
    returned = ids(get_all(query, XDSDocumentEntryFormatCode="('xml^^f')"))
    assert b.entry_uuid in returned
    assert a.entry_uuid not in returned
    # no Association to an entry left out
    assert not any(x.target == a.entry_uuid and x.entry_uuid in returned for x in s.associations)


def test_confidentiality_code_filters_entries(store: Store, query) -> None:
    n = store.doc(confidentiality_codes=(Code("N", "c"),))
    r = store.doc(confidentiality_codes=(Code("R", "c"),))
    store.submit(P1, n, r)
    returned = ids(get_all(query, XDSDocumentEntryConfidentialityCode="('R^^c')"))
    assert r.entry_uuid in returned
    assert n.entry_uuid not in returned


def test_each_kind_has_its_own_status(store: Store, query) -> None:
    original = store.doc()
    first = store.submit(P1, original)
    replacement = store.doc()
    rplc = Association(
        new_uuid(), AssociationType.RPLC, replacement.entry_uuid, original.entry_uuid
    )
    store.submit(P1, replacement, associations=[rplc])
    approved = ids(get_all(query))
    assert original.entry_uuid not in approved
    assert rplc.entry_uuid not in approved  # its target is not returned
    everything = ids(get_all(query, XDSDocumentEntryStatus=BOTH))
    assert {original.entry_uuid, replacement.entry_uuid, rplc.entry_uuid} <= set(everything)
    assert first.submission_set.entry_uuid in everything


def test_submission_set_status_is_applied(store: Store, query) -> None:
    s = store.submit(P1, store.doc())
    deprecated_only = f"('{AvailabilityStatus.DEPRECATED}')"
    returned = ids(get_all(query, XDSSubmissionSetStatus=deprecated_only))
    assert s.submission_set.entry_uuid not in returned
    assert s.entries[0].entry_uuid in returned


def test_folder_status_is_applied(store: Store, query) -> None:
    s = folder_submission(store)
    deprecated_only = f"('{AvailabilityStatus.DEPRECATED}')"
    assert s.folders[0].entry_uuid not in ids(get_all(query, XDSFolderStatus=deprecated_only))


def test_unknown_patient_is_an_empty_success(store: Store, query) -> None:
    folder_submission(store)
    response = get_all(query, "nobody^^^&1.2.3&ISO")
    assert (response.status, response.objects) == (ResponseStatus.SUCCESS, ())
