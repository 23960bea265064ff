"""An MTOM/XOP message whose last parts are produced while it is being sent.

A handler that cannot know every part before the first byte goes out (documents still
arriving from elsewhere) returns ``SoapResponse.streamed``: an async iterator of
:class:`~soap.message.OutgoingAttachment`, each yielded once its file is complete.  The
message is the XOP package ``mtom_message`` makes - the root part first (RFC 2387 3.1:
the root is the first part unless ``start`` names another; XOP 1.0 3.1), then the parts
known at once, then each streamed part as it comes - sent with the chunked transfer
coding (RFC 9112 7.1), without a Content-Length.  Files go zero-copy when the server
offers ``http.response.zerocopysend``, as in ``soap.mtom_response``.

An exception from the iterator ends the response without the close delimiter and
without the last chunk: it is logged and raised again, and the server then closes the
connection (uvicorn does so for an exception after the response started).  The
receiver sees a truncated body - a failed exchange - never a complete message that
lacks a part its root part references.

The exchange's outcome is known only at the end: ``StreamedMessage.finished`` is told
it (None, or the exception that cut the message short) before the close delimiter goes
out, and what it hands back is awaited first - so an exchange observer (auditing)
records the real outcome, durable before the message is complete.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import anyio
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from soap.message import OutgoingAttachment
from soap.mtom import FILE_CHUNK_SIZE, OutgoingMessage, _part_head
from soap.mtom_response import ZERO_COPY_SEND, _send_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamedMessage:
    """An XOP package: ``head`` (root part and the parts known at once, without the
    close delimiter), then the ``parts`` yet to come, then the close delimiter."""

    content_type: str
    boundary: str
    head: tuple[bytes | OutgoingAttachment, ...]
    parts: AsyncIterator[OutgoingAttachment]
    # told how sending ended (None: every part sent); an awaitable it returns is awaited
    finished: Callable[[BaseException | None], object] | None = None

    @property
    def close_delimiter(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode("ascii")


def streamed_mtom_message(
    message: OutgoingMessage, boundary: str, parts: AsyncIterator[OutgoingAttachment]
) -> StreamedMessage:
    """``message`` (made by ``mtom_message`` with ``boundary``) followed by ``parts``."""
    *head, close = message.segments
    if not isinstance(close, bytes) or not close.startswith(b"\r\n--" + boundary.encode()):
        raise ValueError("the message does not end with the close delimiter of its boundary")
    return StreamedMessage(message.content_type, boundary, tuple(head), parts)


async def _send_body(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _send_attachment(send: Send, attachment: OutgoingAttachment, zero_copy: bool) -> None:
    if zero_copy:
        await _send_file(send, attachment, attachment.file)
        return
    opened = attachment.file
    async with (
        anyio.wrap_file(opened)
        if opened is not None
        else await anyio.open_file(attachment.path, "rb")
    ) as file:
        while chunk := await file.read(FILE_CHUNK_SIZE):
            await _send_body(send, chunk)


class StreamedMessageResponse(StreamingResponse):
    """``message`` with ``status``, chunked; cut short when its parts fail."""

    def __init__(
        self,
        message: StreamedMessage,
        status_code: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        super().__init__(
            message.parts,
            status_code=status_code,
            headers={**(headers or {}), "content-type": message.content_type},
            background=background,
        )
        self.message = message

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        zero_copy = ZERO_COPY_SEND in scope.get("extensions", {})
        message = self.message
        sent = 0
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            for segment in message.head:
                if isinstance(segment, bytes):
                    await _send_body(send, segment)
                else:
                    await _send_attachment(send, segment, zero_copy)
            try:
                async for attachment in message.parts:
                    boundary, content_id = message.boundary, attachment.content_id
                    try:
                        await _send_body(
                            send, _part_head(boundary, attachment.content_type, content_id)
                        )
                        await _send_attachment(send, attachment, zero_copy)
                    finally:
                        if attachment.file is not None:
                            attachment.file.close()
                    sent += 1
            except Exception as exc:
                await _finished(message, exc)
                raise
            await _finished(message, None)
            await send(
                {"type": "http.response.body", "body": message.close_delimiter, "more_body": False}
            )
        except Exception as exc:
            logger.error("MTOM message cut short after %d streamed part(s): %s", sent, exc)
            raise
        finally:
            await _close(message.parts)
            if self.background is not None:
                await self.background()


async def _finished(message: StreamedMessage, failure: BaseException | None) -> None:
    if message.finished is None:
        return
    try:
        waited = message.finished(failure)
        if inspect.isawaitable(waited):
            await waited
    except Exception:  # an observer never changes the answer
        logger.exception("the observer of a streamed message failed")


async def _close(parts: AsyncIterator[OutgoingAttachment]) -> None:
    aclose = getattr(parts, "aclose", None)
    if aclose is not None:
        await aclose()


__all__ = ["StreamedMessage", "StreamedMessageResponse", "streamed_mtom_message"]
