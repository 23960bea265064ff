"""ITI-19 Authenticate Node: mutual TLS on every listener xdsi runs.

ITI TF-2 3.19.6 (the BCP 195 TLS Secure Option): TLS 1.2 at least; the suites
``TLS_ECDHE_RSA_WITH_AES_{128,256}_GCM_SHA{256,384}`` and
``TLS_DHE_RSA_WITH_AES_{128,256}_GCM_SHA{256,384}`` offered (the DHE ones need
finite-field DH parameters on the server: :func:`ensure_dh_params` writes the RFC 7919
``ffdhe2048`` group once into the data directory); the peer's certificate required and
accepted when it chains to a configured CA **or** is itself configured as trusted
(self-signed allowed: a trusted certificate is loaded as a trust anchor, and partial
chains are accepted); certificates in PEM, DER or BER; no particular attribute of the
peer certificate is required (no host name or extended key usage check on clients).

Listeners.  :class:`HandshakingProtocol` accepts the TCP connection, does the TLS
handshake itself (``loop.start_tls``) and only then gives the TLS transport to the
protocol behind it, so that a refused handshake - no certificate, an unknown CA, an
old protocol version - is seen by xdsi with the peer's address and reported to
``on_refused`` (the composition root audits it as a Security Alert).  HTTP uses it
through :func:`https_protocol_factory` (uvicorn's ``http=`` setting: uvicorn itself is
given no SSL context), MLLP through :func:`serve_tls`.  Blocking socket servers (the
DICOM listener, pynetdicom) use :func:`socket_server_context`, whose sockets report a
failed handshake the same way.

The peer's identity.  :class:`HttpsProtocol` puts the ASGI TLS extension
(``scope["extensions"]["tls"]``: ``client_cert_chain``, ``client_cert_name``,
``tls_version``) into every request's scope, so an application may base access
decisions on it; :class:`PeerCertificateMiddleware` and :class:`HandshakingProtocol`
publish the :class:`PeerCertificate` in the context variable :data:`CURRENT_PEER`,
where the audit observers find it (:func:`current_peer_subject`).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import ssl
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dh
from cryptography.utils import CryptographyDeprecationWarning

from xdsi.header_timeout import HeaderTimeoutProtocol, header_timeout_protocol

log = logging.getLogger(__name__)

DH_PARAMS_FILE_NAME = "dhparams.pem"
HANDSHAKE_TIMEOUT = 10.0  # seconds a peer may take to complete the handshake
# ITI TF-2 3.19.6.2 / BCP 195 (RFC 9325 4.2): the TLS 1.2 suites offered, strongest
# first; ECDSA twins for nodes with EC keys.  TLS 1.3 suites are OpenSSL's defaults.
ITI19_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "DHE-RSA-AES256-GCM-SHA384",
        "DHE-RSA-AES128-GCM-SHA256",
    )
)
# RFC 7919 Appendix A.1: the ffdhe2048 group (generator 2); a published safe prime, so
# no node spends minutes generating its own and clients recognise the group
FFDHE2048_PRIME = int(
    "FFFFFFFFFFFFFFFFADF85458A2BB4A9AAFDC5620273D3CF1D8B9C583CE2D3695A9E13641146433FBCC93"
    "9DCE249B3EF97D2FE363630C75D8F681B202AEC4617AD3DF1ED5D5FD65612433F51F5F066ED085636555"
    "3DED1AF3B557135E7F57C935984F0C70E0E68B77E2A689DAF3EFE8721DF158A136ADE73530ACCA4F483A"
    "797ABC0AB182B324FB61D108A94BB2C8E3FBB96ADAB760D7F4681D4F42A3DE394DF4AE56EDE76372BB19"
    "0B07A7C8EE0A6D709E02FCE1CDF7E2ECC03404CD28342F619172FE9CE98583FF8E4F1232EEF28183C3FE"
    "3B1B4C6FAD733BB5FCBC2EC22005C58EF1837D1683B2C6F34A26C1B2EFFA886B423861285C97FFFFFFFF"
    "FFFFFFFF",
    16,
)
FFDHE_GENERATOR = 2
# the ASGI TLS extension's tls_version: the protocol version as TLS puts it on the wire
TLS_VERSION_CODES = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


class TlsConfigError(ValueError):
    """A certificate, key or CA file is missing or unreadable."""


# --- certificates and contexts -----------------------------------------------------------
@dataclass(frozen=True)
class NodeTls:
    """This node's certificate and key, and whom it trusts (ITI TF-2 3.19.6.1)."""

    cert: Path
    key: Path
    ca: tuple[Path, ...] = ()  # peers chaining to these are accepted
    trusted: tuple[Path, ...] = ()  # peer certificates accepted as they are
    dh_params: Path | None = None  # see ensure_dh_params; xdsi serve always sets it


