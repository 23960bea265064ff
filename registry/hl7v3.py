"""HL7 v3 Patient Identity Feed messages (ITI-44) and their acknowledgement; no I/O.

ITI TF-2 3.44.4.1 (Patient Record Added / Revised, PRPA_IN201301UV02 /
PRPA_IN201302UV02) and 3.44.4.2 (Patients Merged, PRPA_IN201304UV02) are read into a
:class:`FeedMessage`: the transmission wrapper (message id, sender, receiver,
processing code), the patient's ids and a few demographics from
``controlActProcess/subject/registrationEvent/subject1/patient``, and for a merge the
subsumed ids from ``registrationEvent/replacementOf/priorRegistration/subject1/
priorRegisteredRole/id``.  ITI TF-2 3.44.4.1.4 / 3.44.4.2.4 acknowledge each with an
MCCI_IN000002UV01 (:func:`build_acknowledgement`): AA accepted, AE application
error, AR rejected, with ``acknowledgementDetail`` codes from HL7 Table 0357.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from lxml import etree

NS_HL7 = "urn:hl7-org:v3"
# HL7 v3 interaction ids are identified under this root (HL7 v3 Normative Edition)
INTERACTION_ID_ROOT = "2.16.840.1.113883.1.6"
# HL7 Table 0357 message error condition codes, as ITI-44/45 acknowledgements carry them
ERROR_CONDITION_SYSTEM = "2.16.840.1.113883.12.357"
ITS_VERSION = "XML_1.0"
PROCESSING_CODES = frozenset({"P", "T", "D"})  # HL7 v3 ProcessingID: production, training, debug


class Interaction(StrEnum):
    """ITI TF-2 3.44.4: the interactions a Document Registry receives, and its answer."""

    PATIENT_ADDED = "PRPA_IN201301UV02"
    PATIENT_REVISED = "PRPA_IN201302UV02"
    PATIENTS_MERGED = "PRPA_IN201304UV02"
    ACKNOWLEDGEMENT = "MCCI_IN000002UV01"


FEED_INTERACTIONS = frozenset(
    {Interaction.PATIENT_ADDED, Interaction.PATIENT_REVISED, Interaction.PATIENTS_MERGED}
)


class AckCode(StrEnum):
    """HL7 v3 AcknowledgementType (acknowledgement/typeCode)."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


class ErrorCondition(StrEnum):
    """HL7 Table 0357 codes used in acknowledgementDetail/code."""

    SEGMENT_SEQUENCE_ERROR = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE_ERROR = "102"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNKNOWN_KEY_IDENTIFIER = "204"
    DUPLICATE_KEY_IDENTIFIER = "205"
    APPLICATION_INTERNAL_ERROR = "207"


def _tag(name: str) -> str:
    return f"{{{NS_HL7}}}{name}"


@dataclass(frozen=True, slots=True)
class InstanceIdentifier:
    """HL7 v3 II: ``root`` (an OID or UUID) and an optional ``extension``."""

    root: str
    extension: str | None = None


@dataclass(frozen=True, slots=True)
class PatientRecord:
    ids: tuple[InstanceIdentifier, ...]
    demographics: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FeedMessage:
    interaction: Interaction
    message_id: InstanceIdentifier
    processing_code: str
    patient: PatientRecord
    prior_ids: tuple[InstanceIdentifier, ...] = ()  # merge: the subsumed patient ids
    sender: str | None = None  # sender/device/id/@root
    receiver: str | None = None  # receiver/device/id/@root


class Hl7v3MessageError(Exception):
    """A message that cannot be processed: the acknowledgement code and detail to send."""

    def __init__(self, ack: AckCode, condition: ErrorCondition, text: str, location: str) -> None:
        self.ack, self.condition, self.text, self.location = ack, condition, text, location
        super().__init__(f"{location}: {text}")


@dataclass(frozen=True, slots=True)
class AcknowledgementDetail:
    """One acknowledgementDetail; ``type_code`` E (error), W (warning) or I (info)."""

    condition: ErrorCondition | None  # None: an informational detail without a code
    text: str
    location: str | None = None
    type_code: str = "E"


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    code: AckCode
    target_message_id: InstanceIdentifier | None
    details: tuple[AcknowledgementDetail, ...] = ()


# --- reading -----------------------------------------------------------------------------

_SUBJECT = "controlActProcess/subject/registrationEvent"
_PATIENT = f"{_SUBJECT}/subject1/patient"
_PRIOR_IDS = f"{_SUBJECT}/replacementOf/priorRegistration/subject1/priorRegisteredRole/id"


