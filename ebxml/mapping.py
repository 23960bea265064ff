"""Where each XDS attribute lives in ebRIM 3.0: one table per object type.

ITI TF-3 4.2.3 places every metadata attribute in a Slot, a Classification (coded
values, author) or an ExternalIdentifier of the RegistryObject.  ``parse`` reads these
tables to fill the model, ``serialize`` reads the same tables to write it back, so the
two cannot drift apart.  Table order is the order elements are written in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ebxml.vocabulary import (
    ASSOCIATION_DOCUMENTATION_SCHEME,
    DocumentEntryIdentifier,
    DocumentEntryScheme,
    FolderIdentifier,
    FolderScheme,
    Slot,
    SubmissionSetIdentifier,
    SubmissionSetScheme,
)


@dataclass(frozen=True, slots=True)
class SlotField:
    """A model field stored as an ebRIM Slot (one value, or all values when ``multi``)."""

    slot: str
    field: str
    multi: bool = False


@dataclass(frozen=True, slots=True)
class CodeField:
    """A model field holding Code(s) from Classifications of one classificationScheme."""

    scheme: str
    field: str
    multi: bool = False


@dataclass(frozen=True, slots=True)
class IdentifierField:
    """A model field stored as an ExternalIdentifier of one identificationScheme."""

    scheme: str
    field: str


@dataclass(frozen=True, slots=True)
class ObjectMapping:
    """The ebRIM placement of every attribute of one XDS object type."""

    slots: tuple[SlotField, ...]
    codes: tuple[CodeField, ...] = ()
    identifiers: tuple[IdentifierField, ...] = ()
    author_scheme: str | None = None
    limited_metadata_node: str | None = None  # ITI TF-3 4.2.3.2.29: a classificationNode

    def slot_field(self, name: str) -> SlotField | None:
        return next((f for f in self.slots if f.slot == name), None)

    def code_field(self, scheme: str) -> CodeField | None:
        return next((f for f in self.codes if f.scheme == scheme), None)

    def identifier_field(self, scheme: str) -> IdentifierField | None:
        return next((f for f in self.identifiers if f.scheme == scheme), None)


# ITI TF-3 4.2.3.1.4: the author Classification's slots, as Author fields
AUTHOR_FIELDS: tuple[SlotField, ...] = (
    SlotField(Slot.AUTHOR_PERSON, "person"),
    SlotField(Slot.AUTHOR_INSTITUTION, "institutions", multi=True),
    SlotField(Slot.AUTHOR_ROLE, "roles", multi=True),
    SlotField(Slot.AUTHOR_SPECIALTY, "specialties", multi=True),
    SlotField(Slot.AUTHOR_TELECOMMUNICATION, "telecommunications", multi=True),
)

# ITI TF-3 Table 4.2.3.2-1 (DocumentEntry), slots in the table's order
DOCUMENT_ENTRY = ObjectMapping(
    slots=(
        SlotField(Slot.CREATION_TIME, "creation_time"),
        SlotField(Slot.DOCUMENT_AVAILABILITY, "document_availability"),
        SlotField(Slot.HASH, "hash"),
        SlotField(Slot.LANGUAGE_CODE, "language_code"),
        SlotField(Slot.LEGAL_AUTHENTICATOR, "legal_authenticator"),
        SlotField(Slot.REFERENCE_ID_LIST, "reference_ids", multi=True),
        SlotField(Slot.REPOSITORY_UNIQUE_ID, "repository_unique_id"),
        SlotField(Slot.SERVICE_START_TIME, "service_start_time"),
        SlotField(Slot.SERVICE_STOP_TIME, "service_stop_time"),
        SlotField(Slot.SIZE, "size"),
        SlotField(Slot.SOURCE_PATIENT_ID, "source_patient_id"),
        SlotField(Slot.SOURCE_PATIENT_INFO, "source_patient_info", multi=True),
        SlotField(Slot.URI, "uri"),
    ),
    codes=(
        CodeField(DocumentEntryScheme.CLASS_CODE, "class_code"),
        CodeField(DocumentEntryScheme.CONFIDENTIALITY_CODE, "confidentiality_codes", multi=True),
        CodeField(DocumentEntryScheme.EVENT_CODE_LIST, "event_codes", multi=True),
        CodeField(DocumentEntryScheme.FORMAT_CODE, "format_code"),
        CodeField(
            DocumentEntryScheme.HEALTHCARE_FACILITY_TYPE_CODE, "healthcare_facility_type_code"
        ),
        CodeField(DocumentEntryScheme.PRACTICE_SETTING_CODE, "practice_setting_code"),
        CodeField(DocumentEntryScheme.TYPE_CODE, "type_code"),
    ),
    identifiers=(
        IdentifierField(DocumentEntryIdentifier.PATIENT_ID, "patient_id"),
        IdentifierField(DocumentEntryIdentifier.UNIQUE_ID, "unique_id"),
    ),
    author_scheme=DocumentEntryScheme.AUTHOR,
    limited_metadata_node=DocumentEntryScheme.LIMITED_METADATA,
)

# ITI TF-3 Table 4.2.3.3-1 (SubmissionSet)
SUBMISSION_SET = ObjectMapping(
    slots=(
        SlotField(Slot.INTENDED_RECIPIENT, "intended_recipients", multi=True),
        SlotField(Slot.SUBMISSION_TIME, "submission_time"),
    ),
    codes=(CodeField(SubmissionSetScheme.CONTENT_TYPE_CODE, "content_type_code"),),
    identifiers=(
        IdentifierField(SubmissionSetIdentifier.PATIENT_ID, "patient_id"),
        IdentifierField(SubmissionSetIdentifier.SOURCE_ID, "source_id"),
        IdentifierField(SubmissionSetIdentifier.UNIQUE_ID, "unique_id"),
    ),
    author_scheme=SubmissionSetScheme.AUTHOR,
    limited_metadata_node=SubmissionSetScheme.LIMITED_METADATA,
)

# ITI TF-3 Table 4.2.3.4-1 (Folder)
FOLDER = ObjectMapping(
    slots=(SlotField(Slot.LAST_UPDATE_TIME, "last_update_time"),),
    codes=(CodeField(FolderScheme.CODE_LIST, "code_list", multi=True),),
    identifiers=(
        IdentifierField(FolderIdentifier.PATIENT_ID, "patient_id"),
        IdentifierField(FolderIdentifier.UNIQUE_ID, "unique_id"),
    ),
    limited_metadata_node=FolderScheme.LIMITED_METADATA,
)

# ITI TF-3 4.2.2 (Association slots); ITI TF-3 4.2.3.5 (associationDocumentation)
ASSOCIATION = ObjectMapping(
    slots=(
        SlotField(Slot.SUBMISSION_SET_STATUS, "submission_set_status"),
        SlotField(Slot.PREVIOUS_VERSION, "previous_version"),
        SlotField(Slot.ORIGINAL_STATUS, "original_status"),
        SlotField(Slot.NEW_STATUS, "new_status"),
        SlotField(Slot.ASSOCIATION_PROPAGATION, "association_propagation"),
    ),
    codes=(CodeField(ASSOCIATION_DOCUMENTATION_SCHEME, "documentation"),),
)

__all__ = [
    "ASSOCIATION",
    "AUTHOR_FIELDS",
    "DOCUMENT_ENTRY",
    "FOLDER",
    "SUBMISSION_SET",
    "CodeField",
    "IdentifierField",
    "ObjectMapping",
    "SlotField",
]
