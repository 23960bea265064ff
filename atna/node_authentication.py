"""ATNA node authentication on the connections a node opens: failures reported.

A Secure Node authenticates the node it connects to and presents its own identity (ITI
TF-2 3.19.1).  A node authentication that fails on such a connection is a Security
Alert as much as one refused on a listener (ITI TF-2 3.20.7, DICOM PS3.15 A.5.3.11:
110126 Node Authentication): :func:`outgoing_authentication_alert`, and
:func:`node_authentication_alert` for a peer refused on a listener.

:func:`reporting_context` makes a client ``SSLContext`` whose sockets (``wrap_socket``:
httpx, pynetdicom, blocking sockets) and memory-BIO objects (``wrap_bio``: asyncio and
anyio streams) report such a failure to a callback with the service and the reason,
then raise it as before:

- the handshake fails: the service's certificate is not trusted or does not name the
  host (this node refused the service), or the service sent an alert (it refused this
  node: TLS 1.2), or no version or suite in common;
- after the handshake, before the service's first byte: TLS 1.3 has the server judge
  the client's certificate after the client's side of the handshake is done, so a
  refusal arrives as an alert on the first read, or as the end of the connection when
  the alert was lost (a server that closes with the request unread sends a reset, and
  the reset discards what had not been read yet).

Not reported: a timeout, a refused TCP connection, or anything after the service's first
byte (network failures); and a reset that an asyncio or anyio stream meets on its socket
below the TLS object, which never sees it.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from atna.codes import SecurityAlertType
from atna.events import MAX_DESCRIPTION, Endpoint, SecurityAlert

log = logging.getLogger("atna.node_authentication")


@dataclass(frozen=True)
class TlsFailure:
    """A node authentication that failed on a connection this node opened."""

    service: str  # e.g. "https://registry.example.org:8443", "dicom://ct1.example.org:104"
    peer_host: str | None
    peer_port: int | None
    reason: str
    refused_by_peer: bool  # the service refused this node (else this node the service)


OnTlsFailure = Callable[[TlsFailure], None]


def failure_reason(exc: ssl.SSLError) -> str:
    """What went wrong, e.g. ``CERTIFICATE_VERIFY_FAILED: unable to get local issuer
    certificate`` or ``TLSV1_ALERT_UNKNOWN_CA``."""
    reason = exc.reason or exc.strerror or str(exc) or type(exc).__name__
    verify_message = getattr(exc, "verify_message", None)
    return f"{reason}: {verify_message}" if verify_message else reason


# The service ended the connection after the handshake without a byte of answer: how a
# TLS 1.3 service that refuses this node's certificate may end it when its alert is
# lost (it closed with the request unread, and the reset discarded the alert).
CLOSED_BEFORE_ANSWER = "closed by the service before any answer"


def _peer_alert(exc: ssl.SSLError) -> bool:
    """A TLS alert the peer sent (``TLSV13_ALERT_CERTIFICATE_REQUIRED``, ...)."""
    return "ALERT" in (exc.reason or "")


def _failed(exc: ssl.SSLError) -> bool:
    """A failure, not a non-blocking socket waiting for its peer or a clean close."""
    return not isinstance(
        exc, ssl.SSLWantReadError | ssl.SSLWantWriteError | ssl.SSLZeroReturnError
    )


class _Reporter:
    """What a context's connections share: the callback, and how they name the service."""

    def __init__(self, on_failure: OnTlsFailure, scheme: str, service: str | None) -> None:
        self.on_failure = on_failure
        self.scheme = scheme
        self.service = service

    def report(self, reason: str, host: str | None, address: Any, *, refused_by_peer: bool) -> None:
        peer_host, peer_port = (address[0], address[1]) if address else (host, None)
        name = host or peer_host or "unknown"
        service = self.service or (
            f"{self.scheme}://{name}:{peer_port}" if peer_port else f"{self.scheme}://{name}"
        )
        failure = TlsFailure(service, peer_host, peer_port, reason, refused_by_peer)
        log.warning(
            "TLS to %s failed (%s): %s",
            failure.service,
            "refused by the service" if refused_by_peer else "service not authenticated",
            failure.reason,
        )
        try:
            self.on_failure(failure)
        except Exception:
            log.exception("TLS failure not reported")