def _path(path: str) -> str:
    return "/".join(_tag(step) for step in path.split("/"))


def _ii(elem: etree._Element | None) -> InstanceIdentifier | None:
    if elem is None or not (root := (elem.get("root") or "").strip()):
        return None
    extension = (elem.get("extension") or "").strip() or None
    return InstanceIdentifier(root, extension)


def _required(root: etree._Element, path: str, what: str) -> etree._Element:
    found = root.find(_path(path))
    if found is None:
        raise Hl7v3MessageError(
            AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING, f"{what} is missing", path
        )
    return found


def _text(elem: etree._Element | None) -> str:
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def _demographics(patient: etree._Element) -> dict[str, str]:
    """Name, gender and birth time of patientPerson, kept as text."""
    person = patient.find(_tag("patientPerson"))
    if person is None:
        return {}
    found: dict[str, str] = {}
    name = person.find(_tag("name"))
    if name is not None:
        family = _text(name.find(_tag("family")))
        given = " ".join(_text(g) for g in name.iterfind(_tag("given")))
        found["name"] = "^".join(part for part in (family, given) if part) or _text(name)
    gender = person.find(_tag("administrativeGenderCode"))
    if gender is not None and gender.get("code"):
        found["administrativeGenderCode"] = gender.get("code", "")
    birth = person.find(_tag("birthTime"))
    if birth is not None and birth.get("value"):
        found["birthTime"] = birth.get("value", "")
    return {k: v for k, v in found.items() if v}


def _interaction(root: etree._Element) -> Interaction:
    local = etree.QName(root).localname
    if etree.QName(root).namespace != NS_HL7 or local not in FEED_INTERACTIONS:
        raise Hl7v3MessageError(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
            f"{root.tag} is not an ITI-44 interaction",
            "/",
        )
    declared = _ii(root.find(_tag("interactionId")))
    if declared is not None and declared.extension not in (None, local):
        raise Hl7v3MessageError(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
            f"interactionId {declared.extension} does not match {local}",
            "interactionId",
        )
    return Interaction(local)


def parse_feed_message(root: etree._Element) -> FeedMessage:
    """Read an ITI-44 message; :class:`Hl7v3MessageError` says why it cannot be used."""
    interaction = _interaction(root)
    message_id = _ii(root.find(_tag("id")))
    if message_id is None:
        raise Hl7v3MessageError(
            AckCode.REJECT, ErrorCondition.REQUIRED_FIELD_MISSING, "message id is missing", "id"
        )
    processing = root.find(_tag("processingCode"))
    processing_code = "" if processing is None else processing.get("code", "")
    if processing_code not in PROCESSING_CODES:
        raise Hl7v3MessageError(
            AckCode.REJECT,
            ErrorCondition.UNSUPPORTED_PROCESSING_ID,
            f"processingCode {processing_code!r} is not supported",
            "processingCode",
        )
    patient = _required(root, _PATIENT, "patient")
    ids = tuple(i for e in patient.iterfind(_tag("id")) if (i := _ii(e)) is not None)
    if not ids:
        raise Hl7v3MessageError(
            AckCode.ERROR,
            ErrorCondition.REQUIRED_FIELD_MISSING,
            "patient id is missing",
            f"{_PATIENT}/id",
        )
    prior: tuple[InstanceIdentifier, ...] = ()
    if interaction == Interaction.PATIENTS_MERGED:
        prior = tuple(i for e in root.iterfind(_path(_PRIOR_IDS)) if (i := _ii(e)) is not None)
        if not prior:
            raise Hl7v3MessageError(
                AckCode.ERROR,
                ErrorCondition.REQUIRED_FIELD_MISSING,
                "priorRegisteredRole id (the subsumed patient) is missing",
                _PRIOR_IDS,
            )
    return FeedMessage(
        interaction=interaction,
        message_id=message_id,
        processing_code=processing_code,
        patient=PatientRecord(ids, _demographics(patient)),
        prior_ids=prior,
        sender=_device_id(root, "sender"),
        receiver=_device_id(root, "receiver"),
    )


def _device_id(root: etree._Element, role: str) -> str | None:
    ident = _ii(root.find(f"{_tag(role)}/{_tag('device')}/{_tag('id')}"))
    return None if ident is None else ident.root


def message_id_of(root: etree._Element) -> InstanceIdentifier | None:
    """The message id, read leniently, to address an acknowledgement to a bad message."""
    return _ii(root.find(_tag("id")))


