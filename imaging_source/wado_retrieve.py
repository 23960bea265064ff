"""WADO-RS Retrieve responses read straight off the connection (PS3.18 10.4.1, 8.7.3.5).

A Retrieve Study or Series answers with a ``multipart/related`` body (RFC 2387), one
part per instance: hundreds of MB for a study.  Through a general-purpose HTTP client -
64 KiB at a time through its protocol state machine, then through a multipart parser -
each byte cost more interpreter time than the cache write it ends in.  Here the
response is read with ``recv_into`` into one buffer of ``BUFFER_SIZE`` bytes, its
transfer framing undone there, and the body split at its delimiters with
``bytearray.find``: a part reaches its :class:`PartSink` as views of that buffer, most
instances in one view, nothing copied on the way.

HTTP/1.1 as RFC 9112 frames a response (6.3): no body (1xx, 204, 304), the chunked
transfer coding (7.1), a Content-Length, or the end of the connection.
``Accept-Encoding: identity`` is asked for - pixel data is not worth the PACS's time to
compress - but a gzip or deflate content coding (RFC 9110 8.4.1) sent anyway is undone.  A connection
whose response was delimited stays open for the next request of the same worker; a
kept connection that the server has closed meanwhile is opened again once (GET is
idempotent, RFC 9110 9.2.2).

The multipart body (RFC 2046 5.1.1): a preamble, then each part after a delimiter line,
its header fields up to an empty line (left unread: every part of a Retrieve is an
instance), then its content, up to the close delimiter.  A body that ends before its
close delimiter is a failed Retrieve, never fewer parts.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

__all__ = [
    "BUFFER_SIZE",
    "HttpConnection",
    "PartSink",
    "RetrieveFailed",
    "Response",
    "read_multipart",
]

BUFFER_SIZE = 1024 * 1024  # bytes read into at once, and the most a part gets in one view
MAX_RESPONSE_HEAD = 64 * 1024  # status line and header fields (RFC 9112 2.3)
MAX_PART_HEAD = 16 * 1024  # a body part's header fields (RFC 2046 5.1.1)
MAX_CHUNK_LINE = 4 * 1024  # chunk-size, its extensions and a trailer field (RFC 9112 7.1)
_CRLF = b"\r\n"
_NO_BODY = frozenset({204, 304})  # RFC 9112 6.3 (1): and every 1xx


class RetrieveFailed(Exception):
    """The server could not be reached, or its response broke HTTP/1.1 or RFC 2046."""


class PartSink(Protocol):
    """Where a multipart body's parts go, in order: ``begin``, ``data`` as often as
    the content comes (a view valid only during the call), ``end``."""

    def begin(self) -> None: ...

    def data(self, view: memoryview) -> None: ...

    def end(self) -> None: ...


# --- the connection -------------------------------------------------------------------


class _Wire:
    """A socket with the bytes read past what was asked for kept for the next read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ahead = bytearray()

    def readinto(self, view: memoryview) -> int:
        """Up to ``len(view)`` bytes into ``view``; 0 at the end of the connection."""
        if self.ahead:
            n = min(len(view), len(self.ahead))
            view[:n] = self.ahead[:n]
            del self.ahead[:n]
            return n
        try:
            return self.sock.recv_into(view)
        except OSError as exc:
            raise RetrieveFailed(f"reading the response: {exc}") from exc

    def _more(self, limit: int, what: str) -> None:
        if len(self.ahead) >= limit:
            raise RetrieveFailed(f"{what} longer than {limit} bytes")
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Ended(f"the connection ended inside {what}: {exc}") from exc
        except OSError as exc:  # a timeout among them
            raise RetrieveFailed(f"reading the response: {exc}") from exc
        if not data:
            raise _Ended(f"the connection ended inside {what}")
        self.ahead += data

    def until(self, terminator: bytes, limit: int, what: str) -> bytes:
        """The bytes up to ``terminator`` (consumed, not returned)."""
        start = 0
        while (at := self.ahead.find(terminator, start)) < 0:
            start = max(0, len(self.ahead) - len(terminator) + 1)
            self._more(limit, what)
        if at > limit:
            raise RetrieveFailed(f"{what} longer than {limit} bytes")
        found = bytes(self.ahead[:at])
        del self.ahead[: at + len(terminator)]
        return found


