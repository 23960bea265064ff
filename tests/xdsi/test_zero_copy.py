"""xdsi/zero_copy.py: the ASGI Zero Copy Send and Path Send extensions on a real socket.

A uvicorn server with xdsi's protocol, on asyncio's and on uvloop's event loop, answers
from a small ASGI app that mixes body chunks with file ranges; the client reads the
raw HTTP/1.1 bytes.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import uvloop

from soap.mtom_response import PATH_SEND, ZERO_COPY_SEND
from xdsi.header_timeout import header_timeout_protocol
from xdsi.zero_copy import (
    LOCAL_COPY_MAX,
    NOWAIT_READ_MAX,
    _read_cached,
    is_local_peer,
    sends_by_sendfile,
)

CONTENT = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes
EVICT_ATTEMPTS = 10  # fadvise(DONTNEED) asked this many times before a skip

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,  # the transports ``xdsi serve`` runs on
}


@pytest.fixture(params=sorted(LOOPS))
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[None]], None]:
    """Run a scenario to its end on each event loop."""

    def run_on_loop(scenario: Awaitable[None]) -> None:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            runner.run(scenario)  # type: ignore[arg-type]

    return run_on_loop


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(CONTENT)
    return path


async def _serve(app: App, sendfile: str = "always") -> AsyncIterator[int]:
    """A server on 127.0.0.1: its clients are local, so ``auto`` would copy every file
    this module sends, and the sendfile paths are what most of it is about."""
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        http=header_timeout_protocol(None, sendfile=sendfile),
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await serving


async def _exchange(port: int, method: str = "GET") -> tuple[bytes, bytes]:
    """One request on its own connection; (head, body) as the server sent them."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def _range_app(blob: Path, seen: list[dict[str, Any]]) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope.get("extensions", {}))
        length = 6 + 1000 + 4 + 5
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(length).encode())],
            }
        )
        await send({"type": "http.response.body", "body": b"begin|", "more_body": True})
        with blob.open("rb") as file:
            await send(
                {
                    "type": ZERO_COPY_SEND,
                    "file": file,
                    "offset": 300,
                    "count": 1000,
                    "more_body": True,
                }
            )
            file.seek(len(CONTENT) - 4)  # no offset: from the file's position
            await send({"type": ZERO_COPY_SEND, "file": file, "more_body": True})
            assert file.tell() == len(CONTENT)
        await send({"type": "http.response.body", "body": b"|end.", "more_body": False})

    return app


