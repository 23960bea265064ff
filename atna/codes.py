"""Coded values of the audit message, defined once.

Sources: DICOM PS3.15 A.5 (the audit message schema and its enumerated attributes),
DICOM PS3.16 CID 400-series (Audit Event ID, Audit Event Type, Audit Active
Participant Role ID, Audit Participant Object ID Type; context group 400-414) and
IHE ITI TF-2 3.20.7 / the audit sections of each transaction (3.x.5 or 3.x.6).
The XDS identifiers themselves come from ``ebxml.vocabulary``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ebxml.vocabulary import SUBMISSION_SET_NODE, Transaction

# codeSystemName values used by IHE audit messages
DCM = "DCM"
IHE_TRANSACTIONS = "IHE Transactions"
RFC_3881 = "RFC-3881"
IHE_XDS_METADATA = "IHE XDS Metadata"


@dataclass(frozen=True)
class CodedValue:
    """DICOM PS3.15 A.5.1 CodedValueType: csd-code, codeSystemName, originalText."""

    csd_code: str
    code_system_name: str
    original_text: str
    display_name: str | None = None


class EventID:
    """DICOM PS3.16 CID 400 Audit Event ID."""

    APPLICATION_ACTIVITY = CodedValue("110100", DCM, "Application Activity")
    AUDIT_LOG_USED = CodedValue("110101", DCM, "Audit Log Used")
    BEGIN_TRANSFERRING_DICOM_INSTANCES = CodedValue(
        "110102", DCM, "Begin Transferring DICOM Instances"
    )
    DICOM_INSTANCES_ACCESSED = CodedValue("110103", DCM, "DICOM Instances Accessed")
    DICOM_INSTANCES_TRANSFERRED = CodedValue("110104", DCM, "DICOM Instances Transferred")
    DICOM_STUDY_DELETED = CodedValue("110105", DCM, "DICOM Study Deleted")
    EXPORT = CodedValue("110106", DCM, "Export")
    IMPORT = CodedValue("110107", DCM, "Import")
    NETWORK_ENTRY = CodedValue("110108", DCM, "Network Entry")
    ORDER_RECORD = CodedValue("110109", DCM, "Order Record")
    PATIENT_RECORD = CodedValue("110110", DCM, "Patient Record")
    PROCEDURE_RECORD = CodedValue("110111", DCM, "Procedure Record")
    QUERY = CodedValue("110112", DCM, "Query")
    SECURITY_ALERT = CodedValue("110113", DCM, "Security Alert")
    USER_AUTHENTICATION = CodedValue("110114", DCM, "User Authentication")


class ApplicationActivityType:
    """DICOM PS3.16 CID 401 Audit Event Type Codes for Application Activity."""

    APPLICATION_START = CodedValue("110120", DCM, "Application Start")
    APPLICATION_STOP = CodedValue("110121", DCM, "Application Stop")


class UserAuthenticationType:
    """DICOM PS3.16 CID 401: Login / Logout."""

    LOGIN = CodedValue("110122", DCM, "Login")
    LOGOUT = CodedValue("110123", DCM, "Logout")


class SecurityAlertType:
    """DICOM PS3.16 CID 401 Audit Event Type Codes for Security Alert."""

    NODE_AUTHENTICATION = CodedValue("110126", DCM, "Node Authentication")
    EMERGENCY_OVERRIDE_STARTED = CodedValue("110127", DCM, "Emergency Override Started")
    NETWORK_CONFIGURATION = CodedValue("110128", DCM, "Network Configuration")
    SECURITY_CONFIGURATION = CodedValue("110129", DCM, "Security Configuration")
    HARDWARE_CONFIGURATION = CodedValue("110130", DCM, "Hardware Configuration")
    SOFTWARE_CONFIGURATION = CodedValue("110131", DCM, "Software Configuration")
    USE_OF_RESTRICTED_FUNCTION = CodedValue("110132", DCM, "Use of Restricted Function")
    AUDIT_RECORDING_STOPPED = CodedValue("110133", DCM, "Audit Recording Stopped")
    AUDIT_RECORDING_STARTED = CodedValue("110134", DCM, "Audit Recording Started")
    OBJECT_SECURITY_ATTRIBUTES_CHANGED = CodedValue(
        "110135", DCM, "Object Security Attributes Changed"
    )
    SECURITY_ROLES_CHANGED = CodedValue("110136", DCM, "Security Roles Changed")
    USER_SECURITY_ATTRIBUTES_CHANGED = CodedValue("110137", DCM, "User Security Attributes Changed")
    EMERGENCY_OVERRIDE_STOPPED = CodedValue("110138", DCM, "Emergency Override Stopped")


# IHE ITI TF-2 (and RAD TF-3): EventTypeCode of each transaction's audit message,
# codeSystemName "IHE Transactions", originalText the transaction's name.
TRANSACTION_EVENT_TYPE: dict[Transaction, CodedValue] = {
    Transaction.ITI8: CodedValue("ITI-8", IHE_TRANSACTIONS, "Patient Identity Feed"),
    Transaction.ITI18: CodedValue("ITI-18", IHE_TRANSACTIONS, "Registry Stored Query"),
    Transaction.ITI41: CodedValue(
        "ITI-41", IHE_TRANSACTIONS, "Provide and Register Document Set-b"
    ),
    Transaction.ITI42: CodedValue("ITI-42", IHE_TRANSACTIONS, "Register Document Set-b"),
    Transaction.ITI43: CodedValue("ITI-43", IHE_TRANSACTIONS, "Retrieve Document Set"),
    Transaction.ITI44: CodedValue("ITI-44", IHE_TRANSACTIONS, "Patient Identity Feed HL7 V3"),
    Transaction.ITI57: CodedValue("ITI-57", IHE_TRANSACTIONS, "Update Document Set"),
    Transaction.ITI61: CodedValue("ITI-61", IHE_TRANSACTIONS, "Register On-Demand Document Entry"),
    Transaction.ITI62: CodedValue("ITI-62", IHE_TRANSACTIONS, "Delete Document Set"),
    Transaction.ITI86: CodedValue("ITI-86", IHE_TRANSACTIONS, "Remove Documents"),
    Transaction.RAD68: CodedValue(
        "RAD-68", IHE_TRANSACTIONS, "Provide and Register Imaging Document Set - MTOM/XOP"
    ),
    Transaction.RAD69: CodedValue("RAD-69", IHE_TRANSACTIONS, "Retrieve Imaging Document Set"),
}


class RoleIDCode:
    """DICOM PS3.16 CID 402 Audit Active Participant Role ID Code."""

    APPLICATION = CodedValue("110150", DCM, "Application")
    APPLICATION_LAUNCHER = CodedValue("110151", DCM, "Application Launcher")
    DESTINATION = CodedValue("110152", DCM, "Destination Role ID")
    SOURCE = CodedValue("110153", DCM, "Source Role ID")
    DESTINATION_MEDIA = CodedValue("110154", DCM, "Destination Media")
    SOURCE_MEDIA = CodedValue("110155", DCM, "Source Media")


class ParticipantObjectIDTypeCode:
    """DICOM PS3.15 A.5.2.5 / RFC 3881 5.5.4, DICOM CID 404, and the IHE XDS codes."""

    MEDICAL_RECORD_NUMBER = CodedValue("1", RFC_3881, "Medical Record Number")
    PATIENT_NUMBER = CodedValue("2", RFC_3881, "Patient Number")
    REPORT_NUMBER = CodedValue("9", RFC_3881, "Report Number")
    URI = CodedValue("12", RFC_3881, "URI")
    # ITI TF-2 3.41.5.1 (and 3.42, 3.57): the submission set, by its class node
    SUBMISSION_SET = CodedValue(
        SUBMISSION_SET_NODE, IHE_XDS_METADATA, "submission set classificationNode"
    )
    # ITI TF-2 3.18.5.1: the stored query
    REGISTRY_STORED_QUERY = TRANSACTION_EVENT_TYPE[Transaction.ITI18]
    STUDY_INSTANCE_UID = CodedValue("110180", DCM, "Study Instance UID")
    SOP_CLASS_UID = CodedValue("110181", DCM, "SOP Class UID")
    NODE_ID = CodedValue("110182", DCM, "Node ID")


class AuditSourceTypeCode:
    """DICOM PS3.15 A.5.1 AuditSourceTypeCode (RFC 3881 5.4.3)."""

    END_USER_DEVICE = CodedValue("1", DCM, "End-user display device, diagnostic device")
    DATA_ACQUISITION = CodedValue("2", DCM, "Data acquisition device or instrument")
    WEB_SERVER = CodedValue("3", DCM, "Web Server process or thread")
    APPLICATION_SERVER = CodedValue("4", DCM, "Application Server process or thread")
    DATABASE_SERVER = CodedValue("5", DCM, "Database Server process or thread")
    SECURITY_SERVER = CodedValue("6", DCM, "Security server, e.g., a domain controller")
    NETWORK_COMPONENT = CodedValue("7", DCM, "ISO level 1-3 network component")
    OPERATING_SOFTWARE = CodedValue("8", DCM, "ISO level 4-6 operating software")
    OTHER = CodedValue("9", DCM, "other")


class EventActionCode(StrEnum):
    """DICOM PS3.15 A.5.1 EventIdentification/@EventActionCode."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class EventOutcomeIndicator(StrEnum):
    """DICOM PS3.15 A.5.1 EventIdentification/@EventOutcomeIndicator."""

    SUCCESS = "0"
    MINOR_FAILURE = "4"
    SERIOUS_FAILURE = "8"
    MAJOR_FAILURE = "12"


