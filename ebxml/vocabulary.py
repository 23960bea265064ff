"""Constants of the standard, defined once.

Every ``urn:uuid:`` and ``urn:`` identifier xdsi uses lives here, named as ITI TF-3
names it.  Sources: ITI TF-3 4.2.5 (Table 4.2.5-1 "Classification and External
Identifier UUIDs"), ITI TF-2 3.18.4.1.2.3.7 (stored query ids), ITI TF-2 Appendix V
(Actions), ebRIM 3.0 / ebRS 3.0 (namespaces, status and response types).
"""

from __future__ import annotations

from enum import StrEnum

# --- XML namespaces (ebRS 3.0, ebRIM 3.0, IHE) --------------------------------------
NS_RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
NS_RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
NS_LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
NS_QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
NS_XDSB = "urn:ihe:iti:xds-b:2007"
NS_XDSI = "urn:ihe:rad:xdsi-b:2009"
NS_RMD = "urn:ihe:iti:rmd:2017"
NS_XOP = "http://www.w3.org/2004/08/xop/include"

NSMAP = {
    "rim": NS_RIM,
    "rs": NS_RS,
    "lcm": NS_LCM,
    "query": NS_QUERY,
    "xdsb": NS_XDSB,
    "xdsi": NS_XDSI,
    "rmd": NS_RMD,
    "xop": NS_XOP,
}

# --- ebRIM object types ---------------------------------------------------------------
OBJECT_TYPE_REGISTRY_PACKAGE = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:RegistryPackage"
)
OBJECT_TYPE_CLASSIFICATION = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification"
)
OBJECT_TYPE_EXTERNAL_IDENTIFIER = (
    "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier"
)
OBJECT_TYPE_ASSOCIATION = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"

# ITI TF-3 4.2.5.2: DocumentEntry.objectType
DOC_ENTRY_STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DOC_ENTRY_ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
DOC_ENTRY_TYPES = frozenset({DOC_ENTRY_STABLE, DOC_ENTRY_ON_DEMAND})

# --- ClassificationNodes (classify RegistryPackages) ----------------------------------
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
ASSOCIATION_DOCUMENTATION_SCHEME = "urn:uuid:abd807a3-4432-4053-87b4-fd82c643d1f3"


class DocumentEntryScheme(StrEnum):
    """ITI TF-3 Table 4.2.5-1: DocumentEntry classification schemes."""

    AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
    CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
    CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
    EVENT_CODE_LIST = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
    FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
    HEALTHCARE_FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
    PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
    TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
    LIMITED_METADATA = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"


class DocumentEntryIdentifier(StrEnum):
    """ITI TF-3 Table 4.2.5-1: DocumentEntry external identifier schemes."""

    PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
    UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"


class SubmissionSetScheme(StrEnum):
    AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
    CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
    LIMITED_METADATA = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"


class SubmissionSetIdentifier(StrEnum):
    PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
    SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
    UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"


class FolderScheme(StrEnum):
    CODE_LIST = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
    LIMITED_METADATA = "urn:uuid:2c144a76-29a9-4b7c-af54-b25409fe7d03"


class FolderIdentifier(StrEnum):
    PATIENT_ID = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
    UNIQUE_ID = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"


# Names given to ExternalIdentifiers (ITI TF-3 4.2.3.x: the Name is required to be this)
EI_NAME = {
    DocumentEntryIdentifier.PATIENT_ID: "XDSDocumentEntry.patientId",
    DocumentEntryIdentifier.UNIQUE_ID: "XDSDocumentEntry.uniqueId",
    SubmissionSetIdentifier.PATIENT_ID: "XDSSubmissionSet.patientId",
    SubmissionSetIdentifier.SOURCE_ID: "XDSSubmissionSet.sourceId",
    SubmissionSetIdentifier.UNIQUE_ID: "XDSSubmissionSet.uniqueId",
    FolderIdentifier.PATIENT_ID: "XDSFolder.patientId",
    FolderIdentifier.UNIQUE_ID: "XDSFolder.uniqueId",
}


