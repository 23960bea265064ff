"""TCP settings of the DICOM (DIMSE) connections, bound as pynetdicom event handlers.

An association exchanges small PDUs - a C-STORE-RSP, a command set before its data
set - then waits for the peer's answer.  With Nagle's algorithm on (RFC 896, RFC 1122
4.2.3.4) such a segment waits for the ACK of the previous one, which the peer delays
(RFC 1122 4.2.3.2, ~40 ms on Linux): every sub-operation of a C-MOVE, every received
C-STORE paid that.  pynetdicom leaves the socket as the OS makes it, so xdsi sets
``TCP_NODELAY`` from ``EVT_CONN_OPEN``: here (:data:`NO_DELAY_HANDLERS`) on each
connection it accepts.

The associations xdsi requests (C-MOVE sub-associations, a backing PACS) get it too,
through :mod:`imaging_source.requestor`, which first keeps their reactor from taking a
response meant for the thread that sent the request (a pynetdicom race that only
Nagle's delay had hidden).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from pynetdicom import evt

log = logging.getLogger(__name__)


def set_no_delay(event: evt.Event) -> None:
    """``EVT_CONN_OPEN``: turn Nagle's algorithm off on the association's socket."""
    try:
        sock = event.assoc.dul.socket.socket
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):  # not a TCP socket (or already closed)
        log.debug("TCP_NODELAY not set on the DICOM connection", exc_info=True)


# For ``AE.start_server(evt_handlers=...)``
NO_DELAY_HANDLERS: list[tuple[Any, Callable[[evt.Event], None]]] = [
    (evt.EVT_CONN_OPEN, set_no_delay)
]

__all__ = ["NO_DELAY_HANDLERS", "set_no_delay"]