class NetworkAccessPointTypeCode(StrEnum):
    """DICOM PS3.15 A.5.1 ActiveParticipant/@NetworkAccessPointTypeCode."""

    MACHINE_NAME = "1"
    IP_ADDRESS = "2"
    TELEPHONE_NUMBER = "3"
    EMAIL_ADDRESS = "4"
    URI = "5"


class ParticipantObjectTypeCode(StrEnum):
    """DICOM PS3.15 A.5.1 ParticipantObjectIdentification/@ParticipantObjectTypeCode."""

    PERSON = "1"
    SYSTEM_OBJECT = "2"
    ORGANIZATION = "3"
    OTHER = "4"


class ParticipantObjectTypeCodeRole(StrEnum):
    """DICOM PS3.15 A.5.1 @ParticipantObjectTypeCodeRole (RFC 3881 5.5.2)."""

    PATIENT = "1"
    LOCATION = "2"
    REPORT = "3"
    RESOURCE = "4"
    MASTER_FILE = "5"
    USER = "6"
    LIST = "7"
    DOCTOR = "8"
    SUBSCRIBER = "9"
    GUARANTOR = "10"
    SECURITY_USER_ENTITY = "11"
    SECURITY_USER_GROUP = "12"
    SECURITY_RESOURCE = "13"
    SECURITY_GRANULARITY_DEFINITION = "14"
    PROVIDER = "15"
    REPORT_DESTINATION = "16"
    REPORT_LIBRARY = "17"
    SCHEDULE = "18"
    CUSTOMER = "19"
    JOB = "20"
    JOB_STREAM = "21"
    TABLE = "22"
    ROUTING_CRITERIA = "23"
    QUERY = "24"