class Slot(StrEnum):
    """Slot names of ITI TF-3 4.2.3 and of the stored-query/association extensions."""

    CREATION_TIME = "creationTime"
    HASH = "hash"
    LANGUAGE_CODE = "languageCode"
    LEGAL_AUTHENTICATOR = "legalAuthenticator"
    REPOSITORY_UNIQUE_ID = "repositoryUniqueId"
    SERVICE_START_TIME = "serviceStartTime"
    SERVICE_STOP_TIME = "serviceStopTime"
    SIZE = "size"
    SOURCE_PATIENT_ID = "sourcePatientId"
    SOURCE_PATIENT_INFO = "sourcePatientInfo"
    URI = "URI"
    REFERENCE_ID_LIST = "urn:ihe:iti:xds:2013:referenceIdList"
    DOCUMENT_AVAILABILITY = "documentAvailability"
    SUBMISSION_TIME = "submissionTime"
    INTENDED_RECIPIENT = "intendedRecipient"
    LAST_UPDATE_TIME = "lastUpdateTime"
    CODING_SCHEME = "codingScheme"
    AUTHOR_PERSON = "authorPerson"
    AUTHOR_INSTITUTION = "authorInstitution"
    AUTHOR_ROLE = "authorRole"
    AUTHOR_SPECIALTY = "authorSpecialty"
    AUTHOR_TELECOMMUNICATION = "authorTelecommunication"
    SUBMISSION_SET_STATUS = "SubmissionSetStatus"
    PREVIOUS_VERSION = "PreviousVersion"
    ASSOCIATION_PROPAGATION = "AssociationPropagation"
    ORIGINAL_STATUS = "OriginalStatus"
    NEW_STATUS = "NewStatus"
    HOME_COMMUNITY_ID = "homeCommunityId"


AUTHOR_SLOTS = (
    Slot.AUTHOR_PERSON,
    Slot.AUTHOR_INSTITUTION,
    Slot.AUTHOR_ROLE,
    Slot.AUTHOR_SPECIALTY,
    Slot.AUTHOR_TELECOMMUNICATION,
)


class AvailabilityStatus(StrEnum):
    APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
    DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
    SUBMITTED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Submitted"


class AssociationType(StrEnum):
    """ITI TF-3 4.2.2 association types."""

    HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
    RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
    XFRM = "urn:ihe:iti:2007:AssociationType:XFRM"
    APND = "urn:ihe:iti:2007:AssociationType:APND"
    XFRM_RPLC = "urn:ihe:iti:2007:AssociationType:XFRM_RPLC"
    SIGNS = "urn:ihe:iti:2007:AssociationType:signs"
    IS_SNAPSHOT_OF = "urn:ihe:iti:2010:AssociationType:IsSnapshotOf"
    UPDATE_AVAILABILITY_STATUS = "urn:ihe:iti:2010:AssociationType:UpdateAvailabilityStatus"


RELATIONSHIP_TYPES = frozenset(
    {
        AssociationType.RPLC,
        AssociationType.XFRM,
        AssociationType.APND,
        AssociationType.XFRM_RPLC,
        AssociationType.SIGNS,
        AssociationType.IS_SNAPSHOT_OF,
    }
)
REPLACING_TYPES = frozenset({AssociationType.RPLC, AssociationType.XFRM_RPLC})

# SubmissionSetStatus slot values on a SubmissionSet->DocumentEntry HasMember (ITI TF-3 4.2.2.1.1)
SUBMISSION_SET_STATUS_ORIGINAL = "Original"
SUBMISSION_SET_STATUS_REFERENCE = "Reference"


class ResponseStatus(StrEnum):
    SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    # ITI TF-3 4.2.4.2: PartialSuccess is an IHE-defined status
    PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


class ErrorSeverity(StrEnum):
    ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


class ReturnType(StrEnum):
    """ebRS 3.0 ResponseOption/@returnType values used by ITI-18."""

    LEAF_CLASS = "LeafClass"
    OBJECT_REF = "ObjectRef"


class StoredQuery(StrEnum):
    """ITI TF-2 3.18.4.1.2.3.7 (and ITI-51, ITI-63) stored query ids."""

    FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
    FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
    FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
    GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
    GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
    GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
    GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
    GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
    GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
    GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
    GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
    GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
    GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
    FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
    FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS = "urn:uuid:3d1bdb10-39a2-11de-89c2-2f44d94eaa9f"
    FIND_FOLDERS_FOR_MULTIPLE_PATIENTS = "urn:uuid:50d3f5ac-39a2-11de-a1ca-b366239e58df"


