"""The Pending responses of a C-MOVE or C-GET SCP, paced (PS3.4 C.4.2.3.1, C.4.3.3.1).

While its C-STORE sub-operations run, the SCP "may optionally generate responses ...
with status equal to Pending", each carrying the sub-operation counts.  pynetdicom's
Query/Retrieve service class sends one after every sub-operation: for a study of 500
instances, 500 encoded command sets on the requesting association, each costing about
as much CPU as sending the instance itself.  :func:`pace_pending` lets through the
first Pending response of an association and then one per :data:`PENDING_INTERVAL`:
the requestor still sees the counts move, its DIMSE timeout is still fed, and the final
response (Success, Warning, Failure or Cancel, with the counts) is never held back.
C-FIND's Pending responses are its matches and are not touched.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from pynetdicom.dimse_primitives import C_GET, C_MOVE

PENDING = 0xFF00  # PS3.4 C.4.2.1.5, C.4.3.1.4
PENDING_INTERVAL = 1.0  # seconds between two Pending responses of one association


class PendingPacer:
    """``DIMSEServiceProvider.send_msg`` of one association, a C-MOVE/C-GET Pending
    response sent only when :data:`PENDING_INTERVAL` has passed since the last one."""

    def __init__(
        self,
        send_msg: Callable[[Any, int], None],
        interval: float = PENDING_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send_msg = send_msg
        self.interval = interval
        self.clock = clock
        self.last = -math.inf

    def __call__(self, primitive: Any, context_id: int) -> None:
        if isinstance(primitive, (C_MOVE, C_GET)) and primitive.Status == PENDING:
            now = self.clock()
            if now - self.last < self.interval:
                return
            self.last = now
        self.send_msg(primitive, context_id)


def pace_pending(assoc: Any) -> None:
    """Put a :class:`PendingPacer` in front of ``assoc``'s DIMSE ``send_msg`` (once)."""
    dimse = assoc.dimse
    if not isinstance(dimse.send_msg, PendingPacer):
        dimse.send_msg = PendingPacer(dimse.send_msg)


__all__ = ["PENDING_INTERVAL", "PendingPacer", "pace_pending"]