def _path_send_app(path: Path, ended: list[str] | None = None) -> App:
    """The whole of ``path`` by Path Send; each request's path put in ``ended`` once its
    send is over, however it ended."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", str(path.stat().st_size).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        try:
            await send({"type": PATH_SEND, "path": str(path)})
        finally:
            if ended is not None:
                ended.append(scope["path"])

    return app


def test_file_ranges_come_between_body_chunks(
    blob: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_file_ranges_come_between_body_chunks(blob))


async def _file_ranges_come_between_body_chunks(blob: Path) -> None:
    seen: list[dict[str, Any]] = []
    async for port in _serve(_range_app(blob, seen)):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"begin|" + CONTENT[300:1300] + b"tail" + b"|end."
        head, body = await _exchange(port, "HEAD")
        assert head.startswith(b"HTTP/1.1 200") and body == b""
    assert ZERO_COPY_SEND in seen[0] and PATH_SEND in seen[0]


def test_a_whole_file_by_path_without_a_content_length_is_chunked(
    blob: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_a_whole_file_by_path_without_a_content_length_is_chunked(blob))


async def _a_whole_file_by_path_without_a_content_length_is_chunked(blob: Path) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": PATH_SEND, "path": str(blob)})

    async for port in _serve(app):
        head, body = await _exchange(port)
        assert b"transfer-encoding: chunked" in head.lower()
        assert body == b"%x\r\n" % len(CONTENT) + CONTENT + b"\r\n0\r\n\r\n"


def test_a_range_longer_than_the_content_length_is_refused(
    blob: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_a_range_longer_than_the_content_length_is_refused(blob))


async def _a_range_longer_than_the_content_length_is_refused(blob: Path) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        with blob.open("rb") as file:
            await send({"type": ZERO_COPY_SEND, "file": file, "offset": 0, "count": 11})

    async for port in _serve(app):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b""  # nothing of the range went out; the connection was closed


def test_a_file_shorter_than_its_range_ends_the_connection(
    blob: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_a_file_shorter_than_its_range_ends_the_connection(blob))


async def _a_file_shorter_than_its_range_ends_the_connection(blob: Path) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        length = len(CONTENT) + 100
        headers = [(b"content-length", str(length).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        with blob.open("rb") as file:
            await send({"type": ZERO_COPY_SEND, "file": file, "offset": 0, "count": length})

    async for port in _serve(app):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == CONTENT  # what there was, then the close: the client sees it short


def test_clients_that_do_not_read_hold_up_no_other(
    tmp_path: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_clients_that_do_not_read_hold_up_no_other(tmp_path))


async def _clients_that_do_not_read_hold_up_no_other(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(CONTENT * 24)  # more than loopback socket buffers hold

    async for port in _serve(_path_send_app(big)):
        stalled = []
        for _ in range(12):  # more than a default thread pool's workers
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(writer)
        await asyncio.sleep(0.5)
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200") and body == CONTENT * 24
        for writer in stalled:
            writer.transport.abort()


def test_a_file_larger_than_the_socket_buffer_goes_out_whole_from_the_loop(
    tmp_path: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_a_file_larger_than_the_socket_buffer_goes_out_whole_from_the_loop(tmp_path))


async def _a_file_larger_than_the_socket_buffer_goes_out_whole_from_the_loop(
    tmp_path: Path,
) -> None:
    from xdsi.zero_copy import LOOP_SENDFILE_MAX

    # more than loopback socket buffers hold, not more than the event loop sends itself
    size = LOOP_SENDFILE_MAX - 3
    blob = tmp_path / "instance.bin"
    blob.write_bytes((CONTENT * (size // len(CONTENT) + 1))[:size])

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", str(size + 2).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"<", "more_body": True})
        with blob.open("rb") as file:
            await send(
                {
                    "type": ZERO_COPY_SEND,
                    "file": file,
                    "offset": 0,
                    "count": size,
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b">", "more_body": False})

    async for port in _serve(app):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = bytearray()
        while chunk := await asyncio.wait_for(reader.read(256 * 1024), 10):
            received += chunk
            await asyncio.sleep(0.002)  # a slow reader: the socket fills, the loop waits
        writer.close()
        _head, _, body = bytes(received).partition(b"\r\n\r\n")
        assert body == b"<" + blob.read_bytes() + b">"


def test_a_client_gone_while_the_loop_waits_ends_the_response(
    tmp_path: Path, run: Callable[[Awaitable[None]], None]
) -> None:
    run(_a_client_gone_while_the_loop_waits_ends_the_response(tmp_path))


async def _a_client_gone_while_the_loop_waits_ends_the_response(tmp_path: Path) -> None:
    blob = tmp_path / "instance.bin"
    blob.write_bytes(CONTENT * 12)  # 12 MiB: sent by the loop, more than the socket holds
    ended: list[str] = []

    async for port in _serve(_path_send_app(blob, ended)):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /gone HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.read(1024)  # the answer has begun; nothing more is read
        await asyncio.sleep(0.3)
        writer.transport.abort()
        for _ in range(100):  # the send ends: the wait for the socket to drain is over
            if ended:
                break
            await asyncio.sleep(0.05)
        assert ended == ["/gone"]
        head, body = await _exchange(port)  # and the server goes on serving
        assert head.startswith(b"HTTP/1.1 200") and body == blob.read_bytes()


# --- [server] sendfile ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "local_peer", "length", "expected"),
    [
        ("always", True, 1, True),
        ("always", False, LOCAL_COPY_MAX + 1, True),
        ("never", False, LOCAL_COPY_MAX + 1, False),
        ("never", True, 1, False),
        ("auto", False, 1, True),  # a remote reader: no copy is saved by copying
        ("auto", True, 1, False),
        ("auto", True, LOCAL_COPY_MAX, False),
        ("auto", True, LOCAL_COPY_MAX + 1, True),  # a large file: sendfile even so
    ],
)
def test_sendfile_mode_chooses_by_peer_and_size(
    mode: str, local_peer: bool, length: int, expected: bool
) -> None:
    assert sends_by_sendfile(mode, local_peer, length) is expected


class _Transport(asyncio.BaseTransport):
    def __init__(self, peer: object, own: object) -> None:
        super().__init__({"peername": peer, "sockname": own})


@pytest.mark.parametrize(
    ("peer", "own", "expected"),
    [
        (("127.0.0.1", 5000), ("127.0.0.1", 80), True),
        (("127.8.0.3", 5000), ("127.0.0.1", 80), True),
        (("::1", 5000, 0, 0), ("::1", 80, 0, 0), True),
        (("::ffff:127.0.0.1", 5000, 0, 0), ("::", 80, 0, 0), True),
        (("192.0.2.7", 5000), ("192.0.2.7", 80), True),  # this host's own address
        (("192.0.2.8", 5000), ("192.0.2.7", 80), False),
        (("2001:db8::8", 5000, 0, 0), ("2001:db8::7", 80, 0, 0), False),
        ("/run/xdsi.sock", "", False),  # not an IP peer
        (None, None, False),
    ],
)
def test_a_peer_is_local_on_loopback_or_at_the_connections_own_address(
    peer: object, own: object, expected: bool
) -> None:
    assert is_local_peer(_Transport(peer, own)) is expected


@pytest.mark.parametrize("mode", ["auto", "never", "always"])
def test_each_sendfile_mode_sends_the_same_bytes_its_own_way(
    mode: str, blob: Path, run: Callable[[Awaitable[None]], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    sendfile = os.sendfile

    def counted(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        calls.append(count)
        return sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", counted)
    run(_each_sendfile_mode_sends_the_same_bytes(blob, mode))
    # the client is on 127.0.0.1 and the files are small: auto copies them
    assert bool(calls) is (mode == "always")


async def _each_sendfile_mode_sends_the_same_bytes(blob: Path, mode: str) -> None:
    async for port in _serve(_range_app(blob, []), sendfile=mode):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"begin|" + CONTENT[300:1300] + b"tail" + b"|end."
    async for port in _serve(_path_send_app(blob), sendfile=mode):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200") and body == CONTENT


def test_a_small_range_in_the_page_cache_is_read_by_the_loop_and_others_by_a_thread(
    blob: Path, run: Callable[[Awaitable[None]], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    threaded: list[int] = []
    pread = os.pread

    def counted(fd: int, size: int, offset: int) -> bytes:
        threaded.append(size)
        return pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", counted)
    # the small ranges of the range app: read at once, no thread
    run(_ranges_sent(blob))
    assert threaded == []
    # the whole blob (more than NOWAIT_READ_MAX): read by a thread
    run(_path_sent(blob))
    assert sum(threaded) == len(CONTENT) > NOWAIT_READ_MAX
    # out of the page cache: the small ranges are read by a thread as well
    threaded.clear()
    with blob.open("rb") as file:
        # the kernel may keep a page a moment longer (writeback, a busy machine): asked
        # again, a little later each time, before concluding it never lets go
        for attempt in range(EVICT_ATTEMPTS):
            os.fsync(file.fileno())
            os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            if _read_cached(file.fileno(), 4096, 0) is None:
                break
            time.sleep(0.05 * (attempt + 1))
        else:
            pytest.skip("this file system keeps the file in memory (tmpfs?)")
    run(_ranges_sent(blob))
    assert threaded, "nothing was left for a thread: the pages stayed cached"


async def _ranges_sent(blob: Path) -> None:
    async for port in _serve(_range_app(blob, []), sendfile="never"):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"begin|" + CONTENT[300:1300] + b"tail" + b"|end."


async def _path_sent(blob: Path) -> None:
    async for port in _serve(_path_send_app(blob), sendfile="never"):
        head, body = await _exchange(port)
        assert head.startswith(b"HTTP/1.1 200") and body == CONTENT
