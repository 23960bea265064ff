"""An outgoing SOAP message as an ASGI response, its document parts sent zero-copy.

When the server names the ASGI Zero Copy Send extension (``http.response.zerocopysend``
in ``scope["extensions"]``), each attachment's file goes out as one
``http.response.zerocopysend`` message between the ``http.response.body`` messages
that carry the MIME framing; the server moves the bytes file-to-socket (``sendfile``)
and they never pass through Python.  Under any other server - an ASGI test transport,
another ASGI server - the message is streamed from disk as ``OutgoingMessage.aiter_bytes``
reads it.  Either way the body is the one ``mtom_message`` measured for the
Content-Length.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import BinaryIO

import anyio
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from soap.message import OutgoingAttachment
from soap.mtom import OutgoingMessage

# ASGI extensions (asgiref docs/extensions.rst): a byte range of an open file, mixable
# with http.response.body; a whole file by path, ending the response
ZERO_COPY_SEND = "http.response.zerocopysend"
PATH_SEND = "http.response.pathsend"
# Attachment files opened per worker-thread call: a RAD-69 answer has hundreds of
# ~0.5 MB files, and a thread hop for each cost more than sending it
OPEN_AHEAD = 32


class MessageResponse(StreamingResponse):
    """``message`` with ``status``; the Content-Type and Content-Length are its own."""

    def __init__(
        self,
        message: OutgoingMessage,
        status_code: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(
            message.aiter_bytes(),
            status_code=status_code,
            headers={
                **(headers or {}),
                "content-type": message.content_type,
                "content-length": str(message.content_length),
            },
            background=background,
        )
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or ZERO_COPY_SEND not in scope.get("extensions", {}):
            await super().__call__(scope, receive, send)
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        segments = self.message.segments
        files = _FilesAhead(s for s in segments if not isinstance(s, bytes) and s.size)
        # the last piece of bytes ends the body itself: one ASGI message fewer (a
        # simple SOAP message is one piece; an MTOM one ends with its close delimiter)
        last = len(segments) - 1
        try:
            for n, segment in enumerate(segments):
                if isinstance(segment, bytes):
                    more = n < last
                    await send({"type": "http.response.body", "body": segment, "more_body": more})
                elif segment.size:
                    await _send_file(send, segment, await files.next(segment))
        finally:
            files.close()
        if not segments or not isinstance(segments[-1], bytes):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()


def _open_all(attachments: list[OutgoingAttachment]) -> list[BinaryIO]:
    opened: list[BinaryIO] = []
    try:
        for attachment in attachments:
            opened.append(attachment.path.open("rb"))
    except BaseException:
        for file in opened:
            file.close()
        raise
    return opened


class _FilesAhead:
    """The attachments' files, opened in order :data:`OPEN_AHEAD` at a time in a worker
    thread (opening may block on a network file system; the event loop must not)."""

    def __init__(self, attachments: Iterable[OutgoingAttachment]) -> None:
        self._waiting = deque(attachments)
        self._open: deque[tuple[OutgoingAttachment, BinaryIO]] = deque()

    async def next(self, attachment: OutgoingAttachment) -> BinaryIO:
        if not self._open:
            count = min(OPEN_AHEAD, len(self._waiting))
            batch = [self._waiting.popleft() for _ in range(count)]
            opened = await anyio.to_thread.run_sync(_open_all, batch)
            self._open.extend(zip(batch, opened, strict=True))
        expected, file = self._open.popleft()
        if expected is not attachment:
            file.close()
            raise RuntimeError("attachments sent out of the order they were opened in")
        return file

    def close(self) -> None:
        while self._open:
            self._open.popleft()[1].close()


async def _send_file(
    send: Send, attachment: OutgoingAttachment, file: BinaryIO | None = None
) -> None:
    """The attachment's file (opened here, off the event loop, unless given), zero-copy;
    closed once sent."""
    if file is None:
        if attachment.size == 0:
            return
        file = await anyio.to_thread.run_sync(attachment.path.open, "rb")
    try:
        await send(
            {
                "type": ZERO_COPY_SEND,
                "file": file,
                "offset": 0,
                "count": attachment.size,
                "more_body": True,
            }
        )
    finally:
        file.close()


__all__ = ["PATH_SEND", "ZERO_COPY_SEND", "MessageResponse"]
