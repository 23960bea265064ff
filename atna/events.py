"""Audit messages from what happened: one builder per (transaction, actor side).

An actor hands over a plain record of the exchange (``TransactionOutcome``: who asked,
who answered, which patients, submission set, documents, query) and the table
``TRANSACTION_AUDITS`` says what the IHE profile prescribes for that actor's side:
the EventID, the EventActionCode, which participant is the Source (110153) and
which the Destination (110152), and which participant objects the message carries.
Every message names at most one patient (ITI TF-2 3.20.7): an event touching several
patients yields one message per patient.

Application Activity and Security Alert events (ITI TF-2 3.20.7; DICOM PS3.15
A.5.3.1, A.5.3.11) have their own small records.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Protocol
from urllib.parse import urlsplit

from atna.codes import (
    TRANSACTION_EVENT_TYPE,
    ApplicationActivityType,
    AuditSourceTypeCode,
    CodedValue,
    DetailType,
    EventActionCode,
    EventID,
    EventOutcomeIndicator,
    NetworkAccessPointTypeCode,
    ParticipantObjectIDTypeCode,
    ParticipantObjectTypeCode,
    ParticipantObjectTypeCodeRole,
    RoleIDCode,
)
from atna.message import (
    ActiveParticipant,
    AuditMessage,
    AuditSourceIdentification,
    EventIdentification,
    ParticipantObjectDescription,
    ParticipantObjectDetail,
    ParticipantObjectIdentification,
    SOPClass,
)
from ebxml.vocabulary import Transaction

MAX_DESCRIPTION = 1024  # characters of an EventOutcomeDescription (and Alert Description)


def _now() -> datetime:
    return datetime.now(UTC)


class Side(StrEnum):
    """The auditing actor's side of the exchange."""

    REQUESTER = "requester"  # Document Source, Repository (ITI-42), Consumer, PIX source
    RESPONDER = "responder"  # Repository (ITI-41, ITI-43), Registry


@dataclass(frozen=True)
class Endpoint:
    """One end of an exchange.

    ``user_id``: the WS-Addressing ReplyTo of a requester (or its process / HL7
    MSH-3^MSH-4), the SOAP endpoint URL of a responder.  ``alternative_user_id``: the
    process id; for the auditing side it defaults to this process's id.
    ``network_access_point``: a host name or IP address; when absent it is taken from
    ``user_id`` if that is a URL.
    """

    user_id: str
    alternative_user_id: str | None = None
    network_access_point: str | None = None


@dataclass(frozen=True)
class DocumentReference:
    unique_id: str
    repository_unique_id: str | None = None
    home_community_id: str | None = None
    patient_id: str | None = None


@dataclass(frozen=True)
class StudyReference:
    """A study a RAD-69 exchange concerned (RAD TF-3 4.69.4.1.4): its Study Instance UID
    and the SOP Instance UIDs asked for (their SOP Class is not in the request)."""

    study_instance_uid: str
    instance_uids: tuple[str, ...] = ()


@dataclass(frozen=True)
class TransactionOutcome:
    """What happened in one transaction, as the actor saw it."""

    transaction: Transaction
    side: Side
    requester: Endpoint
    responder: Endpoint
    outcome: EventOutcomeIndicator = EventOutcomeIndicator.SUCCESS
    outcome_description: str | None = None
    event_date_time: datetime = field(default_factory=_now)
    patient_ids: tuple[str, ...] = ()
    submission_set_unique_id: str | None = None
    documents: tuple[DocumentReference, ...] = ()
    query_id: str | None = None
    query_request: bytes | None = None  # the AdhocQueryRequest as received / sent
    query_encoding: str = "UTF-8"
    home_community_id: str | None = None
    hl7_message_control_id: str | None = None  # MSH-10
    hl7_trigger_event: str | None = None  # MSH-9.2, e.g. "A01"
    merged_patient_ids: tuple[str, ...] = ()  # MRG-1 of an A40
    human_requestor: str | None = None  # a user behind the requester (XUA), if known
    studies: tuple[StudyReference, ...] = ()  # RAD-69
    removed_object_ids: tuple[str, ...] = ()  # ITI-62: the entryUUIDs to remove