class _Body(Protocol):
    def readinto(self, view: memoryview) -> int: ...


class _Sized:
    """A body of Content-Length bytes (RFC 9112 6.3 (6))."""

    def __init__(self, wire: _Wire, length: int) -> None:
        self.wire, self.left = wire, length

    def readinto(self, view: memoryview) -> int:
        if self.left == 0:
            return 0
        n = self.wire.readinto(view[: self.left])
        if n == 0:
            raise RetrieveFailed(f"the connection ended {self.left} bytes before the body")
        self.left -= n
        return n


class _UntilClose:
    """A body delimited by the end of the connection (RFC 9112 6.3 (8))."""

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire

    def readinto(self, view: memoryview) -> int:
        return self.wire.readinto(view)


class _Chunked:
    """A body in the chunked transfer coding (RFC 9112 7.1); trailer fields skipped."""

    def __init__(self, wire: _Wire) -> None:
        self.wire = wire
        self.left = 0  # bytes of the current chunk still to read
        self.started = False
        self.done = False

    def readinto(self, view: memoryview) -> int:
        if self.done:
            return 0
        if self.left == 0:
            if self.started and self.wire.until(_CRLF, 2, "a chunk's end"):
                raise RetrieveFailed("a chunk longer than its chunk-size")
            self.started = True
            line = self.wire.until(_CRLF, MAX_CHUNK_LINE, "a chunk-size line")
            size = line.split(b";", 1)[0].strip()
            try:
                self.left = int(size, 16)
            except ValueError:
                raise RetrieveFailed(f"not a chunk-size: {size[:40]!r}") from None
            if self.left == 0:
                while self.wire.until(_CRLF, MAX_CHUNK_LINE, "the trailer section"):
                    pass
                self.done = True
                return 0
        n = self.wire.readinto(view[: self.left])
        if n == 0:
            raise RetrieveFailed("the connection ended inside a chunk")
        self.left -= n
        return n


# RFC 9110 8.4.1: gzip (and its alias x-gzip), and deflate - the zlib format (RFC 1950)
_INFLATE_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}
_INFLATE_READ = 256 * 1024  # compressed bytes read at a time


class _Inflated:
    """A body in a content coding, undone (a PACS that compressed although identity was
    asked for); the compressed stream must end where the body ends."""

    def __init__(self, inner: _Body, coding: str) -> None:
        self.inner = inner
        self.inflater = zlib.decompressobj(_INFLATE_WBITS[coding])
        self.coding = coding
        self.compressed = memoryview(bytearray(_INFLATE_READ))
        self.tail = b""  # compressed bytes read but not inflated yet

    def readinto(self, view: memoryview) -> int:
        while True:
            if not self.tail:
                n = self.inner.readinto(self.compressed)
                if n == 0:
                    if not self.inflater.eof:
                        raise RetrieveFailed(f"the {self.coding} body ends before its end")
                    return 0
                self.tail = self.compressed[:n].tobytes()
            try:
                data = self.inflater.decompress(self.tail, len(view))
            except zlib.error as exc:
                raise RetrieveFailed(f"not {self.coding}: {exc}") from exc
            self.tail = self.inflater.unconsumed_tail
            if self.inflater.eof and (self.inflater.unused_data or self.tail):
                raise RetrieveFailed(f"bytes after the end of the {self.coding} body")
            if data:
                view[: len(data)] = data
                return len(data)


@dataclass
class Response:
    """A response's status, header fields (names in lower case, repeated ones joined
    by commas, RFC 9110 5.3) and body, read with :meth:`readinto`."""

    status: int
    headers: dict[str, str]
    body: _Body
    reusable: bool  # the connection can carry another request once the body is read

    def readinto(self, view: memoryview) -> int:
        return self.body.readinto(view)


