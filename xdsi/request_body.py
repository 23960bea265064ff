"""Request bodies handed to the application as received, without copies, in uvicorn's
HTTP/1.1 protocol.

uvicorn appends every body chunk the parser gives it to a ``bytearray`` and copies that
into a new ``bytes`` for each ``http.request`` message: two copies of every byte of an
ITI-41 upload on the event loop thread, the thread that also receives the next bytes.
:class:`BodyChunksProtocol` keeps the chunks as the parser made them and hands them
over as they are (joined only when several arrived between two ``receive`` calls), and
lets up to :data:`BUFFER_LIMIT` bytes wait before it pauses reading (uvicorn: 64 KiB),
so a large upload is not stopped and restarted every 64 KiB.  Everything else about
``receive`` - 100-continue, disconnects, the end of the body - is uvicorn's.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

BUFFER_LIMIT = 1024 * 1024  # bytes of a request body received ahead of the application


class _BodyChunks:
    """The body of one request cycle: chunks waiting for the application's ``receive``."""

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self.cycle = cycle
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    async def receive(self) -> dict[str, Any]:
        cycle = self.cycle
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        if not cycle.disconnected and not cycle.response_complete:
            cycle.flow.resume_reading()
            await cycle.message_event.wait()
            cycle.message_event.clear()
        if cycle.disconnected or cycle.response_complete:
            return {"type": "http.disconnect"}
        chunks, self.chunks, self.size = self.chunks, [], 0
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return {"type": "http.request", "body": body, "more_body": cycle.more_body}


class BodyChunksProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol, request bodies passed on without copies."""

    _body: _BodyChunks | None = None

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # an upgrade request makes no cycle of its own: the one there is the last one's
        if cycle is not None and cycle.scope is self.scope:
            self._body = _BodyChunks(cycle)
            cycle.receive = self._body.receive  # type: ignore[method-assign]

    def on_body(self, body: bytes) -> None:
        cycle, chunks = self.cycle, self._body
        if chunks is None or chunks.cycle is not cycle:
            super().on_body(body)  # not a cycle of ours: uvicorn's own way
            return
        if (self.parser.should_upgrade() and self._should_upgrade()) or cycle.response_complete:
            return
        chunks.add(body)
        if chunks.size > BUFFER_LIMIT:
            self.flow.pause_reading()
        cycle.message_event.set()


__all__ = ["BUFFER_LIMIT", "BodyChunksProtocol"]