class DetailType(StrEnum):
    """ParticipantObjectDetail/@type values the IHE audit tables name.

    ``REPOSITORY_UNIQUE_ID`` is spelled as the Connectathon rules check it
    (ITI TF-2 Rev 11 3.43.6.1); later revisions of the text capitalise "ID".
    """

    REPOSITORY_UNIQUE_ID = "Repository Unique Id"
    HOME_COMMUNITY_ID = "ihe:homeCommunityID"
    QUERY_ENCODING = "QueryEncoding"  # ITI TF-2 3.18.5.1
    XCA_HOME_COMMUNITY_ID = "urn:ihe:iti:xca:2010:homeCommunityId"
    MSH_10 = "MSH-10"  # ITI TF-2 3.8.5.1: HL7 message control id
    HL7V3_MESSAGE_ID = "II"  # ITI TF-2 3.44.5.1: the HL7 v3 message id
    ALERT_DESCRIPTION = "Alert Description"  # ITI TF-2 3.20.7 (Security Alert)


__all__ = [
    "DCM",
    "IHE_TRANSACTIONS",
    "IHE_XDS_METADATA",
    "RFC_3881",
    "TRANSACTION_EVENT_TYPE",
    "ApplicationActivityType",
    "AuditSourceTypeCode",
    "CodedValue",
    "DetailType",
    "EventActionCode",
    "EventID",
    "EventOutcomeIndicator",
    "NetworkAccessPointTypeCode",
    "ParticipantObjectIDTypeCode",
    "ParticipantObjectTypeCode",
    "ParticipantObjectTypeCodeRole",
    "RoleIDCode",
    "SecurityAlertType",
    "UserAuthenticationType",
]
