"""xdsi/request_body.py: request bodies reach the application intact, in order, without
uvicorn's copies - on a real socket, with xdsi's protocol, on asyncio and uvloop."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from typing import Any

import pytest
import uvicorn
import uvloop

from xdsi.header_timeout import header_timeout_protocol
from xdsi.request_body import BUFFER_LIMIT

BODY = bytes(range(251)) * 20_000  # ~4.8 MiB, not a multiple of any read size


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Echo:
    """Answers with the SHA-1 of the body and how many http.request messages made it."""

    def __init__(self) -> None:
        self.messages: list[int] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        digest, sizes = hashlib.sha1(), []
        while True:
            message = await receive()
            assert message["type"] == "http.request"
            assert isinstance(message["body"], bytes)
            digest.update(message["body"])
            sizes.append(len(message["body"]))
            await asyncio.sleep(0)  # let the protocol receive more meanwhile
            if not message.get("more_body"):
                break
        self.messages = sizes
        answer = f"{digest.hexdigest()} {len(sizes)}".encode()
        headers = [(b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


async def _scenario(expect_continue: bool) -> tuple[bytes, list[int]]:
    app, port = _Echo(), _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="off", log_level="warning",
        http=header_timeout_protocol(None),
    )  # fmt: skip
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n"
        if expect_continue:
            head += "Expect: 100-continue\r\n"
        writer.write((head + "Connection: close\r\n\r\n").encode())
        if expect_continue:
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert interim.startswith(b"HTTP/1.1 100 Continue")
        for start in range(0, len(BODY), 70_001):  # odd-sized writes
            writer.write(BODY[start : start + 70_001])
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        return answer.split(b"\r\n\r\n")[-1], app.messages
    finally:
        server.should_exit = True
        await serving


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
@pytest.mark.parametrize("expect_continue", [False, True])
def test_a_large_body_arrives_whole_and_in_order(loop: str, expect_continue: bool) -> None:
    factory = asyncio.new_event_loop if loop == "asyncio" else uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        answer, sizes = runner.run(_scenario(expect_continue))
    digest, count = answer.decode().split()
    assert digest == hashlib.sha1(BODY).hexdigest()
    assert int(count) == len(sizes) > 1  # streamed, not held until complete
    assert sum(sizes) == len(BODY)
    # reading pauses once BUFFER_LIMIT is waiting: no message is much larger
    assert max(sizes) <= BUFFER_LIMIT + 512 * 1024