@dataclass(frozen=True)
class ApplicationActivity:
    """DICOM PS3.15 A.5.3.1: an application started or stopped."""

    event_type: CodedValue  # ApplicationActivityType.APPLICATION_START / _STOP
    application_id: str  # e.g. the AE title or service name
    launcher_user_id: str | None = None
    outcome: EventOutcomeIndicator = EventOutcomeIndicator.SUCCESS
    event_date_time: datetime = field(default_factory=_now)


@dataclass(frozen=True)
class SecurityAlert:
    """DICOM PS3.15 A.5.3.11: e.g. a peer failed node authentication (ITI-19)."""

    event_type: CodedValue  # a SecurityAlertType
    reporter: Endpoint  # the node that detected it (this application)
    performer: Endpoint | None = None  # the peer that caused it, if known
    alert_subject: str | None = None  # URI of the object or service concerned
    description: str | None = None
    outcome: EventOutcomeIndicator = EventOutcomeIndicator.MINOR_FAILURE
    event_date_time: datetime = field(default_factory=_now)


class DeferredEvent(Protocol):
    """An exchange recorded as seen and read only when its messages are built, on the
    auditor's writer thread rather than the request path (``atna.observe``)."""

    def outcome(self) -> TransactionOutcome | None: ...


class MessageSource(Protocol):
    """A recorded event that builds its own messages on the auditor's writer thread
    (``atna.dicom_observe``: the DICOM exchanges of the Imaging Document Source)."""

    def messages(self, context: AuditContext) -> list[AuditMessage]: ...


AuditEvent = (
    TransactionOutcome | ApplicationActivity | SecurityAlert | DeferredEvent | MessageSource
)


@dataclass(frozen=True)
class AuditContext:
    """Who reports: ITI TF-2 3.20.7 AuditSourceIdentification, and this process."""

    audit_source_id: str
    audit_enterprise_site_id: str | None = None
    process_id: str = field(default_factory=lambda: str(os.getpid()))
    source_type: CodedValue = AuditSourceTypeCode.APPLICATION_SERVER

    def audit_source(self) -> AuditSourceIdentification:
        return AuditSourceIdentification(
            self.audit_source_id, self.audit_enterprise_site_id, (self.source_type,)
        )


class ObjectKind(StrEnum):
    PATIENT = "patient"
    SUBMISSION_SET = "submission-set"
    DOCUMENTS = "documents"
    QUERY = "query"
    STUDIES = "studies"
    REMOVED_OBJECTS = "removed-objects"


@dataclass(frozen=True)
class TransactionAudit:
    """One row of the audit table: what a side of a transaction records."""

    event_id: CodedValue
    action: EventActionCode
    source_is_requester: bool  # ITI-43: the repository (responder) is the Source
    objects: tuple[ObjectKind, ...]
    source: str  # the section of the Technical Framework that prescribes it


_P, _S, _D, _Q, _ST, _RO = (
    ObjectKind.PATIENT,
    ObjectKind.SUBMISSION_SET,
    ObjectKind.DOCUMENTS,
    ObjectKind.QUERY,
    ObjectKind.STUDIES,
    ObjectKind.REMOVED_OBJECTS,
)
_REQ, _RSP = Side.REQUESTER, Side.RESPONDER
_X, _I = EventID.EXPORT, EventID.IMPORT
_R, _C, _U, _DEL, _E = (
    EventActionCode.READ,
    EventActionCode.CREATE,
    EventActionCode.UPDATE,
    EventActionCode.DELETE,
    EventActionCode.EXECUTE,
)
_PATIENT_RECORD = EventID.PATIENT_RECORD

