"""Ships spooled audit messages to their destinations, in order, at least once.

One loop per destination: claim the oldest pending deliveries, send them one after
the other, and record the result.  A send that fails stops the batch (later messages
must not overtake it) and the destination backs off (``atna.spool.Backoff``) until
the next attempt; a message the transport can never carry (``MessageTooLarge``) is
recorded as failed and the rest go on.  Database or network trouble never ends the
loop; it is logged and tried again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from atna.spool import AuditSpool, Claim
from atna.syslog import MessageTooLarge, Sender

log = logging.getLogger(__name__)

POLL_INTERVAL = 1.0
BATCH_SIZE = 100


class Shipper:
    def __init__(
        self,
        spool: AuditSpool,
        senders: Mapping[str, Sender],
        *,
        batch_size: int = BATCH_SIZE,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._spool = spool
        self._senders = dict(senders)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeups: dict[str, asyncio.Event] = {}
        self._stopping = asyncio.Event()  # binds to the loop of ``run`` on first use

    @property
    def destinations(self) -> list[str]:
        return list(self._senders)

    async def ship_once(self, destination: str) -> int:
        """One claim on ``destination``; returns how many messages were delivered."""
        claim = await asyncio.to_thread(self._spool.claim, destination, self._batch_size)
        if claim is None:
            return 0
        try:
            await self._send(claim, self._senders[destination])
        finally:
            await asyncio.to_thread(self._spool.finish, claim)
        return len(claim.delivered)

    @staticmethod
    async def _send(claim: Claim, sender: Sender) -> None:
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
            loop.call_soon_threadsafe(wakeup.set)

    async def _pause(self, destination: str) -> None:
        """Until woken, stopped, the poll interval passes, or the backoff ends."""
        delay = self._poll_interval
        next_attempt = await asyncio.to_thread(self._spool.next_attempt_at, destination)
        backing_off = next_attempt is not None
        if backing_off:
            delay = max(0.0, (next_attempt - datetime.now(UTC)).total_seconds())
        wakeup = self._wakeups[destination]
        waiters = [asyncio.ensure_future(self._stopping.wait())]
        if not backing_off:
            waiters.append(asyncio.ensure_future(wakeup.wait()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        wakeup.clear()

    async def _serve(self, destination: str) -> None:
        while not self._stopping.is_set():
            try:
                delivered = await self.ship_once(destination)
            except Exception:
                log.exception("audit shipping to %s failed", destination)
                delivered = 0
            if delivered == 0:
                try:
                    await self._pause(destination)
                except Exception:
                    log.exception("audit spool unavailable")
                    await asyncio.sleep(self._poll_interval)

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


__all__ = ["BATCH_SIZE", "POLL_INTERVAL", "Shipper"]
