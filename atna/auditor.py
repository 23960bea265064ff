"""The one object actors talk to: ``Auditor.record(event)``.

``record`` never blocks and never raises: it puts the event on an in-memory queue.
A writer thread takes everything queued at that moment, builds the audit messages
(``atna.events``), frames them (RFC 5424, ``atna.syslog``) and spools them for every
destination in one transaction (group commit), then wakes the shipper.  Until that
commit, an event lives only in memory; ``flush`` waits for it, ``stop`` drains the
queue before it returns.

The shipper (``atna.shipper``) runs with ``await auditor.run()`` in the caller's
event loop, or with ``start()`` / ``stop()`` on a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
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

    def _write_loop(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in group
            messages: list[bytes] = []
            for event in group:
                if event is None:
                    continue
                try:
                    messages.extend(self._frame(event))
                except Exception:
                    log.exception("audit message could not be built for %r", event)
            if messages:
                self.spool.enqueue(messages, self.destinations)
                self.shipper.wake()
            for _ in group:
                self._queue.task_done()
            if stop:
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


__all__ = ["APP_NAME", "Auditor"]