TRANSACTION_AUDITS: dict[tuple[Transaction, Side], TransactionAudit] = {
    (Transaction.ITI41, _REQ): TransactionAudit(_X, _R, True, (_P, _S), "ITI TF-2 3.41.5.1.1"),
    (Transaction.ITI41, _RSP): TransactionAudit(_I, _C, True, (_P, _S), "ITI TF-2 3.41.5.1.2"),
    (Transaction.RAD68, _REQ): TransactionAudit(
        _X, _R, True, (_P, _S), "RAD TF-3 4.68 (as ITI-41)"
    ),
    (Transaction.RAD68, _RSP): TransactionAudit(
        _I, _C, True, (_P, _S), "RAD TF-3 4.68 (as ITI-41)"
    ),
    (Transaction.ITI42, _REQ): TransactionAudit(_X, _R, True, (_P, _S), "ITI TF-2 3.42.5.1.1"),
    (Transaction.ITI42, _RSP): TransactionAudit(_I, _C, True, (_P, _S), "ITI TF-2 3.42.5.1.2"),
    # ITI TF-2 3.57.4.1.4 (Connectathon rules ITI-57 110106/110107): both sides U
    (Transaction.ITI57, _REQ): TransactionAudit(_X, _U, True, (_P, _S), "ITI TF-2 3.57.4.1.4"),
    (Transaction.ITI57, _RSP): TransactionAudit(_I, _U, True, (_P, _S), "ITI TF-2 3.57.4.1.4"),
    (Transaction.ITI61, _REQ): TransactionAudit(_X, _R, True, (_P, _S), "ITI TF-2 3.61.5.1.1"),
    (Transaction.ITI61, _RSP): TransactionAudit(_I, _C, True, (_P, _S), "ITI TF-2 3.61.5.1.2"),
    # RMD 3.62.5: the Document Administrator deletes (D) metadata of a patient record
    (Transaction.ITI62, _REQ): TransactionAudit(
        _PATIENT_RECORD, _DEL, True, (_P, _RO), "ITI TF-2 3.62.5.1.1 (RMD)"
    ),
    (Transaction.ITI62, _RSP): TransactionAudit(
        _PATIENT_RECORD, _DEL, True, (_P, _RO), "ITI TF-2 3.62.5.1.2 (RMD)"
    ),
    # RMD 3.86.5.1: documents removed from a repository are a Patient Record event
    # (110110) with D, the documents as participant objects - not DICOM Study Deleted
    # (110105), whose objects must be studies by Study Instance UID (PS3.15 A.5.3.8)
    (Transaction.ITI86, _REQ): TransactionAudit(
        _PATIENT_RECORD, _DEL, True, (_P, _D), "ITI TF-2 3.86.5.1.1 (RMD)"
    ),
    (Transaction.ITI86, _RSP): TransactionAudit(
        _PATIENT_RECORD, _DEL, True, (_P, _D), "ITI TF-2 3.86.5.1.2 (RMD)"
    ),
    # RAD TF-3 4.69.4.1.4: the Imaging Document Source exports the instances (R), the
    # Consumer imports them (C); the source of the data is the responder, as in ITI-43
    (Transaction.RAD69, _RSP): TransactionAudit(_X, _R, False, (_P, _ST), "RAD TF-3 4.69.4.1.4"),
    (Transaction.RAD69, _REQ): TransactionAudit(_I, _C, False, (_P, _ST), "RAD TF-3 4.69.4.1.4"),
    (Transaction.ITI18, _REQ): TransactionAudit(
        EventID.QUERY, _E, True, (_P, _Q), "ITI TF-2 3.18.5.1.1"
    ),
    (Transaction.ITI18, _RSP): TransactionAudit(
        EventID.QUERY, _E, True, (_P, _Q), "ITI TF-2 3.18.5.1.2"
    ),
    (Transaction.ITI43, _RSP): TransactionAudit(_X, _R, False, (_P, _D), "ITI TF-2 3.43.6.1.2"),
    (Transaction.ITI43, _REQ): TransactionAudit(_I, _C, False, (_P, _D), "ITI TF-2 3.43.6.1.1"),
    # ITI-8: the action follows the HL7 trigger event (HL7_TRIGGER_ACTION)
    (Transaction.ITI8, _REQ): TransactionAudit(
        EventID.PATIENT_RECORD, _C, True, (_P,), "ITI TF-2 3.8.5.1.1"
    ),
    (Transaction.ITI8, _RSP): TransactionAudit(
        EventID.PATIENT_RECORD, _C, True, (_P,), "ITI TF-2 3.8.5.1.2"
    ),
    # ITI-44: the action follows the interaction, as ITI-8's follows the trigger event
    (Transaction.ITI44, _REQ): TransactionAudit(
        EventID.PATIENT_RECORD, _C, True, (_P,), "ITI TF-2 3.44.5.1.1"
    ),
    (Transaction.ITI44, _RSP): TransactionAudit(
        EventID.PATIENT_RECORD, _C, True, (_P,), "ITI TF-2 3.44.5.1.2"
    ),
}

