"""WADO-RS Retrieve responses read off the connection: the multipart split (RFC 2046
5.1.1) whatever the pieces the bytes come in, each HTTP/1.1 framing (RFC 9112 6.3) over
a real TCP connection, kept connections, and every way a response can break."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import gzip
import socket
import ssl
import struct
import threading
import time
import zlib
from pathlib import Path

import pytest
from http_fixtures import BytesBody, BytesResponse, CannedServer, multipart
from instance_fixtures import imaging_postgres_engine, index_engine, migrated_sqlite, store

from imaging_source.instances import InstanceStore
from imaging_source.pacs import InstanceRef, PacsError, WadoRsFetcher, _PartSpool
from imaging_source.wado_retrieve import (
    MAX_PART_HEAD,
    MAX_RESPONSE_HEAD,
    HttpConnection,
    Response,
    RetrieveFailed,
    read_multipart,
)
from xdsi import certs

BOUNDARY = "b0undary-7f3a"


class Parts:
    """A PartSink keeping each part's bytes and how many views it came in."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.views: list[int] = []
        self.open = False

    def begin(self) -> None:
        assert not self.open
        self.open = True
        self.parts.append(b"")
        self.views.append(0)

    def data(self, view: memoryview) -> None:
        assert self.open and len(view) > 0
        self.parts[-1] += bytes(view)
        self.views[-1] += 1

    def end(self) -> None:
        assert self.open
        self.open = False


# parts that look like the end of a part without being one, an empty one, and one
# larger than the reader's buffer
TRICKY = [
    b"",
    b"\r\n--" + BOUNDARY[:-1].encode() + b"x\r\n",
    b"--" + BOUNDARY.encode(),  # a boundary not after a CRLF is content
    bytes(range(256)) * 5000,
    b"\r\n\r\n-",
]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 65_536, 10**9])
def test_parts_come_whole_whatever_pieces_the_body_comes_in(chunk: int) -> None:
    body = multipart(TRICKY, BOUNDARY, preamble=b"a preamble\r\n") + b"an epilogue\r\n"
    sink = Parts()
    read_multipart(BytesResponse(body, chunk), BOUNDARY, sink, buffer_size=2 * MAX_PART_HEAD)
    assert sink.parts == TRICKY and not sink.open


def test_a_part_smaller_than_the_buffer_comes_in_at_most_two_views() -> None:
    parts = [bytes([n]) * 525_000 for n in range(8)]
    sink = Parts()
    read_multipart(BytesResponse(multipart(parts, BOUNDARY), 65_536), BOUNDARY, sink)
    assert sink.parts == parts
    assert max(sink.views) <= 2


def test_a_body_that_opens_with_its_delimiter_and_ends_without_a_crlf() -> None:
    body = f"--{BOUNDARY}\r\n\r\nonly\r\n--{BOUNDARY}--".encode()
    sink = Parts()
    read_multipart(BytesResponse(body, 3), BOUNDARY, sink)
    assert sink.parts == [b"only"]


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(-5, id="inside-the-close-delimiter"),
        pytest.param(-len(BOUNDARY) - 10, id="inside-the-last-delimiter"),
        pytest.param(-20_000, id="inside-a-part"),
        pytest.param(30, id="inside-the-first-part-header"),
    ],
)
def test_a_body_cut_short_is_a_failed_retrieve(cut: int) -> None:
    body = multipart([b"x" * 50_000, b"y" * 50_000], BOUNDARY)
    with pytest.raises(RetrieveFailed, match="before its close delimiter"):
        read_multipart(BytesResponse(body[:cut], 65_536), BOUNDARY, Parts())


def test_a_body_without_its_boundary_is_refused() -> None:
    with pytest.raises(RetrieveFailed, match="before its close delimiter"):
        read_multipart(BytesResponse(b"not multipart at all" * 1000, 4096), BOUNDARY, Parts())


