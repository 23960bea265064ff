"""ITI-18 stored query parameters: the value syntax and one typed parameter set per query.

An ``AdhocQueryRequest`` carries its parameters as Slot strings (ITI TF-2 3.18.4.1.2.3.5);
``parse_stored_query`` turns them into the frozen dataclass of the query named by the
request, or into the ``RegistryError`` values that say why it cannot.  Which parameter a
query takes, its type, whether it may repeat and whether it is required is data: one
``QueryDefinition`` per query in ``QUERY_DEFINITIONS``.

Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest
from ebxml.model import Code
from ebxml.vocabulary import (
    DOC_ENTRY_STABLE,
    DOC_ENTRY_TYPES,
    AvailabilityStatus,
    QueryParameter,
    StoredQuery,
    Transaction,
)

P = QueryParameter

# --- typed parameter sets, one per stored query ------------------------------------------


@dataclass(frozen=True, slots=True)
class FindDocumentsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.1 FindDocuments.

    Code lists are ORed; ``event_code_list`` and ``confidentiality_code`` are ANDed groups
    of ORed codes (one group per Slot, ITI TF-2 3.18.4.1.2.3.5).  Times are DTM strings:
    ``*_from`` is inclusive, ``*_to`` exclusive (ITI TF-2 3.18.4.1.2.3.6).
    """

    patient_id: str
    status: tuple[str, ...]
    class_code: tuple[Code, ...] = ()
    type_code: tuple[Code, ...] = ()
    practice_setting_code: tuple[Code, ...] = ()
    healthcare_facility_type_code: tuple[Code, ...] = ()
    format_code: tuple[Code, ...] = ()
    event_code_list: tuple[tuple[Code, ...], ...] = ()
    confidentiality_code: tuple[tuple[Code, ...], ...] = ()
    creation_time_from: str | None = None
    creation_time_to: str | None = None
    service_start_time_from: str | None = None
    service_start_time_to: str | None = None
    service_stop_time_from: str | None = None
    service_stop_time_to: str | None = None
    author_person: tuple[str, ...] = ()
    # ITI TF-2 3.18.4.1.2.3.6.2: without $XDSDocumentEntryType only stable entries match
    entry_type: tuple[str, ...] = (DOC_ENTRY_STABLE,)
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class FindDocumentsByReferenceIdQuery(FindDocumentsQuery):
    """ITI TF-2 3.18.4.1.2.3.7.14 FindDocumentsByReferenceId (Reference ID Option):
    FindDocuments narrowed to entries whose referenceIdList holds a requested CXi value;
    each Slot of ``$XDSDocumentEntryReferenceIdList`` is an ORed group, the groups ANDed."""

    reference_id_list: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class FindDocumentsForMultiplePatientsQuery:
    """ITI TF-2 3.51.4.1.2 FindDocumentsForMultiplePatients (ITI-51): FindDocuments with
    ``$XDSDocumentEntryPatientId`` optional and a list (ORed); without it every patient's
    entries match.  The other parameters are those of FindDocuments."""

    status: tuple[str, ...]
    patient_id: tuple[str, ...] = ()
    class_code: tuple[Code, ...] = ()
    type_code: tuple[Code, ...] = ()
    practice_setting_code: tuple[Code, ...] = ()
    healthcare_facility_type_code: tuple[Code, ...] = ()
    format_code: tuple[Code, ...] = ()
    event_code_list: tuple[tuple[Code, ...], ...] = ()
    confidentiality_code: tuple[tuple[Code, ...], ...] = ()
    creation_time_from: str | None = None
    creation_time_to: str | None = None
    service_start_time_from: str | None = None
    service_start_time_to: str | None = None
    service_stop_time_from: str | None = None
    service_stop_time_to: str | None = None
    author_person: tuple[str, ...] = ()
    entry_type: tuple[str, ...] = (DOC_ENTRY_STABLE,)
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetAllQuery:
    """ITI TF-2 3.18.4.1.2.3.7.4 GetAll: a patient's SubmissionSets, DocumentEntries and
    Folders, each kind by its own status list, the entries also by formatCode,
    confidentialityCode and objectType; and the Associations among them."""

    patient_id: str
    document_entry_status: tuple[str, ...]
    submission_set_status: tuple[str, ...]
    folder_status: tuple[str, ...]
    format_code: tuple[Code, ...] = ()
    confidentiality_code: tuple[tuple[Code, ...], ...] = ()
    entry_type: tuple[str, ...] = (DOC_ENTRY_STABLE,)
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetDocumentsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.5 GetDocuments: by entryUUID, by uniqueId or (Metadata
    Update) by logicalID - exactly one of them."""

    entry_uuid: tuple[str, ...] = ()
    unique_id: tuple[str, ...] = ()
    home_community_id: str | None = None
    metadata_level: int = 1
    logical_id: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GetDocumentsAndAssociationsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.8 GetDocumentsAndAssociations."""

    entry_uuid: tuple[str, ...] = ()
    unique_id: tuple[str, ...] = ()
    home_community_id: str | None = None
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetAssociationsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.7 GetAssociations: every Association with source or
    target in ``uuid``."""

    uuid: tuple[str, ...]
    home_community_id: str | None = None
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetSubmissionSetsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.9 GetSubmissionSets: the SubmissionSets that HasMember
    any object in ``uuid``, and those HasMember Associations."""

    uuid: tuple[str, ...]
    home_community_id: str | None = None
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetSubmissionSetAndContentsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.10 GetSubmissionSetAndContents."""

    entry_uuid: str | None = None
    unique_id: str | None = None
    format_code: tuple[Code, ...] = ()
    confidentiality_code: tuple[tuple[Code, ...], ...] = ()
    entry_type: tuple[str, ...] = (DOC_ENTRY_STABLE,)
    home_community_id: str | None = None
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class FindSubmissionSetsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.2 FindSubmissionSets."""

    patient_id: str
    status: tuple[str, ...]
    source_id: tuple[str, ...] = ()
    submission_time_from: str | None = None
    submission_time_to: str | None = None
    author_person: str | None = None
    content_type: tuple[Code, ...] = ()
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class FindFoldersQuery:
    """ITI TF-2 3.18.4.1.2.3.7.3 FindFolders."""

    patient_id: str
    status: tuple[str, ...]
    last_update_time_from: str | None = None
    last_update_time_to: str | None = None
    code_list: tuple[tuple[Code, ...], ...] = ()
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class FindFoldersForMultiplePatientsQuery:
    """ITI TF-2 3.51.4.1.2 FindFoldersForMultiplePatients (ITI-51): FindFolders with
    ``$XDSFolderPatientId`` optional and a list (ORed)."""

    status: tuple[str, ...]
    patient_id: tuple[str, ...] = ()
    last_update_time_from: str | None = None
    last_update_time_to: str | None = None
    code_list: tuple[tuple[Code, ...], ...] = ()
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetFoldersQuery:
    """ITI TF-2 3.18.4.1.2.3.7.6 GetFolders: by entryUUID, by uniqueId or (Metadata
    Update) by logicalID - exactly one of them."""

    entry_uuid: tuple[str, ...] = ()
    unique_id: tuple[str, ...] = ()
    home_community_id: str | None = None
    metadata_level: int = 1
    logical_id: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GetFolderAndContentsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.11 GetFolderAndContents."""

    entry_uuid: str | None = None
    unique_id: str | None = None
    format_code: tuple[Code, ...] = ()
    confidentiality_code: tuple[tuple[Code, ...], ...] = ()
    entry_type: tuple[str, ...] = (DOC_ENTRY_STABLE,)
    home_community_id: str | None = None
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetFoldersForDocumentQuery:
    """ITI TF-2 3.18.4.1.2.3.7.12 GetFoldersForDocument."""

    entry_uuid: str | None = None
    unique_id: str | None = None
    home_community_id: str | None = None
    metadata_level: int = 1


@dataclass(frozen=True, slots=True)
class GetRelatedDocumentsQuery:
    """ITI TF-2 3.18.4.1.2.3.7.13 GetRelatedDocuments: the DocumentEntries related to one
    DocumentEntry (named by entryUUID or uniqueId) by an Association of one of
    ``association_types``, in either direction, and those Associations."""

    association_types: tuple[str, ...]
    entry_uuid: str | None = None
    unique_id: str | None = None
    entry_type: tuple[str, ...] = (DOC_ENTRY_STABLE,)
    home_community_id: str | None = None
    metadata_level: int = 1


StoredQueryParams = (
    FindDocumentsQuery
    | FindDocumentsForMultiplePatientsQuery
    | FindFoldersForMultiplePatientsQuery
    | GetAllQuery
    | GetRelatedDocumentsQuery
    | GetDocumentsQuery
    | GetDocumentsAndAssociationsQuery
    | GetAssociationsQuery
    | GetSubmissionSetsQuery
    | GetSubmissionSetAndContentsQuery
    | FindSubmissionSetsQuery
    | FindFoldersQuery
    | GetFoldersQuery
    | GetFolderAndContentsQuery
    | GetFoldersForDocumentQuery
)

# --- the parameter tables --------------------------------------------------------------


class ValueKind(Enum):
    """What one parameter value must look like (ITI TF-2 3.18.4.1.2.3.5)."""

    STRING = "string"  # quoted
    NUMBER = "number"  # bare integer
    DTM = "DTM"  # ITI TF-3 Table 4.2.3.1.7-2: YYYY[MM[DD[hh[mm[ss]]]]]
    CODE = "code"  # 'code^^scheme'
    STATUS = "status"  # an ebRIM StatusType URN
    ENTRY_TYPE = "entry type"  # a DocumentEntry objectType


class Arity(Enum):
    """How many values a parameter takes and how repeated Slots combine
    (ITI TF-2 3.18.4.1.2.3.5)."""

    SINGLE = "single"  # exactly one value
    OR = "or"  # any number of values, in one or several Slots, ORed
    AND_OR = "and/or"  # each Slot an ORed group, the groups ANDed


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    name: QueryParameter
    field: str
    kind: ValueKind
    arity: Arity = Arity.SINGLE
    required: bool = False
    choices: frozenset[object] = frozenset()


@dataclass(frozen=True, slots=True)
class QueryDefinition:
    """One stored query: its parameters, its groups of which exactly one / at least one
    is given, and the transaction that carries it (ITI-18, or ITI-51 for the
    multi-patient queries, whose result may span patients)."""

    query_id: StoredQuery
    params_type: type
    parameters: tuple[ParameterSpec, ...]
    exactly_one_of: tuple[tuple[QueryParameter, ...], ...] = ()
    at_least_one_of: tuple[tuple[QueryParameter, ...], ...] = ()
    transaction: Transaction = Transaction.ITI18

    @property
    def multi_patient(self) -> bool:
        return self.transaction is Transaction.ITI51


S = ParameterSpec
K = ValueKind
A = Arity

# ITI TF-2 3.18.4.1.2.3.5.1: $MetadataLevel 1 (default) or 2 (Metadata Update)
_METADATA_LEVEL = S(P.METADATA_LEVEL, "metadata_level", K.NUMBER, choices=frozenset({1, 2}))
_HOME = S(P.HOME_COMMUNITY_ID, "home_community_id", K.STRING)

# ITI TF-2 3.18.4.1.2.3.7.1: the FindDocuments parameters (FindDocumentsByReferenceId adds one)
_FIND_DOCUMENTS_PARAMETERS = (
    S(P.DOC_ENTRY_PATIENT_ID, "patient_id", K.STRING, required=True),
    S(P.DOC_ENTRY_STATUS, "status", K.STATUS, A.OR, required=True),
    S(P.DOC_ENTRY_CLASS_CODE, "class_code", K.CODE, A.OR),
    S(P.DOC_ENTRY_TYPE_CODE, "type_code", K.CODE, A.OR),
    S(P.DOC_ENTRY_PRACTICE_SETTING_CODE, "practice_setting_code", K.CODE, A.OR),
    S(
        P.DOC_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE,
        "healthcare_facility_type_code",
        K.CODE,
        A.OR,
    ),
    S(P.DOC_ENTRY_FORMAT_CODE, "format_code", K.CODE, A.OR),
    S(P.DOC_ENTRY_EVENT_CODE_LIST, "event_code_list", K.CODE, A.AND_OR),
    S(P.DOC_ENTRY_CONFIDENTIALITY_CODE, "confidentiality_code", K.CODE, A.AND_OR),
    S(P.DOC_ENTRY_CREATION_TIME_FROM, "creation_time_from", K.DTM),
    S(P.DOC_ENTRY_CREATION_TIME_TO, "creation_time_to", K.DTM),
    S(P.DOC_ENTRY_SERVICE_START_TIME_FROM, "service_start_time_from", K.DTM),
    S(P.DOC_ENTRY_SERVICE_START_TIME_TO, "service_start_time_to", K.DTM),
    S(P.DOC_ENTRY_SERVICE_STOP_TIME_FROM, "service_stop_time_from", K.DTM),
    S(P.DOC_ENTRY_SERVICE_STOP_TIME_TO, "service_stop_time_to", K.DTM),
    S(P.DOC_ENTRY_AUTHOR_PERSON, "author_person", K.STRING, A.OR),
    S(P.DOC_ENTRY_TYPE, "entry_type", K.ENTRY_TYPE, A.OR),
    _METADATA_LEVEL,
)

# ITI TF-2 3.51.4.1.2: the multi-patient variants make the patient id optional and a list
_MULTI_PATIENT_DOCUMENTS_PARAMETERS = (
    S(P.DOC_ENTRY_PATIENT_ID, "patient_id", K.STRING, A.OR),
    *_FIND_DOCUMENTS_PARAMETERS[1:],
)
_FIND_FOLDERS_FILTERS = (
    S(P.FOLDER_STATUS, "status", K.STATUS, A.OR, required=True),
    S(P.FOLDER_LAST_UPDATE_TIME_FROM, "last_update_time_from", K.DTM),
    S(P.FOLDER_LAST_UPDATE_TIME_TO, "last_update_time_to", K.DTM),
    S(P.FOLDER_CODE_LIST, "code_list", K.CODE, A.AND_OR),
    _METADATA_LEVEL,
)

QUERY_DEFINITIONS: dict[str, QueryDefinition] = {
    d.query_id: d
    for d in (
        QueryDefinition(
            StoredQuery.FIND_DOCUMENTS,
            FindDocumentsQuery,
            _FIND_DOCUMENTS_PARAMETERS,
        ),
        QueryDefinition(
            StoredQuery.FIND_DOCUMENTS_BY_REFERENCE_ID,
            FindDocumentsByReferenceIdQuery,
            (
                *_FIND_DOCUMENTS_PARAMETERS,
                S(
                    P.DOC_ENTRY_REFERENCE_ID_LIST,
                    "reference_id_list",
                    K.STRING,
                    A.AND_OR,
                    required=True,
                ),
            ),
        ),
        QueryDefinition(
            StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
            FindDocumentsForMultiplePatientsQuery,
            _MULTI_PATIENT_DOCUMENTS_PARAMETERS,
            # ITI TF-2 3.51.4.1.2: the patient list, classCode, eventCodeList or
            # healthcareFacilityTypeCode bounds the query
            at_least_one_of=(
                (
                    P.DOC_ENTRY_PATIENT_ID,
                    P.DOC_ENTRY_CLASS_CODE,
                    P.DOC_ENTRY_EVENT_CODE_LIST,
                    P.DOC_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE,
                ),
            ),
            transaction=Transaction.ITI51,
        ),
        QueryDefinition(
            StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
            FindFoldersForMultiplePatientsQuery,
            (S(P.FOLDER_PATIENT_ID, "patient_id", K.STRING, A.OR), *_FIND_FOLDERS_FILTERS),
            at_least_one_of=((P.FOLDER_PATIENT_ID, P.FOLDER_CODE_LIST),),
            transaction=Transaction.ITI51,
        ),
        QueryDefinition(
            StoredQuery.GET_ALL,
            GetAllQuery,
            (
                S(P.PATIENT_ID, "patient_id", K.STRING, required=True),
                S(P.DOC_ENTRY_STATUS, "document_entry_status", K.STATUS, A.OR, required=True),
                S(P.SUBMISSION_SET_STATUS, "submission_set_status", K.STATUS, A.OR, required=True),
                S(P.FOLDER_STATUS, "folder_status", K.STATUS, A.OR, required=True),
                S(P.DOC_ENTRY_FORMAT_CODE, "format_code", K.CODE, A.OR),
                S(P.DOC_ENTRY_CONFIDENTIALITY_CODE, "confidentiality_code", K.CODE, A.AND_OR),
                S(P.DOC_ENTRY_TYPE, "entry_type", K.ENTRY_TYPE, A.OR),
                _METADATA_LEVEL,
            ),
        ),
        QueryDefinition(
            StoredQuery.GET_DOCUMENTS,
            GetDocumentsQuery,
            (
                S(P.DOC_ENTRY_ENTRY_UUID, "entry_uuid", K.STRING, A.OR),
                S(P.DOC_ENTRY_UNIQUE_ID, "unique_id", K.STRING, A.OR),
                S(P.DOC_ENTRY_LOGICAL_ID, "logical_id", K.STRING, A.OR),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.DOC_ENTRY_ENTRY_UUID, P.DOC_ENTRY_UNIQUE_ID, P.DOC_ENTRY_LOGICAL_ID),),
        ),
        QueryDefinition(
            StoredQuery.GET_DOCUMENTS_AND_ASSOCIATIONS,
            GetDocumentsAndAssociationsQuery,
            (
                S(P.DOC_ENTRY_ENTRY_UUID, "entry_uuid", K.STRING, A.OR),
                S(P.DOC_ENTRY_UNIQUE_ID, "unique_id", K.STRING, A.OR),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.DOC_ENTRY_ENTRY_UUID, P.DOC_ENTRY_UNIQUE_ID),),
        ),
        QueryDefinition(
            StoredQuery.GET_ASSOCIATIONS,
            GetAssociationsQuery,
            (S(P.UUID, "uuid", K.STRING, A.OR, required=True), _HOME, _METADATA_LEVEL),
        ),
        QueryDefinition(
            StoredQuery.GET_SUBMISSION_SETS,
            GetSubmissionSetsQuery,
            (S(P.UUID, "uuid", K.STRING, A.OR, required=True), _HOME, _METADATA_LEVEL),
        ),
        QueryDefinition(
            StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS,
            GetSubmissionSetAndContentsQuery,
            (
                S(P.SUBMISSION_SET_ENTRY_UUID, "entry_uuid", K.STRING),
                S(P.SUBMISSION_SET_UNIQUE_ID, "unique_id", K.STRING),
                S(P.DOC_ENTRY_FORMAT_CODE, "format_code", K.CODE, A.OR),
                S(P.DOC_ENTRY_CONFIDENTIALITY_CODE, "confidentiality_code", K.CODE, A.AND_OR),
                S(P.DOC_ENTRY_TYPE, "entry_type", K.ENTRY_TYPE, A.OR),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.SUBMISSION_SET_ENTRY_UUID, P.SUBMISSION_SET_UNIQUE_ID),),
        ),
        QueryDefinition(
            StoredQuery.FIND_SUBMISSION_SETS,
            FindSubmissionSetsQuery,
            (
                S(P.SUBMISSION_SET_PATIENT_ID, "patient_id", K.STRING, required=True),
                S(P.SUBMISSION_SET_STATUS, "status", K.STATUS, A.OR, required=True),
                S(P.SUBMISSION_SET_SOURCE_ID, "source_id", K.STRING, A.OR),
                S(P.SUBMISSION_SET_SUBMISSION_TIME_FROM, "submission_time_from", K.DTM),
                S(P.SUBMISSION_SET_SUBMISSION_TIME_TO, "submission_time_to", K.DTM),
                S(P.SUBMISSION_SET_AUTHOR_PERSON, "author_person", K.STRING),
                S(P.SUBMISSION_SET_CONTENT_TYPE, "content_type", K.CODE, A.OR),
                _METADATA_LEVEL,
            ),
        ),
        QueryDefinition(
            StoredQuery.FIND_FOLDERS,
            FindFoldersQuery,
            (S(P.FOLDER_PATIENT_ID, "patient_id", K.STRING, required=True), *_FIND_FOLDERS_FILTERS),
        ),
        QueryDefinition(
            StoredQuery.GET_FOLDERS,
            GetFoldersQuery,
            (
                S(P.FOLDER_ENTRY_UUID, "entry_uuid", K.STRING, A.OR),
                S(P.FOLDER_UNIQUE_ID, "unique_id", K.STRING, A.OR),
                S(P.FOLDER_LOGICAL_ID, "logical_id", K.STRING, A.OR),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.FOLDER_ENTRY_UUID, P.FOLDER_UNIQUE_ID, P.FOLDER_LOGICAL_ID),),
        ),
        QueryDefinition(
            StoredQuery.GET_FOLDER_AND_CONTENTS,
            GetFolderAndContentsQuery,
            (
                S(P.FOLDER_ENTRY_UUID, "entry_uuid", K.STRING),
                S(P.FOLDER_UNIQUE_ID, "unique_id", K.STRING),
                S(P.DOC_ENTRY_FORMAT_CODE, "format_code", K.CODE, A.OR),
                S(P.DOC_ENTRY_CONFIDENTIALITY_CODE, "confidentiality_code", K.CODE, A.AND_OR),
                S(P.DOC_ENTRY_TYPE, "entry_type", K.ENTRY_TYPE, A.OR),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.FOLDER_ENTRY_UUID, P.FOLDER_UNIQUE_ID),),
        ),
        QueryDefinition(
            StoredQuery.GET_FOLDERS_FOR_DOCUMENT,
            GetFoldersForDocumentQuery,
            (
                S(P.DOC_ENTRY_ENTRY_UUID, "entry_uuid", K.STRING),
                S(P.DOC_ENTRY_UNIQUE_ID, "unique_id", K.STRING),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.DOC_ENTRY_ENTRY_UUID, P.DOC_ENTRY_UNIQUE_ID),),
        ),
        QueryDefinition(
            StoredQuery.GET_RELATED_DOCUMENTS,
            GetRelatedDocumentsQuery,
            (
                S(P.DOC_ENTRY_ENTRY_UUID, "entry_uuid", K.STRING),
                S(P.DOC_ENTRY_UNIQUE_ID, "unique_id", K.STRING),
                S(P.ASSOCIATION_TYPES, "association_types", K.STRING, A.OR, required=True),
                S(P.DOC_ENTRY_TYPE, "entry_type", K.ENTRY_TYPE, A.OR),
                _HOME,
                _METADATA_LEVEL,
            ),
            ((P.DOC_ENTRY_ENTRY_UUID, P.DOC_ENTRY_UNIQUE_ID),),
        ),
    )
}

# --- value syntax (ITI TF-2 3.18.4.1.2.3.5) ----------------------------------------------


class ValueSyntaxError(ValueError):
    """A Slot value that does not follow the stored query value syntax."""


@dataclass(frozen=True, slots=True)
class ValueToken:
    """One value of a Slot Value: its text (quotes removed, ``''`` undone) and whether
    it was quoted."""

    text: str
    quoted: bool


_BARE = re.compile(r"[+-]?\d+")


def split_value(text: str) -> tuple[ValueToken, ...]:
    """One Slot Value: ``'a'``, ``42`` or ``('a', 'b', 42)``.

    ITI TF-2 3.18.4.1.2.3.5: strings are in single quotes, a quote inside one is doubled;
    numbers are bare; a list is in parentheses, its items separated by commas.
    """
    s = text.strip()
    if s.startswith("("):
        if not s.endswith(")"):
            raise ValueSyntaxError(f"list {text!r} is not closed by ')'")
        items = _scan_items(s[1:-1])
        if not items:
            raise ValueSyntaxError("empty list '()'")
        return items
    items = _scan_items(s)
    if len(items) != 1:
        raise ValueSyntaxError(f"{text!r} holds several values but is not a list in '(...)'")
    return items


def _scan_items(s: str) -> tuple[ValueToken, ...]:
    items: list[ValueToken] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i == n:
            if items:
                raise ValueSyntaxError("a value is missing after ','")
            return ()
        if s[i] == "'":
            i, item = _scan_quoted(s, i)
        else:
            j = i
            while j < n and s[j] != "," and not s[j].isspace():
                j += 1
            token = s[i:j]
            if not _BARE.fullmatch(token):
                raise ValueSyntaxError(
                    f"{token!r} is neither a number nor a string in single quotes"
                )
            item, i = ValueToken(token, quoted=False), j
        items.append(item)
        while i < n and s[i].isspace():
            i += 1
        if i == n:
            return tuple(items)
        if s[i] != ",":
            raise ValueSyntaxError(f"unexpected {s[i:]!r} after a value")
        i += 1


# a quoted string from its opening quote: runs of anything but a quote, or a doubled
# quote, up to the closing one; possessive, so a doubled quote is never taken apart
_QUOTED = re.compile(r"'((?:[^']++|'')*+)'")


def _scan_quoted(s: str, start: int) -> tuple[int, ValueToken]:
    quoted = _QUOTED.match(s, start)
    if quoted is None:
        raise ValueSyntaxError(f"string {s[start:]!r} has no closing quote")
    return quoted.end(), ValueToken(quoted.group(1).replace("''", "'"), quoted=True)


# --- typed values -----------------------------------------------------------------------

_DTM = re.compile(r"\d{4}(?:\d{2}){0,5}")  # ITI TF-3 Table 4.2.3.1.7-2
_STATUSES = frozenset(AvailabilityStatus)


def _string(item: ValueToken) -> str:
    if not item.quoted:
        raise ValueSyntaxError(f"{item.text} must be a string in single quotes")
    return item.text


def _number(item: ValueToken) -> int:
    # Numbers are bare (ITI TF-2 3.18.4.1.2.3.5); a quoted number is accepted as well.
    if not _BARE.fullmatch(item.text):
        raise ValueSyntaxError(f"{item.text!r} is not a number")
    return int(item.text)


def _dtm(item: ValueToken) -> str:
    if not _DTM.fullmatch(item.text):
        raise ValueSyntaxError(
            f"{item.text!r} is not a DTM (YYYY[MM[DD[hh[mm[ss]]]]], ITI TF-3 4.2.3.1.7)"
        )
    return item.text


def _code(item: ValueToken) -> Code:
    # ITI TF-2 3.18.4.1.2.3.5: a coded value is code^^codingScheme, both parts required
    code, sep, scheme = _string(item).partition("^^")
    if not sep or not code or not scheme or "^^" in scheme:
        raise ValueSyntaxError(f"{item.text!r} is not of the form code^^scheme")
    return Code(code, scheme)


def _status(item: ValueToken) -> str:
    value = _string(item)
    if value not in _STATUSES:
        raise ValueSyntaxError(f"{value!r} is not an ebRIM StatusType URN")
    return value


def _entry_type(item: ValueToken) -> str:
    value = _string(item)
    if value not in DOC_ENTRY_TYPES:
        raise ValueSyntaxError(f"{value!r} is not a DocumentEntry objectType")
    return value


_CONVERT: dict[ValueKind, Callable[[ValueToken], Any]] = {
    ValueKind.STRING: _string,
    ValueKind.NUMBER: _number,
    ValueKind.DTM: _dtm,
    ValueKind.CODE: _code,
    ValueKind.STATUS: _status,
    ValueKind.ENTRY_TYPE: _entry_type,
}

# --- parsing a request ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryParseResult:
    """The typed parameters, or the errors that prevent them (``params`` is then None)."""

    params: StoredQueryParams | None
    errors: tuple[RegistryError, ...] = ()


def _error(code: ErrorCode, name: str, what: str) -> RegistryError:
    return RegistryError(code, f"{name}: {what}", location=name)


def _slot_groups(spec: ParameterSpec, slots: list[list[str]]) -> list[list[Any]]:
    """Each Slot's values, parsed and typed; raises ValueSyntaxError."""
    convert = _CONVERT[spec.kind]
    groups: list[list[Any]] = []
    for slot in slots:
        group = [convert(item) for value in slot for item in split_value(value)]
        if group:
            groups.append(group)
    return groups