# ITI TF-2 3.8.5.1, 3.8.5.2: C for admit/register/pre-admit, U for update; a merge (A40)
# updates the surviving patient and deletes the subsumed one (MRG-1).
HL7_TRIGGER_ACTION: dict[str, EventActionCode] = {
    "A01": EventActionCode.CREATE,
    "A04": EventActionCode.CREATE,
    "A05": EventActionCode.CREATE,
    "A08": EventActionCode.UPDATE,
    "A40": EventActionCode.UPDATE,
    # ITI TF-2 3.44.5.1: Patient Record Added (C), Revised (U), Patients Merged (U for
    # the surviving patient, D for the subsumed one, in separate records)
    "PRPA_IN201301UV02": EventActionCode.CREATE,
    "PRPA_IN201302UV02": EventActionCode.UPDATE,
    "PRPA_IN201304UV02": EventActionCode.UPDATE,
}
MERGED_PATIENT_ACTION = EventActionCode.DELETE
# the feed message's id on the patient object: MSH-10 (ITI TF-2 3.8.5.1), the HL7 v3
# message id as "II" (ITI TF-2 3.44.5.1)
FEED_MESSAGE_ID_DETAIL: dict[Transaction, DetailType] = {
    Transaction.ITI8: DetailType.MSH_10,
    Transaction.ITI44: DetailType.HL7V3_MESSAGE_ID,
}


# --- participants ----------------------------------------------------------------------
@lru_cache(maxsize=1024)
def _access_point_of(
    network_access_point: str | None, user_id: str
) -> tuple[str | None, NetworkAccessPointTypeCode | None]:
    # the same few peers and this node's own URLs come back with every event: the URL
    # split and the address classification are made once per (address, user id)
    point = network_access_point or urlsplit(user_id).hostname
    if not point:
        return None, None
    try:
        ipaddress.ip_address(point)
    except ValueError:
        return point, NetworkAccessPointTypeCode.MACHINE_NAME
    return point, NetworkAccessPointTypeCode.IP_ADDRESS


def _access_point(endpoint: Endpoint) -> tuple[str | None, NetworkAccessPointTypeCode | None]:
    return _access_point_of(endpoint.network_access_point, endpoint.user_id)


def _active(
    endpoint: Endpoint,
    role: CodedValue,
    *,
    is_requestor: bool,
    local_process_id: str | None,
) -> ActiveParticipant:
    point, point_type = _access_point(endpoint)
    return ActiveParticipant(
        user_id=endpoint.user_id,
        user_is_requestor=is_requestor,
        role_id_codes=(role,),
        alternative_user_id=endpoint.alternative_user_id or local_process_id,
        network_access_point_id=point,
        network_access_point_type_code=point_type,
    )


