"""The one object actors talk to: ``Auditor.record(event)``.

``record`` never blocks and never raises: it puts the event on an in-memory queue.
What the request path hands over is small: a SOAP exchange is recorded as it was seen
(``atna.observe.ObservedExchange``) and read only here.  A writer thread takes the
first event, reads it if it is such a record, builds its audit messages (``atna.events``)
and frames them (RFC 5424, ``atna.syslog``), goes on with whatever else arrives in
the next ``linger`` seconds (5 ms; at most ``MAX_GROUP`` events), and spools the
group for every destination in one transaction (group commit), then wakes the
shipper.  Building the XML off the request path and paying one commit (one fsync)
per group is what keeps auditing from slowing the transactions it records.

The durability window: an event is in memory from ``record`` until its group
commits - ``linger`` plus the build and the commit, a few milliseconds when the
spool's disk keeps up.  A crash (SIGKILL, power loss) inside that window loses the
events of the open group; everything committed survives and is shipped after the
restart.  ``flush`` waits for the commit of everything recorded so far; ``stop``
(``xdsi serve`` shutdown) drains the queue before it returns.

The shipper (``atna.shipper``) runs with ``await auditor.run()`` in the caller's
event loop, or with ``start()`` / ``stop()`` on a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from atna.events import AuditContext, AuditEvent, audit_messages
from atna.message import to_xml
from atna.shipper import Shipper
from atna.spool import AuditSpool
from atna.syslog import Sender, TlsConfig, frame, make_sender, parse_destination

log = logging.getLogger(__name__)

APP_NAME = "xdsi"
MAX_GROUP = 500  # events written in one spool transaction at most
LINGER = 0.005  # seconds a group stays open for more events after its first


class Auditor:
    def __init__(
        self,
        spool: AuditSpool,
        destinations: Sequence[str],
        audit_source_id: str,
        enterprise_site_id: str | None = None,
        *,
        tls: TlsConfig | None = None,
        hostname: str | None = None,
        app_name: str = APP_NAME,
        senders: Mapping[str, Sender] | None = None,
        shipper_options: Mapping[str, Any] | None = None,
        linger: float = LINGER,
    ) -> None:
        """``destinations``: ``tls://host:port`` / ``udp://host:port`` URLs.  ``senders``
        replaces the network senders (keyed by the same URLs), e.g. in tests."""
        self.spool = spool
        self.destinations = [parse_destination(url).url for url in destinations]
        self.context = AuditContext(audit_source_id, enterprise_site_id)
        self._hostname = hostname or socket.getfqdn()
        self._app_name = app_name
        if senders is None:
            senders = {url: make_sender(parse_destination(url), tls) for url in self.destinations}
        self.shipper = Shipper(spool, senders, **dict(shipper_options or {}))
        self._linger = linger
        self._queue: queue.Queue[AuditEvent | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_guard = threading.Lock()
        self._thread: threading.Thread | None = None

    # --- recording -----------------------------------------------------------------------
    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for auditing.  Non-blocking, thread-safe, never raises."""
        try:
            self._ensure_writer()
            self._queue.put_nowait(event)
        except Exception:
            log.exception("audit event not recorded: %r", event)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event recorded so far is spooled (or given up on)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _ensure_writer(self) -> None:
        with self._writer_guard:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="atna-spool-writer", daemon=True
                )
                self._writer.start()

    def _frame(self, event: AuditEvent) -> list[bytes]:
        return [
            frame(
                to_xml(message),
                timestamp=message.event_identification.event_date_time,
                hostname=self._hostname,
                app_name=self._app_name,
                procid=self.context.process_id,
            )
            for message in audit_messages(event, self.context)
        ]

    def _build(self, event: AuditEvent | None, into: list[bytes]) -> None:
        if event is None:
            return
        try:
            into.extend(self._frame(event))
        except Exception:
            log.exception("audit message could not be built for %r", event)

    def _write_loop(self) -> None:
        while True:
            first = self._queue.get()
            group = [first]
            messages: list[bytes] = []
            self._build(first, messages)
            deadline = time.monotonic() + self._linger
            while first is not None and group[-1] is not None and len(group) < MAX_GROUP:
                try:
                    event = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                group.append(event)
                self._build(event, messages)
            if messages:
                self.spool.enqueue(messages, self.destinations)
                self.shipper.wake()
            for _ in group:
                self._queue.task_done()
            if group[-1] is None:
                return

    def _stop_writer(self) -> None:
        with self._writer_guard:
            writer, self._writer = self._writer, None
        if writer is not None and writer.is_alive():
            self._queue.put(None)
            writer.join()

    # --- shipping ------------------------------------------------------------------------
    async def run(self) -> None:
        """Ship spooled messages until ``stop``."""
        await self.shipper.run()

    def start(self) -> None:
        """Ship on a thread of its own."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self.run()), name="atna-shipper", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Spool what is queued, then stop the shipper (after the batch in flight)."""
        self._stop_writer()
        self.shipper.stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


__all__ = ["APP_NAME", "LINGER", "MAX_GROUP", "Auditor"]
