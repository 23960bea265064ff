"""Reading the audit trail back, for people: ``xdsi audit tail`` and ``xdsi audit search``.

The spool keeps every message as it was sent (an RFC 5424 SYSLOG-MSG whose MSG is the
DICOM audit XML, PS3.15 A.5.1).  :func:`read_record` turns one into an
:class:`AuditRecord` - who (user id, alternative user id such as the ITI-19 certificate
subject, network address), what (EventID, the transaction's EventTypeCode, the
outcome), when, and which objects (patients, documents, queries, studies) - and
:func:`format_record` prints it on a few lines.  :func:`matches` answers the search
filters.  Pure functions: the spool is read by :meth:`atna.spool.AuditSpool.events`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from atna.codes import EventOutcomeIndicator, ParticipantObjectTypeCode
from atna.codes import ParticipantObjectTypeCodeRole as Role

BOM = b"\xef\xbb\xbf"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
# DICOM PS3.15 A.5.1 EventOutcomeIndicator, as a person reads it
OUTCOME_WORDS: dict[str, str] = {
    EventOutcomeIndicator.SUCCESS: "success",
    EventOutcomeIndicator.MINOR_FAILURE: "minor failure",
    EventOutcomeIndicator.SERIOUS_FAILURE: "serious failure",
    EventOutcomeIndicator.MAJOR_FAILURE: "major failure",
}
# (ParticipantObjectTypeCode, ParticipantObjectTypeCodeRole) -> what the object is
OBJECT_KINDS: dict[tuple[str, str], str] = {
    (ParticipantObjectTypeCode.PERSON, Role.PATIENT): "patient",
    (ParticipantObjectTypeCode.SYSTEM_OBJECT, Role.REPORT): "document",
    (ParticipantObjectTypeCode.SYSTEM_OBJECT, Role.JOB): "submission set",
    (ParticipantObjectTypeCode.SYSTEM_OBJECT, Role.QUERY): "query",
    (ParticipantObjectTypeCode.SYSTEM_OBJECT, Role.SECURITY_RESOURCE): "resource",
}


@dataclass(frozen=True)
class Participant:
    user_id: str
    alternative_user_id: str | None
    network_access_point: str | None
    is_requestor: bool
    roles: tuple[str, ...]  # RoleIDCode display names or codes


@dataclass(frozen=True)
class AuditObject:
    kind: str  # patient, document, query, ... (OBJECT_KINDS), else "object"
    object_id: str
    name: str | None


@dataclass(frozen=True)
class AuditRecord:
    spool_id: int
    when: str  # EventDateTime as written
    event: str  # EventID display name
    transaction: str | None  # EventTypeCode code, e.g. "ITI-18"
    action: str  # EventActionCode
    outcome: str  # EventOutcomeIndicator
    description: str | None
    participants: tuple[Participant, ...]
    objects: tuple[AuditObject, ...]

    @property
    def patients(self) -> tuple[str, ...]:
        return tuple(o.object_id for o in self.objects if o.kind == "patient")


def audit_xml(message: bytes) -> bytes:
    """The MSG of one RFC 5424 SYSLOG-MSG: the audit XML (after the BOM, or the '<?xml'
    / '<AuditMessage' start when there is none)."""
    at = message.find(BOM)
    if at >= 0:
        return message[at + len(BOM) :]
    for start in (b"<?xml", b"<AuditMessage"):
        at = message.find(start)
        if at >= 0:
            return message[at:]
    raise ValueError("no audit XML in the message")


def _code(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return element.get("csd-code")


def _label(element: etree._Element) -> str:
    return element.get("displayName") or element.get("originalText") or element.get("csd-code", "")


def read_record(spool_id: int, message: bytes) -> AuditRecord:
    """One spooled message as an :class:`AuditRecord` (ValueError if unreadable)."""
    try:
        root = etree.fromstring(audit_xml(message), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"audit message {spool_id} is not XML: {exc}") from exc
    event = root.find("EventIdentification")
    if event is None:
        raise ValueError(f"audit message {spool_id} has no EventIdentification")
    event_id = event.find("EventID")
    participants = tuple(
        Participant(
            p.get("UserID", ""),
            p.get("AlternativeUserID"),
            p.get("NetworkAccessPointID"),
            p.get("UserIsRequestor") == "true",
            tuple(_label(r) for r in p.iterfind("RoleIDCode")),
        )
        for p in root.iterfind("ActiveParticipant")
    )
    objects = tuple(
        AuditObject(
            OBJECT_KINDS.get(
                (
                    o.get("ParticipantObjectTypeCode", ""),
                    o.get("ParticipantObjectTypeCodeRole", ""),
                ),
                "object",
            ),
            o.get("ParticipantObjectID", ""),
            o.findtext("ParticipantObjectName"),
        )
        for o in root.iterfind("ParticipantObjectIdentification")
    )
    return AuditRecord(
        spool_id=spool_id,
        when=event.get("EventDateTime", ""),
        event=_label(event_id) if event_id is not None else "",
        transaction=_code(event.find("EventTypeCode")),
        action=event.get("EventActionCode", ""),
        outcome=event.get("EventOutcomeIndicator", ""),
        description=event.findtext("EventOutcomeDescription"),
        participants=participants,
        objects=objects,
    )


def matches(
    record: AuditRecord,
    *,
    patient: str | None = None,
    since: datetime | None = None,
    transaction: str | None = None,
) -> bool:
    """The search filters: a patient (its id as audited, or just its ID before '^'),
    events at or after ``since``, one transaction's EventTypeCode (``ITI-18``)."""
    if transaction is not None and (record.transaction or "").upper() != transaction.upper():
        return False
    if patient is not None and not any(
        p == patient or p.split("^", 1)[0] == patient for p in record.patients
    ):
        return False
    if since is not None:
        try:
            when = datetime.fromisoformat(record.when.replace("Z", "+00:00"))
        except ValueError:
            return False
        if when < since:
            return False
    return True


