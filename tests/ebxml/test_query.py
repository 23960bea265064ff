"""ITI-18 parameter syntax and typing (ebxml/query.py), table by table."""

from __future__ import annotations

import pytest

from ebxml.errors import ErrorCode
from ebxml.messages import AdhocQueryRequest
from ebxml.model import Code
from ebxml.query import (
    QUERY_DEFINITIONS,
    FindDocumentsForMultiplePatientsQuery,
    FindDocumentsQuery,
    FindFoldersForMultiplePatientsQuery,
    GetAllQuery,
    GetAssociationsQuery,
    GetDocumentsQuery,
    GetFoldersQuery,
    GetRelatedDocumentsQuery,
    GetSubmissionSetAndContentsQuery,
    ValueSyntaxError,
    parse_stored_query,
    split_value,
)
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    DOC_ENTRY_STABLE,
    AssociationType,
    AvailabilityStatus,
    QueryParameter,
    StoredQuery,
    Transaction,
)

APPROVED = AvailabilityStatus.APPROVED
DEPRECATED = AvailabilityStatus.DEPRECATED
PID = "'pid1^^^&1.2.3&ISO'"

# --- the value syntax (ITI TF-2 3.18.4.1.2.3.5) --------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'abc'", [("abc", True)]),
        ("  'abc'  ", [("abc", True)]),
        ("20041224", [("20041224", False)]),
        ("('a','b')", [("a", True), ("b", True)]),
        ("( 'a' , 'b' )", [("a", True), ("b", True)]),
        ("('it''s')", [("it's", True)]),
        ("'a,b(c)'", [("a,b(c)", True)]),
        ("('x', 12)", [("x", True), ("12", False)]),
        ("''", [("", True)]),
        ("''''", [("'", True)]),
        ("('a''','b')", [("a'", True), ("b", True)]),
    ],
)
def test_split_value_accepts(text: str, expected: list[tuple[str, bool]]) -> None:
    assert [(i.text, i.quoted) for i in split_value(text)] == expected


@pytest.mark.parametrize(
    "text",
    [
        "'abc",  # no closing quote
        "abc",  # bare word is not a number
        "('a', 'b'",  # list not closed
        "()",  # empty list
        "('a',)",  # missing value after comma
        "'a' 'b'",  # two values without a list
        "'a','b'",  # a list without parentheses
        "('a' 'b')",  # no comma
        "('it's')",  # unescaped quote
        "'abc''",  # the last quote is half of a doubled one: not closed
    ],
)
def test_split_value_refuses(text: str) -> None:
    with pytest.raises(ValueSyntaxError):
        split_value(text)


# --- parsing requests ----------------------------------------------------------------------


def request(query_id: str, **slots: list[list[str]] | str) -> AdhocQueryRequest:
    """Slots by parameter name without '$'; a str is one Slot with one Value."""
    parameters = {f"${k}": [[v]] if isinstance(v, str) else v for k, v in slots.items()}
    return AdhocQueryRequest(query_id=query_id, parameters=parameters)


def find_documents(**slots: list[list[str]] | str) -> AdhocQueryRequest:
    base: dict[str, list[list[str]] | str] = {
        "XDSDocumentEntryPatientId": PID,
        "XDSDocumentEntryStatus": f"('{APPROVED}')",
    }
    return request(StoredQuery.FIND_DOCUMENTS, **{**base, **slots})


def test_find_documents_minimal() -> None:
    result = parse_stored_query(find_documents())
    assert result.errors == ()
    assert result.params == FindDocumentsQuery(patient_id="pid1^^^&1.2.3&ISO", status=(APPROVED,))


def test_find_documents_entry_type_defaults_to_stable() -> None:
    params = parse_stored_query(find_documents()).params
    assert params.entry_type == (DOC_ENTRY_STABLE,)


