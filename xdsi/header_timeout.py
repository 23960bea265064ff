"""A bound on how long a client may take to send a request's headers.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) and the SOAP
layer bounds the wait for each chunk of a body (``[limits] read_timeout``), but nothing
bounds a connection that never finishes its request line and headers (a slowloris
client), or that opens and sends nothing: each would hold a connection for good.
:class:`HeaderTimeoutProtocol` closes such a connection ``header_timeout`` seconds after
it opened, or after the first byte of a further request on it, answering
``408 Request Timeout`` (RFC 9110 15.5.9) when no answer is under way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from xdsi.zero_copy import ZeroCopySendProtocol

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderTimeoutProtocol(ZeroCopySendProtocol):
    """uvicorn's HTTP/1.1 protocol (with ASGI Zero Copy Send, ``xdsi.zero_copy``); a
    request's headers must be complete within ``header_timeout`` seconds (None: no
    bound)."""

    header_timeout: float | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self.header_timeout is not None and self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        # a pipelined request may arrive while the one before is still being answered:
        # its response is not cut into
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()


def header_timeout_protocol(
    header_timeout: float | None,
    protocol: type[HeaderTimeoutProtocol] = HeaderTimeoutProtocol,
    *,
    sendfile: str = "auto",
) -> Callable[..., HeaderTimeoutProtocol]:
    """uvicorn's ``http=`` setting: ``protocol`` with ``header_timeout`` and the
    ``[server] sendfile`` mode set."""

    def create(**kwargs: Any) -> HeaderTimeoutProtocol:
        made = protocol(**kwargs)
        made.header_timeout = header_timeout
        made.sendfile = sendfile
        return made

    return create


__all__ = ["REQUEST_TIMEOUT", "HeaderTimeoutProtocol", "header_timeout_protocol"]
