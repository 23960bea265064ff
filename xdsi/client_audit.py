"""Auditing for the commands that are not ``xdsi serve``.

A client command (``query``, ``retrieve``, ``submit``, ``publish``, ``patients add``)
or an administrative one (``check --repair``, ``audit tail/search``) audits with the
node's own audit configuration - the ``[audit]`` section of the data directory's
configuration, ``--audit URL`` (repeatable) and ``--audit-tls-cert/key/ca`` - into
the node's spool (``[audit] spool_url``: the SQLite file in the data directory, or
the PostgreSQL database).  Before the command exits its events are committed to the
spool (durable), then shipped with a bounded wait (``SHIP_SECONDS``).  When the audit
record repository is down, or slower than that, the events stay spooled: the next
``xdsi serve`` (or client command) on the same spool, shipping to the same
destinations, sends them.  Delivery is at least once: a command shipping while
``xdsi serve`` ships the same SQLite spool may send a message twice.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from atna.auditor import Auditor
from atna.events import AuditEvent
from atna.spool import AuditSpool
from atna.syslog import TlsConfig
from xdsi.config import Config, ConfigError

log = logging.getLogger(__name__)

SHIP_SECONDS = 5.0  # how long a command waits at most for its events to go out
SPOOL_SECONDS = 10.0  # how long it waits at most for them to be committed


Record = Callable[[AuditEvent], None]


def _discard(_event: AuditEvent) -> None:
    return None


class ClientAuditor:
    """One command's auditing: ``record`` while it runs, ``close`` before it exits."""

    def __init__(self, auditor: Auditor | None, ship_seconds: float = SHIP_SECONDS) -> None:
        self.auditor = auditor
        self.ship_seconds = ship_seconds

    @property
    def record(self) -> Record:
        return self.auditor.record if self.auditor is not None else _discard

    def close(self) -> bool:
        """Spool what was recorded, ship it within ``ship_seconds``; True when nothing
        is left to ship."""
        auditor, self.auditor = self.auditor, None
        if auditor is None:
            return True
        try:
            if not auditor.flush(SPOOL_SECONDS):
                log.error("audit events not spooled within %.0f s", SPOOL_SECONDS)
            shipped = not auditor.destinations
            if auditor.destinations:
                auditor.start()
                deadline = time.monotonic() + self.ship_seconds
                while not (shipped := _pending(auditor) == 0):
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
                if not shipped:
                    log.warning("audit events left in the spool; the next xdsi serve ships them")
            auditor.stop(timeout=self.ship_seconds)
            return shipped
        finally:
            auditor.spool.engine.dispose()


def _pending(auditor: Auditor) -> int:
    return sum(auditor.spool.pending_count(url) for url in auditor.destinations)


def _spool_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):  # psycopg 3, as xdsi serve
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def audit_tls(config: Config) -> TlsConfig | None:
    """``[audit] tls_*``, required (as files) when a destination is ``tls://``."""
    audit = config.audit
    if not any(d.startswith("tls://") for d in audit.destinations):
        return None
    for key in ("tls_cert", "tls_key", "tls_ca"):
        value = getattr(audit, key)
        if not value or not Path(value).is_file():
            raise ConfigError(
                f"[audit] {key} (--audit-{key.replace('_', '-')}): the tls:// audit "
                f"destinations need a client certificate, its key and the CA of the audit "
                f"repository ({value!r} is not a file)"
            )
    return TlsConfig(Path(audit.tls_cert), Path(audit.tls_key), Path(audit.tls_ca))


def open_client_auditor(config: Config, ship_seconds: float = SHIP_SECONDS) -> ClientAuditor:
    """The command's auditor, on the node's spool with the node's audit identity; one
    that records nothing when ``[audit] enabled`` is off."""
    audit = config.audit
    if not audit.enabled:
        return ClientAuditor(None, ship_seconds)
    tls = audit_tls(config)
    spool = AuditSpool.open(_spool_url(audit.spool_url))
    try:
        auditor = Auditor(
            spool,
            audit.destinations,
            audit.source_id,
            audit.enterprise_site_id,
            tls=tls,
            hostname=socket.getfqdn(),
        )
    except BaseException:
        spool.engine.dispose()
        raise
    return ClientAuditor(auditor, ship_seconds)


@contextmanager
def client_auditing(config: Config, ship_seconds: float = SHIP_SECONDS) -> Iterator[Record]:
    """``with client_auditing(config) as record: ...``: audited, spooled and shipped."""
    audit = open_client_auditor(config, ship_seconds)
    try:
        yield audit.record
    finally:
        audit.close()


__all__ = [
    "SHIP_SECONDS",
    "ClientAuditor",
    "Record",
    "audit_tls",
    "client_auditing",
    "open_client_auditor",
]