def certificates_pem(path: Path) -> str:
    """The certificates in ``path`` as PEM text: PEM as it is, a DER or BER file
    (one certificate) wrapped as PEM for OpenSSL, whose decoder takes BER too."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN CERTIFICATE-----" in data:
        return data.decode("ascii", "replace")
    if not data.startswith(b"\x30"):  # an ASN.1 SEQUENCE, as every certificate is
        raise TlsConfigError(f"{path}: neither PEM nor DER/BER certificate")
    return ssl.DER_cert_to_PEM_cert(data)


def dh_params_pem() -> bytes:
    with warnings.catch_warnings():  # FFDH is what ITI-19's DHE suites are
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        numbers = dh.DHParameterNumbers(FFDHE2048_PRIME, FFDHE_GENERATOR)
        parameters = numbers.parameters()
    return parameters.parameter_bytes(
        serialization.Encoding.PEM, serialization.ParameterFormat.PKCS3
    )


def ensure_dh_params(path: Path) -> Path:
    """Write the DH parameters for the ``DHE`` suites to ``path`` once; returns it."""
    path = Path(path)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_bytes(dh_params_pem())
        temp.replace(path)
    return path


def _trust(context: ssl.SSLContext, ca: Sequence[Path], trusted: Sequence[Path]) -> None:
    for path in (*ca, *trusted):
        try:
            context.load_verify_locations(cadata=certificates_pem(path))
        except ssl.SSLError as exc:
            raise TlsConfigError(f"{path}: not a certificate OpenSSL can read: {exc}") from exc
    # a trusted certificate that is not self-signed is an anchor only with partial chains
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN


def _load_identity(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"{cert} / {key}: certificate and key not usable: {exc}") from exc


def server_context(tls: NodeTls) -> ssl.SSLContext:
    """The server side of ITI-19: TLS >= 1.2, the ITI-19 suites, peers authenticated."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195 (RFC 9325 3.1.1)
    context.set_ciphers(ITI19_CIPHERS)
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    _load_identity(context, tls.cert, tls.key)
    _trust(context, tls.ca, tls.trusted)
    if tls.dh_params is not None:  # without them the DHE suites cannot be chosen
        context.load_dh_params(str(tls.dh_params))
    return context


def client_context(
    cert: Path | None = None, key: Path | None = None, ca: Sequence[Path] = ()
) -> ssl.SSLContext:
    """The client side: the server authenticated against ``ca`` (or the system's store
    when none is given), this node's certificate offered when ``cert`` is set."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ITI19_CIPHERS)
    if ca:
        _trust(context, ca, ())
    else:
        context.load_default_certs()
    if cert is not None:
        _load_identity(context, cert, key or cert)
    return context


# --- the peer's identity ------------------------------------------------------------------
@dataclass(frozen=True)
class PeerCertificate:
    subject: str  # RFC 4514, e.g. "CN=modality-1,O=Hospital"
    issuer: str
    serial_number: int
    der: bytes

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        cert = x509.load_der_x509_certificate(der)
        return cls(
            cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.serial_number, der
        )


def peer_certificate(ssl_object: Any) -> PeerCertificate | None:
    """The authenticated peer's certificate of an ``ssl.SSLObject``/``SSLSocket``."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        return PeerCertificate.from_der(der)
    except ValueError:
        log.warning("peer certificate accepted by OpenSSL but not parsed", exc_info=True)
        return None


