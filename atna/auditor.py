"""The one object actors talk to: ``Auditor.record(event)``.

``record`` never raises and hands back a ticket (a ``concurrent.futures.Future``)
that resolves once the event is durable in the spool; the request paths wait for it
before they answer (``wait_durable`` / ``durable``), so an answered transaction has
its audit record in the spool.  How it gets there depends on the caller:

- From a thread (a request's worker thread, the HL7 feed, a DICOM association):
  ``record`` builds the audit messages (``atna.events``), frames them (RFC 5424,
  ``atna.syslog``) and writes them itself through ``atna.group_commit`` - durable when
  ``record`` returns, no thread hop; concurrent callers share one transaction.
- From an event loop, which must not wait for a disk: the event is queued for the
  writer thread, which takes every event queued at that moment (at most
  ``MAX_GROUP``) and spools them in one transaction; the caller awaits the ticket.

Either way the events that arrive while one commit runs form the next group: group
commit without an artificial delay, one fsync per group, a lone event pays its own.
An event that offers a deferred record (``deferred``: a SOAP exchange) is spooled as
that record, read into its messages when shipped - not built on the request path.

Held records (``hold`` / ``settle``, on an SQLite spool): the SOAP endpoint hands the
exchange over as soon as its request is read; the writer thread writes and fsyncs its
record, held back from the destinations, while the exchange is answered.  Before the
answer, ``settle`` completes it with the outcome in an update that is not fsynced -
the fsync has left the answer's critical path.  A record the process never settled
(it stopped meanwhile) is released at the next start, its outcome unknown
(``AuditSpool.release_held``).

Full spool (an ATNA Secure Node may hold records back while a repository is down,
never drop them): with
``spool_limit`` set, once that many events wait for a destination the auditor stops
``accepting``: the actors refuse new transactions with their busy answers
(``XDSRegistryBusy`` / ``XDSRepositoryBusy``) and one Security Alert records it; it
accepts again when the shippers have brought the backlog under 90 % of the limit.

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
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from atna.codes import EventOutcomeIndicator, SecurityAlertType
from atna.events import AuditContext, AuditEvent, Endpoint, SecurityAlert, audit_messages
from atna.group_commit import GroupCommit
from atna.message import to_xml
from atna.node_authentication import TlsFailure, outgoing_authentication_alert
from atna.shipper import Shipper
from atna.spool import AuditSpool
from atna.syslog import Sender, TlsConfig, frame, make_sender, parse_destination

log = logging.getLogger(__name__)

APP_NAME = "xdsi"
MAX_GROUP = 500  # events written in one spool transaction at most
DURABLE_TIMEOUT = 10.0  # seconds a transaction waits for its audit record to be spooled
SPOOL_RECOUNT_INTERVAL = 30.0  # seconds between exact counts of the spool's backlog
RESUME_FRACTION = 0.9  # accept again below this share of ``spool_limit``
# a destination that keeps failing node authentication (each reconnection of the
# shipper fails again) is alerted once per this many seconds, not once per attempt:
# its alerts wait in the spool with the rest, and must not fill it
DESTINATION_ALERT_INTERVAL = 600.0

Ticket = Future  # resolves to True once the event is durable, False if it never will be


def framed_messages(
    event: AuditEvent, context: AuditContext, hostname: str, app_name: str
) -> list[bytes]:
    """``event``'s audit messages, each framed as an RFC 5424 SYSLOG-MSG."""
    return [
        frame(
            to_xml(message),
            timestamp=message.event_identification.event_date_time,
            hostname=hostname,
            app_name=app_name,
            procid=context.process_id,
        )
        for message in audit_messages(event, context)
    ]


@dataclass(frozen=True)
class _Queued:
    event: AuditEvent
    ticket: Ticket
    hold: bytes | None = None  # the event's held record, to write (``Auditor.hold``)
    held: Ticket | None = None  # settle this held record (``Auditor.settle``)