class HttpConnection:
    """One HTTP/1.1 connection to the origin of ``base_url``, opened when first needed
    and kept while its responses are delimited.  :meth:`abort` (from another thread)
    ends a request under way at once."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.tls = url.scheme == "https"
        self.host = url.hostname
        self.port = url.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        name = f"[{self.host}]" if ":" in self.host else self.host
        self.authority = name if default_port else f"{name}:{self.port}"
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._wire: _Wire | None = None
        self._lock = threading.Lock()
        self._aborted = False

    def _open(self) -> _Wire:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise RetrieveFailed(f"cannot connect to {self.authority}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls:
            context = self.ssl_context or ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:
                sock.close()
                raise RetrieveFailed(f"TLS with {self.authority}: {exc}") from exc
        with self._lock:
            if self._aborted:
                sock.close()
                raise RetrieveFailed("aborted")
            self._wire = _Wire(sock)
            return self._wire

    def get(self, target: str, headers: Mapping[str, str]) -> Response:
        """Send ``GET target`` and read the response up to its body.  On a kept
        connection that turns out closed, the request is sent once more on a new one."""
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = f"GET {target} HTTP/1.1\r\nHost: {self.authority}\r\n{fields}\r\n"
        kept = self._wire is not None
        try:
            return self._exchange(self._wire or self._open(), request.encode("latin-1"))
        except _Stale:
            if not kept:
                raise RetrieveFailed("the connection ended before a response") from None
            self.close()
            try:
                return self._exchange(self._open(), request.encode("latin-1"))
            except _Stale:
                raise RetrieveFailed("the connection ended before a response") from None

    def _exchange(self, wire: _Wire, request: bytes) -> Response:
        try:
            wire.sock.sendall(request)
        except OSError as exc:
            raise _Stale from exc
        while True:
            try:
                head = wire.until(b"\r\n\r\n", MAX_RESPONSE_HEAD, "the response head")
            except _Ended:
                if not wire.ahead:  # closed before answering: a kept connection gone stale
                    raise _Stale from None
                raise
            response = self._response(wire, head)
            if not 100 <= response.status < 200:  # an interim response: the next
                return response

    def _response(self, wire: _Wire, head: bytes) -> Response:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise RetrieveFailed(f"not an HTTP/1.x status line: {status_line[:80]!r}")
        status = int(code)
        headers: dict[str, str] = {}
        key = ""
        for line in lines:
            if line[:1] in (" ", "\t") and key:  # obs-fold (RFC 9112 5.2): one SP
                headers[key] = f"{headers[key]} {line.strip()}"
                continue
            name, colon, value = line.partition(":")
            if not colon or name != name.strip():
                raise RetrieveFailed(f"not a header field: {line[:80]!r}")
            key, value = name.lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        persistent = version == "HTTP/1.1" and "close" not in _tokens(headers.get("connection"))
        body: _Body
        if 100 <= status < 200 or status in _NO_BODY:
            body = _Sized(wire, 0)
        elif "transfer-encoding" in headers:  # RFC 9112 6.3 (4)
            codings = _tokens(headers["transfer-encoding"])
            if codings != ["chunked"]:
                raise RetrieveFailed(f"transfer coding {headers['transfer-encoding']!r}")
            body = _Chunked(wire)
        elif "content-length" in headers:  # RFC 9112 6.3 (5), (6)
            lengths = {v.strip() for v in headers["content-length"].split(",")}
            if len(lengths) != 1 or not (length := lengths.pop()).isdigit():
                raise RetrieveFailed(f"Content-Length {headers['content-length']!r}")
            body = _Sized(wire, int(length))
        else:
            body, persistent = _UntilClose(wire), False
        codings = [c for c in _tokens(headers.get("content-encoding")) if c != "identity"]
        if codings:  # although identity was asked for (RFC 9110 12.5.3)
            if len(codings) > 1 or codings[0] not in _INFLATE_WBITS:
                raise RetrieveFailed(f"content coding {headers['content-encoding']!r}")
            body = _Inflated(body, codings[0])
        return Response(status, headers, body, persistent)

    def release(self, response: Response) -> None:
        """The response is done with: its connection kept if it can carry another
        request (the body read to its end), closed otherwise."""
        if response.reusable:  # delimited (RFC 9112 6.3): its end can be told
            try:
                if response.readinto(memoryview(bytearray(65536))) == 0:
                    return
            except RetrieveFailed:
                pass
        self.close()

    def close(self) -> None:
        with self._lock:
            wire, self._wire = self._wire, None
        if wire is not None:
            wire.sock.close()

    def abort(self) -> None:
        """End whatever this connection is doing (from any thread): a read under way
        fails at once, a later request too."""
        with self._lock:
            self._aborted = True
            wire = self._wire
        if wire is not None:
            with contextlib.suppress(OSError):
                wire.sock.shutdown(socket.SHUT_RDWR)


class _Stale(Exception):
    """The connection ended before any byte of a response."""


class _Ended(RetrieveFailed):
    """The server closed or reset the connection."""


def _tokens(value: str | None) -> list[str]:
    return [t.strip().lower() for t in (value or "").split(",") if t.strip()]


# --- the multipart body -----------------------------------------------------------------


def read_multipart(
    response: Response,
    boundary: str,
    sink: PartSink,
    stop: threading.Event | None = None,
    buffer_size: int = BUFFER_SIZE,
) -> None:
    """Split the ``multipart`` body of ``response`` (RFC 2046 5.1.1) into ``sink``, up
    to its close delimiter; RetrieveFailed when the body ends before it or is not
    multipart.  Returns early, the part under way unfinished, once ``stop`` is set."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    keep = len(delimiter) - 1  # the last bytes read may begin a delimiter
    buf = bytearray(max(buffer_size, 2 * MAX_PART_HEAD))
    view = memoryview(buf)
    # the first delimiter may open the body without a CRLF before it: one is put there
    buf[:2], end, at = _CRLF, 2, 0
    state = _SEEK
    scanned = 0  # no delimiter begins before scanned - keep
    body_done = False
    while True:
        while True:  # what buf[at:end] completes
            if state is not _LINE:
                found = buf.find(delimiter, max(at, scanned - keep), end)
                if found < 0:
                    scanned = end
                    break
                if state is _PART:
                    if found > at:
                        sink.data(view[at:found])
                    sink.end()
                at, state = found, _LINE
            after = at + len(delimiter)  # the delimiter line's rest, then header fields
            if end - after < 2:
                break
            if buf[after : after + 2] == b"--":  # the close delimiter
                _drain(response, view)
                return
            head_end = buf.find(b"\r\n\r\n", after, min(end, after + MAX_PART_HEAD + 4))
            if head_end < 0:
                if end - after >= MAX_PART_HEAD + 4:
                    raise RetrieveFailed(f"part header fields longer than {MAX_PART_HEAD} bytes")
                break
            if buf[after : buf.find(_CRLF, after, end)].strip(b" \t"):
                raise RetrieveFailed("a delimiter line with more than the boundary")
            sink.begin()
            at = scanned = head_end + 4
            state = _PART
        if body_done:
            raise RetrieveFailed("the multipart body ends before its close delimiter")
        if stop is not None and stop.is_set():
            return
        if end == len(buf):  # full: what is complete goes, the rest moves to the front
            if state is _PART and end - keep > at:
                sink.data(view[at : end - keep])
                at = end - keep
            elif state is _SEEK:  # preamble (RFC 2046 5.1.1), dropped
                at = max(at, end - keep)
            buf[: end - at] = buf[at:end]
            end, scanned, at = end - at, max(0, scanned - at), 0
        n = response.readinto(view[end:])
        body_done = n == 0
        end += n


_SEEK = "seek"  # before the first delimiter
_LINE = "line"  # at a delimiter: its line and a part's header fields
_PART = "part"  # in a part's content


def _drain(response: Response, view: memoryview) -> None:
    """The epilogue (RFC 2046 5.1.1) of a body read and dropped when the connection can
    carry another request; otherwise left (the connection is closed)."""
    if not response.reusable:
        return
    while response.readinto(view):
        pass
