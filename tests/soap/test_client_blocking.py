"""``SoapClient.call_sync`` against a real HTTP server (uvicorn): its connections kept
alive between calls and shared by threads, dropped once idle for ``KEEPALIVE_EXPIRY``;
MTOM both ways and faults as ``call`` has them."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from lxml import etree
from soap_echo import ECHO, NS, PATH, UPLOAD, make_app, upload_body

from soap.client import KEEPALIVE_EXPIRY, SoapClient
from soap.faults import FaultCode, SoapFault
from soap.limits import Limits
from soap.message import OutgoingAttachment


class Served:
    """The echo service on a uvicorn thread; ``ports`` lists each request's client port
    (one per connection used)."""

    def __init__(self, limits: Limits) -> None:
        self.ports: list[int] = []
        app = make_app(limits)

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.ports.append(scope["client"][1])
            await app(scope, receive, send)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = uvicorn.Config(
            recording, host="127.0.0.1", port=self.port, lifespan="off", log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve()))
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{PATH}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def served(limits: Limits) -> Iterator[Served]:
    server = Served(limits)
    yield server
    server.stop()


def _echo(text: str) -> etree._Element:
    element = etree.Element(f"{{{NS}}}Echo", nsmap={"e": NS})
    element.text = text
    return element


def test_calls_reuse_one_connection(served: Served, limits: Limits) -> None:
    client = SoapClient(served.url, limits=limits)
    try:
        answers = [
            client.call_sync(ECHO, _echo(f"n{n}"), mtom=False).body.findtext(f"{{{NS}}}Echo")
            for n in range(3)
        ]
    finally:
        client.close()
    assert answers == ["n0", "n1", "n2"]
    assert len(served.ports) == 3 and len(set(served.ports)) == 1


def test_threads_share_the_client(served: Served, limits: Limits) -> None:
    client = SoapClient(served.url, limits=limits)
    try:
        with ThreadPoolExecutor(4) as pool:
            texts = list(
                pool.map(
                    lambda n: client.call_sync(ECHO, _echo(f"t{n}"), mtom=False).body.findtext(
                        f"{{{NS}}}Echo"
                    ),
                    range(40),
                )
            )
    finally:
        client.close()
    assert texts == [f"t{n}" for n in range(40)]
    assert len(set(served.ports)) <= 4  # at most one connection per thread at a time


def test_an_idle_connection_is_dropped_before_the_server_would(
    served: Served, limits: Limits
) -> None:
    client = SoapClient(served.url, limits=limits)
    try:
        client.call_sync(ECHO, _echo("a"), mtom=False)
        time.sleep(KEEPALIVE_EXPIRY + 0.5)
        client.call_sync(ECHO, _echo("b"), mtom=False)
    finally:
        client.close()
    assert len(set(served.ports)) == 2


def test_mtom_both_ways(served: Served, limits: Limits, tmp_path: Path) -> None:
    content = bytes(range(256)) * 4000  # 1 MB: more than one read
    path = tmp_path / "doc.bin"
    path.write_bytes(content)
    body = upload_body("doc@1")
    attachment = OutgoingAttachment("doc@1", "application/octet-stream", path, len(content))
    client = SoapClient(served.url, limits=limits)
    try:
        response = client.call_sync(UPLOAD, body, attachments=[attachment], mtom=True)
    finally:
        client.close()
    received = response.attachments["doc@1"]
    assert (received.sha1, received.path.read_bytes()) == (
        hashlib.sha1(content).hexdigest(),
        content,
    )


def test_a_fault_is_raised(served: Served, limits: Limits) -> None:
    client = SoapClient(served.url, limits=limits)
    try:
        with pytest.raises(SoapFault) as caught:
            client.call_sync("urn:example:Unknown", _echo("x"), mtom=False)
        # and the connection is still usable
        assert (
            client.call_sync(ECHO, _echo("after"), mtom=False).body.findtext(f"{{{NS}}}Echo")
            == "after"
        )
    finally:
        client.close()
    assert (caught.value.code, caught.value.http_status) == (FaultCode.SENDER, 400)
