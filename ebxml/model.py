"""XDS metadata as typed, frozen values (ITI TF-3 4.1 and 4.2).

Attribute names follow ITI TF-3 4.2.3 snake-cased.  Timestamps are kept as the DTM
strings the submitter sent (ITI TF-3 Table 4.2.3.1.7-2); ``validate/formats.py``
checks them and ``registry`` compares them.  HL7 v2 data types (CX, XCN, XON, ...)
are kept as their encoded strings; ``ebxml.hl7`` parses them when a rule needs parts.

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ebxml.vocabulary import (
    DOC_ENTRY_STABLE,
    AssociationType,
    AvailabilityStatus,
)


@dataclass(frozen=True, slots=True)
class Code:
    """A coded value: Classification nodeRepresentation + codingScheme slot + Name."""

    code: str
    scheme: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class Author:
    """ITI TF-3 4.2.3.1.4: the author Classification and its slots (HL7 v2 encoded)."""

    person: str | None = None  # XCN
    institutions: tuple[str, ...] = ()  # XON
    roles: tuple[str, ...] = ()
    specialties: tuple[str, ...] = ()
    telecommunications: tuple[str, ...] = ()  # XTN


@dataclass(frozen=True, slots=True)
class ExtraSlot:
    """A slot xdsi has no attribute for; kept and returned as submitted."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ExtraClassification:
    """A Classification with a scheme xdsi does not know; kept and returned."""

    scheme: str
    node_representation: str
    name: str = ""
    slots: tuple[ExtraSlot, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtraExternalIdentifier:
    scheme: str
    value: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Extras:
    """Everything on a RegistryObject that ITI TF-3 does not define for it."""

    slots: tuple[ExtraSlot, ...] = ()
    classifications: tuple[ExtraClassification, ...] = ()
    external_identifiers: tuple[ExtraExternalIdentifier, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.slots or self.classifications or self.external_identifiers)


@dataclass(frozen=True, slots=True)
class DocumentEntry:
    """ITI TF-3 4.2.3.2 (Table 4.2.3.2-1)."""

    entry_uuid: str  # the ExtrinsicObject/@id ("urn:uuid:..." once symbolic ids are resolved)
    unique_id: str | None = None
    patient_id: str | None = None  # CX
    object_type: str = DOC_ENTRY_STABLE
    mime_type: str | None = None
    availability_status: str | None = AvailabilityStatus.APPROVED
    logical_id: str | None = None  # ebRIM @lid (ITI-57); defaults to entry_uuid
    version: str | None = None  # VersionInfo/@versionName
    home: str | None = None  # homeCommunityId (@home)
    title: str | None = None  # Name/LocalizedString/@value
    comments: str | None = None  # Description/LocalizedString/@value
    class_code: Code | None = None
    type_code: Code | None = None
    format_code: Code | None = None
    healthcare_facility_type_code: Code | None = None
    practice_setting_code: Code | None = None
    confidentiality_codes: tuple[Code, ...] = ()
    event_codes: tuple[Code, ...] = ()
    authors: tuple[Author, ...] = ()
    creation_time: str | None = None
    service_start_time: str | None = None
    service_stop_time: str | None = None
    hash: str | None = None  # SHA-1, hex (ITI TF-3 4.2.3.2.9)
    size: int | None = None
    size_text: str | None = None  # the size slot as sent, when it is not an integer
    repository_unique_id: str | None = None
    language_code: str | None = None
    legal_authenticator: str | None = None  # XCN
    source_patient_id: str | None = None  # CX
    source_patient_info: tuple[str, ...] = ()  # PID-x|value
    uri: str | None = None
    reference_ids: tuple[str, ...] = ()  # CXi
    document_availability: str | None = None
    limited_metadata: bool = False
    extras: Extras = field(default_factory=Extras)


@dataclass(frozen=True, slots=True)
class SubmissionSet:
    """ITI TF-3 4.2.3.3 (Table 4.2.3.3-1)."""

    entry_uuid: str
    unique_id: str | None = None
    source_id: str | None = None
    patient_id: str | None = None
    submission_time: str | None = None
    content_type_code: Code | None = None
    authors: tuple[Author, ...] = ()
    intended_recipients: tuple[str, ...] = ()  # XON|XCN|XTN
    title: str | None = None
    comments: str | None = None
    availability_status: str | None = AvailabilityStatus.APPROVED
    home: str | None = None
    logical_id: str | None = None
    version: str | None = None
    limited_metadata: bool = False
    extras: Extras = field(default_factory=Extras)


@dataclass(frozen=True, slots=True)
class Folder:
    """ITI TF-3 4.2.3.4 (Table 4.2.3.4-1)."""

    entry_uuid: str
    unique_id: str | None = None
    patient_id: str | None = None
    code_list: tuple[Code, ...] = ()
    last_update_time: str | None = None
    title: str | None = None
    comments: str | None = None
    availability_status: str | None = AvailabilityStatus.APPROVED
    home: str | None = None
    logical_id: str | None = None
    version: str | None = None
    limited_metadata: bool = False
    extras: Extras = field(default_factory=Extras)


@dataclass(frozen=True, slots=True)
class Association:
    """ITI TF-3 4.2.2: HasMember and the document relationships."""

    entry_uuid: str
    association_type: str  # AssociationType value (kept as a str: unknown types are possible)
    source: str  # sourceObject (uuid once resolved)
    target: str  # targetObject
    submission_set_status: str | None = None  # "Original" | "Reference" (HasMember SS->DE)
    previous_version: str | None = None  # ITI-57
    original_status: str | None = None  # ITI-57 UpdateAvailabilityStatus
    new_status: str | None = None
    association_propagation: str | None = None
    documentation: Code | None = None  # associationDocumentation classification
    availability_status: str | None = AvailabilityStatus.APPROVED
    home: str | None = None
    extras: Extras = field(default_factory=Extras)

    @property
    def is_has_member(self) -> bool:
        return self.association_type == AssociationType.HAS_MEMBER


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """rim:ObjectRef: a reference to an object already in the registry."""

    id: str
    home: str | None = None


RegistryObject = DocumentEntry | SubmissionSet | Folder | Association


@dataclass(frozen=True, slots=True)
class Submission:
    """The contents of one lcm:SubmitObjectsRequest (ITI-41 / ITI-42 / ITI-57 / ITI-61).

    ``symbolic_ids`` maps each symbolic id that parsing replaced to the UUID it got, so
    responses and error locations can name what the submitter sent.
    """

    submission_set: SubmissionSet | None
    document_entries: tuple[DocumentEntry, ...] = ()
    folders: tuple[Folder, ...] = ()
    associations: tuple[Association, ...] = ()
    object_refs: tuple[ObjectRef, ...] = ()
    symbolic_ids: dict[str, str] = field(default_factory=dict)
    # Packages with neither the SubmissionSet nor the Folder classification, and other
    # identifiables xdsi does not model, named for the XDSExtraMetadataNotSaved warning.
    unknown_objects: tuple[str, ...] = ()

    def object_ids(self) -> set[str]:
        ids = {d.entry_uuid for d in self.document_entries}
        ids |= {f.entry_uuid for f in self.folders}
        ids |= {a.entry_uuid for a in self.associations}
        if self.submission_set is not None:
            ids.add(self.submission_set.entry_uuid)
        return ids


__all__ = [
    "Association",
    "Author",
    "Code",
    "DocumentEntry",
    "ExtraClassification",
    "ExtraExternalIdentifier",
    "ExtraSlot",
    "Extras",
    "Folder",
    "ObjectRef",
    "RegistryObject",
    "Submission",
    "SubmissionSet",
]