class QueryParameter(StrEnum):
    """ITI TF-2 3.18.4.1.2.3.7 stored query parameter names, as the tables spell them."""

    DOC_ENTRY_PATIENT_ID = "$XDSDocumentEntryPatientId"
    DOC_ENTRY_CLASS_CODE = "$XDSDocumentEntryClassCode"
    DOC_ENTRY_TYPE_CODE = "$XDSDocumentEntryTypeCode"
    DOC_ENTRY_PRACTICE_SETTING_CODE = "$XDSDocumentEntryPracticeSettingCode"
    DOC_ENTRY_CREATION_TIME_FROM = "$XDSDocumentEntryCreationTimeFrom"
    DOC_ENTRY_CREATION_TIME_TO = "$XDSDocumentEntryCreationTimeTo"
    DOC_ENTRY_SERVICE_START_TIME_FROM = "$XDSDocumentEntryServiceStartTimeFrom"
    DOC_ENTRY_SERVICE_START_TIME_TO = "$XDSDocumentEntryServiceStartTimeTo"
    DOC_ENTRY_SERVICE_STOP_TIME_FROM = "$XDSDocumentEntryServiceStopTimeFrom"
    DOC_ENTRY_SERVICE_STOP_TIME_TO = "$XDSDocumentEntryServiceStopTimeTo"
    DOC_ENTRY_HEALTHCARE_FACILITY_TYPE_CODE = "$XDSDocumentEntryHealthcareFacilityTypeCode"
    DOC_ENTRY_EVENT_CODE_LIST = "$XDSDocumentEntryEventCodeList"
    DOC_ENTRY_CONFIDENTIALITY_CODE = "$XDSDocumentEntryConfidentialityCode"
    DOC_ENTRY_AUTHOR_PERSON = "$XDSDocumentEntryAuthorPerson"
    DOC_ENTRY_FORMAT_CODE = "$XDSDocumentEntryFormatCode"
    DOC_ENTRY_STATUS = "$XDSDocumentEntryStatus"
    DOC_ENTRY_TYPE = "$XDSDocumentEntryType"
    DOC_ENTRY_REFERENCE_ID_LIST = "$XDSDocumentEntryReferenceIdList"
    DOC_ENTRY_ENTRY_UUID = "$XDSDocumentEntryEntryUUID"
    DOC_ENTRY_UNIQUE_ID = "$XDSDocumentEntryUniqueId"
    DOC_ENTRY_LOGICAL_ID = "$XDSDocumentEntryLogicalID"  # GetDocuments (Metadata Update)
    SUBMISSION_SET_PATIENT_ID = "$XDSSubmissionSetPatientId"
    SUBMISSION_SET_SOURCE_ID = "$XDSSubmissionSetSourceId"
    SUBMISSION_SET_SUBMISSION_TIME_FROM = "$XDSSubmissionSetSubmissionTimeFrom"
    SUBMISSION_SET_SUBMISSION_TIME_TO = "$XDSSubmissionSetSubmissionTimeTo"
    SUBMISSION_SET_AUTHOR_PERSON = "$XDSSubmissionSetAuthorPerson"
    SUBMISSION_SET_CONTENT_TYPE = "$XDSSubmissionSetContentType"
    SUBMISSION_SET_STATUS = "$XDSSubmissionSetStatus"
    SUBMISSION_SET_ENTRY_UUID = "$XDSSubmissionSetEntryUUID"
    SUBMISSION_SET_UNIQUE_ID = "$XDSSubmissionSetUniqueId"
    FOLDER_PATIENT_ID = "$XDSFolderPatientId"
    FOLDER_LAST_UPDATE_TIME_FROM = "$XDSFolderLastUpdateTimeFrom"
    FOLDER_LAST_UPDATE_TIME_TO = "$XDSFolderLastUpdateTimeTo"
    FOLDER_CODE_LIST = "$XDSFolderCodeList"
    FOLDER_STATUS = "$XDSFolderStatus"
    FOLDER_ENTRY_UUID = "$XDSFolderEntryUUID"
    FOLDER_UNIQUE_ID = "$XDSFolderUniqueId"
    FOLDER_LOGICAL_ID = "$XDSFolderLogicalID"  # GetFolders (Metadata Update)
    PATIENT_ID = "$patientId"
    UUID = "$uuid"
    ASSOCIATION_TYPES = "$AssociationTypes"
    HOME_COMMUNITY_ID = "$homeCommunityId"
    METADATA_LEVEL = "$MetadataLevel"  # ITI TF-2 3.18.4.1.2.3.5.1 (Metadata Update)


