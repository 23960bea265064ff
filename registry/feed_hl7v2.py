"""ITI-8 Patient Identity Feed (HL7 v2) as the Document Registry receives it.

ITI TF-2 3.8: a Patient Identity Source sends ADT messages; the Document Registry keeps
the patient ids of the XDS Affinity Domain so that ITI-42 can refuse metadata for an
unknown patient, and follows merges.  Each message is answered with an HL7 ACK
(ITI TF-2 3.8.4.1.2, ITI TF-2x C.2.3).

``FeedProcessor.handle`` takes the bytes of one framed message and returns the bytes of
its ACK; it never raises.  The MLLP server (``registry.mllp``) calls it in a worker
thread, and ``FeedProcessor.refuse`` answers what the server will not hand over.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from registry import hl7v2, patients
from registry.hl7v2 import (
    AckCode,
    AckError,
    ErrorCondition,
    Hl7ParseError,
    Message,
    UnknownCharacterSet,
)
from registry.uow import transact

log = logging.getLogger(__name__)

# ITI TF-2 3.8.3: HL7 v2.3.1.  2.3 is what the NIST XDS Toolkit sends (testkit 15817,
# 15818); later 2.x versions are read the same way for the segments used here.
SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1"})
# HL7 Table 0103 processing id: production, training, debugging
PROCESSING_IDS = frozenset({"P", "T", "D"})
MESSAGE_TYPE = "ADT"
UNIVERSAL_ID_TYPE_ISO = "ISO"
# PID fields kept as demographics, HL7-encoded with the default delimiters, keyed as
# ITI TF-3 4.2.3.2.23 (sourcePatientInfo) names them.
DEMOGRAPHIC_FIELDS = (5, 7, 8, 11)
# characters an XDS patient id (ITI TF-3 4.2.3.2.16, CX.1) cannot contain
_CX_DELIMITERS = frozenset("|^~\\&")


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What one message did, for the audit trail (ITI TF-2 3.8.5)."""

    ack_code: AckCode
    message_type: str = ""
    trigger_event: str = ""
    control_id: str = ""
    sending_application: str = ""
    sending_facility: str = ""
    patient_ids: tuple[str, ...] = ()
    errors: tuple[AckError, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class _Result:
    code: AckCode
    patient_ids: tuple[str, ...] = ()
    errors: tuple[AckError, ...] = ()
    text: str = ""


def _error(condition: ErrorCondition, text: str, segment: str, fld: int = 0) -> _Result:
    return _Result(AckCode.ERROR, errors=(AckError(condition, text, segment, 1, fld),))


def _reject(condition: ErrorCondition, text: str, fld: int) -> _Result:
    # a failure of the message as a whole (fld 0) has no location
    location = ("MSH", 1, fld) if fld else ("", 1, 0)
    return _Result(AckCode.REJECT, errors=(AckError(condition, text, *location),))


@dataclass(frozen=True, slots=True)
class _Context:
    message: Message
    assigning_authority: str

    def affinity_ids(self, segment: hl7v2.Segment, number: int) -> list[str]:
        """The ids of the affinity domain among the CX repetitions of SEG-n.

        ITI TF-2 3.8.4.1.4: only identifiers of the domain the XDS Affinity Domain
        designates are stored; others are ignored.  Stored as ``ID^^^&OID&ISO``.
        """
        enc = self.message.encoding
        found: list[str] = []
        for rep in hl7v2.split_field(segment.raw(number), enc):
            ident = rep[0][0]
            hd = (*(rep[3] if len(rep) > 3 else ()), "", "", "")
            if hd[1] != self.assigning_authority or hd[2].upper() != UNIVERSAL_ID_TYPE_ISO:
                continue
            if not ident or _CX_DELIMITERS & set(ident) or ident != ident.strip():
                raise _InvalidIdentifier(segment.name, number, ident)
            found.append(f"{ident}^^^&{self.assigning_authority}&{UNIVERSAL_ID_TYPE_ISO}")
        return found

    def demographics(self, pid: hl7v2.Segment) -> dict[str, str]:
        out: dict[str, str] = {}
        for number in DEMOGRAPHIC_FIELDS:
            value = hl7v2.join_field(hl7v2.split_field(pid.raw(number), self.message.encoding))
            if value:
                out[f"PID-{number}"] = value
        return out

    def not_in_domain(self, what: str) -> _Result:
        text = f"no {what} identifier of assigning authority {self.assigning_authority}"
        return _Result(AckCode.ACCEPT, text=text + "; nothing stored")


class _InvalidIdentifier(Exception):
    def __init__(self, segment: str, number: int, ident: str) -> None:
        self.segment, self.number, self.ident = segment, number, ident
        super().__init__(f"{segment}-{number}: unusable patient id {ident!r}")


# --- the events (ITI TF-2 3.8.4.1.1, 3.8.4.2.1) -------------------------------------------


def _register(ctx: _Context, session: Session) -> _Result:
    """A01, A04, A05: make the patient known (ITI TF-2 3.8.4.1.4)."""
    pid = ctx.message.segment("PID")
    if pid is None:
        return _error(ErrorCondition.SEGMENT_SEQUENCE_ERROR, "PID segment missing", "PID")
    ids = ctx.affinity_ids(pid, 3)
    if not ids:
        return ctx.not_in_domain("PID-3")
    demographics = ctx.demographics(pid)
    for patient_id in ids:
        patients.register_patient(session, patient_id, demographics)
    return _Result(AckCode.ACCEPT, tuple(ids))


def _update(ctx: _Context, session: Session) -> _Result:
    """A08: accepted; a Document Registry takes no action on it (ITI TF-2 3.8.4.1.4).
    Identity changes reach the registry through A01/A04/A05 and A40 only."""
    pid = ctx.message.segment("PID")
    if pid is None:
        return _error(ErrorCondition.SEGMENT_SEQUENCE_ERROR, "PID segment missing", "PID")
    return _Result(AckCode.ACCEPT, tuple(ctx.affinity_ids(pid, 3)))


def _merge(ctx: _Context, session: Session) -> _Result:
    """A40: merge the MRG-1 id (subsumed) into the PID-3 id (surviving), for each
    PID/MRG pair (ITI TF-2 3.8.4.2.4).  The merge is refused (AE) when the surviving id
    is unknown or ``merge_patients`` rejects it; nothing of the message is kept then."""
    pairs = _pid_mrg_pairs(ctx.message.segments)
    if not pairs:
        return _error(ErrorCondition.SEGMENT_SEQUENCE_ERROR, "PID and MRG segments missing", "MRG")
    merged: list[str] = []
    for pid, mrg in pairs:
        surviving, subsumed = ctx.affinity_ids(pid, 3), ctx.affinity_ids(mrg, 1)
        if not surviving or not subsumed:
            continue
        if not patients.is_known(session, surviving[0]):
            text = f"surviving patient id {surviving[0]} is not known"
            return _error(ErrorCondition.UNKNOWN_KEY_IDENTIFIER, text, "PID", 3)
        try:
            patients.merge_patients(session, surviving[0], subsumed[0])
        except patients.PatientMergeError as exc:
            return _error(ErrorCondition.DUPLICATE_KEY_IDENTIFIER, exc.reason, "MRG", 1)
        merged += [surviving[0], subsumed[0]]
    if not merged:
        return ctx.not_in_domain("PID-3 and MRG-1")
    return _Result(AckCode.ACCEPT, tuple(merged))


def _pid_mrg_pairs(segments: Iterable[hl7v2.Segment]) -> list[tuple[hl7v2.Segment, hl7v2.Segment]]:
    """ADT_A39 structure: repeating {PID, [PD1], MRG, [PV1]} groups."""
    pairs: list[tuple[hl7v2.Segment, hl7v2.Segment]] = []
    pid: hl7v2.Segment | None = None
    for segment in segments:
        if segment.name == "PID":
            pid = segment
        elif segment.name == "MRG" and pid is not None:
            pairs.append((pid, segment))
            pid = None
    return pairs


Event = Callable[[_Context, Session], _Result]

# ADT trigger event -> what the Document Registry does (ITI TF-2 3.8.4.1.1, 3.8.4.2.1)
EVENTS: dict[str, Event] = {
    "A01": _register,
    "A04": _register,
    "A05": _register,
    "A08": _update,
    "A40": _merge,
}


# --- header checks (HL7 v2.3.1 2.13.1: MSH-9, MSH-11, MSH-12 failures are rejects) -----


def _header_problem(
    message: Message, versions: frozenset[str], processing_ids: frozenset[str]
) -> _Result | None:
    version = message.version
    processing = message.processing_id
    checks = (
        (not message.control_id, ErrorCondition.REQUIRED_FIELD_MISSING, "MSH-10 missing", 10),
        (
            message.message_type != MESSAGE_TYPE,
            ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
            f"message type {message.message_type!r} is not supported",
            9,
        ),
        (
            _trigger(message) not in EVENTS,
            ErrorCondition.UNSUPPORTED_EVENT_CODE,
            f"event {_trigger(message)!r} is not supported",
            9,
        ),
        (
            processing not in processing_ids,
            ErrorCondition.UNSUPPORTED_PROCESSING_ID,
            f"processing id {processing!r} is not supported",
            11,
        ),
        (
            version not in versions,
            ErrorCondition.UNSUPPORTED_VERSION_ID,
            f"version {version!r} is not supported",
            12,
        ),
    )
    for failed, condition, text, number in checks:
        if failed:
            return _reject(condition, text, number)
    return None


def _trigger(message: Message) -> str:
    # MSH-9.2; a sender that leaves it empty still names the event in EVN-1
    return message.trigger_event or message.get("EVN", 1)


def _header_of(data: bytes) -> Message | None:
    """The message read leniently, only for addressing an ACK to its sender."""
    first = data.lstrip(b"\x00\r\n\t ").split(b"\r", 1)[0].split(b"\n", 1)[0]
    try:
        return hl7v2.parse_message(first.decode("latin-1"))
    except Hl7ParseError:
        return None


def _new_control_id() -> str:
    # MSH-10 is ST(20) in HL7 v2.3.1
    return uuid.uuid4().hex[:20]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedProcessor:
    """The Document Registry side of ITI-8.

    ``session_factory``: write sessions on the registry database
    (``registry.db.session_factory(engine, write=True)``).  ``assigning_authority``:
    the universal id (an OID) of the affinity domain's patient identification domain.
    """

    session_factory: sessionmaker[Session]
    assigning_authority: str
    application: str = "XDSI"
    facility: str = "XDSI"
    versions: frozenset[str] = SUPPORTED_VERSIONS
    processing_ids: frozenset[str] = PROCESSING_IDS
    clock: Callable[[], datetime] = _now
    control_ids: Callable[[], str] = _new_control_id
    on_outcome: Callable[[FeedOutcome], None] | None = None
    # asked before a message is processed; False rejects it unprocessed (AR), e.g.
    # while the audit spool is full - the sender keeps it and sends it again
    admit: Callable[[], bool] | None = None

    def handle(self, data: bytes) -> bytes:
        """Process one message; return its ACK.  Never raises."""
        try:
            message = hl7v2.parse_message(data)
        except UnknownCharacterSet as exc:
            result = _reject(ErrorCondition.TABLE_VALUE_NOT_FOUND, str(exc), 18)
            return self._ack(_header_of(data), result)
        except Hl7ParseError as exc:
            # the MSH itself is unusable: a generic reject (HL7 v2.3.1 2.13.1)
            result = _reject(ErrorCondition.SEGMENT_SEQUENCE_ERROR, str(exc), 0)
            return self._ack(_header_of(data), result)
        result = _header_problem(message, self.versions, self.processing_ids)
        if result is None and self.admit is not None and not self.admit():
            # HL7 v2.3.1 2.13.1: a problem unrelated to the content is an AR
            result = _reject(
                ErrorCondition.APPLICATION_INTERNAL_ERROR, "not accepting now: try again later", 0
            )
        if result is None:
            result = self._process(message)
        return self._ack(message, result)

    def refuse(self, head: bytes, reason: str) -> bytes:
        """AR for a message the MLLP server would not hand over (too large, or failed)."""
        result = _reject(ErrorCondition.APPLICATION_INTERNAL_ERROR, reason, 0)
        return self._ack(_header_of(head), result)

    def _process(self, message: Message) -> _Result:
        ctx = _Context(message, self.assigning_authority)
        event = EVENTS[_trigger(message)]
        try:
            return transact(self.session_factory, lambda s: _committed(event(ctx, s)))
        except _InvalidIdentifier as exc:
            return _error(ErrorCondition.DATA_TYPE_ERROR, str(exc), exc.segment, exc.number)
        except Exception:
            # HL7 v2.3.1 2.13.1: a failure unrelated to the message content is a reject
            log.exception("ITI-8 %s %s failed", _trigger(message), message.control_id)
            return _reject(ErrorCondition.APPLICATION_INTERNAL_ERROR, "", 0)

    def _ack(self, request: Message | None, result: _Result) -> bytes:
        errors = result.errors
        text = hl7v2.build_ack(
            request,
            result.code,
            control_id=self.control_ids(),
            timestamp=self.clock().strftime("%Y%m%d%H%M%S%z"),
            errors=errors,
            text=result.text,
            sending_application=self.application,
            sending_facility=self.facility,
        )
        self._report(request, result, errors)
        charset = (request.character_set or request.msh.raw(18)) if request else ""
        try:
            return hl7v2.encode_for(text, charset)
        except (LookupError, UnicodeEncodeError):
            return text.encode("utf-8")

    def _report(
        self, request: Message | None, result: _Result, errors: tuple[AckError, ...]
    ) -> None:
        if self.on_outcome is None:
            return
        outcome = FeedOutcome(
            ack_code=result.code,
            message_type=request.message_type if request else "",
            trigger_event=_trigger(request) if request else "",
            control_id=request.control_id if request else "",
            sending_application=request.get("MSH", 3) if request else "",
            sending_facility=request.get("MSH", 4) if request else "",
            patient_ids=result.patient_ids,
            errors=errors,
            text=result.text,
        )
        try:
            self.on_outcome(outcome)
        except Exception:
            # ITI TF-2 3.20: auditing never fails the transaction
            log.exception("ITI-8 outcome hook failed")


def _committed(result: _Result) -> tuple[_Result, bool]:
    return result, result.code == AckCode.ACCEPT


__all__ = [
    "DEMOGRAPHIC_FIELDS",
    "EVENTS",
    "PROCESSING_IDS",
    "SUPPORTED_VERSIONS",
    "FeedOutcome",
    "FeedProcessor",
]
