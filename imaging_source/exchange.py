"""What one DICOM exchange of the Imaging Document Source did, for observers.

The DIMSE server and the DICOMweb and STOW-RS routes each take one optional
``on_event`` hook and call it with a :class:`DicomExchange` when an operation ends:
the peer (AE title or HTTP client), the operation, the instances it touched (with
their patient), the status it answered.  Auditing (``atna.dicom_observe``) maps these
records to DICOM PS3.15 A.5.3 messages; the handlers know nothing of auditing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from imaging_source.instances import StoredInstance

log = logging.getLogger(__name__)


class DicomOperation(StrEnum):
    """The operations reported: DIMSE (PS3.7) and DICOMweb (PS3.18) services."""

    C_STORE = "C-STORE"  # received (PS3.4 B)
    C_FIND = "C-FIND"  # PS3.4 C.4.1
    C_MOVE = "C-MOVE"  # instances sent to the move destination (PS3.4 C.4.2)
    C_GET = "C-GET"  # instances sent back to the requester (PS3.4 C.4.3)
    WADO_RS = "WADO-RS"  # PS3.18 10.4 retrieve
    WADO_URI = "WADO-URI"  # PS3.18 9.1 (RAD-55)
    STOW_RS = "STOW-RS"  # PS3.18 10.5 store
    QIDO_RS = "QIDO-RS"  # PS3.18 10.6 search


class ExchangeStatus(StrEnum):
    SUCCESS = "success"
    PARTIAL = "partial"  # some of what was asked was done
    FAILURE = "failure"


@dataclass(frozen=True)
class InstanceTouched:
    patient_id: str
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str


def touched(instance: StoredInstance) -> InstanceTouched:
    return InstanceTouched(
        instance.patient_id,
        instance.study_instance_uid,
        instance.series_instance_uid,
        instance.sop_instance_uid,
        instance.sop_class_uid,
    )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DicomExchange:
    """One operation as this node served it.

    ``peer``: the calling AE title, or the HTTP client's address; ``local``: the called
    AE title, or the URL served.  ``status``: the final DIMSE status or the HTTP status.
    C-FIND carries its Identifier (``query``, encoded as received) and matching keys;
    QIDO-RS its query string and the match keys.  ``peer_subject``: the subject of the
    peer's certificate when the association ran over TLS (ITI-19, PS3.15 B.1)."""

    operation: DicomOperation
    peer: str
    local: str
    peer_address: str | None = None
    outcome: ExchangeStatus = ExchangeStatus.SUCCESS
    status: int = 0
    description: str | None = None
    instances: tuple[InstanceTouched, ...] = ()
    move_destination: str | None = None
    query: bytes | None = None
    query_sop_class_uid: str | None = None
    query_transfer_syntax: str | None = None
    patient_id: str | None = None  # C-FIND: the PatientID matching key, if any
    study_instance_uids: tuple[str, ...] = ()  # C-FIND: the StudyInstanceUID keys
    peer_subject: str | None = None
    event_date_time: datetime = field(default_factory=_now)


OnExchange = Callable[[DicomExchange], None]


def notify(hook: OnExchange | None, make: Callable[[], DicomExchange]) -> None:
    """Call ``hook`` with the record ``make`` builds; an observer never fails the
    operation it observes."""
    if hook is None:
        return
    try:
        hook(make())
    except Exception:
        log.exception("DICOM exchange observer failed")


def touched_all(instances: Iterable[StoredInstance]) -> tuple[InstanceTouched, ...]:
    return tuple(touched(i) for i in instances)


__all__ = [
    "DicomExchange",
    "DicomOperation",
    "ExchangeStatus",
    "InstanceTouched",
    "OnExchange",
    "notify",
    "touched",
    "touched_all",
]
