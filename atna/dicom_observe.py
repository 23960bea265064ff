"""Auditing the DICOM routes of the Imaging Document Source by observation.

The DIMSE server and the DICOMweb / STOW-RS routes report each finished operation
as an ``imaging_source.exchange.DicomExchange`` through their ``on_event`` hook;
:class:`DicomAuditObserver` records it and :func:`dicom_exchange_messages` maps it,
on the auditor's writer thread, to the DICOM PS3.15 A.5.3 message the table
:data:`DICOM_AUDITS` names for its operation:

- C-STORE and STOW-RS received: DICOM Instances Transferred (110104), C - this node
  is the Destination, the sender the Source (A.5.3.5; RAD TF-2 "Modality Images
  Stored" and RAD TF-3 WADO-RS/STOW-RS audits).
- C-MOVE, C-GET, WADO-RS and WADO-URI retrieve: DICOM Instances Transferred, R -
  this node is the Source; the Destination is the move destination (C-MOVE) or the
  requester; a C-MOVE requester is a third participant (A.5.3.5 "other
  participants ... that requested the transfer").  IHE RAD TF-2 4.16 and 4.55 /
  RAD-107 audit a retrieve as DICOM Instances Transferred, as dcm4chee does.
- C-FIND: Query (110112), E - the requester is the Source, the SOP Class UID is the
  participant object with the Identifier as ParticipantObjectQuery and its
  TransferSyntax (A.5.3.10).
- QIDO-RS search (RAD-129 "QIDO-RS Query"): Query (110112), E, as C-FIND - A.5.3.10
  Note 2 admits non-DICOM queries; the object is the Study Root C-FIND SOP Class
  (PS3.18 10.6 maps a search to it) with the request's path and query string as
  ParticipantObjectQuery.

Over TLS the peer's certificate subject is the requester's AlternativeUserID (ITI-19):
the DIMSE server reads it from the association (``DicomExchange.peer_subject``), the
HTTP routes from the connection being served (``peer``).

Each message names one patient (ITI TF-2 3.20.7): instances of several patients give
one message each, with that patient's studies (Study Instance UID, and per SOP Class
the number of instances, A.5.3.5).  Mapping never raises into the operation.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from atna.auditor import on_event_loop, wait_durable
from atna.codes import (
    CodedValue,
    EventActionCode,
    EventID,
    EventOutcomeIndicator,
    NetworkAccessPointTypeCode,
    ParticipantObjectIDTypeCode,
    ParticipantObjectTypeCode,
    ParticipantObjectTypeCodeRole,
    RoleIDCode,
)
from atna.events import AuditContext, AuditEvent
from atna.message import (
    ActiveParticipant,
    AuditMessage,
    EventIdentification,
    ParticipantObjectDescription,
    ParticipantObjectDetail,
    ParticipantObjectIdentification,
    SOPClass,
)
from imaging_source.exchange import DicomExchange, DicomOperation, ExchangeStatus, InstanceTouched

log = logging.getLogger(__name__)

Record = Callable[[AuditEvent], object]  # Auditor.record: a ticket
PeerSubject = Callable[[], str | None]

# DICOM PS3.15 A.5.1 EventOutcomeIndicator: part done 4 (minor), refused 8 (serious)
EXCHANGE_OUTCOME: dict[ExchangeStatus, EventOutcomeIndicator] = {
    ExchangeStatus.SUCCESS: EventOutcomeIndicator.SUCCESS,
    ExchangeStatus.PARTIAL: EventOutcomeIndicator.MINOR_FAILURE,
    ExchangeStatus.FAILURE: EventOutcomeIndicator.SERIOUS_FAILURE,
}
TRANSFER_SYNTAX_DETAIL = "TransferSyntax"  # DICOM PS3.15 A.5.3.10


class Flow:
    """Which way the instances went, relative to this node."""

    RECEIVED = "received"  # the peer is the Source, this node the Destination
    SENT = "sent"  # this node is the Source
    QUERIED = "queried"  # the peer asked, this node answered


@dataclass(frozen=True)
class DicomAudit:
    """One row: the event, the action, the flow, the section that prescribes it."""

    event_id: CodedValue
    action: EventActionCode
    flow: str
    source: str


_TRANSFERRED = EventID.DICOM_INSTANCES_TRANSFERRED
DICOM_AUDITS: dict[DicomOperation, DicomAudit] = {
    DicomOperation.C_STORE: DicomAudit(
        _TRANSFERRED, EventActionCode.CREATE, Flow.RECEIVED, "DICOM PS3.15 A.5.3.5"
    ),
    DicomOperation.STOW_RS: DicomAudit(
        _TRANSFERRED, EventActionCode.CREATE, Flow.RECEIVED, "DICOM PS3.15 A.5.3.5"
    ),
    DicomOperation.C_MOVE: DicomAudit(
        _TRANSFERRED, EventActionCode.READ, Flow.SENT, "DICOM PS3.15 A.5.3.5; RAD TF-2 4.16"
    ),
    DicomOperation.C_GET: DicomAudit(
        _TRANSFERRED, EventActionCode.READ, Flow.SENT, "DICOM PS3.15 A.5.3.5"
    ),
    DicomOperation.WADO_RS: DicomAudit(
        _TRANSFERRED, EventActionCode.READ, Flow.SENT, "DICOM PS3.15 A.5.3.5; RAD-107"
    ),
    DicomOperation.WADO_URI: DicomAudit(
        _TRANSFERRED, EventActionCode.READ, Flow.SENT, "DICOM PS3.15 A.5.3.5; RAD TF-3 4.55"
    ),
    DicomOperation.C_FIND: DicomAudit(
        EventID.QUERY, EventActionCode.EXECUTE, Flow.QUERIED, "DICOM PS3.15 A.5.3.10"
    ),
    DicomOperation.QIDO_RS: DicomAudit(
        EventID.QUERY, EventActionCode.EXECUTE, Flow.QUERIED, "DICOM PS3.15 A.5.3.10; RAD-129"
    ),
}


# --- participants ----------------------------------------------------------------------
def _participant(
    user_id: str,
    *,
    requestor: bool,
    role: CodedValue | None,
    address: str | None = None,
    alternative: str | None = None,
) -> ActiveParticipant:
    point_type = None
    if address:
        try:
            ipaddress.ip_address(address)
            point_type = NetworkAccessPointTypeCode.IP_ADDRESS
        except ValueError:
            point_type = NetworkAccessPointTypeCode.MACHINE_NAME
    return ActiveParticipant(
        user_id=user_id or "unknown",
        user_is_requestor=requestor,
        role_id_codes=(role,) if role is not None else (),
        alternative_user_id=alternative,
        network_access_point_id=address or None,
        network_access_point_type_code=point_type,
    )


def _participants(
    exchange: DicomExchange, flow: str, context: AuditContext, peer_subject: str | None
) -> tuple[ActiveParticipant, ...]:
    peer_role = RoleIDCode.SOURCE if flow in (Flow.RECEIVED, Flow.QUERIED) else None
    local_role = RoleIDCode.DESTINATION if peer_role is not None else RoleIDCode.SOURCE
    local = _participant(
        exchange.local, requestor=False, role=local_role, alternative=context.process_id
    )
    if exchange.operation is DicomOperation.C_MOVE:
        # A.5.3.5: the move destination receives; the C-MOVE requester asked for it
        destination = _participant(
            exchange.move_destination or "unknown", requestor=False, role=RoleIDCode.DESTINATION
        )
        requester = _participant(
            exchange.peer,
            requestor=True,
            role=None,
            address=exchange.peer_address,
            alternative=peer_subject,
        )
        return (local, destination, requester)
    peer = _participant(
        exchange.peer,
        requestor=True,
        role=peer_role or RoleIDCode.DESTINATION,
        address=exchange.peer_address,
        alternative=peer_subject,  # ITI-19: the authenticated node
    )
    return (peer, local) if peer_role is not None else (local, peer)


# --- participant objects ---------------------------------------------------------------
def _patient(patient_id: str) -> ParticipantObjectIdentification:
    return ParticipantObjectIdentification(
        participant_object_id=patient_id,
        id_type_code=ParticipantObjectIDTypeCode.PATIENT_NUMBER,
        name=patient_id,  # A.5.1 wants a name or a query; the id stands in for the name
        type_code=ParticipantObjectTypeCode.PERSON,
        type_code_role=ParticipantObjectTypeCodeRole.PATIENT,
    )


def _study(uid: str, instances: Iterable[InstanceTouched]) -> ParticipantObjectIdentification:
    # A.5.3.5: the study, and per SOP Class the number of instances (and their UIDs)
    by_class: dict[str, list[str]] = {}
    for instance in instances:
        by_class.setdefault(instance.sop_class_uid, []).append(instance.sop_instance_uid)
    descriptions: tuple[ParticipantObjectDescription, ...] = ()
    if by_class:
        classes = tuple(
            SOPClass(sop_class or None, len(uids), tuple(uids))
            for sop_class, uids in by_class.items()
        )
        descriptions = (ParticipantObjectDescription(sop_classes=classes),)
    return ParticipantObjectIdentification(
        participant_object_id=uid,
        id_type_code=ParticipantObjectIDTypeCode.STUDY_INSTANCE_UID,
        name=uid,
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
        descriptions=descriptions,
    )


def _query(exchange: DicomExchange) -> ParticipantObjectIdentification:
    # A.5.3.10: the SOP Class queried, the Identifier as sent, its transfer syntax
    details: tuple[ParticipantObjectDetail, ...] = ()
    if exchange.query_transfer_syntax:
        details = (
            ParticipantObjectDetail.text(TRANSFER_SYNTAX_DETAIL, exchange.query_transfer_syntax),
        )
    return ParticipantObjectIdentification(
        participant_object_id=exchange.query_sop_class_uid or "unknown",
        id_type_code=ParticipantObjectIDTypeCode.SOP_CLASS_UID,
        query=exchange.query or b"",
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
        details=details,
    )


def _is_query(exchange: DicomExchange) -> bool:
    return DICOM_AUDITS[exchange.operation].flow == Flow.QUERIED


def _per_patient(exchange: DicomExchange) -> list[tuple[str | None, list[InstanceTouched]]]:
    if _is_query(exchange):
        return [(exchange.patient_id, [])]
    by_patient: dict[str | None, list[InstanceTouched]] = {}
    for instance in exchange.instances:
        by_patient.setdefault(instance.patient_id or None, []).append(instance)
    return list(by_patient.items()) or [(None, [])]


def _objects(
    exchange: DicomExchange, patient_id: str | None, instances: list[InstanceTouched]
) -> tuple[ParticipantObjectIdentification, ...]:
    objects = [_patient(patient_id)] if patient_id else []
    if _is_query(exchange):
        objects += [_study(uid, ()) for uid in exchange.study_instance_uids]
        objects.append(_query(exchange))
        return tuple(objects)
    by_study: dict[str, list[InstanceTouched]] = {}
    for instance in instances:
        by_study.setdefault(instance.study_instance_uid, []).append(instance)
    objects += [_study(uid, members) for uid, members in by_study.items()]
    return tuple(objects)


def dicom_exchange_messages(
    exchange: DicomExchange, context: AuditContext, peer_subject: str | None = None
) -> list[AuditMessage]:
    """The audit messages of one DICOM exchange, one per patient."""
    audit = DICOM_AUDITS[exchange.operation]
    subject = peer_subject or exchange.peer_subject
    participants = _participants(exchange, audit.flow, context, subject)
    event = EventIdentification(
        event_id=audit.event_id,
        event_date_time=exchange.event_date_time,
        event_outcome_indicator=EXCHANGE_OUTCOME[exchange.outcome],
        event_action_code=audit.action,
        event_outcome_description=exchange.description,
    )
    return [
        AuditMessage(event, participants, context.audit_source(), _objects(exchange, p, found))
        for p, found in _per_patient(exchange)
    ]


@dataclass(frozen=True)
class ObservedDicomExchange:
    """A DICOM exchange as recorded; its messages are built on the writer thread."""

    exchange: DicomExchange
    peer_subject: str | None = None

    def messages(self, context: AuditContext) -> list[AuditMessage]:
        return dicom_exchange_messages(self.exchange, context, self.peer_subject)


class DicomAuditObserver:
    """The ``on_event`` hook of ``DimseServer``, ``DicomWeb`` and ``stow_endpoint``."""

    def __init__(self, record: Record, *, peer: PeerSubject | None = None) -> None:
        self._record = record
        self._peer = peer

    def __call__(self, exchange: DicomExchange) -> None:
        try:
            subject = exchange.peer_subject
            if subject is None and self._peer is not None:
                subject = self._peer()
            ticket = self._record(ObservedDicomExchange(exchange, subject))
        except Exception:
            log.exception("audit record of %s not made", exchange.operation)
            return
        if not on_event_loop():
            # a DIMSE handler thread: its response waits for a durable record (a
            # DICOMweb route records once its answer has been streamed: nothing to hold)
            wait_durable(ticket)


__all__ = [
    "DICOM_AUDITS",
    "EXCHANGE_OUTCOME",
    "TRANSFER_SYNTAX_DETAIL",
    "DicomAudit",
    "DicomAuditObserver",
    "Flow",
    "ObservedDicomExchange",
    "dicom_exchange_messages",
]