def test_find_documents_codes_or_across_values_and_slots() -> None:
    result = parse_stored_query(
        find_documents(
            XDSDocumentEntryClassCode=[["('A^^s1', 'B^^s1')", "('C^^s2')"], ["('D^^s3')"]]
        )
    )
    assert result.params.class_code == (
        Code("A", "s1"),
        Code("B", "s1"),
        Code("C", "s2"),
        Code("D", "s3"),
    )


def test_event_code_slots_are_and_groups() -> None:
    result = parse_stored_query(
        find_documents(XDSDocumentEntryEventCodeList=[["('a^^s', 'b^^s')"], ["('c^^s')"]])
    )
    assert result.params.event_code_list == ((Code("a", "s"), Code("b", "s")), (Code("c", "s"),))


def test_confidentiality_code_slots_are_and_groups() -> None:
    result = parse_stored_query(
        find_documents(XDSDocumentEntryConfidentialityCode=[["('N^^s')"], ["('R^^s')"]])
    )
    assert result.params.confidentiality_code == ((Code("N", "s"),), (Code("R", "s"),))


def test_times_and_author_and_entry_type() -> None:
    result = parse_stored_query(
        find_documents(
            XDSDocumentEntryCreationTimeFrom="20040101",
            XDSDocumentEntryCreationTimeTo="'200501010856'",
            XDSDocumentEntryAuthorPerson="('%Ford%', 'Sm_th%')",
            XDSDocumentEntryType=f"('{DOC_ENTRY_STABLE}', '{DOC_ENTRY_ON_DEMAND}')",
        )
    )
    params = result.params
    assert (params.creation_time_from, params.creation_time_to) == ("20040101", "200501010856")
    assert params.author_person == ("%Ford%", "Sm_th%")
    assert params.entry_type == (DOC_ENTRY_STABLE, DOC_ENTRY_ON_DEMAND)


def test_unknown_parameters_are_ignored() -> None:
    # ebRS 3.0 6.3.2.1: parameters a stored query does not define are ignored
    result = parse_stored_query(find_documents(XDSDocumentEntryPracticeSettingCodeScheme="'x'"))
    assert result.errors == ()


def test_quote_escape_in_patient_id() -> None:
    result = parse_stored_query(find_documents(XDSDocumentEntryPatientId="'O''Brien^^^&1&ISO'"))
    assert result.params.patient_id == "O'Brien^^^&1&ISO"


def test_metadata_level() -> None:
    assert parse_stored_query(find_documents(MetadataLevel="2")).params.metadata_level == 2


def test_get_documents_by_uuid() -> None:
    result = parse_stored_query(
        request(StoredQuery.GET_DOCUMENTS, XDSDocumentEntryEntryUUID="('urn:uuid:1', 'urn:uuid:2')")
    )
    assert result.params == GetDocumentsQuery(entry_uuid=("urn:uuid:1", "urn:uuid:2"))


def test_get_documents_by_unique_id_with_home() -> None:
    result = parse_stored_query(
        request(
            StoredQuery.GET_DOCUMENTS,
            XDSDocumentEntryUniqueId="('1.2.3')",
            homeCommunityId="'urn:oid:1.2'",
        )
    )
    assert result.params == GetDocumentsQuery(unique_id=("1.2.3",), home_community_id="urn:oid:1.2")


def test_get_submission_set_and_contents() -> None:
    result = parse_stored_query(
        request(
            StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS,
            XDSSubmissionSetUniqueId="'1.2.3'",
            XDSDocumentEntryFormatCode="('f^^s')",
        )
    )
    assert result.params == GetSubmissionSetAndContentsQuery(
        unique_id="1.2.3", format_code=(Code("f", "s"),)
    )


def test_get_associations() -> None:
    result = parse_stored_query(request(StoredQuery.GET_ASSOCIATIONS, uuid="('urn:uuid:1')"))
    assert result.params == GetAssociationsQuery(uuid=("urn:uuid:1",))