class _Watched:
    """One connection (an ``SSLSocket`` or ``SSLObject`` subclass), watched from its
    handshake until the service's first byte of answer: a failure in that time is a
    failed node authentication, reported once.  Afterwards nothing is watched."""

    _xdsi_reporter: _Reporter
    _xdsi_handshaken = False
    _xdsi_over = False  # reported, or answered
    server_hostname: str | None

    def _peer_address(self) -> Any:
        return None

    _xdsi_address: Any = None  # the service's, read at the handshake (a reset loses it)

    def _report(self, reason: str, *, refused_by_peer: bool) -> None:
        self._xdsi_over = True
        self._xdsi_reporter.report(
            reason, self.server_hostname, self._xdsi_address, refused_by_peer=refused_by_peer
        )

    def _handshake(self, call: Callable[..., Any], *args: Any) -> Any:
        if self._xdsi_address is None:
            self._xdsi_address = self._peer_address()
        try:
            result = call(*args)
        except ssl.SSLError as exc:
            if _failed(exc) and not self._xdsi_over:
                # this node refused the service, unless the service sent the alert
                self._report(failure_reason(exc), refused_by_peer=_peer_alert(exc))
            raise
        self._xdsi_handshaken = True
        return result

    def _exchange(self, call: Callable[..., Any], *args: Any, reading: bool) -> Any:
        watching = self._xdsi_handshaken and not self._xdsi_over
        try:
            result = call(*args)
        except ssl.SSLError as exc:
            if watching and _failed(exc):
                # TLS 1.3: the service's verdict on this node's certificate comes after
                # the client's side of the handshake, as an alert or an early close
                if _peer_alert(exc):
                    self._report(failure_reason(exc), refused_by_peer=True)
                elif isinstance(exc, ssl.SSLEOFError):
                    self._report(f"{CLOSED_BEFORE_ANSWER} ({exc})", refused_by_peer=True)
            raise
        except ConnectionError as exc:
            if watching:
                self._report(f"{CLOSED_BEFORE_ANSWER} ({exc})", refused_by_peer=True)
            raise
        if watching and reading:
            if result:
                self._xdsi_over = True
            else:  # an end of stream
                self._report(CLOSED_BEFORE_ANSWER, refused_by_peer=True)
        return result


def reporting_context(
    context: ssl.SSLContext,
    on_failure: OnTlsFailure | None,
    *,
    scheme: str,
    service: str | None = None,
) -> ssl.SSLContext:
    """``context`` itself, its sockets and BIO objects reporting a failed node
    authentication to ``on_failure`` (nothing changes when it is None).  ``service``
    names the one service the context is for; without it a failure is named
    ``scheme://host:port`` from the socket."""
    if on_failure is None:
        return context
    reporter = _Reporter(on_failure, scheme, service)

    class ReportingSocket(_Watched, ssl.SSLSocket):
        _xdsi_reporter = reporter

        def _peer_address(self) -> Any:
            try:
                return self.getpeername()
            except OSError:
                return None

        def do_handshake(self, block: bool = False) -> None:
            self._handshake(super().do_handshake, block)

        def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - SSLSocket's
            return self._exchange(super().read, len, buffer, reading=True)

        def send(self, data: Any, flags: int = 0) -> int:
            return self._exchange(super().send, data, flags, reading=False)

    class ReportingObject(_Watched, ssl.SSLObject):
        _xdsi_reporter = reporter

        def do_handshake(self) -> None:
            self._handshake(super().do_handshake)

        def read(self, len: int = 1024, buffer: Any = None) -> Any:  # noqa: A002 - SSLObject's
            return self._exchange(super().read, len, buffer, reading=True)

    context.sslsocket_class = ReportingSocket
    context.sslobject_class = ReportingObject
    return context


def _peer(host: str | None, port: int | None) -> Endpoint:
    """The other end of a failed authentication, by its address (it proved no identity)."""
    peer = host or "unknown"
    return Endpoint(f"{peer}:{port}" if port else peer, network_access_point=host)


def node_authentication_alert(
    reporter: Endpoint,
    listener: str,
    peer_host: str | None,
    peer_port: int | None,
    reason: str,
) -> SecurityAlert:
    """ITI TF-2 3.19.6 / 3.20.7 (DICOM PS3.15 A.5.3.11): a peer failed node
    authentication on ``listener``: Security Alert, EventTypeCode 110126 Node
    Authentication, the peer as the performer, the listener as the alert subject with
    the reason as Alert Description."""
    return SecurityAlert(
        event_type=SecurityAlertType.NODE_AUTHENTICATION,
        reporter=reporter,
        performer=_peer(peer_host, peer_port),
        alert_subject=listener,
        description=f"TLS peer {peer_host or 'unknown'} refused: {reason}"[:MAX_DESCRIPTION],
    )


def outgoing_authentication_alert(reporter: Endpoint, failure: TlsFailure) -> SecurityAlert:
    """ITI TF-2 3.19.1 / 3.20.7 (DICOM PS3.15 A.5.3.11): node authentication failed on
    a connection this node opened: Security Alert, EventTypeCode 110126 Node
    Authentication, the service as the alert subject, its address as the performer (the
    other end of the failed authentication), and which side refused in the Alert
    Description."""
    side = "refused this node" if failure.refused_by_peer else "not authenticated"
    return SecurityAlert(
        event_type=SecurityAlertType.NODE_AUTHENTICATION,
        reporter=reporter,
        performer=_peer(failure.peer_host, failure.peer_port),
        alert_subject=failure.service,
        description=f"TLS to {failure.service} failed, {side}: {failure.reason}"[:MAX_DESCRIPTION],
    )


__all__ = [
    "CLOSED_BEFORE_ANSWER",
    "OnTlsFailure",
    "TlsFailure",
    "failure_reason",
    "node_authentication_alert",
    "outgoing_authentication_alert",
    "reporting_context",
]
