"""``xdsi certs``: a test CA and node certificates, so ITI-19 mutual TLS is on in minutes.

Made with ``cryptography``: a self-signed CA, a node certificate for this host (server
and client authentication, so the same file serves ``xdsi serve`` and the client
commands), and a client certificate for another node or a test tool.  RSA keys, so the
ITI-19 ``TLS_*_RSA_*`` suites are the ones negotiated.  For tests and first steps, not
production: a real deployment takes its certificates from its own CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 2048
VALID_DAYS = 825
CA_VALID_DAYS = 3650


@dataclass(frozen=True)
class TestPki:
    directory: Path
    ca: Path
    node_cert: Path
    node_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str, organization: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def _san(names: Sequence[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _leaf(
    ca_key: rsa.RSAPrivateKey,
    ca: x509.Certificate,
    subject: x509.Name,
    names: Sequence[str],
    usages: Sequence[x509.ObjectIdentifier],
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def make_test_pki(
    directory: Path,
    *,
    hosts: Sequence[str] = (),
    organization: str = "xdsi test",
    node_name: str | None = None,
) -> TestPki:
    """Write ``ca.pem``, ``node.pem``/``node-key.pem`` and ``client.pem``/``client-key.pem``
    into ``directory``.  ``hosts``: names and addresses the node certificate is valid for
    (always with ``localhost``, ``127.0.0.1`` and this host's name)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    now = dt.datetime.now(dt.UTC)
    ca_name = _name(f"{organization} CA", organization)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    host = socket.gethostname()
    names = [*hosts, host, "localhost", "127.0.0.1", "::1"]
    both = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    node_key, node = _leaf(ca_key, ca, _name(node_name or host, organization), names, both)
    client_key, client = _leaf(
        ca_key, ca, _name("xdsi test client", organization), ["localhost"], both
    )
    pki = TestPki(
        directory,
        directory / "ca.pem",
        directory / "node.pem",
        directory / "node-key.pem",
        directory / "client.pem",
        directory / "client-key.pem",
    )
    _write_cert(pki.ca, ca)
    _write_cert(pki.node_cert, node)
    _write_key(pki.node_key, node_key)
    _write_cert(pki.client_cert, client)
    _write_key(pki.client_key, client_key)
    return pki


__all__ = ["TestPki", "make_test_pki"]