def sender_of(root: etree._Element) -> str | None:
    return _device_id(root, "sender")


# --- the acknowledgement ----------------------------------------------------------------


def _set_ii(elem: etree._Element, ident: InstanceIdentifier) -> etree._Element:
    elem.set("root", ident.root)
    if ident.extension:
        elem.set("extension", ident.extension)
    return elem


def _device(parent: etree._Element, role: str, type_code: str, root: str) -> None:
    wrapper = etree.SubElement(parent, _tag(role), typeCode=type_code)
    device = etree.SubElement(wrapper, _tag("device"), classCode="DEV", determinerCode="INSTANCE")
    etree.SubElement(device, _tag("id"), root=root)


def build_acknowledgement(
    ack: Acknowledgement,
    *,
    message_id: InstanceIdentifier,
    creation_time: str,
    sender: str,
    receiver: str | None,
    processing_code: str = "P",
) -> etree._Element:
    """MCCI_IN000002UV01 (ITI TF-2 3.44.4.1.4): the transmission wrapper addressed back
    to the sender, and one acknowledgement naming the message it answers."""
    root = etree.Element(_tag(Interaction.ACKNOWLEDGEMENT), nsmap={"hl7": NS_HL7})
    root.set("ITSVersion", ITS_VERSION)
    _set_ii(etree.SubElement(root, _tag("id")), message_id)
    etree.SubElement(root, _tag("creationTime"), value=creation_time)
    etree.SubElement(
        root, _tag("interactionId"), root=INTERACTION_ID_ROOT, extension=Interaction.ACKNOWLEDGEMENT
    )
    etree.SubElement(root, _tag("processingCode"), code=processing_code)
    etree.SubElement(root, _tag("processingModeCode"), code="T")
    etree.SubElement(root, _tag("acceptAckCode"), code="NE")
    if receiver:
        _device(root, "receiver", "RCV", receiver)
    _device(root, "sender", "SND", sender)
    acknowledgement = etree.SubElement(root, _tag("acknowledgement"))
    etree.SubElement(acknowledgement, _tag("typeCode"), code=ack.code)
    target = etree.SubElement(acknowledgement, _tag("targetMessage"))
    target_id = etree.SubElement(target, _tag("id"))
    if ack.target_message_id is None:
        target_id.set("nullFlavor", "UNK")
    else:
        _set_ii(target_id, ack.target_message_id)
    for detail in ack.details:
        elem = etree.SubElement(acknowledgement, _tag("acknowledgementDetail"))
        elem.set("typeCode", detail.type_code)
        if detail.condition is not None:
            etree.SubElement(
                elem, _tag("code"), code=detail.condition, codeSystem=ERROR_CONDITION_SYSTEM
            )
        etree.SubElement(elem, _tag("text")).text = detail.text
        if detail.location:
            etree.SubElement(elem, _tag("location")).text = detail.location
    return root


def _condition(code: etree._Element | None) -> ErrorCondition | None:
    return None if code is None else ErrorCondition(code.get("code", ""))


def parse_acknowledgement(root: etree._Element) -> Acknowledgement:
    """MCCI_IN000002UV01 as a Patient Identity Source reads it."""
    acknowledgement = root.find(_tag("acknowledgement"))
    if acknowledgement is None:
        raise ValueError("no acknowledgement element")
    type_code = acknowledgement.find(_tag("typeCode"))
    details = tuple(
        AcknowledgementDetail(
            condition=_condition(detail.find(_tag("code"))),
            text=_text(detail.find(_tag("text"))),
            location=_text(detail.find(_tag("location"))) or None,
            type_code=detail.get("typeCode", "E"),
        )
        for detail in acknowledgement.iterfind(_tag("acknowledgementDetail"))
    )
    return Acknowledgement(
        code=AckCode(type_code.get("code", "") if type_code is not None else ""),
        target_message_id=_ii(acknowledgement.find(f"{_tag('targetMessage')}/{_tag('id')}")),
        details=details,
    )


__all__ = [
    "ERROR_CONDITION_SYSTEM",
    "FEED_INTERACTIONS",
    "INTERACTION_ID_ROOT",
    "NS_HL7",
    "AckCode",
    "Acknowledgement",
    "AcknowledgementDetail",
    "ErrorCondition",
    "FeedMessage",
    "Hl7v3MessageError",
    "InstanceIdentifier",
    "Interaction",
    "PatientRecord",
    "build_acknowledgement",
    "message_id_of",
    "parse_acknowledgement",
    "parse_feed_message",
    "sender_of",
]