def test_get_documents_by_logical_id() -> None:
    # Metadata Update: GetDocuments also takes $XDSDocumentEntryLogicalID
    result = parse_stored_query(
        request(StoredQuery.GET_DOCUMENTS, XDSDocumentEntryLogicalID="('urn:uuid:1')")
    )
    assert result.params == GetDocumentsQuery(logical_id=("urn:uuid:1",))


def test_get_folders_by_logical_id() -> None:
    result = parse_stored_query(
        request(StoredQuery.GET_FOLDERS, XDSFolderLogicalID="('urn:uuid:1', 'urn:uuid:2')")
    )
    assert result.params == GetFoldersQuery(logical_id=("urn:uuid:1", "urn:uuid:2"))


def get_all(**slots: list[list[str]] | str) -> AdhocQueryRequest:
    base: dict[str, list[list[str]] | str] = {
        "patientId": PID,
        "XDSDocumentEntryStatus": f"('{APPROVED}')",
        "XDSSubmissionSetStatus": f"('{APPROVED}')",
        "XDSFolderStatus": f"('{APPROVED}', '{DEPRECATED}')",
    }
    return request(StoredQuery.GET_ALL, **{**base, **slots})


def test_get_all_minimal() -> None:
    # ITI TF-2 3.18.4.1.2.3.7.4: $patientId and the three status lists are required
    assert parse_stored_query(get_all()).params == GetAllQuery(
        patient_id="pid1^^^&1.2.3&ISO",
        document_entry_status=(APPROVED,),
        submission_set_status=(APPROVED,),
        folder_status=(APPROVED, DEPRECATED),
    )


def test_get_all_entry_filters() -> None:
    params = parse_stored_query(
        get_all(
            XDSDocumentEntryFormatCode="('f^^s')",
            XDSDocumentEntryConfidentialityCode=[["('N^^c')"], ["('R^^c')"]],
            XDSDocumentEntryType=f"('{DOC_ENTRY_ON_DEMAND}')",
        )
    ).params
    assert params.format_code == (Code("f", "s"),)
    assert params.confidentiality_code == ((Code("N", "c"),), (Code("R", "c"),))
    assert params.entry_type == (DOC_ENTRY_ON_DEMAND,)


@pytest.mark.parametrize(
    "missing",
    ["patientId", "XDSDocumentEntryStatus", "XDSSubmissionSetStatus", "XDSFolderStatus"],
)
def test_get_all_required_parameter(missing: str) -> None:
    req = get_all()
    parameters = {k: v for k, v in req.parameters.items() if k != f"${missing}"}
    result = parse_stored_query(AdhocQueryRequest(StoredQuery.GET_ALL, parameters))
    assert [(e.code, e.location) for e in result.errors] == [
        (ErrorCode.XDSStoredQueryMissingParam, f"${missing}")
    ]


def test_get_related_documents() -> None:
    result = parse_stored_query(
        request(
            StoredQuery.GET_RELATED_DOCUMENTS,
            XDSDocumentEntryUniqueId="'1.2.3'",
            AssociationTypes=f"('{AssociationType.RPLC}', '{AssociationType.APND}')",
        )
    )
    assert result.params == GetRelatedDocumentsQuery(
        association_types=(AssociationType.RPLC, AssociationType.APND), unique_id="1.2.3"
    )


def test_get_related_documents_needs_association_types() -> None:
    result = parse_stored_query(
        request(StoredQuery.GET_RELATED_DOCUMENTS, XDSDocumentEntryEntryUUID="'urn:uuid:1'")
    )
    assert [(e.code, e.location) for e in result.errors] == [
        (ErrorCode.XDSStoredQueryMissingParam, "$AssociationTypes")
    ]