def _participants(
    outcome: TransactionOutcome, audit: TransactionAudit, context: AuditContext
) -> tuple[ActiveParticipant, ...]:
    requester_pid = context.process_id if outcome.side is Side.REQUESTER else None
    responder_pid = context.process_id if outcome.side is Side.RESPONDER else None
    requester = (outcome.requester, requester_pid, True)
    responder = (outcome.responder, responder_pid, False)
    source, destination = (
        (requester, responder) if audit.source_is_requester else (responder, requester)
    )
    participants = [
        _active(source[0], RoleIDCode.SOURCE, is_requestor=source[2], local_process_id=source[1]),
        _active(
            destination[0],
            RoleIDCode.DESTINATION,
            is_requestor=destination[2],
            local_process_id=destination[1],
        ),
    ]
    if outcome.human_requestor:
        # ITI TF-2 3.20.7: a human requestor, when known, as its own participant
        participants.append(ActiveParticipant(outcome.human_requestor, True))
    return tuple(participants)


# --- participant objects ---------------------------------------------------------------
def _patient(patient_id: str, outcome: TransactionOutcome) -> ParticipantObjectIdentification:
    details: tuple[ParticipantObjectDetail, ...] = ()
    detail_type = FEED_MESSAGE_ID_DETAIL.get(outcome.transaction, DetailType.MSH_10)
    if outcome.hl7_message_control_id is not None:
        # ITI TF-2 3.8.5.1 / 3.44.5.1: the id of the feed message
        details = (ParticipantObjectDetail.text(detail_type, outcome.hl7_message_control_id),)
    return ParticipantObjectIdentification(
        participant_object_id=patient_id,
        id_type_code=ParticipantObjectIDTypeCode.PATIENT_NUMBER,
        # DICOM PS3.15 A.5.1 wants a name or a query; the patient's name is not ours to
        # spread, so the id stands in for it
        name=patient_id,
        type_code=ParticipantObjectTypeCode.PERSON,
        type_code_role=ParticipantObjectTypeCodeRole.PATIENT,
        details=details,
    )


def _submission_set(outcome: TransactionOutcome) -> tuple[ParticipantObjectIdentification, ...]:
    if outcome.submission_set_unique_id is None:
        return ()
    return (
        ParticipantObjectIdentification(
            participant_object_id=outcome.submission_set_unique_id,
            id_type_code=ParticipantObjectIDTypeCode.SUBMISSION_SET,
            name=outcome.submission_set_unique_id,
            type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
            type_code_role=ParticipantObjectTypeCodeRole.JOB,
        ),
    )


def _document(document: DocumentReference) -> ParticipantObjectIdentification:
    # ITI TF-2 3.43.6.1: Repository Unique Id and homeCommunityID details
    details = tuple(
        ParticipantObjectDetail.text(kind, value)
        for kind, value in (
            (DetailType.REPOSITORY_UNIQUE_ID, document.repository_unique_id),
            (DetailType.HOME_COMMUNITY_ID, document.home_community_id),
        )
        if value
    )
    return ParticipantObjectIdentification(
        participant_object_id=document.unique_id,
        id_type_code=ParticipantObjectIDTypeCode.REPORT_NUMBER,
        name=document.unique_id,
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
        details=details,
    )


def _query(outcome: TransactionOutcome) -> tuple[ParticipantObjectIdentification, ...]:
    if outcome.query_id is None:
        return ()
    # ITI TF-2 3.18.5.1: the stored query id, the AdhocQueryRequest in base64, its
    # encoding, and the homeCommunityId when the request named one
    details = [ParticipantObjectDetail.text(DetailType.QUERY_ENCODING, outcome.query_encoding)]
    if outcome.home_community_id:
        details.append(
            ParticipantObjectDetail.text(
                DetailType.XCA_HOME_COMMUNITY_ID, outcome.home_community_id
            )
        )
    return (
        ParticipantObjectIdentification(
            participant_object_id=outcome.query_id,
            id_type_code=ParticipantObjectIDTypeCode.REGISTRY_STORED_QUERY,
            query=outcome.query_request or b"",
            type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
            type_code_role=ParticipantObjectTypeCodeRole.QUERY,
            details=tuple(details),
        ),
    )