def _parameter(spec: ParameterSpec, slots: list[list[str]]) -> tuple[Any, RegistryError | None]:
    """(value for the dataclass field, None) or (None, the error)."""
    try:
        groups = _slot_groups(spec, slots)
    except ValueSyntaxError as exc:
        return None, _error(ErrorCode.XDSRegistryError, spec.name, str(exc))
    values = [v for g in groups for v in g]
    if spec.choices:
        bad = [v for v in values if v not in spec.choices]
        if bad:
            allowed = ", ".join(sorted(map(str, spec.choices)))
            return None, _error(
                ErrorCode.XDSRegistryError, spec.name, f"{bad[0]!r} is not one of {allowed}"
            )
    if spec.arity is Arity.SINGLE:
        if len(values) != 1:
            return None, _error(
                ErrorCode.XDSStoredQueryParamNumber,
                spec.name,
                f"takes one value, {len(values)} given",
            )
        return values[0], None
    if spec.arity is Arity.OR:
        return tuple(dict.fromkeys(values)), None
    return tuple(tuple(dict.fromkeys(g)) for g in groups), None


def _present(request: AdhocQueryRequest, name: str) -> bool:
    return any(v.strip() for slot in request.parameters.get(name, ()) for v in slot)


def parse_stored_query(
    request: AdhocQueryRequest, transaction: Transaction = Transaction.ITI18
) -> QueryParseResult:
    """Check and type the parameters of ``request`` against its query's definition.

    A query id that ``transaction`` does not carry is unknown (XDSUnknownStoredQuery): the
    multi-patient queries belong to ITI-51 (ITI TF-2 3.51.4.1.2), the others to ITI-18.
    Parameters a query does not define are ignored (ebRS 3.0 6.3.2.1).
    """
    definition = QUERY_DEFINITIONS.get(request.query_id)
    if definition is None or definition.transaction != transaction:
        return QueryParseResult(
            None,
            (
                RegistryError(
                    ErrorCode.XDSUnknownStoredQuery,
                    f"unknown stored query id {request.query_id} for {transaction}",
                    location=request.query_id,
                ),
            ),
        )
    errors: list[RegistryError] = []
    fields: dict[str, Any] = {}
    for spec in definition.parameters:
        if not _present(request, spec.name):
            if spec.required:
                errors.append(
                    _error(ErrorCode.XDSStoredQueryMissingParam, spec.name, "required, missing")
                )
            continue
        value, error = _parameter(spec, request.parameters[spec.name])
        if error is not None:
            errors.append(error)
        else:
            fields[spec.field] = value
    for group in definition.exactly_one_of:
        given = [name for name in group if _present(request, name)]
        names = " or ".join(group)
        if len(given) > 1:
            errors.append(
                _error(
                    ErrorCode.XDSStoredQueryParamNumber,
                    given[0],
                    f"exactly one of {names} may be given",
                )
            )
        elif not given:
            errors.append(
                _error(
                    ErrorCode.XDSStoredQueryMissingParam, group[0], f"one of {names} is required"
                )
            )
    for group in definition.at_least_one_of:
        if not any(_present(request, name) for name in group):
            errors.append(
                _error(
                    ErrorCode.XDSStoredQueryMissingParam,
                    group[0],
                    f"at least one of {', '.join(group)} is required",
                )
            )
    if errors:
        return QueryParseResult(None, tuple(errors))
    return QueryParseResult(definition.params_type(**fields))


__all__ = [
    "Arity",
    "FindDocumentsByReferenceIdQuery",
    "FindDocumentsForMultiplePatientsQuery",
    "FindDocumentsQuery",
    "FindFoldersForMultiplePatientsQuery",
    "FindFoldersQuery",
    "GetAllQuery",
    "GetRelatedDocumentsQuery",
    "FindSubmissionSetsQuery",
    "GetFolderAndContentsQuery",
    "GetFoldersForDocumentQuery",
    "GetFoldersQuery",
    "GetAssociationsQuery",
    "GetDocumentsAndAssociationsQuery",
    "GetDocumentsQuery",
    "GetSubmissionSetAndContentsQuery",
    "GetSubmissionSetsQuery",
    "ParameterSpec",
    "QUERY_DEFINITIONS",
    "QueryDefinition",
    "QueryParseResult",
    "StoredQueryParams",
    "ValueKind",
    "ValueSyntaxError",
    "ValueToken",
    "parse_stored_query",
    "split_value",
]
