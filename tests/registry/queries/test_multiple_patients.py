"""ITI-51 Multi-Patient Stored Query (ITI TF-2 3.51.4.1.2): FindDocumentsForMultiplePatients
and FindFoldersForMultiplePatients through ``execute_stored_query``, on every backend.
The patient id parameter is optional and a list; the answer may span patients."""

from __future__ import annotations

import pytest
from query_data import P1, P2, RUN, Store, ids
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse
from ebxml.model import Code
from ebxml.vocabulary import AvailabilityStatus, ResponseStatus, StoredQuery, Transaction
from registry.stored_query import StoredQueryConfig, execute_stored_query

APPROVED = f"('{AvailabilityStatus.APPROVED}')"
CLASS = Code(f"class-{RUN}", "1.2.3.4")  # unique to the run: PostgreSQL is shared
FOLDER_CODE = Code(f"folder-{RUN}", "1.2.3.5")


@pytest.fixture
def mpq(session: Session):
    def run(query_id: str, config: StoredQueryConfig | None = None, **slots: str):
        parameters = {f"${k}": [[v]] for k, v in slots.items()}
        return execute_stored_query(
            session,
            AdhocQueryRequest(query_id, parameters),
            config or StoredQueryConfig(),
            Transaction.ITI51,
        )

    return run


def find_documents(mpq, **slots: str) -> AdhocQueryResponse:
    return mpq(
        StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS, XDSDocumentEntryStatus=APPROVED, **slots
    )


@pytest.fixture
def entries(store: Store) -> tuple[str, str, str]:
    """One entry of class CLASS for each patient, and one of another class for P1."""
    a, b, other = store.doc(class_code=CLASS), store.doc(class_code=CLASS), store.doc()
    store.submit(P1, a, other)
    store.submit(P2, b)
    return a.entry_uuid, b.entry_uuid, other.entry_uuid


def test_patient_list_spans_patients(mpq, entries) -> None:
    a, b, other = entries
    response = find_documents(mpq, XDSDocumentEntryPatientId=f"('{P1}', '{P2}')")
    # not XDSResultNotSinglePatient: ITI-51 answers for several patients
    assert response.status == ResponseStatus.SUCCESS
    assert ids(response) == [a, other, b]


def test_patient_list_of_one(mpq, entries) -> None:
    a, _, other = entries
    assert ids(find_documents(mpq, XDSDocumentEntryPatientId=f"('{P1}')")) == [a, other]


def test_without_patients_every_patient_matches(mpq, entries) -> None:
    a, b, _ = entries
    class_code = f"('{CLASS.code}^^{CLASS.scheme}')"
    assert ids(find_documents(mpq, XDSDocumentEntryClassCode=class_code)) == [a, b]


def test_status_still_applies(mpq, entries) -> None:
    deprecated = f"('{AvailabilityStatus.DEPRECATED}')"
    response = mpq(
        StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
        XDSDocumentEntryStatus=deprecated,
        XDSDocumentEntryPatientId=f"('{P1}', '{P2}')",
    )
    assert (response.status, ids(response)) == (ResponseStatus.SUCCESS, [])


def test_result_limit_applies(mpq, entries) -> None:
    response = find_documents(
        mpq,
        config=StoredQueryConfig(max_results=1),
        XDSDocumentEntryPatientId=f"('{P1}', '{P2}')",
    )
    assert [e.code for e in response.errors] == [ErrorCode.XDSTooManyResults]


def test_folders_for_multiple_patients(store: Store, mpq) -> None:
    f1, f2 = store.folder(code_list=(FOLDER_CODE,)), store.folder(code_list=(FOLDER_CODE,))
    store.submit(P1, folders=[f1])
    store.submit(P2, folders=[f2])
    by_patients = mpq(
        StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
        XDSFolderStatus=APPROVED,
        XDSFolderPatientId=f"('{P1}', '{P2}')",
    )
    by_code = mpq(
        StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
        XDSFolderStatus=APPROVED,
        XDSFolderCodeList=f"('{FOLDER_CODE.code}^^{FOLDER_CODE.scheme}')",
    )
    assert ids(by_patients) == ids(by_code) == [f1.entry_uuid, f2.entry_uuid]


def test_find_documents_is_not_an_iti51_query(mpq, entries) -> None:
    response = mpq(
        StoredQuery.FIND_DOCUMENTS,
        XDSDocumentEntryPatientId=f"'{P1}'",
        XDSDocumentEntryStatus=APPROVED,
    )
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownStoredQuery]
