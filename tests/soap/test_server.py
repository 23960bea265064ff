"""The echo service on a real uvicorn server (127.0.0.1, free port), driven by SoapClient."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from lxml import etree
from soap_echo import ECHO, NS, PATH, UPLOAD

from soap.client import SoapClient
from soap.message import OutgoingAttachment

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    spool = tmp_path_factory.mktemp("server-spool")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    process = subprocess.Popen(
        [sys.executable, str(HERE / "soap_echo.py"), str(port), str(spool)], cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(base + "/rss", timeout=1).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("echo server did not start") from None
                time.sleep(0.05)
        yield base, spool
    finally:
        process.terminate()
        process.wait(timeout=10)


def echo_body(text: str) -> etree._Element:
    element = etree.Element(f"{{{NS}}}Echo", nsmap={"e": NS})
    element.text = text
    return element


def upload_body(cid: str) -> etree._Element:
    body = etree.Element(f"{{{NS}}}Upload", nsmap={"e": NS})
    data = etree.SubElement(body, f"{{{NS}}}Data")
    include = etree.SubElement(data, "{http://www.w3.org/2004/08/xop/include}Include")
    include.set("href", "cid:" + cid.replace("@", "%40"))
    return body


async def test_echo_over_network(server):
    base, _ = server
    response = await SoapClient(base + PATH).call(ECHO, echo_body("net"), mtom=False)
    assert response.body.findtext(f"{{{NS}}}Echo") == "net"


@pytest.mark.slow
async def test_200_mib_round_trip_keeps_server_memory_flat(server, tmp_path):
    base, spool = server
    size = 200 * MiB
    path = tmp_path / "big.bin"
    digest = hashlib.sha1()
    block = os.urandom(MiB)
    with path.open("wb") as file:
        for i in range(size // MiB):
            chunk = block[i:] + block[:i]
            digest.update(chunk)
            file.write(chunk)
    before = httpx.get(base + "/rss").json()["peak_kib"]

    attachment = OutgoingAttachment("big@1", "application/octet-stream", path, size)
    response = await SoapClient(base + PATH).call(
        UPLOAD, upload_body("big@1"), attachments=[attachment], mtom=True
    )
    received = response.attachments["big@1"]
    after = httpx.get(base + "/rss").json()["peak_kib"]
    received.path.unlink()

    assert (received.size, received.sha1) == (size, digest.hexdigest())
    assert (after - before) * 1024 < 100 * MiB


async def test_request_parts_deleted_after_response(server, tmp_path):
    base, spool = server
    path = tmp_path / "doc.bin"
    path.write_bytes(b"x" * 100_000)
    attachment = OutgoingAttachment("doc@1", "application/octet-stream", path, 100_000)
    response = await SoapClient(base + PATH).call(
        UPLOAD, upload_body("doc@1"), attachments=[attachment], mtom=True
    )
    response.attachments["doc@1"].path.unlink()
    deadline = time.monotonic() + 5  # deleted by a task that runs after the last byte
    while list(spool.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(spool.iterdir()) == []