class Action(StrEnum):
    """WS-Addressing Actions (ITI TF-2 3.x.5 / Appendix V)."""

    ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
    ITI41_RESPONSE = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
    ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
    ITI42_RESPONSE = "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"
    ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
    ITI18_RESPONSE = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
    ITI51 = "urn:ihe:iti:2009:MultiPatientStoredQuery"
    ITI51_RESPONSE = "urn:ihe:iti:2009:MultiPatientStoredQueryResponse"
    ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
    ITI43_RESPONSE = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
    RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
    ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
    ITI57_RESPONSE = "urn:ihe:iti:2010:UpdateDocumentSetResponse"
    ITI61 = "urn:ihe:iti:2010:RegisterOnDemandDocumentEntry"
    ITI61_RESPONSE = "urn:ihe:iti:2010:RegisterOnDemandDocumentEntryResponse"
    ITI62 = "urn:ihe:iti:2010:DeleteDocumentSet"
    ITI62_RESPONSE = "urn:ihe:iti:2010:DeleteDocumentSetResponse"
    ITI86 = "urn:ihe:iti:2017:RemoveDocuments"
    ITI86_RESPONSE = "urn:ihe:iti:2017:RemoveDocumentsResponse"
    ITI44_ADD = "urn:hl7-org:v3:PRPA_IN201301UV02"
    ITI44_REVISE = "urn:hl7-org:v3:PRPA_IN201302UV02"
    ITI44_MERGE = "urn:hl7-org:v3:PRPA_IN201304UV02"
    ITI44_RESPONSE = "urn:hl7-org:v3:MCCI_IN000002UV01"


# Request Action -> response Action (ITI TF-2 Appendix V; RAD TF-3 4.69.4.2)
RESPONSE_ACTION: dict[str, str] = {
    Action.ITI41: Action.ITI41_RESPONSE,
    Action.ITI42: Action.ITI42_RESPONSE,
    Action.ITI18: Action.ITI18_RESPONSE,
    Action.ITI51: Action.ITI51_RESPONSE,
    Action.ITI43: Action.ITI43_RESPONSE,
    Action.RAD69: Action.ITI43_RESPONSE,
    Action.ITI57: Action.ITI57_RESPONSE,
    Action.ITI61: Action.ITI61_RESPONSE,
    Action.ITI62: Action.ITI62_RESPONSE,
    Action.ITI86: Action.ITI86_RESPONSE,
    Action.ITI44_ADD: Action.ITI44_RESPONSE,
    Action.ITI44_REVISE: Action.ITI44_RESPONSE,
    Action.ITI44_MERGE: Action.ITI44_RESPONSE,
}

UUID_PREFIX = "urn:uuid:"

# ITI TF-3 5.5 (DSG): formatCodes of a Digital Signature Document, the source of "signs"
DSG_FORMAT_CODING_SCHEME = "1.3.6.1.4.1.19376.1.2.3"
DSG_FORMAT_CODES = frozenset({"urn:ihe:iti:dsg:detached:2014", "urn:ihe:iti:dsg:enveloping:2014"})

# DICOM KOS format code (RAD TF-3 4.68.4.1.2.3.2)
KOS_FORMAT_CODE = "1.2.840.10008.5.1.4.1.1.88.59"
KOS_FORMAT_CODING_SCHEME = "1.2.840.10008.2.6.1"

# referenceIdList ID types (ITI TF-3 4.2.3.2.28)
REFERENCE_ID_STUDY_INSTANCE_UID = "urn:ihe:iti:xds:2016:studyInstanceUID"
REFERENCE_ID_ACCESSION = "urn:ihe:iti:xds:2013:accession"


class Transaction(StrEnum):
    """IHE transactions xdsi takes part in; validation tables are keyed by these."""

    ITI8 = "ITI-8"
    ITI18 = "ITI-18"
    ITI51 = "ITI-51"
    ITI41 = "ITI-41"
    ITI42 = "ITI-42"
    ITI43 = "ITI-43"
    ITI44 = "ITI-44"
    ITI57 = "ITI-57"
    ITI61 = "ITI-61"
    ITI62 = "ITI-62"
    ITI86 = "ITI-86"
    RAD68 = "RAD-68"
    RAD69 = "RAD-69"
