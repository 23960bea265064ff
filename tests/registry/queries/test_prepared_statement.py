"""registry/stored_query.py ``prepared_statement``: a by-patient query's statement is
built once and serves every patient; each run answers for its own patient, on every
backend."""

from __future__ import annotations

import pytest
from query_data import P1, P2, Store, Submitted, ids
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ebxml.messages import AdhocQueryRequest
from ebxml.model import Code
from ebxml.query import (
    FindDocumentsByReferenceIdQuery,
    FindDocumentsQuery,
    FindFoldersQuery,
    FindSubmissionSetsQuery,
    GetAllQuery,
    parse_stored_query,
)
from ebxml.vocabulary import AvailabilityStatus, StoredQuery, Transaction
from registry.queries import QUERIES
from registry.queries.match import PATIENT_PARAM
from registry.stored_query import PATIENT_ID, driver_statement, prepared_statement
from storage.driver import fetch_all

APPROVED = AvailabilityStatus.APPROVED
STATUS = f"('{APPROVED}')"
ACC = "2013001^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession"

# parameters for every by-patient query but the patient's
OTHER_PARAMS: dict[type, dict[str, object]] = {
    FindDocumentsQuery: {
        "status": (APPROVED,),
        "class_code": (Code("c", "s"),),
        "event_code_list": ((Code("e", "s"), Code("f", "s")),),
        "creation_time_from": "2020",
        "author_person": ("%Smith%",),
    },
    FindDocumentsByReferenceIdQuery: {"status": (APPROVED,), "reference_id_list": ((ACC,),)},
    FindSubmissionSetsQuery: {"status": (APPROVED,), "source_id": ("1.2.3",)},
    FindFoldersQuery: {"status": (APPROVED,), "code_list": ((Code("c", "s"),),)},
    GetAllQuery: {
        "document_entry_status": (APPROVED,),
        "submission_set_status": (APPROVED,),
        "folder_status": (APPROVED,),
        "format_code": (Code("pdf", "f"),),
    },
}
BY_PATIENT = sorted(query_id for query_id, q in QUERIES.items() if q.by_patient)


def test_every_by_patient_query_is_covered() -> None:
    assert {QUERIES[q].params_type for q in BY_PATIENT} == set(OTHER_PARAMS)


@pytest.mark.parametrize("dialect", [postgresql.psycopg.dialect(), sqlite.dialect()])
@pytest.mark.parametrize("query_id", BY_PATIENT)
def test_the_patient_is_the_only_value_that_changes(query_id: str, dialect) -> None:
    """The contract of ``QueryImplementation.by_patient``: built for two patients, the
    statements compile to the same SQL, with the same values but the patient's."""
    implementation = QUERIES[query_id]
    compiled = [
        implementation.build(
            implementation.params_type(patient_id=p, **OTHER_PARAMS[implementation.params_type])
        ).compile(dialect=dialect)
        for p in (P1, P2)
    ]
    assert str(compiled[0]) == str(compiled[1])
    first, second = (dict(c.params) for c in compiled)
    assert (first.pop(PATIENT_PARAM), second.pop(PATIENT_PARAM)) == (P1, P2)
    assert first == second


@pytest.mark.parametrize("query_id", BY_PATIENT)
def test_one_statement_for_every_patient(query_id: str) -> None:
    implementation = QUERIES[query_id]
    make = implementation.params_type
    other = OTHER_PARAMS[make]
    one, one_values = prepared_statement(
        implementation, make(patient_id=P1, **other), object_refs=False, limit=11
    )
    two, two_values = prepared_statement(
        implementation, make(patient_id=P2, **other), object_refs=False, limit=11
    )
    assert two is one
    assert (one_values, two_values) == ({PATIENT_PARAM: P1}, {PATIENT_PARAM: P2})
    # any other difference is another statement
    refs, _ = prepared_statement(
        implementation, make(patient_id=P1, **other), object_refs=True, limit=11
    )
    longer, _ = prepared_statement(
        implementation, make(patient_id=P1, **other), object_refs=False, limit=12
    )
    assert len({id(one), id(refs), id(longer)}) == 3


def test_other_queries_are_built_for_their_parameters() -> None:
    implementation = QUERIES[StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS]
    params = implementation.params_type(patient_id=(P1,), status=(APPROVED,))
    one, values = prepared_statement(implementation, params, object_refs=False, limit=5)
    two, _ = prepared_statement(implementation, params, object_refs=False, limit=5)
    assert values == {}
    assert two is not one


