"""The DICOM audit message (PS3.15 A.5.1) as frozen dataclasses, and its XML.

Element and attribute names and their order follow the schema of DICOM PS3.15 A.5.1
(RelaxNG, normative; the current edition makes ParticipantObjectDescription a
container of the DICOM object description, CP-1301) with the IHE use of it
(ITI TF-2 3.20.7).  Times are written in UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from atna.codes import (
    CodedValue,
    EventActionCode,
    EventOutcomeIndicator,
    NetworkAccessPointTypeCode,
    ParticipantObjectTypeCode,
    ParticipantObjectTypeCodeRole,
)


@dataclass(frozen=True)
class EventIdentification:
    event_id: CodedValue
    event_date_time: datetime
    event_outcome_indicator: EventOutcomeIndicator = EventOutcomeIndicator.SUCCESS
    event_action_code: EventActionCode | None = None
    event_type_codes: tuple[CodedValue, ...] = ()
    event_outcome_description: str | None = None
    purpose_of_use: tuple[CodedValue, ...] = ()

    def __post_init__(self) -> None:
        # DICOM PS3.15 A.5.1: EventDateTime is an xsd:dateTime; we require the zone
        if self.event_date_time.tzinfo is None:
            raise ValueError("EventDateTime must be timezone-aware")


@dataclass(frozen=True)
class ActiveParticipant:
    user_id: str
    user_is_requestor: bool
    role_id_codes: tuple[CodedValue, ...] = ()
    alternative_user_id: str | None = None
    user_name: str | None = None
    network_access_point_id: str | None = None
    network_access_point_type_code: NetworkAccessPointTypeCode | None = None
    media_type: CodedValue | None = None


@dataclass(frozen=True)
class AuditSourceIdentification:
    audit_source_id: str
    audit_enterprise_site_id: str | None = None
    audit_source_type_codes: tuple[CodedValue, ...] = ()


@dataclass(frozen=True)
class ParticipantObjectDetail:
    """A type/value pair; DICOM PS3.15 A.5.1 carries every value as base64Binary."""

    type: str
    value: bytes

    @classmethod
    def text(cls, type_: str, value: str) -> ParticipantObjectDetail:
        return cls(type_, value.encode("utf-8"))


@dataclass(frozen=True)
class SOPClass:
    uid: str
    number_of_instances: int
    instance_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParticipantObjectDescription:
    """DICOM PS3.15 A.5.1 DICOMObjectDescriptionContents."""

    mpps_uids: tuple[str, ...] = ()
    accession_numbers: tuple[str, ...] = ()
    sop_classes: tuple[SOPClass, ...] = ()
    study_instance_uids: tuple[str, ...] = ()
    encrypted: bool | None = None
    anonymized: bool | None = None


@dataclass(frozen=True)
class ParticipantObjectIdentification:
    participant_object_id: str
    id_type_code: CodedValue
    name: str | None = None
    query: bytes | None = None
    type_code: ParticipantObjectTypeCode | None = None
    type_code_role: ParticipantObjectTypeCodeRole | None = None
    data_life_cycle: str | None = None
    sensitivity: str | None = None
    details: tuple[ParticipantObjectDetail, ...] = ()
    descriptions: tuple[ParticipantObjectDescription, ...] = ()

    def __post_init__(self) -> None:
        # DICOM PS3.15 A.5.1 (CP-2399): ParticipantObjectName or ParticipantObjectQuery
        if (self.name is None) == (self.query is None):
            raise ValueError("exactly one of ParticipantObjectName, ParticipantObjectQuery")


@dataclass(frozen=True)
class AuditMessage:
    event_identification: EventIdentification
    active_participants: tuple[ActiveParticipant, ...]
    audit_source_identification: AuditSourceIdentification
    participant_objects: tuple[ParticipantObjectIdentification, ...] = field(default=())

    def __post_init__(self) -> None:
        # DICOM PS3.15 A.5.1: one or more ActiveParticipant
        if not self.active_participants:
            raise ValueError("an AuditMessage needs at least one ActiveParticipant")


def format_date_time(moment: datetime) -> str:
    """``2024-05-01T12:00:00.123Z``: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _set(element: etree._Element, name: str, value: str | None) -> None:
    if value is not None:
        element.set(name, value)


def _coded(parent: etree._Element, tag: str, code: CodedValue) -> etree._Element:
    element = etree.SubElement(parent, tag)
    element.set("csd-code", code.csd_code)
    element.set("codeSystemName", code.code_system_name)
    _set(element, "displayName", code.display_name)
    element.set("originalText", code.original_text)
    return element


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _boolean(value: bool) -> str:
    return "true" if value else "false"


