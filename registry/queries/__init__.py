"""Stored query id -> (its typed parameters, the function that builds its statement).

Each build function takes the frozen parameter dataclass of ``ebxml.query`` and
returns one SQLAlchemy Core statement selecting the columns of
``registry.queries.result.RESULT_COLUMNS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CompoundSelect, Select

from ebxml.query import (
    FindDocumentsByReferenceIdQuery,
    FindDocumentsForMultiplePatientsQuery,
    FindDocumentsQuery,
    FindFoldersForMultiplePatientsQuery,
    FindFoldersQuery,
    FindSubmissionSetsQuery,
    GetAllQuery,
    GetAssociationsQuery,
    GetDocumentsAndAssociationsQuery,
    GetDocumentsQuery,
    GetFolderAndContentsQuery,
    GetFoldersForDocumentQuery,
    GetFoldersQuery,
    GetRelatedDocumentsQuery,
    GetSubmissionSetAndContentsQuery,
    GetSubmissionSetsQuery,
)
from ebxml.vocabulary import StoredQuery
from registry.queries import (
    find_documents,
    find_documents_by_reference_id,
    find_folders,
    find_submission_sets,
    get_all,
    get_associations,
    get_documents,
    get_documents_and_associations,
    get_folder_and_contents,
    get_folders,
    get_related_documents,
    get_submission_set_and_contents,
    get_submission_sets,
)

Statement = Select | CompoundSelect


@dataclass(frozen=True, slots=True)
class QueryImplementation:
    """``by_patient``: the parameters name one patient (``patient_id``), and ``build``
    binds it by name (``match.patient_is``) and uses it nowhere else, so the statement
    built for one patient serves every other with the same remaining parameters."""

    params_type: type
    build: Callable[[Any], Statement]
    by_patient: bool = False


QUERIES: dict[str, QueryImplementation] = {
    StoredQuery.FIND_DOCUMENTS: QueryImplementation(
        FindDocumentsQuery, find_documents.build, by_patient=True
    ),
    StoredQuery.FIND_DOCUMENTS_BY_REFERENCE_ID: QueryImplementation(
        FindDocumentsByReferenceIdQuery, find_documents_by_reference_id.build, by_patient=True
    ),
    StoredQuery.GET_DOCUMENTS: QueryImplementation(GetDocumentsQuery, get_documents.build),
    StoredQuery.GET_DOCUMENTS_AND_ASSOCIATIONS: QueryImplementation(
        GetDocumentsAndAssociationsQuery, get_documents_and_associations.build
    ),
    StoredQuery.GET_ASSOCIATIONS: QueryImplementation(GetAssociationsQuery, get_associations.build),
    StoredQuery.GET_SUBMISSION_SETS: QueryImplementation(
        GetSubmissionSetsQuery, get_submission_sets.build
    ),
    StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS: QueryImplementation(
        GetSubmissionSetAndContentsQuery, get_submission_set_and_contents.build
    ),
    StoredQuery.FIND_SUBMISSION_SETS: QueryImplementation(
        FindSubmissionSetsQuery, find_submission_sets.build, by_patient=True
    ),
    StoredQuery.FIND_FOLDERS: QueryImplementation(
        FindFoldersQuery, find_folders.build, by_patient=True
    ),
    StoredQuery.GET_FOLDERS: QueryImplementation(GetFoldersQuery, get_folders.build),
    StoredQuery.GET_FOLDER_AND_CONTENTS: QueryImplementation(
        GetFolderAndContentsQuery, get_folder_and_contents.build
    ),
    StoredQuery.GET_FOLDERS_FOR_DOCUMENT: QueryImplementation(
        GetFoldersForDocumentQuery, get_folders.build_for_document
    ),
    StoredQuery.GET_ALL: QueryImplementation(GetAllQuery, get_all.build, by_patient=True),
    StoredQuery.GET_RELATED_DOCUMENTS: QueryImplementation(
        GetRelatedDocumentsQuery, get_related_documents.build
    ),
    # ITI-51 Multi-Patient Stored Query (ITI TF-2 3.51.4.1.2)
    StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS: QueryImplementation(
        FindDocumentsForMultiplePatientsQuery, find_documents.build_for_multiple_patients
    ),
    StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS: QueryImplementation(
        FindFoldersForMultiplePatientsQuery, find_folders.build_for_multiple_patients
    ),
}

__all__ = ["QUERIES", "QueryImplementation", "Statement"]