CURRENT_PEER: contextvars.ContextVar[PeerCertificate | None] = contextvars.ContextVar(
    "xdsi_tls_peer", default=None
)


def current_peer_subject() -> str | None:
    """The subject of the peer certificate of the connection being served, if any."""
    peer = CURRENT_PEER.get()
    return peer.subject if peer is not None else None


def tls_extension(ssl_object: Any) -> dict[str, Any]:
    """The ASGI TLS extension (asgiref ``tls`` extension spec) for one connection."""
    peer = peer_certificate(ssl_object)
    version = ssl_object.version() if ssl_object is not None else None
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(peer.der)] if peer else [],
        "client_cert_name": peer.subject if peer else None,
        "client_cert_error": None,
        "tls_version": TLS_VERSION_CODES.get(version or ""),
        "cipher_suite": None,
        "xdsi_peer": peer,
    }


# --- refusals ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsRefusal:
    """A peer that failed node authentication on one of this node's listeners."""

    listener: str  # e.g. "https://host:8443", "mllp://host:2575", "dicom://host:11112"
    peer_host: str | None
    peer_port: int | None
    reason: str


OnRefused = Callable[[TlsRefusal], None]


def refusal_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or str(exc)
    if isinstance(exc, TimeoutError):
        return "TLS handshake timed out"
    return str(exc) or type(exc).__name__


def _report(on_refused: OnRefused | None, refusal: TlsRefusal) -> None:
    log.warning(
        "TLS peer %s:%s refused on %s: %s",
        refusal.peer_host,
        refusal.peer_port,
        refusal.listener,
        refusal.reason,
    )
    if on_refused is None:
        return
    try:
        on_refused(refusal)
    except Exception:
        log.exception("TLS refusal not reported")


class HandshakingProtocol(asyncio.Protocol):
    """The TCP side of one connection: does the server handshake, then hands the TLS
    transport to ``inner`` (whose ``connection_made`` sees only authenticated peers)."""

    def __init__(
        self,
        inner: asyncio.BaseProtocol,
        context: ssl.SSLContext,
        listener: str,
        on_refused: OnRefused | None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self._inner = inner
        self._context = context
        self._listener = listener
        self._on_refused = on_refused
        self._timeout = handshake_timeout
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the ClientHello waits in the socket for start_tls
        self._task = asyncio.get_running_loop().create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername") or (None, None)
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                self._inner,  # type: ignore[arg-type]
                self._context,
                server_side=True,
                ssl_handshake_timeout=self._timeout,
            )
        except (OSError, TimeoutError, ConnectionError, EOFError) as exc:
            transport.close()
            _report(
                self._on_refused,
                TlsRefusal(self._listener, peer[0], peer[1], refusal_reason(exc)),
            )
            return
        if tls is None:  # the peer went away during the handshake
            transport.close()
            return
        # the inner protocol's tasks are made in this context: they see the peer
        CURRENT_PEER.set(peer_certificate(tls.get_extra_info("ssl_object")))
        self._inner.connection_made(tls)

    def data_received(self, data: bytes) -> None:  # pragma: no cover - reading is paused
        log.debug("bytes before the TLS handshake dropped")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()


class HttpsProtocol(HeaderTimeoutProtocol):
    """uvicorn's HTTP/1.1 protocol (headers bounded in time, ``xdsi.header_timeout``)
    with the ASGI TLS extension in every request scope."""

    _tls: dict[str, Any] | None = None
    # loop.start_tls may hand over the first request bytes before HandshakingProtocol
    # has called connection_made: they wait here until it has
    _early: list[bytes] | None = None
    _made: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))
        self._made = True
        early, self._early = self._early, None
        for data in early or ():
            super().data_received(data)

    def data_received(self, data: bytes) -> None:
        if not self._made:
            self._early = [*(self._early or ()), data]
            return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope.setdefault("extensions", {})["tls"] = self._tls  # type: ignore[typeddict-item]


