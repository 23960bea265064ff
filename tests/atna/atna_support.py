"""Peers for the audit tests: syslog collectors (TLS per RFC 5425, UDP per RFC 5426)
and a scripted sender, plus valid outcome records per transaction side."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from atna.events import DocumentReference, Endpoint, Side, TransactionOutcome
from ebxml.vocabulary import StoredQuery, Transaction

REFERENCE = Path(
    os.environ.get(
        "XDSI_REFERENCE_DIR", str(Path(__file__).resolve().parents[3] / "shared" / "reference")
    )
)
AUDIT_SCHEMAS = REFERENCE / "schemas" / "audit"
AUDIT_XSD = AUDIT_SCHEMAS / "ipf-dicom2024d.xsd"
IHE_VALIDATION = AUDIT_SCHEMAS / "wustl-syslog" / "run" / "SyslogCollector" / "IHEValidation"


def require_interop() -> bool:
    return os.environ.get("XDSI_REQUIRE_INTEROP") == "1"


def need(path: Path) -> Path:
    """``path`` if it exists; otherwise skip (or fail under XDSI_REQUIRE_INTEROP=1)."""
    if not path.exists():
        if require_interop():
            pytest.fail(f"missing reference file {path}")
        pytest.skip(f"reference file not available: {path}")
    return path


# --- a test PKI ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA nobody here trusts
    stranger_cert: Path  # issued by other_ca
    stranger_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, common_name: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _write(directory: Path, name: str, cert: x509.Certificate, key=None) -> tuple[Path, Path]:  # noqa: ANN001
    cert_path = directory / f"{name}.crt"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{name}.key"
    if key is not None:
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
    return cert_path, key_path


def make_pki(directory: Path) -> Pki:
    """A CA, a server and a client certificate it issued, and a stranger's."""
    ca_key, ca_cert = _ca("xdsi test CA")
    other_key, other_cert = _ca("untrusted CA")
    ca, _ = _write(directory, "ca", ca_cert)
    other_ca, _ = _write(directory, "other-ca", other_cert)
    server_cert, server_key = _write(
        directory, "server", *reversed(_leaf(ca_key, ca_cert, "localhost"))
    )
    client_cert, client_key = _write(
        directory, "client", *reversed(_leaf(ca_key, ca_cert, "xdsi-node"))
    )
    stranger_cert, stranger_key = _write(
        directory, "stranger", *reversed(_leaf(other_key, other_cert, "stranger"))
    )
    return Pki(
        ca, server_cert, server_key, client_cert, client_key, other_ca, stranger_cert, stranger_key
    )


# --- collectors ---------------------------------------------------------------------------
def server_context(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.load_verify_locations(cafile=str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED  # mutual authentication (ITI-19)
    return context


@dataclass
class Received:
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (declared length, msg)
    peers: list[str] = field(default_factory=list)  # subject CN of each client
    errors: list[BaseException] = field(default_factory=list)

    @property
    def messages(self) -> list[bytes]:
        return [message for _, message in self.frames]

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.frames)} of {count} messages arrived")
            await asyncio.sleep(0.01)


class TlsCollector:
    """An RFC 5425 receiver: TLS with client certificates, octet-counted frames."""

    def __init__(self, pki: Pki, port: int = 0) -> None:
        self.context = server_context(pki)
        self.port = port
        self.received = Received()
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        certificate = writer.get_extra_info("peercert") or {}
        subject = dict(item[0] for item in certificate.get("subject", ()))
        self.received.peers.append(subject.get("commonName", ""))
        try:
            while True:
                length = await reader.readuntil(b" ")
                size = int(length[:-1])
                self.received.frames.append((size, await reader.readexactly(size)))
        except asyncio.IncompleteReadError:
            pass
        except (OSError, ValueError) as exc:
            self.received.errors.append(exc)
        finally:
            self._clients.discard(writer)
            writer.close()

    async def start(self) -> TlsCollector:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, ssl=self.context
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await self._server.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, received: Received) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.frames.append((len(data), data))


