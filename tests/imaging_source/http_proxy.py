"""A real TCP proxy in front of an HTTP server (Orthanc), to see what xdsi asks of a
PACS and to break the answers the way networks and PACS break them.

One request per connection: the proxy reads a request head (GET, no body), records its
target, asks the server to close after answering (``Connection: close``) and passes the
response back byte for byte - unless ``fault`` picks a :class:`Fault` for that target:
the response's body is then cut short after ``limit`` bytes (the connection reset, or
closed as if the body were complete) or its first ``old`` replaced by ``new``.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from http_fixtures import request_head


@dataclass(frozen=True)
class Fault:
    limit: int | None = None  # body bytes passed before the connection ends
    reset: bool = False  # end it with a reset (RST), not a close (FIN)
    old: bytes = b""  # replaced by ``new`` once, where it first occurs in the body
    new: bytes = b""


class RecordingProxy:
    def __init__(self, upstream: str, port: int) -> None:
        self.upstream = (upstream, port)
        self.targets: list[str] = []
        self.fault: Callable[[str], Fault | None] = lambda target: None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._closed = False
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = request_head(client)
            if head is None:
                return
            request_line, *fields = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            target = request_line.split(" ")[1]
            self.targets.append(target)
            kept = [f for f in fields if not f.lower().startswith("connection:")]
            request = "\r\n".join([request_line, *kept, "Connection: close", "", ""])
            fault = self.fault(target)
            with socket.create_connection(self.upstream) as server:
                server.sendall(request.encode("latin-1"))
                self._pass(server, client, fault)

    def _pass(self, server: socket.socket, client: socket.socket, fault: Fault | None) -> None:
        head = b""
        for data in _received(server):  # the response head, passed as it is
            head += data
            if b"\r\n\r\n" in head:
                break
        head, _, body = head.partition(b"\r\n\r\n")
        client.sendall(head + b"\r\n\r\n")
        passed = 0
        pending = b""  # what the body has that is not passed yet
        old = fault.old if fault else b""
        for data in _chain(body, _received(server)):
            pending += data
            if old and old in pending:
                pending = pending.replace(old, fault.new if fault else b"", 1)
                old = b""
            ready = pending if not old else pending[: max(0, len(pending) - len(old) + 1)]
            pending = pending[len(ready) :]
            if fault and fault.limit is not None and passed + len(ready) >= fault.limit:
                client.sendall(ready[: fault.limit - passed])
                if fault.reset:  # SO_LINGER 0: close sends RST
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            client.sendall(ready)
            passed += len(ready)
        with contextlib.suppress(OSError):
            client.sendall(pending)


def _received(sock: socket.socket) -> Iterator[bytes]:
    while data := sock.recv(1 << 20):
        yield data


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest
