"""MLLP: the Minimal Lower Layer Protocol that carries HL7 v2 over TCP.

Framing (HL7 v2.5 Implementation Guide, Appendix C "Lower Layer Protocols"; ITI TF-2x
C.2.1): a message is sent as ``<VT> message <FS><CR>``, i.e. ``0x0B ... 0x1C 0x0D``.
One connection carries any number of messages, each answered before the next is read
(original acknowledgement mode).

``FrameDecoder`` is the framing alone, without I/O, so every edge (split reads, junk
between frames, oversized messages) is testable byte by byte.  ``serve_mllp`` runs it
on an asyncio server in the caller's event loop; ``send_mllp`` and ``send_mllp_async``
are the client.  The server knows nothing of HL7: it hands each payload to a handler
and writes back whatever bytes the handler returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import ssl as ssl_module
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
_READ_SIZE = 64 * 1024


class MllpError(Exception):
    """A peer broke MLLP: unframeable input, a timeout, or a connection lost mid-exchange."""


class FramingError(MllpError):
    """The byte stream cannot be framed; the connection is closed."""


@dataclass(frozen=True, slots=True)
class MllpLimits:
    """Caps that keep one peer from holding memory, a connection or a thread forever."""

    max_message_bytes: int = 1 << 20
    # bytes outside any frame (between FS/CR and the next VT) before the stream is unframeable
    max_garbage_bytes: int = 4096
    # waiting for the next message on an open connection
    idle_timeout: float = 60.0
    # from the start block of a message to its end block
    frame_timeout: float = 30.0
    write_timeout: float = 10.0
    max_connections: int = 128
    # how much of an oversized message is kept so that it can still be answered
    head_bytes: int = 4096


@dataclass(frozen=True, slots=True)
class Frame:
    """One framed payload; ``truncated`` when it exceeded the cap and only its head is kept."""

    payload: bytes
    truncated: bool = False
    size: int = 0


def wrap(message: bytes) -> bytes:
    """``<VT> message <FS><CR>``."""
    return bytes([START_BLOCK]) + message + bytes([END_BLOCK, CARRIAGE_RETURN])


@dataclass(slots=True)
class FrameDecoder:
    """Incremental MLLP deframer: ``feed`` bytes as they arrive, get whole frames back.

    Tolerated: the CR after FS missing, bytes between frames (up to the garbage cap), a
    VT inside a frame (the unfinished frame is dropped and a new one starts).  Raises
    ``FramingError`` when the garbage cap is exceeded.
    """

    limits: MllpLimits = field(default_factory=MllpLimits)
    _buffer: bytearray = field(default_factory=bytearray)
    _in_frame: bool = False
    _size: int = 0
    _garbage: int = 0
    _after_end: bool = False

    @property
    def in_frame(self) -> bool:
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        i, n = 0, len(data)
        while i < n:
            if not self._in_frame:
                if self._after_end and data[i] == CARRIAGE_RETURN:
                    i += 1
                self._after_end = False
                start = data.find(START_BLOCK, i)
                stop = n if start < 0 else start
                self._garbage += stop - i
                if self._garbage > self.limits.max_garbage_bytes:
                    raise FramingError(f"{self._garbage} bytes outside any MLLP frame")
                if start < 0:
                    break
                self._begin()
                i = start + 1
                continue
            end = data.find(END_BLOCK, i)
            restart = data.find(START_BLOCK, i, n if end < 0 else end)
            if restart >= 0:
                log.debug("MLLP start block inside a frame; dropping %d bytes", self._size)
                self._begin()
                i = restart + 1
                continue
            stop = n if end < 0 else end
            self._append(data[i:stop])
            if end < 0:
                break
            frames.append(self._finish())
            i = end + 1
        return frames

    def _begin(self) -> None:
        self._in_frame = True
        self._buffer.clear()
        self._size = 0
        self._garbage = 0

    def _append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self.limits.max_message_bytes:
            self._buffer += chunk
        elif len(self._buffer) > self.limits.head_bytes:
            del self._buffer[self.limits.head_bytes :]
        else:
            self._buffer += chunk[: self.limits.head_bytes - len(self._buffer)]

    def _finish(self) -> Frame:
        truncated = self._size > self.limits.max_message_bytes
        frame = Frame(bytes(self._buffer), truncated, self._size)
        self._in_frame = False
        self._after_end = True
        self._buffer.clear()
        return frame


# --- server ---------------------------------------------------------------------------

Handler = Callable[[bytes], "bytes | Awaitable[bytes]"]
# Builds the answer to a frame the server will not hand to the handler (oversized, or the
# handler failed): (head of the payload, reason) -> reply bytes.
Refuse = Callable[[bytes, str], bytes]


@dataclass(slots=True)
class _Connections:
    handler: Handler
    limits: MllpLimits
    refuse: Refuse | None
    active: int = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.active >= self.limits.max_connections:
            log.warning("MLLP connection from %s refused: %d open", peer, self.active)
            await _close(writer)
            return
        self.active += 1
        try:
            await self._serve(reader, writer)
        except (MllpError, TimeoutError, ConnectionError, ssl_module.SSLError) as exc:
            log.info("MLLP connection from %s closed: %s", peer, exc or type(exc).__name__)
        finally:
            self.active -= 1
            await _close(writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        decoder = FrameDecoder(self.limits)
        deadline: float | None = None
        while True:
            timeout = self.limits.idle_timeout if deadline is None else deadline - loop.time()
            data = await asyncio.wait_for(reader.read(_READ_SIZE), max(timeout, 0.0))
            if not data:
                return
            for frame in decoder.feed(data):
                reply = await self._answer(frame)
                if reply is None:
                    return
                writer.write(wrap(reply))
                await asyncio.wait_for(writer.drain(), self.limits.write_timeout)
            if not decoder.in_frame:
                deadline = None
            elif deadline is None:
                deadline = loop.time() + self.limits.frame_timeout

    async def _answer(self, frame: Frame) -> bytes | None:
        if frame.truncated:
            reason = f"message of {frame.size} bytes exceeds {self.limits.max_message_bytes}"
            log.warning("MLLP %s", reason)
            return self.refuse(frame.payload, reason) if self.refuse else None
        try:
            if _is_async(self.handler):
                return await self.handler(frame.payload)  # type: ignore[misc]
            return await asyncio.to_thread(self.handler, frame.payload)  # type: ignore[arg-type]
        except Exception:
            log.exception("MLLP handler failed")
            if self.refuse is None:
                return None
            return self.refuse(frame.payload[: self.limits.head_bytes], "internal error")


def _is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        type(handler).__call__
    )


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(TimeoutError, ConnectionError, ssl_module.SSLError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)


async def serve_mllp(
    host: str,
    port: int,
    handler: Handler,
    *,
    limits: MllpLimits | None = None,
    refuse: Refuse | None = None,
    ssl: ssl_module.SSLContext | None = None,
) -> asyncio.Server:
    """Listen for MLLP in the running event loop; returns the started ``asyncio.Server``.

    ``handler`` gets each payload and returns the reply payload.  A plain function runs
    in a worker thread (it does database work); a coroutine function runs in the loop.
    Messages on one connection are answered in order.  ``port=0`` picks a free port.
    """
    connections = _Connections(handler, limits or MllpLimits(), refuse)
    return await asyncio.start_server(connections, host, port, ssl=ssl)


# --- client ---------------------------------------------------------------------------


def send_mllp(
    host: str,
    port: int,
    message: bytes,
    timeout: float = 10.0,
    *,
    ssl: ssl_module.SSLContext | None = None,
    max_reply_bytes: int = 1 << 20,
) -> bytes:
    """Send one message on a new connection and return the payload of the reply frame."""
    deadline = time.monotonic() + timeout
    decoder = FrameDecoder(MllpLimits(max_message_bytes=max_reply_bytes))
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            sock = ssl.wrap_socket(raw, server_hostname=host) if ssl else raw
            with sock:
                sock.sendall(wrap(message))
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise MllpError(f"no reply from {host}:{port} within {timeout}s")
                    sock.settimeout(remaining)
                    data = sock.recv(_READ_SIZE)
                    if not data:
                        raise MllpError(f"{host}:{port} closed the connection without a reply")
                    if reply := _first(decoder.feed(data)):
                        return reply
    except TimeoutError as exc:
        raise MllpError(f"no reply from {host}:{port} within {timeout}s") from exc
    except OSError as exc:
        raise MllpError(f"exchange with {host}:{port} failed: {exc}") from exc


async def send_mllp_async(
    host: str,
    port: int,
    message: bytes,
    timeout: float = 10.0,
    *,
    ssl: ssl_module.SSLContext | None = None,
    max_reply_bytes: int = 1 << 20,
) -> bytes:
    """``send_mllp`` for code already running in an event loop."""
    try:
        return await asyncio.wait_for(_exchange(host, port, message, ssl, max_reply_bytes), timeout)
    except TimeoutError as exc:
        raise MllpError(f"no reply from {host}:{port} within {timeout}s") from exc
    except OSError as exc:
        raise MllpError(f"exchange with {host}:{port} failed: {exc}") from exc


async def _exchange(
    host: str, port: int, message: bytes, ssl: ssl_module.SSLContext | None, max_reply: int
) -> bytes:
    reader, writer = await asyncio.open_connection(host, port, ssl=ssl)
    decoder = FrameDecoder(MllpLimits(max_message_bytes=max_reply))
    try:
        writer.write(wrap(message))
        await writer.drain()
        while data := await reader.read(_READ_SIZE):
            if reply := _first(decoder.feed(data)):
                return reply
        raise MllpError(f"{host}:{port} closed the connection without a reply")
    finally:
        await _close(writer)


def _first(frames: list[Frame]) -> bytes | None:
    if not frames:
        return None
    if frames[0].truncated:
        raise MllpError(f"reply of {frames[0].size} bytes exceeds the cap")
    return frames[0].payload


__all__ = [
    "CARRIAGE_RETURN",
    "END_BLOCK",
    "START_BLOCK",
    "Frame",
    "FrameDecoder",
    "FramingError",
    "Handler",
    "MllpError",
    "MllpLimits",
    "Refuse",
    "send_mllp",
    "send_mllp_async",
    "serve_mllp",
    "wrap",
]
