"""ASGI Zero Copy Send and Path Send in uvicorn's HTTP/1.1 protocol.

The ASGI extensions ``http.response.zerocopysend`` (a byte range of an open file, which
may come between ordinary ``http.response.body`` messages, any number of times) and
``http.response.pathsend`` (a whole file by its path, ending the response) are named in
every request's ``scope["extensions"]`` by :class:`ZeroCopySendProtocol`; the MTOM
writer (``soap.mtom_response``) sends each document part with the first, so a
multi-gigabyte ITI-43 response never passes through Python.

On a plain TCP connection the bytes move with ``os.sendfile`` from the file to the
socket: whatever the transport still holds is flushed first; a file of up to
:data:`LOOP_SENDFILE_MAX` bytes is then sent by the event loop, as much at a time as
the socket's buffer takes (a RAD-69 answer is hundreds of such files), and a larger one
by a thread of the transfer's own calling ``sendfile`` on a duplicate of the socket's
descriptor, waiting with ``poll`` whenever the non-blocking socket is full (uvloop's
``loop.sendfile`` is not implemented).  The event loop keeps reading the connection
meanwhile; a closed connection ends the wait of either, and a client that goes away
mid-file ends the response (the connection is aborted, the application's later messages
are dropped, as uvicorn drops them for a disconnected client).  Over TLS there is no
``sendfile``: the file is read in :data:`READ_SIZE` pieces in a worker thread, one read
ahead, and written through the transport with its flow control - except a file of at
most :data:`NOWAIT_READ_MAX` bytes that the page cache holds, which the event loop reads
at once without waiting for the disk (``RWF_NOWAIT``).

``[server] sendfile`` (:func:`sends_by_sendfile`) chooses between the two on plain TCP:
``always``; ``never`` (a file system on which ``sendfile`` is not to be trusted, as on
some network file systems); or ``auto``, the default: ``sendfile``, except for a file of
at most :data:`LOCAL_COPY_MAX` bytes to a peer on this host.  ``sendfile`` saves copies
where the bytes leave through a network interface.  To a peer on the same host they
do not: the receiving process copies them out of the page cache itself - memory not in
any CPU cache - and does the TCP receive work the sender's copies would have done.  For
the hundreds of small files of a RAD-69 answer to a local reader, that made the reader
the bottleneck (its CPU time twice that of receiving copied bytes, ``bench/imaging.py``);
a file of a gigabyte still moves faster by ``sendfile`` (``bench/documents.py``).

The Content-Length the application declared is kept exact: a range longer than what
is left of it is refused (``RuntimeError``), as uvicorn refuses a body chunk, and a
file shorter than its range aborts the connection.
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import select
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from soap.mtom_response import PATH_SEND, ZERO_COPY_SEND
from xdsi.request_body import BodyChunksProtocol

log = logging.getLogger(__name__)

READ_SIZE = 4 * 1024 * 1024  # bytes read at a time when the file goes through the transport
SENDFILE_STEP = 16 * 1024 * 1024  # bytes asked of one sendfile call
# a file no larger than this is sent by the event loop itself, a larger one by a thread
LOOP_SENDFILE_MAX = 16 * 1024 * 1024
POLL_MS = 250  # how long the sending thread waits for the socket before re-checking
# ``[server] sendfile`` "auto" (xdsi.config.SENDFILE_MODES): a file of at most this many
# bytes to a peer on this host is copied, anything else moved by sendfile
LOCAL_COPY_MAX = 16 * 1024 * 1024
# A range of at most this many bytes going through the transport is first read by the
# event loop itself, without waiting for the disk (``preadv`` with ``RWF_NOWAIT``: only
# what the page cache holds); the rest, and a longer range, is read by a worker thread.
# A RAD-69 answer is hundreds of instances of half a MB, most just written or read: a
# thread's round trip for each (0.2 ms of CPU on the machine of bench/RESULTS.md) cost
# more than the copy
NOWAIT_READ_MAX = 1024 * 1024
_ERROR_EVENTS = select.POLLERR | select.POLLHUP | select.POLLNVAL

Send = Callable[[Any], Awaitable[None]]


class FileShorterThanRange(RuntimeError):
    """The file ended before the range the application asked to send."""


def sends_by_sendfile(mode: str, local_peer: bool, length: int) -> bool:
    """Whether ``length`` bytes of a file go to the socket by ``sendfile`` (else read
    and written through the transport) under ``[server] sendfile`` ``mode``, for a peer
    on this host (``local_peer``) or elsewhere."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return not (local_peer and length <= LOCAL_COPY_MAX)


def is_local_peer(transport: asyncio.BaseTransport) -> bool:
    """The connection's peer is on this host: a loopback address, or the address the
    connection itself has on this end."""
    peer, own = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    if not isinstance(peer, tuple) or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or (isinstance(own, tuple) and bool(own) and peer[0] == own[0])


class ZeroCopySendProtocol(BodyChunksProtocol):
    """uvicorn's HTTP/1.1 protocol with the Zero Copy Send and Path Send extensions;
    ``sendfile`` is the ``[server] sendfile`` mode (:func:`sends_by_sendfile`)."""

    sendfile: str = "auto"
    _stop_sending: threading.Event | _Cancel | None = None
    _local_peer: bool | None = None

    def local_peer(self) -> bool:
        """Whether the peer is on this host (asked once per connection)."""
        if self._local_peer is None:
            self._local_peer = is_local_peer(self.transport)
        return self._local_peer

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions = self.scope.setdefault("extensions", {})  # type: ignore[typeddict-item]
        extensions[ZERO_COPY_SEND] = {}
        extensions[PATH_SEND] = {}

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # an upgrade request makes no cycle of its own: the one there is the last one's
        if cycle is not None and cycle.scope is self.scope:
            cycle.send = _FileSendingCycle(cycle, self).send  # type: ignore[method-assign]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stop_sending is not None:
            self._stop_sending.set()
        super().connection_lost(exc)