def _entries(s: Submitted) -> list[str]:
    return [e.entry_uuid for e in s.entries]


# name -> (stored query, its patient's slot, its other slots, the ids it answers with of
# a submission, None for GetAll: every object and link of it)
ASKED = {
    "find_documents": (
        StoredQuery.FIND_DOCUMENTS, "XDSDocumentEntryPatientId",
        {"XDSDocumentEntryStatus": STATUS}, _entries,
    ),
    "find_by_reference": (
        StoredQuery.FIND_DOCUMENTS_BY_REFERENCE_ID, "XDSDocumentEntryPatientId",
        {"XDSDocumentEntryStatus": STATUS, "XDSDocumentEntryReferenceIdList": [[f"('{ACC}')"]]},
        _entries,
    ),
    "find_submission_sets": (
        StoredQuery.FIND_SUBMISSION_SETS, "XDSSubmissionSetPatientId",
        {"XDSSubmissionSetStatus": STATUS}, lambda s: [s.submission_set.entry_uuid],
    ),
    "find_folders": (
        StoredQuery.FIND_FOLDERS, "XDSFolderPatientId", {"XDSFolderStatus": STATUS},
        lambda s: [f.entry_uuid for f in s.folders],
    ),
    "get_all": (
        StoredQuery.GET_ALL, "patientId",
        {
            "XDSDocumentEntryStatus": STATUS,
            "XDSSubmissionSetStatus": STATUS,
            "XDSFolderStatus": STATUS,
        },
        None,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ASKED))
def test_each_patient_gets_their_own_answer(name: str, store: Store, query) -> None:
    """The same query for P1, P2, P1 again: each run answers for its own patient, the
    statement built for the first serving the others."""
    submitted = {
        p: store.submit(p, store.doc(reference_ids=(ACC,)), folders=[store.folder()])
        for p in (P1, P2)
    }
    query_id, patient_slot, slots, expected = ASKED[name]
    answers = [ids(query(query_id, **{patient_slot: f"'{p}'"}, **slots)) for p in (P1, P2, P1)]
    for patient, answer in zip((P1, P2, P1), answers, strict=True):
        mine, theirs = submitted[patient], submitted[P2 if patient == P1 else P1]
        if expected is not None:
            assert answer == expected(mine)
        else:  # GetAll: the patient's own SubmissionSet, entry and Folder, and links
            assert mine.submission_set.entry_uuid in answer
            assert mine.entries[0].entry_uuid in answer
            assert mine.folders[0].entry_uuid in answer
        assert not {theirs.submission_set.entry_uuid, theirs.entries[0].entry_uuid} & set(answer)
    assert answers[0] == answers[2]


@pytest.mark.parametrize("object_refs", [False, True], ids=["LeafClass", "ObjectRef"])
@pytest.mark.parametrize("name", sorted(ASKED))
def test_the_driver_runs_what_sqlalchemy_runs(
    name: str, object_refs: bool, store: Store, session: Session
) -> None:
    """``driver_statement`` run on the driver's connection (what ``execute_stored_query``
    runs for a by-patient query) reads the rows that ``prepared_statement`` executed by
    SQLAlchemy reads, value for value, for each patient."""
    for p in (P1, P2):
        store.submit(p, store.doc(reference_ids=(ACC,)), folders=[store.folder()])
    query_id, patient_slot, slots, _ = ASKED[name]
    connection = session.connection()
    for patient in (P1, P2):
        parameters = {f"${k}": [[v]] if isinstance(v, str) else v for k, v in slots.items()}
        parameters[f"${patient_slot}"] = [[f"'{patient}'"]]
        request = AdhocQueryRequest(query_id, parameters)
        params = parse_stored_query(request, Transaction.ITI18).params
        assert params is not None
        implementation = QUERIES[query_id]
        statement, values = prepared_statement(
            implementation, params, object_refs=object_refs, limit=100
        )
        expected = [tuple(row) for row in connection.execute(statement, values)]
        on_driver = driver_statement(
            implementation, params, connection.dialect, object_refs=object_refs, limit=100
        )
        assert fetch_all(connection, on_driver, patient) == expected
        assert expected and {row[PATIENT_ID] for row in expected} - {None} == {patient}
