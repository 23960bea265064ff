"""ITI-44 Patient Identity Feed HL7 v3 as the Document Registry receives it.

ITI TF-2 3.44.4.1.3: the Document Registry keeps only the patient ids of the XDS
Affinity Domain's assigning authority (``id/@root`` equal to it, the id in
``@extension``); other ids in the message are ignored.  The ids are stored as CX
``ID^^^&OID&ISO``, the form ITI-8 stores and ITI-42 submits (ITI TF-3 4.2.3.2.16).

- Patient Record Added (PRPA_IN201301UV02): the patient becomes known.
- Patient Record Revised (PRPA_IN201302UV02): its demographics are replaced; a patient
  not yet known becomes known, since the feed is the source of the domain's ids.
- Patients Merged (PRPA_IN201304UV02, ITI TF-2 3.44.4.2.4): the id in
  ``replacementOf/priorRegistration/.../priorRegisteredRole/id`` is subsumed by the
  surviving id in ``patient/id``; ``registry.patients.merge_patients`` re-points the
  stored metadata in the same transaction, so queries see the merge as soon as it is
  acknowledged.

``Hl7v3Feed.handle`` takes the parsed message element and returns the
MCCI_IN000002UV01 acknowledgement; it never raises.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree
from sqlalchemy.orm import Session

from registry import patients
from registry.hl7v3 import (
    AckCode,
    Acknowledgement,
    AcknowledgementDetail,
    ErrorCondition,
    FeedMessage,
    Hl7v3MessageError,
    InstanceIdentifier,
    Interaction,
    build_acknowledgement,
    message_id_of,
    parse_feed_message,
    sender_of,
)
from registry.service import DocumentRegistry
from registry.uow import transact

log = logging.getLogger(__name__)

UNIVERSAL_ID_TYPE_ISO = "ISO"
# a CX id component cannot hold the HL7 v2 delimiters (ITI TF-3 4.2.3.2.16)
_CX_DELIMITERS = frozenset("|^~\\&")
_PRIOR_ID_LOCATION = (
    "controlActProcess/subject/registrationEvent/replacementOf/priorRegistration"
    "/subject1/priorRegisteredRole/id"
)
_PATIENT_ID_LOCATION = "controlActProcess/subject/registrationEvent/subject1/patient/id"


@dataclass(frozen=True, slots=True)
class Hl7v3FeedConfig:
    """``assigning_authority``: the OID of the affinity domain's patient id domain;
    ``device_id``: the registry's device id, the sender of its acknowledgements."""

    assigning_authority: str
    device_id: str


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What one message did, for the audit trail (ITI TF-2 3.44.5)."""

    ack_code: AckCode
    interaction: str = ""
    message_id: InstanceIdentifier | None = None
    sender: str | None = None
    patient_ids: tuple[str, ...] = ()
    details: tuple[AcknowledgementDetail, ...] = ()


@dataclass(frozen=True, slots=True)
class _Result:
    code: AckCode
    patient_ids: tuple[str, ...] = ()
    details: tuple[AcknowledgementDetail, ...] = ()


def _error(condition: ErrorCondition, text: str, location: str) -> _Result:
    return _Result(AckCode.ERROR, details=(AcknowledgementDetail(condition, text, location),))


def _nothing_stored(what: str, authority: str) -> _Result:
    text = f"no {what} of assigning authority {authority}; nothing stored"
    return _Result(AckCode.ACCEPT, details=(AcknowledgementDetail(None, text, type_code="I"),))


class _InvalidIdentifier(Exception):
    pass


def affinity_ids(ids: tuple[InstanceIdentifier, ...], authority: str) -> list[str]:
    """ITI TF-2 3.44.4.1.3: the ids of the affinity domain, as CX strings."""
    found: list[str] = []
    for ident in ids:
        if ident.root != authority:
            continue
        value = ident.extension or ""
        if not value or _CX_DELIMITERS & set(value) or value != value.strip():
            raise _InvalidIdentifier(f"unusable patient id {value!r} of {authority}")
        found.append(f"{value}^^^&{authority}&{UNIVERSAL_ID_TYPE_ISO}")
    return found


# --- the interactions (ITI TF-2 3.44.4.1.3, 3.44.4.2.4) ---------------------------------


def _added(message: FeedMessage, session: Session, authority: str) -> _Result:
    ids = affinity_ids(message.patient.ids, authority)
    if not ids:
        return _nothing_stored("patient id", authority)
    for patient_id in ids:
        patients.register_patient(session, patient_id, dict(message.patient.demographics))
    return _Result(AckCode.ACCEPT, tuple(ids))


def _revised(message: FeedMessage, session: Session, authority: str) -> _Result:
    ids = affinity_ids(message.patient.ids, authority)
    if not ids:
        return _nothing_stored("patient id", authority)
    for patient_id in ids:
        demographics = dict(message.patient.demographics)
        if not patients.update_patient(session, patient_id, demographics):
            patients.register_patient(session, patient_id, demographics)
    return _Result(AckCode.ACCEPT, tuple(ids))


def _merged(message: FeedMessage, session: Session, authority: str) -> _Result:
    surviving = affinity_ids(message.patient.ids, authority)
    subsumed = affinity_ids(message.prior_ids, authority)
    if not surviving or not subsumed:
        return _nothing_stored("surviving and subsumed patient id", authority)
    if not patients.is_known(session, surviving[0]):
        text = f"surviving patient id {surviving[0]} is not known"
        return _error(ErrorCondition.UNKNOWN_KEY_IDENTIFIER, text, _PATIENT_ID_LOCATION)
    merged = [surviving[0]]
    for prior in subsumed:
        try:
            patients.merge_patients(session, surviving[0], prior)
        except patients.PatientMergeError as exc:
            return _error(ErrorCondition.DUPLICATE_KEY_IDENTIFIER, exc.reason, _PRIOR_ID_LOCATION)
        merged.append(prior)
    return _Result(AckCode.ACCEPT, tuple(merged))


Handler = Callable[[FeedMessage, Session, str], _Result]

# interaction -> what the Document Registry does
INTERACTIONS: dict[Interaction, Handler] = {
    Interaction.PATIENT_ADDED: _added,
    Interaction.PATIENT_REVISED: _revised,
    Interaction.PATIENTS_MERGED: _merged,
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def _new_message_id() -> InstanceIdentifier:
    return InstanceIdentifier(str(uuid.uuid4()))


@dataclass(frozen=True, slots=True)
class Hl7v3Feed:
    """The Document Registry side of ITI-44."""

    registry: DocumentRegistry
    config: Hl7v3FeedConfig
    clock: Callable[[], str] = _now
    message_ids: Callable[[], InstanceIdentifier] = _new_message_id
    on_outcome: Callable[[FeedOutcome], None] | None = None

    def handle(self, root: etree._Element) -> etree._Element:
        """Process one message; return its acknowledgement.  Never raises."""
        try:
            message = parse_feed_message(root)
        except Hl7v3MessageError as exc:
            detail = AcknowledgementDetail(exc.condition, exc.text, exc.location)
            result = _Result(exc.ack, details=(detail,))
            return self._acknowledge(root, None, result)
        return self._acknowledge(root, message, self._process(message))

    def _process(self, message: FeedMessage) -> _Result:
        handler = INTERACTIONS[message.interaction]
        authority = self.config.assigning_authority

        def work(session: Session) -> tuple[_Result, bool]:
            result = handler(message, session, authority)
            return result, result.code == AckCode.ACCEPT

        try:
            return transact(
                self.registry.write_sessions,
                work,
                attempts=self.registry.config.retry_attempts,
            )
        except _InvalidIdentifier as exc:
            return _error(ErrorCondition.DATA_TYPE_ERROR, str(exc), _PATIENT_ID_LOCATION)
        except Exception:
            # a failure unrelated to the message content: the message is rejected
            log.exception("ITI-44 %s %s failed", message.interaction, message.message_id)
            return _Result(
                AckCode.REJECT,
                details=(
                    AcknowledgementDetail(
                        ErrorCondition.APPLICATION_INTERNAL_ERROR, "internal error"
                    ),
                ),
            )

    def _acknowledge(
        self, root: etree._Element, message: FeedMessage | None, result: _Result
    ) -> etree._Element:
        target = message.message_id if message else message_id_of(root)
        sender = message.sender if message else sender_of(root)
        ack = build_acknowledgement(
            Acknowledgement(result.code, target, result.details),
            message_id=self.message_ids(),
            creation_time=self.clock(),
            sender=self.config.device_id,
            receiver=sender,
            processing_code=message.processing_code if message else "P",
        )
        self._report(root, message, result, target, sender)
        return ack

    def _report(
        self,
        root: etree._Element,
        message: FeedMessage | None,
        result: _Result,
        target: InstanceIdentifier | None,
        sender: str | None,
    ) -> None:
        if self.on_outcome is None:
            return
        outcome = FeedOutcome(
            ack_code=result.code,
            interaction=etree.QName(root).localname,
            message_id=target,
            sender=sender,
            patient_ids=result.patient_ids,
            details=result.details,
        )
        try:
            self.on_outcome(outcome)
        except Exception:
            # ITI TF-2 3.20: auditing never fails the transaction
            log.exception("ITI-44 outcome hook failed")


__all__ = [
    "INTERACTIONS",
    "FeedOutcome",
    "Hl7v3Feed",
    "Hl7v3FeedConfig",
    "affinity_ids",
]
