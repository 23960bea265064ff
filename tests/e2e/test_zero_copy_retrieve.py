"""ITI-43 documents sent file-to-socket (``xdsi.zero_copy``) by a real ``xdsi serve``.

Over plain HTTP each document part goes out with ``sendfile`` (``[server] sendfile =
"always"``), or, by default, copied when the file is small and the client, as here, on
the same host; over ITI-19 mutual TLS the same extension reads the file in large pieces
through the TLS transport.  Every way the documents must come back byte for byte,
several in one response, with an exact
Content-Length (the keep-alive connection is reused for the next exchange), and a
client that goes away mid-document must leave the server serving.  The server's memory
with a 64 MiB document is asserted by ``test_large_document.py`` on the same path.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import struct
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest
from cluster_support import ClusterServer, client_ssl_context
from e2e_support import (
    CR,
    FS,
    NS,
    REPOSITORY_UNIQUE_ID,
    SUCCESS,
    TEST_CONFIG,
    VT,
    ResponseSchemas,
    XdsPeer,
    ack_code,
    adt_a01,
    mtom_request,
    new_id,
    new_patient_number,
    parse_response,
    patient_cx,
    render,
    send_mllp,
)
from lxml import etree

from xdsi import certs

MiB = 1024 * 1024
RETRIEVE = "urn:ihe:iti:2007:RetrieveDocumentSet"
# larger than what loopback socket buffers hold, so the client leaves mid-document
DISCONNECT_SIZE = 24 * MiB


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.TestPki:
    return certs.make_test_pki(tmp_path_factory.mktemp("zero-copy-pki"))


@pytest.fixture(scope="module", params=["http", "http-sendfile", "https"])
def server(
    request: pytest.FixtureRequest, pki: certs.TestPki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterServer]:
    data_dir = tmp_path_factory.mktemp(f"zero-copy-{request.param}")
    if request.param == "http-sendfile":
        (data_dir / "xdsi.toml").write_text(
            TEST_CONFIG + '\n[server]\nsendfile = "always"\n', encoding="utf-8"
        )
    process = ClusterServer(data_dir, pki=pki if request.param == "https" else None).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def peer(server: ClusterServer) -> Iterator[XdsPeer]:
    client = XdsPeer(server.base_url, ResponseSchemas())  # ITI-41 replies schema-checked
    client.http.close()
    client.http = server.http_client(timeout=60.0)
    yield client
    client.close()


def _patient(server: ClusterServer) -> str:
    number = new_patient_number()
    if server.pki is None:
        reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    else:
        reply = _send_mllp_tls(server, adt_a01(number))
    assert ack_code(reply) == "AA", reply
    return patient_cx(number)


def _send_mllp_tls(server: ClusterServer, message: bytes) -> bytes:
    assert server.pki is not None
    context = client_ssl_context(server.pki)
    with (
        socket.create_connection(("127.0.0.1", server.mllp_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        sock.sendall(VT + message + FS + CR)
        reply = b""
        while not reply.endswith(FS + CR):
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    return reply


def _documents(sizes: list[int], seed: int) -> list[bytes]:
    return [hashlib.shake_256(f"{seed}-{size}".encode()).digest(size) for size in sizes]


def _provide(peer: XdsPeer, patient: str, documents: list[bytes]) -> list[str]:
    uids: list[str] = []
    for at in range(0, len(documents), 2):
        pair = [("text/plain", data) for data in documents[at : at + 2]]
        reply, sent = peer.provide(patient, pair)
        assert reply.status == SUCCESS, reply.registry_errors()
        uids += sent
    return uids


def _retrieve_request(peer: XdsPeer, uids: list[str]) -> tuple[str, bytes]:
    """ITI-43 for ``uids``: (Content-Type, body) of its MTOM package."""
    requests = "".join(
        "<xdsb:DocumentRequest>"
        f"<xdsb:RepositoryUniqueId>{REPOSITORY_UNIQUE_ID}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{uid}</xdsb:DocumentUniqueId>"
        "</xdsb:DocumentRequest>"
        for uid in uids
    )
    envelope = render(
        "iti43_retrieve.xml",
        raw={"document_requests": requests},
        message_id=new_id(),
        to=peer.repository_url,
    )
    return mtom_request(envelope, [], RETRIEVE)


def _retrieved(peer: XdsPeer, uids: list[str]) -> dict[str, bytes]:
    content_type, body = _retrieve_request(peer, uids)
    response = peer.http.post(
        peer.repository_url, content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    package = parse_response(response.headers["content-type"], response.content)
    assert package.is_mtom
    root = etree.fromstring(package.root)
    status = root.find(".//rs:RegistryResponse", NS)
    assert status is not None and status.get("status") == SUCCESS, package.root[:2000]
    documents: dict[str, bytes] = {}
    for document in root.iterfind(".//xdsb:DocumentResponse", NS):
        include = document.find("xdsb:Document/xop:Include", NS)
        assert include is not None, "a document inline, not as an XOP part"
        documents[document.findtext("xdsb:DocumentUniqueId", namespaces=NS) or ""] = package.parts[
            unquote(include.get("href", "")[4:])
        ][1]
    return documents


def test_documents_of_every_size_come_back_byte_identical(
    server: ClusterServer, peer: XdsPeer
) -> None:
    documents = _documents([0, 1, 3 * MiB + 7, 65536], seed=1)
    uids = _provide(peer, _patient(server), documents)
    # one request each, on one kept-alive connection: each Content-Length must be exact
    for uid, data in zip(uids, documents, strict=True):
        assert _retrieved(peer, [uid]) == {uid: data}


def test_several_documents_in_one_response(server: ClusterServer, peer: XdsPeer) -> None:
    documents = _documents([2 * MiB + 1, 0, 5, MiB], seed=2)
    uids = _provide(peer, _patient(server), documents)
    assert _retrieved(peer, uids) == dict(zip(uids, documents, strict=True))
    assert _retrieved(peer, uids[::-1]) == dict(zip(uids, documents, strict=True))


def _open(server: ClusterServer) -> socket.socket:
    address = urlsplit(server.base_url)
    raw = socket.create_connection((address.hostname, address.port), timeout=30)
    if server.pki is None:
        return raw
    context: ssl.SSLContext = client_ssl_context(server.pki)
    return context.wrap_socket(raw, server_hostname=address.hostname)


def test_a_client_that_leaves_mid_document_leaves_the_server_serving(
    server: ClusterServer, peer: XdsPeer
) -> None:
    (data,) = _documents([DISCONNECT_SIZE], seed=3)
    (uid,) = _provide(peer, _patient(server), [data])
    content_type, body = _retrieve_request(peer, [uid])
    for _ in range(2):
        sock = _open(server)
        head = (
            f"POST /xds/repository HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode("latin-1") + body)
        received = 0
        while received < MiB:
            chunk = sock.recv(65536)
            assert chunk, "the response ended before the document"
            received += len(chunk)
        # RST, not FIN: the server's next write fails at once
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    assert _retrieved(peer, [uid]) == {uid: data}
    assert server.process is not None and server.process.poll() is None
    log = server.log()
    assert log.count("xdsi.zero_copy: response to") >= 2, log[-4000:]  # the two cut short
    assert "Traceback" not in log