def test_get_related_documents_takes_one_document() -> None:
    result = parse_stored_query(
        request(
            StoredQuery.GET_RELATED_DOCUMENTS,
            XDSDocumentEntryEntryUUID="('urn:uuid:1', 'urn:uuid:2')",
            AssociationTypes=f"('{AssociationType.RPLC}')",
        )
    )
    assert [e.code for e in result.errors] == [ErrorCode.XDSStoredQueryParamNumber]


# --- ITI-51 (ITI TF-2 3.51.4.1.2) ------------------------------------------------------


def mpq(query_id: str, **slots: list[list[str]] | str) -> AdhocQueryRequest:
    return request(query_id, **slots)


def test_multi_patient_documents_patient_list() -> None:
    result = parse_stored_query(
        mpq(
            StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
            XDSDocumentEntryPatientId=[["('a^^^&1&ISO')"], ["('b^^^&1&ISO')"]],
            XDSDocumentEntryStatus=STATUS,
        ),
        Transaction.ITI51,
    )
    assert result.params == FindDocumentsForMultiplePatientsQuery(
        status=(APPROVED,), patient_id=("a^^^&1&ISO", "b^^^&1&ISO")
    )


def test_multi_patient_documents_without_patient_but_class_code() -> None:
    result = parse_stored_query(
        mpq(
            StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
            XDSDocumentEntryClassCode="('c^^s')",
            XDSDocumentEntryStatus=STATUS,
        ),
        Transaction.ITI51,
    )
    assert result.params.patient_id == ()
    assert result.params.class_code == (Code("c", "s"),)


def test_multi_patient_documents_needs_a_bound() -> None:
    # neither patients nor classCode, eventCodeList or healthcareFacilityTypeCode
    result = parse_stored_query(
        mpq(StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS, XDSDocumentEntryStatus=STATUS),
        Transaction.ITI51,
    )
    assert [(e.code, e.location) for e in result.errors] == [
        (ErrorCode.XDSStoredQueryMissingParam, "$XDSDocumentEntryPatientId")
    ]


def test_multi_patient_folders_by_code_list() -> None:
    result = parse_stored_query(
        mpq(
            StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
            XDSFolderCodeList="('c^^s')",
            XDSFolderStatus=STATUS,
        ),
        Transaction.ITI51,
    )
    assert result.params == FindFoldersForMultiplePatientsQuery(
        status=(APPROVED,), code_list=((Code("c", "s"),),)
    )


def test_multi_patient_query_is_unknown_over_iti18() -> None:
    result = parse_stored_query(
        mpq(
            StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
            XDSFolderPatientId="('a')",
            XDSFolderStatus=STATUS,
        )
    )
    assert [e.code for e in result.errors] == [ErrorCode.XDSUnknownStoredQuery]


def test_iti18_query_is_unknown_over_iti51() -> None:
    result = parse_stored_query(find_documents(), Transaction.ITI51)
    assert [e.code for e in result.errors] == [ErrorCode.XDSUnknownStoredQuery]


def test_every_query_of_iti18_and_iti51_is_defined() -> None:
    # ITI TF-2 3.18.4.1.2.3.7 (fourteen queries) and 3.51.4.1.2 (two)
    assert set(QUERY_DEFINITIONS) == set(StoredQuery)
    assert {q for q, d in QUERY_DEFINITIONS.items() if d.transaction is Transaction.ITI51} == {
        StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS,
        StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS,
    }