def test_part_header_fields_are_bounded() -> None:
    body = f"--{BOUNDARY}\r\nX-Long: ".encode() + b"h" * (MAX_PART_HEAD + 10) + b"\r\n\r\n"
    with pytest.raises(RetrieveFailed, match="header fields longer"):
        read_multipart(BytesResponse(body + b"data", 4096), BOUNDARY, Parts())


def test_a_delimiter_line_with_more_than_the_boundary_is_refused() -> None:
    body = f"--{BOUNDARY}\r\n\r\na\r\n--{BOUNDARY}junk\r\n\r\nb\r\n--{BOUNDARY}--".encode()
    with pytest.raises(RetrieveFailed, match="delimiter line"):
        read_multipart(BytesResponse(body, 4096), BOUNDARY, Parts())


def test_a_stopped_read_returns_with_the_part_unfinished() -> None:
    stop = threading.Event()
    sink = Parts()

    class Stopping(BytesBody):
        def readinto(self, view: memoryview) -> int:
            stop.set()  # set while the first part is under way
            return super().readinto(view)

    body = multipart([b"z" * 3_000_000], BOUNDARY)
    read_multipart(Response(200, {}, Stopping(body, 65_536), False), BOUNDARY, sink, stop)
    assert sink.open and len(sink.parts[0]) < 3_000_000


# --- HTTP/1.1 over a real connection ----------------------------------------------------


def _answer(body: bytes, *fields: str, status: str = "200 OK") -> bytes:
    head = "\r\n".join([f"HTTP/1.1 {status}", *fields, "", ""])
    return head.encode() + body


def _chunked(body: bytes, size: int) -> bytes:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    coded = b"".join(f"{len(c):x};ext=1\r\n".encode() + c + b"\r\n" for c in chunks)
    return coded + b"0\r\nX-Trailer: t\r\n\r\n"


def _read(connection: HttpConnection, target: str = "/x") -> tuple[Response, list[bytes]]:
    response = connection.get(target, {"Accept": "multipart/related"})
    sink = Parts()
    read_multipart(response, BOUNDARY, sink)
    connection.release(response)
    return response, sink.parts


PARTS = [b"first" * 1000, b"second" * 70_000]
BODY = multipart(PARTS, BOUNDARY)
MULTIPART = f"Content-Type: multipart/related; boundary={BOUNDARY}"
GZIPPED = gzip.compress(BODY)


def _sized(body: bytes, *fields: str) -> bytes:
    return _answer(body, *fields, f"Content-Length: {len(body)}")


@pytest.fixture
def server_of():
    servers: list[CannedServer] = []

    def make(*answers: bytes, per_connection: int = 1) -> CannedServer:
        servers.append(CannedServer(list(answers), per_connection))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_delimited_responses_keep_their_connection(server_of) -> None:  # noqa: ANN001
    sized = _answer(BODY, MULTIPART, f"Content-Length: {len(BODY)}")
    chunked = _answer(_chunked(BODY, 10_000), MULTIPART, "Transfer-Encoding: chunked")
    server = server_of(sized, chunked, sized, per_connection=3)
    connection = HttpConnection(server.url)
    for _ in range(3):
        response, parts = _read(connection)
        assert response.status == 200 and parts == PARTS
    assert server.connections == 1
    first = server.requests[0].decode()
    assert first.startswith("GET /x HTTP/1.1\r\n")
    assert f"Host: localhost:{server.port}\r\n" in first
    connection.close()


def test_a_body_to_the_end_of_the_connection_is_read_and_the_next_opens_another(
    server_of,  # noqa: ANN001
) -> None:
    server = server_of(_answer(BODY, MULTIPART), _answer(BODY, MULTIPART))
    connection = HttpConnection(server.url)
    assert _read(connection)[1] == PARTS
    assert _read(connection)[1] == PARTS
    assert server.connections == 2


def test_a_kept_connection_the_server_closed_is_opened_again(server_of) -> None:  # noqa: ANN001
    sized = _answer(BODY, MULTIPART, f"Content-Length: {len(BODY)}")
    server = server_of(sized, sized)  # keep-alive said, yet one answer a connection
    connection = HttpConnection(server.url)
    assert _read(connection)[1] == PARTS
    time.sleep(0.1)  # the server's close reaches us
    assert _read(connection)[1] == PARTS
    assert server.connections == 2