class _FileSendingCycle:
    """One request's ``send``: the two extensions here, everything else to uvicorn."""

    def __init__(self, cycle: RequestResponseCycle, protocol: ZeroCopySendProtocol) -> None:
        self._cycle = cycle
        self._protocol = protocol
        self._send: Send = cycle.send  # uvicorn's own, bound before it is replaced

    async def send(self, message: Any) -> None:
        kind = message["type"]
        if kind == ZERO_COPY_SEND:
            file = message["file"]
            await self._send_range(
                file, message.get("offset"), message.get("count"), message.get("more_body", False)
            )
        elif kind == PATH_SEND:
            with Path(message["path"]).open("rb") as file:
                await self._send_range(file, 0, None, more_body=False)
        else:
            await self._send(message)

    async def _send_range(
        self, file: IO[bytes], offset: int | None, count: int | None, more_body: bool
    ) -> None:
        cycle = self._cycle
        flow = cycle.flow
        if flow.write_paused and not cycle.disconnected:
            await flow.drain()
        if cycle.disconnected:
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(
                f"Unexpected ASGI message {ZERO_COPY_SEND!r} outside a response body"
            )
        fd = file.fileno()
        from_position = offset is None
        start = os.lseek(fd, 0, os.SEEK_CUR) if offset is None else offset
        length = os.fstat(fd).st_size - start if count is None else count
        if cycle.scope["method"] != "HEAD" and length > 0:
            if not cycle.chunked_encoding:
                if length > cycle.expected_content_length:
                    raise RuntimeError("Response content longer than Content-Length")
                cycle.expected_content_length -= length
            try:
                await self._transfer(fd, start, length)
            except (OSError, FileShorterThanRange) as exc:
                self._abort(exc)
                if isinstance(exc, FileShorterThanRange):
                    raise
                return
            if from_position:
                os.lseek(fd, start + length, os.SEEK_SET)
        if not more_body:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _transfer(self, fd: int, start: int, length: int) -> None:
        cycle, transport = self._cycle, self._cycle.transport
        chunked = bool(cycle.chunked_encoding)
        if chunked:
            transport.write(b"%x\r\n" % length)
        sock = transport.get_extra_info("socket")
        if (
            sock is None
            or transport.get_extra_info("ssl_object") is not None
            or not sends_by_sendfile(self._protocol.sendfile, self._protocol.local_peer(), length)
        ):
            await self._through_transport(fd, start, length)
        else:
            await self._sendfile(sock.fileno(), fd, start, length)
        if chunked and not cycle.disconnected:
            transport.write(b"\r\n")

    async def _flush(self) -> None:
        """Wait until the transport has written everything it was given: the file's
        bytes must follow them on the socket.  A write-buffer bound of 0 pauses the
        protocol (uvicorn's flow control) until the buffer is empty."""
        cycle, transport = self._cycle, self._cycle.transport
        while transport.get_write_buffer_size() and not cycle.disconnected:
            low, high = transport.get_write_buffer_limits()
            transport.set_write_buffer_limits(high=0, low=0)
            try:
                if cycle.flow.write_paused:
                    await cycle.flow.drain()
                else:
                    await asyncio.sleep(0)
            finally:
                if not transport.is_closing():
                    transport.set_write_buffer_limits(high=high, low=low)

    async def _sendfile(self, socket_fd: int, fd: int, start: int, length: int) -> None:
        await self._flush()
        if self._cycle.disconnected:
            raise ConnectionResetError("the client disconnected")
        if length <= LOOP_SENDFILE_MAX:
            await self._sendfile_on_loop(socket_fd, fd, start, length)
            return
        stop = threading.Event()
        self._protocol._stop_sending = stop
        # a duplicate descriptor: should the loop close the connection's own while the
        # thread sends, the number is never reused under the thread
        own = os.dup(socket_fd)
        sending = _in_own_thread(_sendfile_blocking, own, fd, start, length, stop)
        try:
            sent = await asyncio.shield(sending)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(Exception):
                await sending
            raise
        finally:
            self._protocol._stop_sending = None
        if sent < length:
            raise ConnectionResetError("the connection was closed while the file was sent")

    async def _sendfile_on_loop(self, socket_fd: int, fd: int, start: int, length: int) -> None:
        """A file of at most ``LOOP_SENDFILE_MAX`` bytes sent by the event loop: what the
        socket's send buffer takes at once, then the rest each time the socket drains
        (waited for on a duplicate of its descriptor, which the loop may watch beside
        the transport's own).  A thread per file would cost more than the file."""
        sent = _sendfile_now(socket_fd, fd, start, length)
        if sent == length:
            return
        loop = asyncio.get_running_loop()
        own = os.dup(socket_fd)  # the transport's descriptor is the transport's to watch
        try:
            while sent < length:
                drained: asyncio.Future[None] = loop.create_future()
                self._protocol._stop_sending = _Cancel(drained)
                loop.add_writer(own, _settle_once, drained)
                try:
                    await drained
                finally:
                    loop.remove_writer(own)
                    self._protocol._stop_sending = None
                sent += _sendfile_now(own, fd, start + sent, length - sent)
        finally:
            os.close(own)

    async def _through_transport(self, fd: int, start: int, length: int) -> None:
        loop = asyncio.get_running_loop()
        position, end = start, start + length
        if length <= NOWAIT_READ_MAX and (cached := _read_cached(fd, length, position)):
            position += len(cached)
            await self._write(cached)
            if position >= end:
                return

        def read_next() -> asyncio.Future[bytes]:
            return loop.run_in_executor(
                None, os.pread, fd, min(READ_SIZE, end - position), position
            )

        pending = read_next()
        try:
            while True:
                chunk = await pending
                if not chunk:
                    raise FileShorterThanRange(f"the file ends at {position}, before {end}")
                position += len(chunk)
                if position < end:
                    pending = read_next()  # read ahead while this chunk goes out
                await self._write(chunk)
                if position >= end:
                    return
        finally:
            if not pending.done():
                with contextlib.suppress(Exception):
                    await pending

    async def _write(self, chunk: bytes | bytearray) -> None:
        """``chunk`` through the transport, waiting while its flow control says so."""
        cycle = self._cycle
        cycle.transport.write(chunk)
        if cycle.flow.write_paused:
            await cycle.flow.drain()
        if cycle.disconnected:
            raise ConnectionResetError("the client disconnected")

    def _abort(self, exc: BaseException) -> None:
        """The response cannot be completed: the connection ends, the rest is dropped."""
        log.info("response to %s ended: %s", self._cycle.scope.get("client"), exc)
        self._cycle.disconnected = True
        self._cycle.keep_alive = False
        transport = self._cycle.transport
        if not transport.is_closing():
            transport.abort()