def _study(study: StudyReference) -> ParticipantObjectIdentification:
    # RAD TF-3 4.69.4.1.4 / DICOM PS3.15 A.5.3.6: a study by its Study Instance UID, the
    # instances in its description (SOPClass/@UID is optional and not known here)
    descriptions: tuple[ParticipantObjectDescription, ...] = ()
    if study.instance_uids:
        sop = SOPClass(None, len(study.instance_uids), study.instance_uids)
        descriptions = (ParticipantObjectDescription(sop_classes=(sop,)),)
    return ParticipantObjectIdentification(
        participant_object_id=study.study_instance_uid,
        id_type_code=ParticipantObjectIDTypeCode.STUDY_INSTANCE_UID,
        name=study.study_instance_uid,
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
        descriptions=descriptions,
    )


def _removed_object(entry_uuid: str) -> ParticipantObjectIdentification:
    # ITI TF-2 3.62.5.1 (RMD): each object to remove, by its entryUUID
    return ParticipantObjectIdentification(
        participant_object_id=entry_uuid,
        id_type_code=ParticipantObjectIDTypeCode.REPORT_NUMBER,
        name=entry_uuid,
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
    )


# --- one message per patient -----------------------------------------------------------
@dataclass(frozen=True)
class _Slice:
    """The part of an outcome one message covers."""

    patient_id: str | None
    action: EventActionCode
    documents: tuple[DocumentReference, ...]


def _slices(outcome: TransactionOutcome, audit: TransactionAudit) -> list[_Slice]:
    action = audit.action
    if outcome.transaction in FEED_MESSAGE_ID_DETAIL and outcome.hl7_trigger_event:
        action = HL7_TRIGGER_ACTION.get(outcome.hl7_trigger_event, action)
    if ObjectKind.DOCUMENTS in audit.objects and any(d.patient_id for d in outcome.documents):
        by_patient: dict[str | None, list[DocumentReference]] = {}
        for document in outcome.documents:
            by_patient.setdefault(document.patient_id, []).append(document)
        return [_Slice(p, action, tuple(docs)) for p, docs in by_patient.items()]
    slices = [_Slice(p, action, outcome.documents) for p in dict.fromkeys(outcome.patient_ids)]
    slices += [_Slice(p, MERGED_PATIENT_ACTION, ()) for p in outcome.merged_patient_ids]
    return slices or [_Slice(None, action, outcome.documents)]


_OBJECT_BUILDERS: dict[
    ObjectKind,
    Callable[[TransactionOutcome, _Slice], Iterable[ParticipantObjectIdentification]],
] = {
    ObjectKind.PATIENT: lambda o, s: () if s.patient_id is None else (_patient(s.patient_id, o),),
    ObjectKind.SUBMISSION_SET: lambda o, s: _submission_set(o),
    ObjectKind.DOCUMENTS: lambda o, s: tuple(_document(d) for d in s.documents),
    ObjectKind.QUERY: lambda o, s: _query(o),
    ObjectKind.STUDIES: lambda o, s: tuple(_study(study) for study in o.studies),
    ObjectKind.REMOVED_OBJECTS: lambda o, s: tuple(
        _removed_object(i) for i in o.removed_object_ids
    ),
}


def transaction_messages(outcome: TransactionOutcome, context: AuditContext) -> list[AuditMessage]:
    """The audit messages ``outcome``'s side prescribes, one per patient."""
    audit = TRANSACTION_AUDITS[(outcome.transaction, outcome.side)]
    participants = _participants(outcome, audit, context)
    messages = []
    for piece in _slices(outcome, audit):
        event = EventIdentification(
            event_id=audit.event_id,
            event_date_time=outcome.event_date_time,
            event_outcome_indicator=outcome.outcome,
            event_action_code=piece.action,
            event_type_codes=(TRANSACTION_EVENT_TYPE[outcome.transaction],),
            event_outcome_description=outcome.outcome_description,
        )
        objects = tuple(
            obj for kind in audit.objects for obj in _OBJECT_BUILDERS[kind](outcome, piece)
        )
        messages.append(AuditMessage(event, participants, context.audit_source(), objects))
    return messages


