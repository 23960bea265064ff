"""Administrative actions on a node, as DICOM PS3.15 A.5.3 names them.

The operator's commands are audited like the transactions (ITI TF-2 3.20.4.1.1.1,
the ATNA trigger events "Audit-Log-Used" and "Security Alert" for security
administrative actions):

- Reading the audit trail (``xdsi audit tail`` / ``audit search``): Audit Log Used
  (110101), A.5.3.2 - :class:`AuditLogUsed`.
- Repairing the repository's store (``xdsi check --repair`` deletes what no registered
  document references: pending rows, temp files, unreferenced blobs): no DICOM event
  is about deleting stored data other than studies (A.5.3.8 DICOM Study Deleted names
  studies by Study Instance UID), and the RMD deletion event (Patient Record, D) needs
  the documents and their patient, which a repair of orphans does not have.  It is a
  use of an administrative function on a security-sensitive resource: Security Alert
  (110113), A.5.3.11, with the CID 401 type "Use of Restricted Function" (110132) -
  :func:`repository_repair_alert`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from atna.codes import (
    CodedValue,
    EventActionCode,
    EventID,
    EventOutcomeIndicator,
    ParticipantObjectIDTypeCode,
    ParticipantObjectTypeCode,
    ParticipantObjectTypeCodeRole,
    RoleIDCode,
    SecurityAlertType,
)
from atna.events import MAX_DESCRIPTION, AuditContext, Endpoint, SecurityAlert
from atna.message import (
    ActiveParticipant,
    AuditMessage,
    EventIdentification,
    ParticipantObjectIdentification,
)

# DICOM PS3.15 A.5.3.2: the audit log's ParticipantObjectName
SECURITY_AUDIT_LOG = "Security Audit Log"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditLogUsed:
    """DICOM PS3.15 A.5.3.2 Audit Log Used: a person or process read the audit log.

    ``log_uri``: the log read (the spool's URL, without credentials); ``user``: the
    person (the OS user) and ``application``: the program that read it."""

    log_uri: str
    user: str | None
    application: str
    outcome: EventOutcomeIndicator = EventOutcomeIndicator.SUCCESS
    event_date_time: datetime = field(default_factory=_now)

    def messages(self, context: AuditContext) -> list[AuditMessage]:
        # A.5.3.2: EventActionCode R; the application (0..1) and the user (0..1) who
        # accessed the log; the log as a system object, Security Resource, by URI
        participants = [
            ActiveParticipant(
                user_id=self.application,
                user_is_requestor=self.user is None,
                role_id_codes=(RoleIDCode.APPLICATION,),
                alternative_user_id=context.process_id,
            )
        ]
        if self.user:
            participants.append(ActiveParticipant(self.user, True))
        event = EventIdentification(
            event_id=EventID.AUDIT_LOG_USED,
            event_date_time=self.event_date_time,
            event_outcome_indicator=self.outcome,
            event_action_code=EventActionCode.READ,
        )
        log = ParticipantObjectIdentification(
            participant_object_id=self.log_uri,
            id_type_code=ParticipantObjectIDTypeCode.URI,
            name=SECURITY_AUDIT_LOG,
            type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
            type_code_role=ParticipantObjectTypeCodeRole.SECURITY_RESOURCE,
        )
        return [AuditMessage(event, tuple(participants), context.audit_source(), (log,))]


def repository_repair_alert(
    reporter: Endpoint,
    operator: str | None,
    store_uri: str,
    report: str,
    outcome: EventOutcomeIndicator = EventOutcomeIndicator.SUCCESS,
    event_type: CodedValue = SecurityAlertType.USE_OF_RESTRICTED_FUNCTION,
) -> SecurityAlert:
    """``xdsi check --repair`` (see the module text): who ran it, on which store, and
    what it removed (the repair report as the Alert Description)."""
    return SecurityAlert(
        event_type=event_type,
        reporter=reporter,
        performer=Endpoint(operator) if operator else None,
        alert_subject=store_uri,
        description=report[:MAX_DESCRIPTION],
        outcome=outcome,
    )


__all__ = ["SECURITY_AUDIT_LOG", "AuditLogUsed", "repository_repair_alert"]
