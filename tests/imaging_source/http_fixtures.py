"""HTTP/1.1 as it comes off the wire, for ``imaging_source.wado_retrieve``: a body given
in pieces of a chosen size, and a real TCP server answering with canned raw bytes."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from imaging_source.wado_retrieve import Response


def request_head(conn: socket.socket) -> bytes | None:
    """An HTTP request's head as received (through its empty line, and whatever came
    with it); None when the connection ends first."""
    head = b""
    while b"\r\n\r\n" not in head:
        data = conn.recv(65536)
        if not data:
            return None
        head += data
    return head


class BytesBody:
    """A body read ``chunk`` bytes at most at a time."""

    def __init__(self, data: bytes, chunk: int) -> None:
        self.data, self.chunk, self.at = data, chunk, 0

    def readinto(self, view: memoryview) -> int:
        n = min(len(view), self.chunk, len(self.data) - self.at)
        view[:n] = self.data[self.at : self.at + n]
        self.at += n
        return n


def BytesResponse(data: bytes, chunk: int) -> Response:  # noqa: N802 - reads as a type
    return Response(200, {}, BytesBody(data, chunk), reusable=False)


def multipart(parts: Sequence[bytes], boundary: str, *, preamble: bytes = b"") -> bytes:
    """A multipart/related body (RFC 2046 5.1.1) of ``parts``."""
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
        for part in parts
    )
    return preamble + body + f"--{boundary}--\r\n".encode()


@dataclass
class CannedServer:
    """Answers the requests of each connection with the next of ``answers``: raw bytes,
    or a callable given the socket (to send slowly, reset, ...).  A connection is
    closed after ``per_connection`` answers.  Each request head is recorded."""

    answers: list[bytes | Callable[[socket.socket], None]]
    per_connection: int = 1
    tls: ssl.SSLContext | None = None  # the server side of TLS on every connection
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("localhost", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://localhost:{self.port}"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        self._thread.join(10)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:  # the client refused the handshake
                conn.close()
                return
        with conn, contextlib.suppress(OSError):
            for _ in range(self.per_connection):
                head = request_head(conn)
                if head is None or not self.answers:
                    return
                self.requests.append(head)
                answer = self.answers.pop(0)
                if callable(answer):
                    answer(conn)
                else:
                    conn.sendall(answer)
