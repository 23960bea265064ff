"""ITI-19 mutual TLS (xdsi.tls): who is let in, who is refused, and what is reported."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from xdsi.certs import TestPki, make_test_pki
from xdsi.tls import (
    CURRENT_PEER,
    NodeTls,
    TlsRefusal,
    certificates_pem,
    client_context,
    ensure_dh_params,
    serve_tls,
    server_context,
)


def _missing(reason: str) -> None:
    """A missing tool skips, except under XDSI_REQUIRE_INTEROP=1 where it fails."""
    if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("stranger"), organization="elsewhere")


def _node(pki: TestPki, tmp: Path, **changes: object) -> NodeTls:
    fields = {
        "cert": pki.node_cert,
        "key": pki.node_key,
        "ca": (pki.ca,),
        "dh_params": ensure_dh_params(tmp / "dh.pem"),
    }
    fields.update(changes)
    return NodeTls(**fields)  # type: ignore[arg-type]


async def _exchange(node: NodeTls, client: ssl.SSLContext | None, **connect: object):  # noqa: ANN202
    """Serve one echo connection; returns (reply or exception, refusals, peer subjects)."""
    refusals: list[TlsRefusal] = []
    peers: list[str | None] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = CURRENT_PEER.get()
        peers.append(peer.subject if peer else None)
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await serve_tls(
        echo, "127.0.0.1", 0, server_context(node), "mllp://test:1", refusals.append
    )
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="localhost" if client else None
        )
        writer.write(b"hello\n")
        await writer.drain()
        reply: object = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
        reply = exc
    for _ in range(50):
        if refusals or peers:
            break
        await asyncio.sleep(0.02)
    server.close()
    return reply, refusals, peers


async def test_a_client_with_a_certificate_from_the_ca_is_served_and_named(pki, tmp_path) -> None:  # noqa: ANN001
    client = client_context(pki.client_cert, pki.client_key, (pki.ca,))
    reply, refusals, peers = await _exchange(_node(pki, tmp_path), client)
    assert reply == b"hello\n"
    assert refusals == []
    assert peers == ["CN=xdsi test client,O=xdsi test"]


async def test_a_client_without_a_certificate_is_refused_and_reported(pki, tmp_path) -> None:  # noqa: ANN001
    client = client_context(None, None, (pki.ca,))
    reply, refusals, _ = await _exchange(_node(pki, tmp_path), client)
    assert reply != b"hello\n"
    assert len(refusals) == 1
    assert refusals[0].peer_host == "127.0.0.1"
    assert "CERTIFICATE" in refusals[0].reason.upper()


async def test_a_client_from_an_unknown_ca_is_refused(pki, stranger, tmp_path) -> None:  # noqa: ANN001
    client = client_context(stranger.client_cert, stranger.client_key, (pki.ca,))
    reply, refusals, _ = await _exchange(_node(pki, tmp_path), client)
    assert reply != b"hello\n"
    assert len(refusals) == 1
    assert refusals[0].listener == "mllp://test:1"


async def test_a_client_offering_only_tls_1_0_is_refused(pki, tmp_path) -> None:  # noqa: ANN001
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.load_verify_locations(pki.ca)
    client.load_cert_chain(pki.client_cert, pki.client_key)
    try:
        client.minimum_version = ssl.TLSVersion.TLSv1
        client.maximum_version = ssl.TLSVersion.TLSv1
        client.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("this OpenSSL cannot offer TLS 1.0 at all")
    reply, refusals, _ = await _exchange(_node(pki, tmp_path), client)
    assert reply != b"hello\n"
    assert len(refusals) == 1


async def test_a_directly_trusted_self_signed_der_certificate_is_accepted(
    pki, stranger, tmp_path
) -> None:  # noqa: ANN001
    # the stranger's own CA is self-signed; trusting the stranger's client certificate
    # itself (DER) admits it without its CA
    der = tmp_path / "client.der"
    cert = x509.load_pem_x509_certificate(stranger.client_cert.read_bytes())
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    node = _node(pki, tmp_path, ca=(), trusted=(der,))
    client = client_context(stranger.client_cert, stranger.client_key, (pki.ca,))
    reply, refusals, peers = await _exchange(node, client)
    assert reply == b"hello\n", refusals
    assert peers == ["CN=xdsi test client,O=elsewhere"]


def test_der_certificates_are_read_as_pem(pki, tmp_path) -> None:  # noqa: ANN001
    cert = x509.load_pem_x509_certificate(pki.ca.read_bytes())
    der = tmp_path / "ca.der"
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    assert x509.load_pem_x509_certificate(certificates_pem(der).encode()) == cert


def test_server_context_floor_is_tls_1_2(pki, tmp_path) -> None:  # noqa: ANN001
    context = server_context(_node(pki, tmp_path))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize(
    "suite",
    ["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256"],
)
def test_iti19_tls12_suites_are_negotiated(pki, tmp_path, suite: str) -> None:  # noqa: ANN001
    openssl = shutil.which("openssl")
    if openssl is None:
        _missing("openssl not installed")

    async def run() -> tuple[int, str]:
        server = await serve_tls(
            _echo_line, "127.0.0.1", 0, server_context(_node(pki, tmp_path)), "t", None
        )
        port = server.sockets[0].getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2", "-cipher", suite,
            "-cert", str(pki.client_cert), "-key", str(pki.client_key), "-CAfile", str(pki.ca),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(process.communicate(b"ping\n"), 20)
        server.close()
        return process.returncode or 0, output.decode("utf-8", "replace")

    _, output = asyncio.run(run())
    assert f"Cipher is {suite}" in output or f"Cipher    : {suite}" in output, output[-800:]


async def _echo_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()


def test_openssl_tls1_client_is_refused(pki, tmp_path) -> None:  # noqa: ANN001
    openssl = shutil.which("openssl")
    if openssl is None:
        _missing("openssl not installed")
    help_text = subprocess.run([openssl, "s_client", "-help"], capture_output=True, text=True)
    if "-tls1 " not in help_text.stderr + help_text.stdout:
        pytest.skip("this openssl has no -tls1")
    refusals: list[TlsRefusal] = []

    async def run() -> None:
        server = await serve_tls(
            _echo_line, "127.0.0.1", 0, server_context(_node(pki, tmp_path)), "t", refusals.append
        )
        port = server.sockets[0].getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1",
            "-cert", str(pki.client_cert), "-key", str(pki.client_key),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.wait_for(process.communicate(b""), 20)
        for _ in range(50):
            if refusals:
                break
            await asyncio.sleep(0.02)
        server.close()

    asyncio.run(run())
    assert len(refusals) == 1
