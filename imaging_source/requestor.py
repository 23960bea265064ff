"""The pynetdicom associations xdsi requests - those to a backing PACS - sending without
Nagle's delay, safely; and :func:`exchange`, which a C-GET's C-STOREs use too.  (A
C-MOVE's sub-association is xdsi's own: :mod:`imaging_source.sub_association`.)

pynetdicom runs each association's reactor in a thread of its own, while
``Association.send_*`` run in the caller's thread: for a backing PACS the thread that
needs the instances.
Before it sends a request, ``send_*`` pauses the reactor so that the response is left
for it: it clears ``_reactor_checkpoint`` and waits until ``_is_paused`` is true.  But
the reactor sets ``_is_paused`` *before* it waits on the checkpoint and resets it only
once it has passed it - or has been woken by the ``set()`` that ended the previous
request, however late it gets to run again after that.  A sender that looks in between
sees "paused", sends its request and blocks in ``get_msg``, while the reactor goes on
to its non-blocking ``DIMSEServiceProvider.get_msg``.  A response that is already back
by then is taken by the reactor, logged as "Received unexpected ... service message"
and dropped; the sender waits out the DIMSE timeout and aborts the association, failing
every remaining sub-operation (pynetdicom 3.0.4, ``Association._run_reactor`` and
``send_c_store``; the pause came with pynetdicom PR #440 for issue #435 and keeps this
window).  With Nagle's algorithm on, a response never came back that fast; without it,
on a loaded machine, it does.

:class:`CheckpointedDIMSE` closes the window where the message is taken: the reactor's
non-blocking ``get_msg`` finds nothing while the checkpoint is cleared, that is while a
``send_*`` (or ``release``) owns the incoming messages.  This is sufficient: the
reactor reads the checkpoint after it has reset ``_is_paused``, so a sender that saw
``_is_paused`` true had cleared the checkpoint before that read, and the reactor leaves
the response to it; a sender that saw it false waits until the reactor is next blocked
on the checkpoint.  The blocking ``get_msg`` of ``send_*`` is unchanged.
:func:`exchange` makes a request and awaits its response without the pause (and the
up to 1 ms the reactor takes to reach its checkpoint): the reactor gets nothing while
the response is awaited, which begins before the request is sent.

:func:`prepare_requested_association`, bound to ``EVT_CONN_OPEN`` through
:data:`REQUESTOR_HANDLERS`, installs :class:`CheckpointedDIMSE` before the association
is negotiated (no DIMSE message has been received yet) and only then turns Nagle's
algorithm off.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from pynetdicom import evt
from pynetdicom.dimse import DIMSEServiceProvider

from imaging_source.tcp import set_no_delay

log = logging.getLogger(__name__)

# A response later than this comes from a slow peer: the DUL may poll at its default rate
QUICK_RESPONSE = 0.02  # seconds
SLOW_PEER_POLL = 0.001  # seconds: pynetdicom's DULServiceProvider._run_loop_delay


class CheckpointedDIMSE(DIMSEServiceProvider):
    """pynetdicom's DIMSE provider, its queue left to whoever awaits a response: a
    ``send_*`` that paused the reactor, or an :func:`exchange`."""

    def __init__(self, assoc: Any) -> None:
        super().__init__(assoc)
        self._awaiting = False

    @contextmanager
    def awaiting_response(self) -> Iterator[None]:
        """Keep the reactor off the queue; entered before the request is sent, so the
        response cannot be there before the reactor is kept off."""
        self._awaiting = True
        try:
            yield
        finally:
            self._awaiting = False

    def get_msg(self, block: bool = False) -> Any:
        # Only the reactor asks without blocking (pynetdicom 3.0 Association._run_reactor)
        if not block and (self._awaiting or not self.assoc._reactor_checkpoint.is_set()):
            return None, None
        return super().get_msg(block)

    def await_response(self, dul: Any, quick: float = QUICK_RESPONSE) -> Any:
        """The next message, blocking up to the DIMSE timeout, as ``get_msg(True)``.
        One that comes within ``quick`` seconds is noticed at the DUL's own polling
        rate; past that the peer is slow, and the DUL polls at pynetdicom's default
        rate (:data:`SLOW_PEER_POLL`) until it comes: a fast poll costs CPU for as long
        as it waits (about 13% of a core at 0.1 ms)."""
        timeout = self.dimse_timeout  # None: no limit
        first = quick if timeout is None else min(quick, timeout)
        try:
            return self.msg_queue.get(block=True, timeout=first)
        except queue.Empty:
            if timeout is not None and timeout <= first:
                return None, None
        fast = dul._run_loop_delay
        dul._run_loop_delay = max(fast, SLOW_PEER_POLL)
        try:
            rest = None if timeout is None else timeout - first
            return self.msg_queue.get(block=True, timeout=rest)
        except queue.Empty:
            return None, None
        finally:
            dul._run_loop_delay = fast


def can_exchange(assoc: Any) -> bool:
    """Whether :func:`exchange` may be used on ``assoc`` from this thread: the reactor
    is kept off its queue, or this is the reactor (a handler serving a request)."""
    return isinstance(assoc.dimse, CheckpointedDIMSE) or threading.current_thread() is assoc


def exchange(assoc: Any, request: Any, context_id: int) -> Any:
    """Send a DIMSE request primitive and return the response primitive, or None when
    none came within the DIMSE timeout (the association is then aborted, as pynetdicom's
    ``send_*`` do).  The reactor is not paused: it cannot take the response
    (:meth:`CheckpointedDIMSE.awaiting_response`) and keeps watching for an A-ABORT or
    A-RELEASE from the peer meanwhile.  Only where :func:`can_exchange`."""
    dimse = assoc.dimse
    awaiting = dimse.awaiting_response() if isinstance(dimse, CheckpointedDIMSE) else nullcontext()
    with awaiting:
        dimse.send_msg(request, context_id)
        if isinstance(dimse, CheckpointedDIMSE):
            _, response = dimse.await_response(assoc.dul)
        else:
            _, response = dimse.get_msg(block=True)
    # None: the DIMSE timeout, or the connection ended (then the reactor reports it)
    if response is None and not assoc.acse.is_aborted() and assoc.is_established:
        log.error("DIMSE timeout reached while waiting for the response")
        assoc.abort()
    return response


def prepare_requested_association(event: evt.Event) -> None:
    """``EVT_CONN_OPEN`` of an association xdsi requests: the reactor is kept off the
    responses (:class:`CheckpointedDIMSE`), then Nagle's algorithm is turned off."""
    assoc = event.assoc
    if not isinstance(getattr(assoc, "_reactor_checkpoint", None), threading.Event):
        # a pynetdicom without the pause this relies on: Nagle's delay stays, which
        # keeps responses slower than the reactor's window
        log.warning("pynetdicom without Association._reactor_checkpoint: TCP_NODELAY not set")
        return
    assoc.dimse = CheckpointedDIMSE(assoc)
    set_no_delay(event)


# For ``AE.associate(evt_handlers=...)``
REQUESTOR_HANDLERS: list[tuple[Any, Callable[[evt.Event], None]]] = [
    (evt.EVT_CONN_OPEN, prepare_requested_association)
]

__all__ = [
    "QUICK_RESPONSE",
    "REQUESTOR_HANDLERS",
    "SLOW_PEER_POLL",
    "CheckpointedDIMSE",
    "can_exchange",
    "exchange",
    "prepare_requested_association",
]