def test_a_folded_header_field_is_unfolded(server_of) -> None:  # noqa: ANN001
    folded = f"Content-Type: multipart/related;\r\n\tboundary={BOUNDARY}"
    server = server_of(_answer(BODY, folded))
    connection = HttpConnection(server.url)
    response = connection.get("/", {})
    assert response.headers["content-type"] == f"multipart/related; boundary={BOUNDARY}"
    sink = Parts()
    read_multipart(response, BOUNDARY, sink)
    assert sink.parts == PARTS
    connection.close()


def test_a_server_that_does_not_answer_in_time_is_not_asked_again(server_of) -> None:  # noqa: ANN001
    sized = _answer(BODY, MULTIPART, f"Content-Length: {len(BODY)}")
    release = threading.Event()
    server = server_of(sized, lambda conn: release.wait(10), per_connection=2)
    connection = HttpConnection(server.url, timeout=0.5)
    assert _read(connection)[1] == PARTS
    with pytest.raises(RetrieveFailed, match="reading the response"):
        connection.get("/x", {})  # on the kept connection: timed out, not resent
    release.set()
    assert server.connections == 1 and len(server.requests) == 2
    connection.close()


def test_a_body_compressed_although_identity_was_asked_is_undone(server_of) -> None:  # noqa: ANN001
    server = server_of(
        _sized(GZIPPED, MULTIPART, "Content-Encoding: gzip"),
        _answer(_chunked(zlib.compress(BODY), 5000), MULTIPART, "Content-Encoding: deflate",
                "Transfer-Encoding: chunked"),
        _sized(gzip.compress(BODY), MULTIPART, "Content-Encoding: x-gzip"),
        per_connection=3,
    )  # fmt: skip
    connection = HttpConnection(server.url)
    for _ in range(3):
        assert _read(connection)[1] == PARTS
    assert server.connections == 1  # each compressed body read to its end: kept
    connection.close()


def test_an_interim_response_is_passed_over(server_of) -> None:  # noqa: ANN001
    server = server_of(b"HTTP/1.1 100 Continue\r\n\r\n" + _answer(BODY, MULTIPART))
    assert _read(HttpConnection(server.url))[1] == PARTS


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (_answer(BODY, MULTIPART, "Content-Encoding: br"), "content coding"),
        (_answer(BODY, MULTIPART, "Content-Encoding: gzip"), "not gzip"),
        (_sized(GZIPPED[:-100], MULTIPART, "Content-Encoding: gzip"), "ends before its end"),
        (_sized(GZIPPED + b"junk", MULTIPART, "Content-Encoding: gzip"), "after the end"),
        (_answer(BODY[:1000], MULTIPART, f"Content-Length: {len(BODY)}"), "bytes before"),
        (_answer(_chunked(BODY, 4096)[:9000], MULTIPART, "Transfer-Encoding: chunked"), "chunk"),
        (_answer(b"zz\r\n", MULTIPART, "Transfer-Encoding: chunked"), "chunk-size"),
        (_answer(b"5\r\nabcdefg\r\n", MULTIPART, "Transfer-Encoding: chunked"), "chunk longer"),
        (_answer(BODY, MULTIPART, "Transfer-Encoding: gzip, chunked"), "transfer coding"),
        (_answer(BODY, MULTIPART, "Content-Length: 5, 6"), "Content-Length"),
        (b"ICY 200 OK\r\n\r\n" + BODY, "status line"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"h" * MAX_RESPONSE_HEAD + b"\r\n\r\n", "longer than"),
        (b"HTTP/1.1 200 OK\r\nContent-", "response head"),
    ],
    ids=[
        "brotli", "not-gzip", "short-gzip", "gzip-and-more", "short-length", "short-chunks", "bad-chunk-size", "chunk-overrun",
        "transfer-coding", "two-lengths", "not-http", "long-head", "cut-head",
    ],
)  # fmt: skip
def test_a_broken_response_is_a_failed_retrieve(
    server_of,  # noqa: ANN001
    answer: bytes,
    message: str,
) -> None:
    server = server_of(answer)
    with pytest.raises(RetrieveFailed, match=message):
        _read(HttpConnection(server.url))


