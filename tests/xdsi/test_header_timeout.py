"""xdsi/header_timeout.py: a client that does not finish its headers in time is cut off."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import pytest
import uvicorn

from xdsi.header_timeout import header_timeout_protocol

HEADER_TIMEOUT = 0.3


async def ok(scope, receive, send) -> None:  # noqa: ANN001 - an ASGI app
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def port() -> AsyncIterator[int]:
    port = _free_port()
    config = uvicorn.Config(
        ok,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        http=header_timeout_protocol(HEADER_TIMEOUT),
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield port
    server.should_exit = True
    await serving


async def _read_all(reader: asyncio.StreamReader, limit: float) -> bytes:
    return await asyncio.wait_for(reader.read(), limit)


async def test_headers_dripped_slower_than_the_bound_get_408_and_a_close(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for _ in range(3):  # a header line now and then keeps the connection busy, not open
        await asyncio.sleep(HEADER_TIMEOUT / 4)
        writer.write(b"X-Slow: 1\r\n")
    answer = await _read_all(reader, 5.0)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < HEADER_TIMEOUT * 5
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = await _read_all(reader, 5.0)
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_headers_in_time_are_answered(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await _read_all(reader, 5.0)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b"ok")
    writer.close()


async def test_a_slow_body_is_not_the_header_bound(port: int) -> None:
    # the body is the SOAP layer's read_timeout: once the headers are in, this bound is off
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n")
    await asyncio.sleep(HEADER_TIMEOUT * 2)
    writer.write(b"hi")
    answer = await _read_all(reader, 5.0)
    assert answer.startswith(b"HTTP/1.1 200 ")
    writer.close()


async def test_the_next_request_on_a_kept_alive_connection_is_bounded_too(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b"ok"), 5.0)
    assert first.startswith(b"HTTP/1.1 200 ")
    await asyncio.sleep(HEADER_TIMEOUT * 2)  # longer than the bound, idle: keep-alive's
    writer.write(b"GET / HTTP/1.1\r\n")  # then a request that never ends its headers
    answer = await _read_all(reader, 5.0)
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()
