"""The benchmarks' HTTP client: whole answers over one kept-alive connection, opened
again when the server closed it while idle."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from common import KeptAlive  # noqa: E402


class _Echo(BaseHTTPRequestHandler):
    """Answers a POST with its body reversed and the client's port; keeps the
    connection open unless the request asks the server to close it afterwards."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 - the handler's name is the method's
        body = self.rfile.read(int(self.headers["Content-Length"]))
        answer = body[::-1] + b" %d" % self.client_address[1]
        self.send_response(201)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if self.headers.get("X-Close-After") == "yes":
            self.close_connection = True  # the server ends the kept-alive connection

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_answers_whole_and_reuses_the_connection(echo: str) -> None:
    with KeptAlive(echo) as client:
        status, first = client.post("/x", b"abc", {"Content-Type": "text/plain"})
        _, second = client.post("/x", b"defg", {})
    assert status == 201
    assert first.startswith(b"cba ") and second.startswith(b"gfed ")
    assert first.split()[1] == second.split()[1]  # the same client port: one connection


def test_opens_again_after_the_server_closed_an_idle_connection(echo: str) -> None:
    with KeptAlive(echo) as client:
        _, first = client.post("/x", b"abc", {"X-Close-After": "yes"})
        _, second = client.post("/x", b"abc", {})
    assert second.startswith(b"cba ")
    assert first.split()[1] != second.split()[1]  # a new connection


def test_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match="http://"):
        KeptAlive("https://127.0.0.1:1")
