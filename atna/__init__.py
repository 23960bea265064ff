"""ATNA: audit messages (DICOM PS3.15 A.5), ITI-20 syslog transport, durable spool.

Actors hand an outcome record to ``Auditor.record``; the auditor builds the messages
the IHE profile prescribes for that side of the transaction, spools them durably and
ships them over TLS (RFC 5425) or UDP (RFC 5426), in order and at least once.
"""

from atna.auditor import Auditor
from atna.codes import (
    ApplicationActivityType,
    CodedValue,
    EventActionCode,
    EventID,
    EventOutcomeIndicator,
    SecurityAlertType,
)
from atna.events import (
    ApplicationActivity,
    AuditContext,
    AuditEvent,
    DocumentReference,
    Endpoint,
    SecurityAlert,
    Side,
    TransactionOutcome,
    audit_messages,
)
from atna.message import AuditMessage, to_xml
from atna.shipper import Shipper
from atna.spool import AuditSpool, Backoff, default_url
from atna.syslog import Destination, MessageTooLarge, TlsConfig, frame, parse_destination

__all__ = [
    "ApplicationActivity",
    "ApplicationActivityType",
    "AuditContext",
    "AuditEvent",
    "AuditMessage",
    "AuditSpool",
    "Auditor",
    "Backoff",
    "CodedValue",
    "Destination",
    "DocumentReference",
    "Endpoint",
    "EventActionCode",
    "EventID",
    "EventOutcomeIndicator",
    "MessageTooLarge",
    "SecurityAlert",
    "SecurityAlertType",
    "Shipper",
    "Side",
    "TlsConfig",
    "TransactionOutcome",
    "audit_messages",
    "default_url",
    "frame",
    "parse_destination",
    "to_xml",
]