class UdpCollector:
    """An RFC 5426 receiver: one message per datagram."""

    def __init__(self) -> None:
        self.received = Received()
        self.port = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> UdpCollector:
        loop = asyncio.get_running_loop()
        self._transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.received), local_addr=("127.0.0.1", 0)
        )
        self.port = self._transport.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()


# --- a scripted sender (the transport seam) ----------------------------------------------
class ScriptedSender:
    """Records what it is asked to send; ``down`` makes every send fail; it fails the
    test run if one message is ever sent while another send of it is still running."""

    def __init__(self, delay: float = 0.0, in_flight: set[bytes] | None = None) -> None:
        self.delay = delay
        self.down = False
        self.sent: list[bytes] = []
        self.overlaps: list[bytes] = []
        self.in_flight = in_flight if in_flight is not None else set()

    async def send(self, message: bytes) -> None:
        if self.down:
            raise ConnectionRefusedError("collector down")
        if message in self.in_flight:
            self.overlaps.append(message)
        self.in_flight.add(message)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            self.sent.append(message)
        finally:
            self.in_flight.discard(message)

    async def close(self) -> None:
        pass


# --- outcome records ----------------------------------------------------------------------
PATIENT = "543797436^^^&1.2.840.113619.6.197&ISO"
OTHER_PATIENT = "77^^^&1.2.840.113619.6.197&ISO"
CONSUMER = Endpoint("http://www.w3.org/2005/08/addressing/anonymous", "4711", "10.1.2.3")
SOURCE = Endpoint("http://source.example.org/reply", "4711", "10.1.2.4")
REPOSITORY = Endpoint("https://xdsi.example.org/xds/repository")
REGISTRY = Endpoint("https://xdsi.example.org/xds/registry")
REPOSITORY_AS_CLIENT = Endpoint("1.3.6.1.4.1.21367.2010.1.2.1125", None, "xdsi.example.org")
REPOSITORY_ID = "1.3.6.1.4.1.21367.2010.1.2.1125"
HOME = "urn:oid:1.3.6.1.4.1.21367.2010.1.2.2045"
ADHOC_QUERY = (
    b'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"/>'
)


def submission(transaction: Transaction, side: Side) -> TransactionOutcome:
    requester = SOURCE if transaction is not Transaction.ITI42 else REPOSITORY_AS_CLIENT
    responder = REPOSITORY if transaction is not Transaction.ITI42 else REGISTRY
    return TransactionOutcome(
        transaction,
        side,
        requester=requester,
        responder=responder,
        patient_ids=(PATIENT,),
        submission_set_unique_id="1.3.6.1.4.1.21367.2009.1.2.1.42",
    )


def stored_query(side: Side, patients: tuple[str, ...] = (PATIENT,)) -> TransactionOutcome:
    return TransactionOutcome(
        Transaction.ITI18,
        side,
        requester=CONSUMER,
        responder=REGISTRY,
        patient_ids=patients,
        query_id=StoredQuery.FIND_DOCUMENTS,
        query_request=ADHOC_QUERY,
        home_community_id=HOME,
    )


def retrieve(
    side: Side, documents: tuple[DocumentReference, ...] | None = None
) -> TransactionOutcome:
    return TransactionOutcome(
        Transaction.ITI43,
        side,
        requester=CONSUMER,
        responder=REPOSITORY,
        documents=documents
        or (
            DocumentReference("1.2.3.4.1", REPOSITORY_ID, HOME),
            DocumentReference("1.2.3.4.2", REPOSITORY_ID, HOME),
        ),
    )


def patient_feed(
    side: Side, trigger: str = "A01", merged: tuple[str, ...] = ()
) -> TransactionOutcome:
    return TransactionOutcome(
        Transaction.ITI8,
        side,
        requester=Endpoint("PAT_IDENTITY_X_REF_MGR_MISYS|ALLSCRIPTS", "4711", "10.1.2.5"),
        responder=Endpoint("XDSI_REGISTRY|XDSI", None, "xdsi.example.org"),
        patient_ids=(PATIENT,),
        hl7_message_control_id="MSG-00042",
        hl7_trigger_event=trigger,
        merged_patient_ids=merged,
    )
