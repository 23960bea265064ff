"""``xdsi audit tail`` and ``xdsi audit search``: the local audit spool, for people.

Who accessed this patient's images?  ``xdsi audit search --patient PID`` prints every
audit record naming the patient, with who (user, address, ITI-19 certificate subject),
what (transaction, outcome), when and which objects (``atna.viewer``).  The spool
holds what this node recorded until it is purged after delivery.

Reading the audit trail is itself audited when ``record`` is given: Audit Log Used
(DICOM PS3.15 A.5.3.2, ``atna.admin.AuditLogUsed``), the OS user as the person who
read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy.engine import make_url

from atna.admin import AuditLogUsed
from atna.events import AuditEvent
from atna.requester import operator
from atna.spool import AuditSpool
from atna.viewer import format_record, matches, read_records
from xdsi.client_commands import UsageError
from xdsi.config import Config

FOLLOW_INTERVAL = 1.0  # seconds between looks at the spool with --follow


def parse_since(text: str) -> datetime:
    """HL7 DTM (``YYYYMMDD[HHMM[SS]]``, UTC) or ISO 8601 (UTC when no offset)."""
    digits = text.strip()
    formats = {4: "%Y", 6: "%Y%m", 8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    try:
        if digits.isdigit() and len(digits) in formats:
            moment = datetime.strptime(digits, formats[len(digits)])
        else:
            moment = datetime.fromisoformat(digits.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--since: not a DTM or ISO date/time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Record = Callable[[AuditEvent], None]


def _log_used(record: Record | None, config: Config, command: str) -> None:
    if record is None:
        return
    uri = make_url(config.audit.spool_url).render_as_string(hide_password=True)
    record(AuditLogUsed(uri, operator(), f"xdsi {command}"))


def _open(config: Config) -> AuditSpool:
    url = config.audit.spool_url
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3, as xdsi serve
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return AuditSpool.open(url)


def _print(rows: list[tuple[int, bytes]], out: TextIO, **filters: object) -> int:
    shown = 0
    for record in read_records(rows):
        if matches(record, **filters):  # type: ignore[arg-type]
            print(format_record(record), file=out)
            shown += 1
    out.flush()
    return shown


def audit_tail(
    config: Config,
    last: int,
    *,
    follow: bool = False,
    out: TextIO,
    interval: float = FOLLOW_INTERVAL,
    rounds: int | None = None,
    record: Record | None = None,
) -> int:
    """Print the ``last`` records; with ``follow``, keep printing new ones (``rounds``
    bounds the loop in tests)."""
    spool = _open(config)
    _log_used(record, config, "audit tail")
    try:
        # settled: an exchange still being answered is shown once its outcome is in
        rows = spool.events(last=last, settled=follow)
        _print(rows, out)
        seen = rows[-1][0] if rows else 0
        while follow and (rounds is None or rounds > 0):
            time.sleep(interval)
            rows = spool.events(after_id=seen, settled=True)
            _print(rows, out)
            seen = rows[-1][0] if rows else seen
            rounds = None if rounds is None else rounds - 1
    except KeyboardInterrupt:
        pass
    finally:
        spool.close()
    return 0


def audit_search(
    config: Config,
    patient: str,
    *,
    since: str | None = None,
    event: str | None = None,
    out: TextIO,
    record: Record | None = None,
) -> int:
    """Print every record naming ``patient``; 1 when there is none."""
    moment = parse_since(since) if since else None
    spool = _open(config)
    _log_used(record, config, "audit search")
    try:
        shown = _print(spool.events(), out, patient=patient, since=moment, transaction=event)
    finally:
        spool.close()
    return 0 if shown else 1


__all__ = ["FOLLOW_INTERVAL", "audit_search", "audit_tail", "parse_since"]