def _event(parent: etree._Element, event: EventIdentification) -> None:
    element = etree.SubElement(parent, "EventIdentification")
    _set(element, "EventActionCode", event.event_action_code)
    element.set("EventDateTime", format_date_time(event.event_date_time))
    element.set("EventOutcomeIndicator", event.event_outcome_indicator)
    _coded(element, "EventID", event.event_id)
    for code in event.event_type_codes:
        _coded(element, "EventTypeCode", code)
    if event.event_outcome_description is not None:
        etree.SubElement(element, "EventOutcomeDescription").text = event.event_outcome_description
    for code in event.purpose_of_use:
        _coded(element, "PurposeOfUse", code)


def _participant(parent: etree._Element, participant: ActiveParticipant) -> None:
    element = etree.SubElement(parent, "ActiveParticipant")
    element.set("UserID", participant.user_id)
    _set(element, "AlternativeUserID", participant.alternative_user_id)
    _set(element, "UserName", participant.user_name)
    element.set("UserIsRequestor", _boolean(participant.user_is_requestor))
    _set(element, "NetworkAccessPointID", participant.network_access_point_id)
    _set(element, "NetworkAccessPointTypeCode", participant.network_access_point_type_code)
    for code in participant.role_id_codes:
        _coded(element, "RoleIDCode", code)
    if participant.media_type is not None:
        media = etree.SubElement(element, "MediaIdentifier")
        _coded(media, "MediaType", participant.media_type)


def _source(parent: etree._Element, source: AuditSourceIdentification) -> None:
    element = etree.SubElement(parent, "AuditSourceIdentification")
    _set(element, "AuditEnterpriseSiteID", source.audit_enterprise_site_id)
    element.set("AuditSourceID", source.audit_source_id)
    for code in source.audit_source_type_codes:
        _coded(element, "AuditSourceTypeCode", code)


def _description(parent: etree._Element, description: ParticipantObjectDescription) -> None:
    element = etree.SubElement(parent, "ParticipantObjectDescription")
    for uid in description.mpps_uids:
        etree.SubElement(element, "MPPS").set("UID", uid)
    for number in description.accession_numbers:
        etree.SubElement(element, "Accession").set("Number", number)
    for sop_class in description.sop_classes:
        sop = etree.SubElement(element, "SOPClass")
        sop.set("UID", sop_class.uid)
        sop.set("NumberOfInstances", str(sop_class.number_of_instances))
        for uid in sop_class.instance_uids:
            etree.SubElement(sop, "Instance").set("UID", uid)
    if description.study_instance_uids:
        study = etree.SubElement(element, "ParticipantObjectContainsStudy")
        for uid in description.study_instance_uids:
            etree.SubElement(study, "StudyIDs").set("UID", uid)
    if description.encrypted is not None:
        etree.SubElement(element, "Encrypted").text = _boolean(description.encrypted)
    if description.anonymized is not None:
        etree.SubElement(element, "Anonymized").text = _boolean(description.anonymized)


def _object(parent: etree._Element, obj: ParticipantObjectIdentification) -> None:
    element = etree.SubElement(parent, "ParticipantObjectIdentification")
    element.set("ParticipantObjectID", obj.participant_object_id)
    _set(element, "ParticipantObjectTypeCode", obj.type_code)
    _set(element, "ParticipantObjectTypeCodeRole", obj.type_code_role)
    _set(element, "ParticipantObjectDataLifeCycle", obj.data_life_cycle)
    _set(element, "ParticipantObjectSensitivity", obj.sensitivity)
    _coded(element, "ParticipantObjectIDTypeCode", obj.id_type_code)
    if obj.name is not None:
        etree.SubElement(element, "ParticipantObjectName").text = obj.name
    if obj.query is not None:
        etree.SubElement(element, "ParticipantObjectQuery").text = _b64(obj.query)
    for detail in obj.details:
        item = etree.SubElement(element, "ParticipantObjectDetail")
        item.set("type", detail.type)
        item.set("value", _b64(detail.value))
    for description in obj.descriptions:
        _description(element, description)


def to_element(message: AuditMessage) -> etree._Element:
    root = etree.Element("AuditMessage")
    _event(root, message.event_identification)
    for participant in message.active_participants:
        _participant(root, participant)
    _source(root, message.audit_source_identification)
    for obj in message.participant_objects:
        _object(root, obj)
    return root


XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def to_xml(message: AuditMessage) -> bytes:
    """The message as UTF-8 XML with a declaration (DICOM PS3.15 A.5.1), on one line:
    syslog collectors escape a line break after the declaration."""
    body = etree.tostring(to_element(message), encoding="unicode").encode("utf-8")
    return XML_DECLARATION + body


__all__ = [
    "ActiveParticipant",
    "AuditMessage",
    "AuditSourceIdentification",
    "EventIdentification",
    "ParticipantObjectDescription",
    "ParticipantObjectDetail",
    "ParticipantObjectIdentification",
    "SOPClass",
    "XML_DECLARATION",
    "format_date_time",
    "to_element",
    "to_xml",
]