_nowait_reads = hasattr(os, "RWF_NOWAIT")  # cleared when the file system refuses them


def _read_cached(fd: int, size: int, position: int) -> bytearray | None:
    """Up to ``size`` bytes of ``fd`` at ``position`` that the page cache holds, read
    without waiting for the disk (RWF_NOWAIT, Linux); None when it holds none of them,
    at the end of the file, or where such reads are not supported."""
    global _nowait_reads
    if not _nowait_reads:
        return None
    buffer = bytearray(size)
    try:
        count = os.preadv(fd, [buffer], position, os.RWF_NOWAIT)
    except BlockingIOError:  # not in the page cache
        return None
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            _nowait_reads = False  # this kernel or file system: never
            return None
        raise
    if count == 0:
        return None
    del buffer[count:]
    return buffer


def _in_own_thread(function: Callable[..., int], *args: Any) -> asyncio.Future[int]:
    """``function(*args)`` in a thread of its own, as a future of the running loop.

    Not the loop's default executor: a transfer holds its thread as long as the client
    takes to read, and a handful of slow clients would hold every worker of a shared
    pool (the default executor has ``cpu_count + 4``)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()

    def settle(result: int | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, exc = function(*args), None
        except BaseException as raised:  # noqa: BLE001 - handed to the awaiting task
            result, exc = None, raised
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, exc)

    # the low-level start: Thread.start() blocks the event loop until the new thread
    # runs, a hand-off paid for every file (every instance of a RAD-69 answer)
    _thread.start_new_thread(run, ())
    return future


class _Cancel:
    """``set`` (the connection was lost) ends the wait for the socket to drain."""

    def __init__(self, waiting: asyncio.Future[None]) -> None:
        self._waiting = waiting

    def set(self) -> None:
        if not self._waiting.done():
            self._waiting.set_exception(ConnectionResetError("the connection was lost"))


def _settle_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _sendfile_now(socket_fd: int, fd: int, start: int, length: int) -> int:
    """As many of ``length`` bytes of ``fd`` from ``start`` as the non-blocking socket
    ``socket_fd`` takes without waiting: the kernel copies them into its send buffer
    (at most that buffer's size), the GIL released meanwhile."""
    sent = 0
    while sent < length:
        try:
            n = os.sendfile(socket_fd, fd, start + sent, min(length - sent, SENDFILE_STEP))
        except BlockingIOError:
            break
        if n == 0:
            raise FileShorterThanRange(f"the file ends at {start + sent}, before {start + length}")
        sent += n
    return sent


def _sendfile_blocking(
    socket_fd: int, fd: int, start: int, length: int, stop: threading.Event
) -> int:
    """``length`` bytes of ``fd`` from ``start`` to the non-blocking socket ``socket_fd``
    (which this function closes), waiting for the socket to drain when it is full;
    the bytes sent (fewer when ``stop`` was set)."""
    try:
        poller = select.poll()
        poller.register(socket_fd, select.POLLOUT)
        sent = 0
        while sent < length and not stop.is_set():
            try:
                n = os.sendfile(socket_fd, fd, start + sent, min(length - sent, SENDFILE_STEP))
            except BlockingIOError:
                for _fd, events in poller.poll(POLL_MS):
                    if events & _ERROR_EVENTS and not events & select.POLLOUT:
                        raise ConnectionResetError("the client's connection failed") from None
                continue
            if n == 0:
                raise FileShorterThanRange(
                    f"the file ends at {start + sent}, before {start + length}"
                )
            sent += n
        return sent
    finally:
        os.close(socket_fd)


__all__ = [
    "LOCAL_COPY_MAX",
    "LOOP_SENDFILE_MAX",
    "POLL_MS",
    "READ_SIZE",
    "SENDFILE_STEP",
    "FileShorterThanRange",
    "ZeroCopySendProtocol",
    "is_local_peer",
    "sends_by_sendfile",
]