def on_event_loop() -> bool:
    """Whether the calling thread runs an event loop (which must not wait for a disk)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def resolved(value: bool = True) -> Ticket:
    """A ticket that is already resolved (an event that needs no waiting)."""
    ticket: Ticket = Future()
    ticket.set_result(value)
    return ticket


def wait_durable(ticket: object, timeout: float = DURABLE_TIMEOUT) -> bool:
    """Block until ``ticket`` (what an observer returned, if a ticket) is durable.
    For threads (the HL7 feed, the DICOM association handlers); never raises."""
    if not isinstance(ticket, Future):
        return True
    try:
        return bool(ticket.result(timeout))
    except Exception:  # noqa: BLE001 - a late or failed spool write is logged by the writer
        log.warning("audit record not yet spooled after %.1f s; answering anyway", timeout)
        return False


async def durable(ticket: object, timeout: float = DURABLE_TIMEOUT) -> bool:
    """``wait_durable`` for the event loop."""
    if not isinstance(ticket, Future):
        return True
    if ticket.done():
        return bool(ticket.result())
    try:
        return bool(await asyncio.wait_for(asyncio.wrap_future(ticket), timeout))
    except Exception:  # noqa: BLE001
        log.warning("audit record not yet spooled after %.1f s; answering anyway", timeout)
        return False


@dataclass(frozen=True)
class DurableWait:
    """``await`` it for ``durable(ticket)``; dropping it unawaited is harmless (an
    observer's answer that a refusal path does not wait for)."""

    ticket: object
    timeout: float = DURABLE_TIMEOUT

    def __await__(self) -> Any:
        return durable(self.ticket, self.timeout).__await__()


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
        spool_limit: int = 0,
        reporter: Endpoint | None = None,
    ) -> None:
        """``destinations``: ``tls://host:port`` / ``udp://host:port`` URLs.  ``senders``
        replaces the network senders (keyed by the same URLs), e.g. in tests.
        ``spool_limit``: events waiting for a destination beyond which new
        transactions are refused (0: no limit); ``reporter`` names this node in the
        Security Alert that says so."""
        self.spool = spool
        self.destinations = [parse_destination(url).url for url in destinations]
        self.context = AuditContext(audit_source_id, enterprise_site_id)
        self._hostname = hostname or socket.getfqdn()
        self._app_name = app_name
        self._reporter = reporter or Endpoint(f"xdsi@{self._hostname}")
        self._destination_alerted: dict[str, float] = {}
        self._destination_alert_guard = threading.Lock()
        if senders is None:
            senders = {
                url: make_sender(parse_destination(url), tls, self._destination_failed)
                for url in self.destinations
            }
        self.shipper = Shipper(spool, senders, **dict(shipper_options or {}))
        self._queue: queue.Queue[_Queued | None] = queue.Queue()
        self._writer: threading.Thread | None = None
        self._writer_guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self.spool_limit = spool_limit
        self._backlog = 0  # events waiting for a destination, as last counted plus since
        self._counted_at = float("-inf")
        self._accepting = True
        self._group = GroupCommit(self._spool_now)

    # --- recording -----------------------------------------------------------------------
    def record(self, event: AuditEvent) -> Ticket:
        """Audit ``event``.  Thread-safe, never raises; the ticket resolves once the
        event is durable in the spool - before ``record`` returns when called from a
        thread, later (await it) when called from an event loop."""
        if not on_event_loop():
            messages: list[bytes] = []
            self._build(event, messages)
            return resolved(bool(messages) and self._group.commit(messages))
        ticket: Ticket = Future()
        try:
            self._ensure_writer()
            self._queue.put_nowait(_Queued(event, ticket))
        except Exception:
            log.exception("audit event not recorded: %r", event)
            ticket.set_result(False)
        return ticket

    # --- held records: written while the exchange runs, settled before it answers ----
    def hold(self, event: AuditEvent) -> Ticket | None:
        """Write ``event``'s record now, while its exchange is still being answered:
        durable (fsynced) meanwhile, shipped only once ``settle``d.  Returns a ticket
        that resolves to (spool id, record) (None if not written), or None when the
        event or the spool cannot be held - then ``record`` it when it ends.  From an
        event loop (the SOAP endpoint, once the request is read): the record is built
        here, the writer thread only stores it, so that it hardly competes with the
        exchange for the interpreter.  The event offers ``deferred(..., held=True)``
        (the record) and ``settled(record)`` (the record completed)."""
        if not self.spool.holds or not callable(getattr(event, "settled", None)):
            return None
        try:
            record = event.deferred(  # type: ignore[union-attr]
                self.context, self._hostname, self._app_name, held=True
            )
            if record is None:
                return None
            ticket: Ticket = Future()
            self._ensure_writer()
            self._queue.put_nowait(_Queued(event, ticket, hold=record))
        except Exception:
            log.exception("audit record not held: %r", event)
            return None
        return ticket

    def settle(self, held: Ticket, event: AuditEvent) -> Ticket:
        """Complete the record ``hold`` wrote with ``event`` (the same exchange, now
        with its outcome); like ``record``, the ticket resolves once it is durable."""
        if not on_event_loop():
            return resolved(self._settle_now(held, event))
        ticket: Ticket = Future()
        try:
            self._ensure_writer()
            self._queue.put_nowait(_Queued(event, ticket, held=held))
        except Exception:
            log.exception("audit event not recorded: %r", event)
            ticket.set_result(False)
        return ticket

    def _settle_now(self, held: Ticket, event: AuditEvent) -> bool:
        try:
            written = held.result(DURABLE_TIMEOUT)  # (spool id, held record) or None
        except Exception:  # noqa: BLE001 - a late hold: the event is recorded afresh
            written = None
        settled = getattr(event, "settled", None)
        record = None
        if written is not None and settled is not None:
            try:
                record = settled(written[1])
            except Exception:
                log.exception("audit record could not be built for %r", event)
        if record is not None and self.spool.settle(written[0], record, self.destinations):
            self.shipper.wake()
            return True
        # not held, or not settled: recorded as any other event (a held record left
        # behind is released, its outcome unknown, when the server next starts)
        messages: list[bytes] = []
        self._build(event, messages)
        return bool(messages) and self._group.commit(messages)

    def _write_held(self, items: Sequence[_Queued]) -> None:
        """Hold the records of ``items`` in one transaction; resolve their tickets."""
        records = [item.hold for item in items if item.hold is not None]
        written = self.spool.hold(records, self.destinations)
        if written:
            self._note_spooled(len(written))
        ids = written or [None] * len(records)
        for item, record, event_id in zip(items, records, ids, strict=True):
            if not item.ticket.done():
                item.ticket.set_result(None if event_id is None else (event_id, record))

    @property
    def accepting(self) -> bool:
        """False while the spool is full (``spool_limit``): refuse new transactions."""
        return self._accepting

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event recorded so far is spooled (or given up on)."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._writer_guard:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(
                    target=self._write_loop, name="atna-spool-writer", daemon=True
                )
                self._writer.start()

    def _build(self, event: AuditEvent, into: list[bytes]) -> None:
        """``event``'s spool records: a deferred record when the event offers one
        (``deferred``: read when shipped), else its RFC 5424 messages."""
        try:
            deferred = getattr(event, "deferred", None)
            record = deferred(self.context, self._hostname, self._app_name) if deferred else None
            if record is not None:
                into.append(record)
                return
            into.extend(framed_messages(event, self.context, self._hostname, self._app_name))
        except Exception:
            log.exception("audit message could not be built for %r", event)

    def _take_group(self) -> list[_Queued | None]:
        """The next event (waiting for it) and every event queued behind it."""
        group: list[_Queued | None] = [self._queue.get()]
        while group[-1] is not None and len(group) < MAX_GROUP:
            try:
                group.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return group

    def _write_loop(self) -> None:
        while True:
            group = self._take_group()
            items = [item for item in group if item is not None]
            held = [item for item in items if item.hold is not None]
            if held:
                self._write_held(held)
            for item in items:
                if item.held is not None and not item.ticket.done():
                    item.ticket.set_result(self._settle_now(item.held, item.event))
            items = [item for item in items if item.hold is None and item.held is None]
            messages: list[bytes] = []
            for item in items:
                self._build(item.event, messages)
            durable = self._group.commit(messages) if messages else True
            for item in items:
                if not item.ticket.done():
                    item.ticket.set_result(durable)
            for _ in group:
                self._queue.task_done()
            if group[-1] is None:
                return

    def _spool_now(self, messages: Sequence[bytes]) -> bool:
        """One group commit's transaction, then the shipper and the backlog are told."""
        durable = self.spool.enqueue(messages, self.destinations)
        self.shipper.wake()
        self._note_spooled(len(messages))
        return durable

    # --- the full-spool policy -------------------------------------------------------------
    def _note_spooled(self, count: int) -> None:
        """Keep the backlog estimate; count exactly when near the limit or now and then."""
        if not self.spool_limit or not self.destinations:
            return
        self._backlog += count
        now = time.monotonic()
        near = self._backlog >= RESUME_FRACTION * self.spool_limit
        if near or now - self._counted_at >= SPOOL_RECOUNT_INTERVAL:
            self.recount()

    def recount(self) -> int:
        """Count the events waiting for a destination and update ``accepting``."""
        try:
            self._backlog = self.spool.backlog()
        except Exception:
            log.warning("audit spool backlog not counted", exc_info=True)
            return self._backlog
        self._counted_at = time.monotonic()
        if self._accepting and self._backlog >= self.spool_limit:
            self._accepting = False
            self._alert(SecurityAlertType.AUDIT_RECORDING_STOPPED, "refused")
        elif not self._accepting and self._backlog < RESUME_FRACTION * self.spool_limit:
            self._accepting = True
            self._alert(SecurityAlertType.AUDIT_RECORDING_STARTED, "accepted again")
        return self._backlog

    def _alert(self, kind: Any, verb: str) -> None:
        text = (
            f"audit spool holds {self._backlog} undelivered events (limit {self.spool_limit}): "
            f"new transactions {verb}"
        )
        log.error(text) if verb == "refused" else log.warning(text)
        alert = SecurityAlert(
            event_type=kind,
            reporter=self._reporter,
            description=text,
            outcome=EventOutcomeIndicator.SERIOUS_FAILURE
            if verb == "refused"
            else EventOutcomeIndicator.SUCCESS,
        )
        # spooled directly: the alert itself is never refused by the limit it reports
        messages: list[bytes] = []
        self._build(alert, messages)
        self.spool.enqueue(messages, self.destinations)

    def _destination_failed(self, failure: TlsFailure) -> None:
        """ITI TF-2 3.20.7: an audit repository that failed node authentication, as a
        Security Alert (once per ``DESTINATION_ALERT_INTERVAL`` while it keeps failing)."""
        now = time.monotonic()
        with self._destination_alert_guard:
            last = self._destination_alerted.get(failure.service)
            if last is not None and now - last < DESTINATION_ALERT_INTERVAL:
                return
            self._destination_alerted[failure.service] = now
        self.record(outgoing_authentication_alert(self._reporter, failure))

    def _stop_writer(self) -> None:
        with self._writer_guard:
            writer, self._writer = self._writer, None
        if writer is not None and writer.is_alive():
            self._queue.put(None)
            writer.join()

    # --- shipping ------------------------------------------------------------------------
    def _on_shipped(self, count: int) -> None:
        if self.spool_limit and count:
            self._backlog = max(0, self._backlog - count)
            if not self._accepting:
                self.recount()

    async def run(self) -> None:
        """Ship spooled messages until ``stop``."""
        self.shipper.on_shipped = self._on_shipped
        if self.spool_limit and self.destinations:
            await asyncio.to_thread(self.recount)
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


__all__ = [
    "APP_NAME",
    "DURABLE_TIMEOUT",
    "DurableWait",
    "MAX_GROUP",
    "Auditor",
    "Ticket",
    "durable",
    "framed_messages",
    "on_event_loop",
    "resolved",
    "wait_durable",
]