def https_protocol_factory(
    context: ssl.SSLContext,
    listener: str,
    on_refused: OnRefused | None,
    header_timeout: float | None = None,
) -> Callable[..., asyncio.Protocol]:
    """uvicorn's ``http=`` setting for mutual TLS: handshake by xdsi, then HTTP whose
    request headers must be complete within ``header_timeout`` seconds."""
    http = header_timeout_protocol(header_timeout, HttpsProtocol)

    def create(**kwargs: Any) -> asyncio.Protocol:
        return HandshakingProtocol(http(**kwargs), context, listener, on_refused)

    return create


class PeerCertificateMiddleware:
    """ASGI middleware: the request's peer certificate (from the TLS extension) in
    :data:`CURRENT_PEER` while the request is served."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        tls = scope.get("extensions", {}).get("tls") if scope["type"] == "http" else None
        token = CURRENT_PEER.set(tls.get("xdsi_peer") if tls else None)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT_PEER.reset(token)


async def serve_tls(
    client_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
    host: str,
    port: int,
    context: ssl.SSLContext,
    listener: str,
    on_refused: OnRefused | None,
) -> asyncio.Server:
    """``asyncio.start_server`` with the handshake done by :class:`HandshakingProtocol`."""
    loop = asyncio.get_running_loop()

    def create() -> asyncio.Protocol:
        reader = asyncio.StreamReader()
        inner = asyncio.StreamReaderProtocol(reader, client_connected)
        return HandshakingProtocol(inner, context, listener, on_refused)

    return await loop.create_server(create, host, port)


# --- blocking sockets (pynetdicom) ---------------------------------------------------------
class _ReportingSocket(ssl.SSLSocket):
    _xdsi_listener = ""
    _xdsi_on_refused: OnRefused | None = None

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except (OSError, TimeoutError) as exc:
            try:
                host, port = self.getpeername()[:2]
            except OSError:
                host, port = None, None
            _report(
                self._xdsi_on_refused,
                TlsRefusal(self._xdsi_listener, host, port, refusal_reason(exc)),
            )
            raise


def socket_server_context(
    tls: NodeTls, listener: str, on_refused: OnRefused | None
) -> ssl.SSLContext:
    """:func:`server_context` for servers that wrap accepted sockets themselves
    (pynetdicom's ``ssl_context``): a refused handshake is reported like the others."""
    context = server_context(tls)
    socket_class = type(
        "ReportingSocket",
        (_ReportingSocket,),
        {"_xdsi_listener": listener, "_xdsi_on_refused": staticmethod(on_refused)},
    )
    context.sslsocket_class = socket_class
    return context


def listener_url(scheme: str, host: str, port: int) -> str:
    shown = socket.getfqdn() if host in ("", "0.0.0.0", "::") else host
    return f"{scheme}://{shown}:{port}"


__all__ = [
    "CURRENT_PEER",
    "DH_PARAMS_FILE_NAME",
    "FFDHE2048_PRIME",
    "ITI19_CIPHERS",
    "HandshakingProtocol",
    "HttpsProtocol",
    "NodeTls",
    "OnRefused",
    "PeerCertificate",
    "PeerCertificateMiddleware",
    "TlsConfigError",
    "TlsRefusal",
    "certificates_pem",
    "client_context",
    "current_peer_subject",
    "dh_params_pem",
    "ensure_dh_params",
    "https_protocol_factory",
    "listener_url",
    "peer_certificate",
    "refusal_reason",
    "server_context",
    "serve_tls",
    "socket_server_context",
    "tls_extension",
]