def _who(participant: Participant) -> str:
    parts = [participant.user_id or "-"]
    if participant.alternative_user_id:
        parts.append(f"({participant.alternative_user_id})")
    if participant.network_access_point:
        parts.append(f"at {participant.network_access_point}")
    if participant.roles:
        parts.append(f"[{', '.join(participant.roles)}]")
    return " ".join(parts)


def format_record(record: AuditRecord) -> str:
    """A few lines: when, what and its outcome; who (requestor first); which objects."""
    what = record.event + (f" {record.transaction}" if record.transaction else "")
    outcome = OUTCOME_WORDS.get(record.outcome, record.outcome)
    lines = [f"{record.when}  #{record.spool_id}  {what}  {record.action}  {outcome}"]
    if record.description:
        lines.append(f"  reason: {record.description}")
    ordered = sorted(record.participants, key=lambda p: not p.is_requestor)
    for participant in ordered:
        role = "by" if participant.is_requestor else "with"
        lines.append(f"  {role} {_who(participant)}")
    for obj in record.objects:
        name = f" {obj.name}" if obj.name and obj.name != obj.object_id else ""
        lines.append(f"  {obj.kind}: {obj.object_id}{name}")
    return "\n".join(lines)


def read_records(rows: Iterable[tuple[int, bytes]]) -> list[AuditRecord]:
    """Records of readable rows; unreadable ones are skipped (the spool keeps them)."""
    records = []
    for spool_id, message in rows:
        try:
            records.append(read_record(spool_id, message))
        except ValueError:
            continue
    return records


__all__ = [
    "OBJECT_KINDS",
    "OUTCOME_WORDS",
    "AuditObject",
    "AuditRecord",
    "Participant",
    "audit_xml",
    "format_record",
    "matches",
    "read_record",
    "read_records",
]