def test_nothing_listening_is_a_failed_retrieve() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RetrieveFailed, match="cannot connect"):
        HttpConnection(f"http://127.0.0.1:{port}").get("/", {})


def test_a_reset_mid_body_is_a_failed_retrieve(server_of) -> None:  # noqa: ANN001
    def reset(conn: socket.socket) -> None:
        conn.sendall(_answer(BODY[:200_000], MULTIPART))
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    server = server_of(reset)  # type: ignore[arg-type]
    with pytest.raises(RetrieveFailed):
        _read(HttpConnection(server.url))


def test_abort_ends_a_read_that_waits_for_a_stalled_server(server_of) -> None:  # noqa: ANN001
    release = threading.Event()
    server = server_of(
        lambda conn: (conn.sendall(_answer(BODY[:5000], MULTIPART)), release.wait(30))
    )
    connection = HttpConnection(server.url, timeout=30)
    threading.Timer(0.3, connection.abort).start()
    started = time.monotonic()
    with pytest.raises(RetrieveFailed):
        _read(connection)
    assert time.monotonic() - started < 5
    release.set()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.TestPki:
    return certs.make_test_pki(tmp_path_factory.mktemp("pki"))


def test_an_https_pacs_is_read_over_tls_it_trusts(pki: certs.TestPki) -> None:
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(pki.node_cert, pki.node_key)
    sized = _answer(BODY, MULTIPART, f"Content-Length: {len(BODY)}")
    server = CannedServer([sized, sized], per_connection=2, tls=server_side)
    try:
        trusting = ssl.create_default_context(cafile=str(pki.ca))
        connection = HttpConnection(server.url, ssl_context=trusting)
        assert _read(connection)[1] == PARTS
        assert _read(connection)[1] == PARTS  # on the same TLS connection
        assert server.connections == 1
        connection.close()
        # a PACS whose certificate the context does not trust is not read
        with pytest.raises(RetrieveFailed, match="TLS"):
            HttpConnection(server.url, ssl_context=ssl.create_default_context()).get("/", {})
    finally:
        server.close()


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        HttpConnection("ftp://pacs.example/dicom-web")


# --- through the fetcher ------------------------------------------------------------------


def test_an_unknown_resource_gives_no_part_and_keeps_the_connection(
    server_of,  # noqa: ANN001
    tmp_path: Path,
) -> None:
    sized = _answer(BODY, MULTIPART, f"Content-Length: {len(BODY)}")
    server = server_of(
        _answer(b"", "Content-Length: 0", status="404 Not Found"), sized, per_connection=2
    )
    fetcher = WadoRsFetcher(f"{server.url}/dicom-web")
    connection = fetcher.connection()
    spool = _PartSpool(tmp_path)
    fetcher._retrieve(connection, f"{server.url}/dicom-web/studies/1", spool)
    assert spool.files == []
    fetcher._retrieve(connection, f"{server.url}/dicom-web/studies/2?x=1", spool)
    assert [f.path.read_bytes() for f in spool.files] == PARTS
    assert server.connections == 1
    assert server.requests[1].startswith(b"GET /dicom-web/studies/2?x=1 HTTP/1.1\r\n")
    connection.close()
    fetcher.close()


def test_a_pacs_error_status_is_a_pacs_error(
    server_of,  # noqa: ANN001
    store: InstanceStore,
) -> None:
    server = server_of(_answer(b"", "Content-Length: 0", status="503 Service Unavailable"))
    fetcher = WadoRsFetcher(f"{server.url}/dicom-web")
    with pytest.raises(PacsError, match="HTTP 503"):
        fetcher.fetch([InstanceRef("1.2", "1.2.3", "1.2.3.4")], store)
    fetcher.close()
