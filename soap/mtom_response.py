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

from collections.abc import Mapping

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
        for segment in self.message.segments:
            if isinstance(segment, bytes):
                await send({"type": "http.response.body", "body": segment, "more_body": True})
            else:
                await _send_file(send, segment)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()


async def _send_file(send: Send, attachment: OutgoingAttachment) -> None:
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
