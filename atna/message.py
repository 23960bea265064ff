"""The DICOM audit message (PS3.15 A.5.1) as frozen dataclasses, and its XML.

Element and attribute names and their order follow the schema of DICOM PS3.15 A.5.1
(RelaxNG, normative; the current edition makes ParticipantObjectDescription a
container of the DICOM object description, CP-1301) with the IHE use of it
(ITI TF-2 3.20.7).  Times are written in UTC with milliseconds and ``Z``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

from lxml import etree

from atna.codes import (
    CodedValue,
    EventActionCode,
    EventOutcomeIndicator,
    NetworkAccessPointTypeCode,
    ParticipantObjectTypeCode,
    ParticipantObjectTypeCodeRole,
)
from ebxml.xml_text import ATTRIBUTE_ESCAPES


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
    uid: str | None  # optional in DICOM PS3.15 A.5.1 when the SOP Class is not known
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
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    # isoformat of a UTC datetime ends "+00:00"; written in C, unlike strftime
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


# --- the XML, written directly ---------------------------------------------------------
# XML 1.0 2.2: the C0 controls other than TAB, LF and CR are not characters of a document;
# they are replaced rather than refused, so that no audit record is lost to a stray byte.
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SPECIAL = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')


def escape(value: str) -> str:
    """``value`` as XML attribute or element text (quotes delimit attributes)."""
    if _SPECIAL.search(value) is None:
        return value  # the common case: nothing to escape
    return _INVALID.sub("\ufffd", value).translate(ATTRIBUTE_ESCAPES)


def _attributes(pairs: tuple[tuple[str, str | None], ...]) -> str:
    return "".join(f' {name}="{escape(value)}"' for name, value in pairs if value is not None)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _boolean(value: bool) -> str:
    return "true" if value else "false"


@lru_cache(maxsize=512)
def _coded(tag: str, code: CodedValue) -> str:
    # coded values are the constants of atna.codes: each is written once per process
    attributes = _attributes(
        (
            ("csd-code", code.csd_code),
            ("codeSystemName", code.code_system_name),
            ("displayName", code.display_name),
            ("originalText", code.original_text),
        )
    )
    return f"<{tag}{attributes}/>"


def _text(tag: str, value: str) -> str:
    return f"<{tag}>{escape(value)}</{tag}>"


def _event(event: EventIdentification) -> str:
    attributes = _attributes(
        (
            ("EventActionCode", event.event_action_code),
            ("EventDateTime", format_date_time(event.event_date_time)),
            ("EventOutcomeIndicator", event.event_outcome_indicator),
        )
    )
    parts = [f"<EventIdentification{attributes}>", _coded("EventID", event.event_id)]
    parts += [_coded("EventTypeCode", code) for code in event.event_type_codes]
    if event.event_outcome_description is not None:
        parts.append(_text("EventOutcomeDescription", event.event_outcome_description))
    parts += [_coded("PurposeOfUse", code) for code in event.purpose_of_use]
    parts.append("</EventIdentification>")
    return "".join(parts)


def _participant(participant: ActiveParticipant) -> str:
    attributes = _attributes(
        (
            ("UserID", participant.user_id),
            ("AlternativeUserID", participant.alternative_user_id),
            ("UserName", participant.user_name),
            ("UserIsRequestor", _boolean(participant.user_is_requestor)),
            ("NetworkAccessPointID", participant.network_access_point_id),
            ("NetworkAccessPointTypeCode", participant.network_access_point_type_code),
        )
    )
    children = [_coded("RoleIDCode", code) for code in participant.role_id_codes]
    if participant.media_type is not None:
        children.append(
            f"<MediaIdentifier>{_coded('MediaType', participant.media_type)}</MediaIdentifier>"
        )
    if not children:
        return f"<ActiveParticipant{attributes}/>"
    return f"<ActiveParticipant{attributes}>{''.join(children)}</ActiveParticipant>"


@lru_cache(maxsize=512)
def _source(source: AuditSourceIdentification) -> str:
    # one per auditing node: written once per process
    attributes = _attributes(
        (
            ("AuditEnterpriseSiteID", source.audit_enterprise_site_id),
            ("AuditSourceID", source.audit_source_id),
        )
    )
    children = "".join(_coded("AuditSourceTypeCode", c) for c in source.audit_source_type_codes)
    return f"<AuditSourceIdentification{attributes}>{children}</AuditSourceIdentification>"


def _uid(tag: str, attribute: str, value: str) -> str:
    return f'<{tag} {attribute}="{escape(value)}"/>'


def _description(description: ParticipantObjectDescription) -> str:
    parts = ["<ParticipantObjectDescription>"]
    parts += [_uid("MPPS", "UID", uid) for uid in description.mpps_uids]
    parts += [_uid("Accession", "Number", number) for number in description.accession_numbers]
    for sop_class in description.sop_classes:
        instances = "".join(_uid("Instance", "UID", uid) for uid in sop_class.instance_uids)
        uid = _attributes((("UID", sop_class.uid),))
        parts.append(
            f'<SOPClass{uid} NumberOfInstances="{sop_class.number_of_instances}">'
            f"{instances}</SOPClass>"
        )
    if description.study_instance_uids:
        studies = "".join(_uid("StudyIDs", "UID", uid) for uid in description.study_instance_uids)
        parts.append(f"<ParticipantObjectContainsStudy>{studies}</ParticipantObjectContainsStudy>")
    if description.encrypted is not None:
        parts.append(f"<Encrypted>{_boolean(description.encrypted)}</Encrypted>")
    if description.anonymized is not None:
        parts.append(f"<Anonymized>{_boolean(description.anonymized)}</Anonymized>")
    parts.append("</ParticipantObjectDescription>")
    return "".join(parts)


def _object(obj: ParticipantObjectIdentification) -> str:
    attributes = _attributes(
        (
            ("ParticipantObjectID", obj.participant_object_id),
            ("ParticipantObjectTypeCode", obj.type_code),
            ("ParticipantObjectTypeCodeRole", obj.type_code_role),
            ("ParticipantObjectDataLifeCycle", obj.data_life_cycle),
            ("ParticipantObjectSensitivity", obj.sensitivity),
        )
    )
    parts = [
        f"<ParticipantObjectIdentification{attributes}>",
        _coded("ParticipantObjectIDTypeCode", obj.id_type_code),
    ]
    if obj.name is not None:
        parts.append(_text("ParticipantObjectName", obj.name))
    if obj.query is not None:
        parts.append(f"<ParticipantObjectQuery>{_b64(obj.query)}</ParticipantObjectQuery>")
    parts += [
        f'<ParticipantObjectDetail type="{escape(detail.type)}" value="{_b64(detail.value)}"/>'
        for detail in obj.details
    ]
    parts += [_description(description) for description in obj.descriptions]
    parts.append("</ParticipantObjectIdentification>")
    return "".join(parts)


XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def to_xml(message: AuditMessage) -> bytes:
    """The message as UTF-8 XML with a declaration (DICOM PS3.15 A.5.1), on one line:
    syslog collectors escape a line break after the declaration.

    Written from a template rather than built as a tree: an audit message is made for
    every transaction, and this is several times cheaper than lxml's element building."""
    parts = [
        "<AuditMessage>",
        _event(message.event_identification),
        *(_participant(p) for p in message.active_participants),
        _source(message.audit_source_identification),
        *(_object(o) for o in message.participant_objects),
        "</AuditMessage>",
    ]
    return XML_DECLARATION + "".join(parts).encode("utf-8")


def to_element(message: AuditMessage) -> etree._Element:
    """The message as an lxml element (for inspection and validation)."""
    return etree.fromstring(to_xml(message))


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
    "escape",
    "format_date_time",
    "to_element",
    "to_xml",
]