# ITI TF-2 3.18.4.1.2.3.7.x tables, parameter by parameter (Metadata Update adds the
# logicalID and $MetadataLevel parameters; $homeCommunityId is accepted on the Get queries)
P = QueryParameter
PARAMETER_TABLES = {
    StoredQuery.FIND_DOCUMENTS: {
        P.DOC_ENTRY_PATIENT_ID,
        P.DOC_ENTRY_CLASS_CODE,
        P.DOC_ENTRY_TYPE_CODE,
        P.DOC_ENTRY_PRACTICE_SETTING_CODE,
        P.DOC_ENTRY_CREATION_TIME_FROM,
        P.DOC_ENTRY_CREATION_TIME_TO,
        P.DOC_ENTRY_SERVICE_START_TIME_FROM,
        P.DOC_ENTRY_SERVICE_START_TIME_TO,
        P.DOC_ENTRY_SERVICE_STOP_TIME_FROM,
        P.DOC_ENTRY_SERVICE_STOP_TIME_TO,
        P.DOC_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE,
        P.DOC_ENTRY_EVENT_CODE_LIST,
        P.DOC_ENTRY_CONFIDENTIALITY_CODE,
        P.DOC_ENTRY_AUTHOR_PERSON,
        P.DOC_ENTRY_FORMAT_CODE,
        P.DOC_ENTRY_STATUS,
        P.DOC_ENTRY_TYPE,
        P.METADATA_LEVEL,
    },
    StoredQuery.FIND_SUBMISSION_SETS: {
        P.SUBMISSION_SET_PATIENT_ID,
        P.SUBMISSION_SET_SOURCE_ID,
        P.SUBMISSION_SET_SUBMISSION_TIME_FROM,
        P.SUBMISSION_SET_SUBMISSION_TIME_TO,
        P.SUBMISSION_SET_AUTHOR_PERSON,
        P.SUBMISSION_SET_CONTENT_TYPE,
        P.SUBMISSION_SET_STATUS,
        P.METADATA_LEVEL,
    },
    StoredQuery.FIND_FOLDERS: {
        P.FOLDER_PATIENT_ID,
        P.FOLDER_LAST_UPDATE_TIME_FROM,
        P.FOLDER_LAST_UPDATE_TIME_TO,
        P.FOLDER_CODE_LIST,
        P.FOLDER_STATUS,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_ALL: {
        P.PATIENT_ID,
        P.DOC_ENTRY_STATUS,
        P.SUBMISSION_SET_STATUS,
        P.FOLDER_STATUS,
        P.DOC_ENTRY_FORMAT_CODE,
        P.DOC_ENTRY_CONFIDENTIALITY_CODE,
        P.DOC_ENTRY_TYPE,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_DOCUMENTS: {
        P.DOC_ENTRY_ENTRY_UUID,
        P.DOC_ENTRY_UNIQUE_ID,
        P.DOC_ENTRY_LOGICAL_ID,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_FOLDERS: {
        P.FOLDER_ENTRY_UUID,
        P.FOLDER_UNIQUE_ID,
        P.FOLDER_LOGICAL_ID,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_ASSOCIATIONS: {P.UUID, P.HOME_COMMUNITY_ID, P.METADATA_LEVEL},
    StoredQuery.GET_DOCUMENTS_AND_ASSOCIATIONS: {
        P.DOC_ENTRY_ENTRY_UUID,
        P.DOC_ENTRY_UNIQUE_ID,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_SUBMISSION_SETS: {P.UUID, P.HOME_COMMUNITY_ID, P.METADATA_LEVEL},
    StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS: {
        P.SUBMISSION_SET_ENTRY_UUID,
        P.SUBMISSION_SET_UNIQUE_ID,
        P.DOC_ENTRY_FORMAT_CODE,
        P.DOC_ENTRY_CONFIDENTIALITY_CODE,
        P.DOC_ENTRY_TYPE,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_FOLDER_AND_CONTENTS: {
        P.FOLDER_ENTRY_UUID,
        P.FOLDER_UNIQUE_ID,
        P.DOC_ENTRY_FORMAT_CODE,
        P.DOC_ENTRY_CONFIDENTIALITY_CODE,
        P.DOC_ENTRY_TYPE,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_FOLDERS_FOR_DOCUMENT: {
        P.DOC_ENTRY_ENTRY_UUID,
        P.DOC_ENTRY_UNIQUE_ID,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
    StoredQuery.GET_RELATED_DOCUMENTS: {
        P.DOC_ENTRY_ENTRY_UUID,
        P.DOC_ENTRY_UNIQUE_ID,
        P.ASSOCIATION_TYPES,
        P.DOC_ENTRY_TYPE,
        P.HOME_COMMUNITY_ID,
        P.METADATA_LEVEL,
    },
}

# ITI TF-2 3.18.4.1.2.3.7.14: FindDocuments and the referenceIdList
PARAMETER_TABLES[StoredQuery.FIND_DOCUMENTS_BY_REFERENCE_ID] = PARAMETER_TABLES[
    StoredQuery.FIND_DOCUMENTS
] | {P.DOC_ENTRY_REFERENCE_ID_LIST}
# ITI TF-2 3.51.4.1.2: the FindDocuments and FindFolders parameters
PARAMETER_TABLES[StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS] = PARAMETER_TABLES[
    StoredQuery.FIND_DOCUMENTS
]
PARAMETER_TABLES[StoredQuery.FIND_FOLDERS_FOR_MULTIPLE_PATIENTS] = PARAMETER_TABLES[
    StoredQuery.FIND_FOLDERS
]


@pytest.mark.parametrize("query_id", sorted(StoredQuery))
def test_query_takes_the_parameters_of_its_table(query_id: str) -> None:
    names = {spec.name for spec in QUERY_DEFINITIONS[query_id].parameters}
    assert names == PARAMETER_TABLES[query_id]


# --- every error, one change each ----------------------------------------------------------

STATUS = f"('{APPROVED}')"

ERROR_CASES = [
    # (case id, request, expected code, expected location)
    (
        "unknown_query",
        request("urn:uuid:00000000-0000-0000-0000-000000000000"),
        ErrorCode.XDSUnknownStoredQuery,
        "urn:uuid:00000000-0000-0000-0000-000000000000",
    ),
    (
        "patient_id_missing",
        request(StoredQuery.FIND_DOCUMENTS, XDSDocumentEntryStatus=STATUS),
        ErrorCode.XDSStoredQueryMissingParam,
        "$XDSDocumentEntryPatientId",
    ),
    (
        "status_missing",
        request(StoredQuery.FIND_DOCUMENTS, XDSDocumentEntryPatientId=PID),
        ErrorCode.XDSStoredQueryMissingParam,
        "$XDSDocumentEntryStatus",
    ),
    (
        "status_empty_slot",
        find_documents(XDSDocumentEntryStatus=[[]]),
        ErrorCode.XDSStoredQueryMissingParam,
        "$XDSDocumentEntryStatus",
    ),
    (
        "patient_id_two_values",
        find_documents(XDSDocumentEntryPatientId="('a', 'b')"),
        ErrorCode.XDSStoredQueryParamNumber,
        "$XDSDocumentEntryPatientId",
    ),
    (
        "patient_id_two_slots",
        find_documents(XDSDocumentEntryPatientId=[[PID], [PID]]),
        ErrorCode.XDSStoredQueryParamNumber,
        "$XDSDocumentEntryPatientId",
    ),
    (
        "creation_time_two_values",
        find_documents(XDSDocumentEntryCreationTimeFrom=[["2004", "2005"]]),
        ErrorCode.XDSStoredQueryParamNumber,
        "$XDSDocumentEntryCreationTimeFrom",
    ),
    (
        "get_documents_uuid_and_unique_id",
        request(
            StoredQuery.GET_DOCUMENTS,
            XDSDocumentEntryEntryUUID="('urn:uuid:1')",
            XDSDocumentEntryUniqueId="('1.2')",
        ),
        ErrorCode.XDSStoredQueryParamNumber,
        "$XDSDocumentEntryEntryUUID",
    ),
    (
        "get_documents_neither",
        request(StoredQuery.GET_DOCUMENTS),
        ErrorCode.XDSStoredQueryMissingParam,
        "$XDSDocumentEntryEntryUUID",
    ),
    (
        "get_ss_and_contents_both",
        request(
            StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS,
            XDSSubmissionSetEntryUUID="'urn:uuid:1'",
            XDSSubmissionSetUniqueId="'1.2'",
        ),
        ErrorCode.XDSStoredQueryParamNumber,
        "$XDSSubmissionSetEntryUUID",
    ),
    (
        "get_associations_uuid_missing",
        request(StoredQuery.GET_ASSOCIATIONS),
        ErrorCode.XDSStoredQueryMissingParam,
        "$uuid",
    ),
    (
        "patient_id_unquoted",
        find_documents(XDSDocumentEntryPatientId="pid1^^^&1.2.3&ISO"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryPatientId",
    ),
    (
        "patient_id_unclosed_quote",
        find_documents(XDSDocumentEntryPatientId="'pid1"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryPatientId",
    ),
    (
        "status_not_a_status_urn",
        find_documents(XDSDocumentEntryStatus="('Approved')"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryStatus",
    ),
    (
        "status_unquoted",
        find_documents(XDSDocumentEntryStatus=f"({APPROVED})"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryStatus",
    ),
    (
        "creation_time_not_dtm",
        find_documents(XDSDocumentEntryCreationTimeFrom="200412241"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryCreationTimeFrom",
    ),
    (
        "creation_time_with_separators",
        find_documents(XDSDocumentEntryCreationTimeTo="'2004-12-24'"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryCreationTimeTo",
    ),
    (
        "class_code_without_scheme",  # NIST 11897/old_scheme
        find_documents(XDSDocumentEntryPracticeSettingCode="('Dialysis')"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryPracticeSettingCode",
    ),
    (
        "class_code_empty_scheme",  # NIST 11897/classcode_scheme_mismatch
        find_documents(XDSDocumentEntryClassCode="('DEMO-Lab^^1.3.6.1', 'a^^')"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryClassCode",
    ),
    (
        "event_code_empty_code",
        find_documents(XDSDocumentEntryEventCodeList="('^^scheme')"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryEventCodeList",
    ),
    (
        "entry_type_unknown",
        find_documents(XDSDocumentEntryType="('urn:uuid:00000000-0000-0000-0000-000000000001')"),
        ErrorCode.XDSRegistryError,
        "$XDSDocumentEntryType",
    ),
    (
        "metadata_level_out_of_range",
        find_documents(MetadataLevel="3"),
        ErrorCode.XDSRegistryError,
        "$MetadataLevel",
    ),
    (
        "metadata_level_not_a_number",
        find_documents(MetadataLevel="'one'"),
        ErrorCode.XDSRegistryError,
        "$MetadataLevel",
    ),
]


@pytest.mark.parametrize(
    ("req", "code", "location"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_parse_error(req: AdhocQueryRequest, code: ErrorCode, location: str) -> None:
    result = parse_stored_query(req)
    assert result.params is None
    assert [(e.code, e.location) for e in result.errors] == [(code, location)]


def test_error_context_names_the_parameter_and_the_fault() -> None:
    (error,) = parse_stored_query(
        find_documents(XDSDocumentEntryCreationTimeFrom="200412241")
    ).errors
    assert "$XDSDocumentEntryCreationTimeFrom" in error.context
    assert "DTM" in error.context


def test_every_error_is_reported() -> None:
    result = parse_stored_query(
        request(StoredQuery.FIND_DOCUMENTS, XDSDocumentEntryCreationTimeFrom="x")
    )
    assert {e.code for e in result.errors} == {
        ErrorCode.XDSStoredQueryMissingParam,
        ErrorCode.XDSRegistryError,
    }
    assert len(result.errors) == 3


def test_deprecated_status_accepted() -> None:
    result = parse_stored_query(find_documents(XDSDocumentEntryStatus=f"('{DEPRECATED}')"))
    assert result.params.status == (DEPRECATED,)
