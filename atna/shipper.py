"""Ships spooled audit messages to their destinations, in order, at least once.

One loop per destination: claim the oldest pending deliveries, send them, and record
the result.  A sender that can (``send_many``: TLS) gets the whole batch in one write;
the others get the messages one after the other.  A send that fails stops the batch
(later messages must not overtake it) and the destination backs off
(``atna.spool.Backoff``) until the next attempt; over TLS the whole batch is then sent
again (RFC 5425 confirms nothing, so none of it counts as delivered).  A message the
transport can never carry (``MessageTooLarge``: UDP) is recorded as failed and the rest
go on.  Database or network trouble never ends the
loop; it is logged and tried again.

Batching keeps the cost per event small next to the transactions being audited: when
woken by new messages the loop lingers ``linger`` seconds (250 ms) so that one claim,
one series of sends and one ``finish`` serve every event of that moment; a full batch
is followed at once by the next claim.  The backoff end comes from ``finish`` itself,
so an idle or backing-off destination costs no database round trip per wake-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from atna.spool import AuditSpool, Claim
from atna.syslog import MessageTooLarge, Sender

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
BATCH_SIZE = 500
# seconds a wake-up waits for more messages before claiming: a claim and its finish
# cost about a millisecond of CPU, so they are shared by every message of that time
LINGER = 0.25


@dataclass(frozen=True)
class _Shipped:
    """What one claim achieved: delivered count, whether the batch was full (more may
    be waiting), and the end of the backoff a failed send started."""

    delivered: int = 0
    full: bool = False
    retry_at: datetime | None = None


class Shipper:
    def __init__(
        self,
        spool: AuditSpool,
        senders: Mapping[str, Sender],
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = POLL_INTERVAL,
        linger: float = LINGER,
    ) -> None:
        self._spool = spool
        self._senders = dict(senders)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._linger = linger
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeups: dict[str, asyncio.Event] = {}
        self._stopping = asyncio.Event()  # binds to the loop of ``run`` on first use
        # told how many messages each finished claim delivered (the auditor's backlog)
        self.on_shipped: Callable[[int], None] | None = None

    @property
    def destinations(self) -> list[str]:
        return list(self._senders)

    async def ship_once(self, destination: str) -> int:
        """One claim on ``destination``; returns how many messages were delivered."""
        return (await self._ship(destination)).delivered

    async def _ship(self, destination: str) -> _Shipped:
        claim = await asyncio.to_thread(self._spool.claim, destination, self._batch_size)
        if claim is None:
            return _Shipped()
        retry_at = None
        try:
            await self._send(claim, self._senders[destination])
        finally:
            retry_at = await asyncio.to_thread(self._spool.finish, claim)
            if self.on_shipped is not None:
                self.on_shipped(len(claim.delivered) + len(claim.failed))
        full = len(claim.rows) >= self._batch_size and claim.retry is None
        return _Shipped(len(claim.delivered), full, retry_at)

    @staticmethod
    async def _send(claim: Claim, sender: Sender) -> None:
        if not claim.rows:
            return  # only records that can never be sent (recorded as failed)
        send_many = getattr(sender, "send_many", None)
        if send_many is not None:
            try:
                await send_many([message for _, message in claim.rows])
            except Exception as exc:
                log.warning("audit destination %s unavailable: %r", claim.destination, exc)
                claim.retry = (claim.rows[0][0], repr(exc))
                return
            claim.delivered.extend(event_id for event_id, _ in claim.rows)
            return
        for event_id, message in claim.rows:
            try:
                await sender.send(message)
            except MessageTooLarge as exc:
                log.error("audit message %d refused by %s: %s", event_id, claim.destination, exc)
                claim.failed[event_id] = str(exc)
                continue
            except Exception as exc:
                log.warning("audit destination %s unavailable: %r", claim.destination, exc)
                claim.retry = (event_id, repr(exc))
                return
            claim.delivered.append(event_id)

    def wake(self) -> None:
        """New messages were spooled: look now rather than at the next poll.  Thread-safe."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for wakeup in self._wakeups.values():
            # already set: the loop claims after it clears the flag, and so sees what
            # was committed before this call - no need to cross threads again
            if not wakeup.is_set():
                loop.call_soon_threadsafe(wakeup.set)

    async def _pause(self, destination: str, retry_at: datetime | None) -> None:
        """Until the backoff ends (``retry_at``), or else until woken (then ``linger``
        more for the batch to fill) or the poll interval passes; stop ends either."""
        wakeup = self._wakeups[destination]
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if retry_at is not None:
            delay = max(0.0, (retry_at - datetime.now(UTC)).total_seconds())
        else:
            delay = self._poll_interval
            waiters.append(asyncio.ensure_future(wakeup.wait()))
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED
            )
            if retry_at is None and waiters[-1] in done and not self._stopping.is_set():
                await asyncio.wait([waiters[0]], timeout=self._linger)
        finally:
            for waiter in waiters:
                waiter.cancel()
        wakeup.clear()

    async def _serve(self, destination: str) -> None:
        while not self._stopping.is_set():
            try:
                shipped = await self._ship(destination)
            except Exception:
                log.exception("audit shipping to %s failed", destination)
                shipped = _Shipped()
            if not shipped.full:
                await self._pause(destination, shipped.retry_at)

    async def run(self) -> None:
        """Ship until ``stop``; then close the senders."""
        self._loop = asyncio.get_running_loop()
        self._wakeups = {name: asyncio.Event() for name in self._senders}
        try:
            await asyncio.gather(*(self._serve(name) for name in self._senders))
        finally:
            for sender in self._senders.values():
                await sender.close()

    def stop(self) -> None:
        """End ``run`` after the batches in flight.  Thread-safe."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stopping.set()
        else:
            loop.call_soon_threadsafe(self._stopping.set)


__all__ = ["BATCH_SIZE", "LINGER", "POLL_INTERVAL", "Shipper"]