def application_activity_messages(
    activity: ApplicationActivity, context: AuditContext
) -> list[AuditMessage]:
    """DICOM PS3.15 A.5.3.1 Application Activity (ITI TF-2 3.20.7.x)."""
    participants = [
        ActiveParticipant(
            user_id=activity.application_id,
            user_is_requestor=False,
            role_id_codes=(RoleIDCode.APPLICATION,),
            alternative_user_id=context.process_id,
        )
    ]
    if activity.launcher_user_id:
        participants.append(
            ActiveParticipant(activity.launcher_user_id, True, (RoleIDCode.APPLICATION_LAUNCHER,))
        )
    event = EventIdentification(
        event_id=EventID.APPLICATION_ACTIVITY,
        event_date_time=activity.event_date_time,
        event_outcome_indicator=activity.outcome,
        event_action_code=EventActionCode.EXECUTE,
        event_type_codes=(activity.event_type,),
    )
    return [AuditMessage(event, tuple(participants), context.audit_source())]


def security_alert_messages(alert: SecurityAlert, context: AuditContext) -> list[AuditMessage]:
    """DICOM PS3.15 A.5.3.11 Security Alert: reporter, performer, the alert subject."""
    participants = [
        _active(
            alert.reporter,
            RoleIDCode.APPLICATION,
            is_requestor=False,
            local_process_id=context.process_id,
        )
    ]
    if alert.performer is not None:
        point, point_type = _access_point(alert.performer)
        participants.append(
            ActiveParticipant(
                user_id=alert.performer.user_id,
                user_is_requestor=True,
                alternative_user_id=alert.performer.alternative_user_id,
                network_access_point_id=point,
                network_access_point_type_code=point_type,
            )
        )
    objects: tuple[ParticipantObjectIdentification, ...] = ()
    if alert.alert_subject:
        details = (
            (ParticipantObjectDetail.text(DetailType.ALERT_DESCRIPTION, alert.description),)
            if alert.description
            else ()
        )
        objects = (
            ParticipantObjectIdentification(
                participant_object_id=alert.alert_subject,
                id_type_code=ParticipantObjectIDTypeCode.URI,
                name=alert.alert_subject,
                type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
                type_code_role=ParticipantObjectTypeCodeRole.SECURITY_RESOURCE,
                details=details,
            ),
        )
    event = EventIdentification(
        event_id=EventID.SECURITY_ALERT,
        event_date_time=alert.event_date_time,
        event_outcome_indicator=alert.outcome,
        event_action_code=EventActionCode.EXECUTE,
        event_type_codes=(alert.event_type,),
        event_outcome_description=alert.description,
    )
    return [AuditMessage(event, tuple(participants), context.audit_source(), objects)]


_BUILDERS: dict[type, Callable[..., list[AuditMessage]]] = {
    TransactionOutcome: transaction_messages,
    ApplicationActivity: application_activity_messages,
    SecurityAlert: security_alert_messages,
}


def audit_messages(event: AuditEvent, context: AuditContext) -> list[AuditMessage]:
    """The audit messages for any recorded event."""
    builder = _BUILDERS.get(type(event))
    if builder is not None:
        return builder(event, context)
    if hasattr(event, "messages"):  # a MessageSource
        return event.messages(context)
    resolved = event.outcome()  # a DeferredEvent: read it now
    return [] if resolved is None else transaction_messages(resolved, context)


__all__ = [
    "FEED_MESSAGE_ID_DETAIL",
    "HL7_TRIGGER_ACTION",
    "MERGED_PATIENT_ACTION",
    "TRANSACTION_AUDITS",
    "ApplicationActivity",
    "ApplicationActivityType",
    "AuditContext",
    "AuditEvent",
    "DeferredEvent",
    "DocumentReference",
    "Endpoint",
    "MessageSource",
    "ObjectKind",
    "SecurityAlert",
    "Side",
    "StudyReference",
    "TransactionAudit",
    "TransactionOutcome",
    "application_activity_messages",
    "audit_messages",
    "security_alert_messages",
    "transaction_messages",
]
