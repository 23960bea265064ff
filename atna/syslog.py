"""ITI-20 Record Audit Event on the wire: RFC 5424 messages over TLS or UDP.

- ``frame``: one RFC 5424 message, ``<85>1 TIMESTAMP HOSTNAME APP-NAME PROCID
  IHE+RFC-3881 - BOM<AuditMessage ...>`` (ITI TF-2 3.20.4.2.1: facility 10 authpriv,
  severity 5 notice, MSGID ``IHE+RFC-3881``, no structured data, MSG the XML in UTF-8
  preceded by a BOM).
- ``TlsSender``: RFC 5425, octet-counting (``MSG-LEN SP SYSLOG-MSG``, 4.3) on one kept
  connection, TLS 1.2 or later with mutual authentication (ITI-19).
- ``UdpSender``: RFC 5426, one message per datagram.  A message larger than a datagram
  may carry is refused with ``MessageTooLarge`` rather than truncated (RFC 5426 3.2
  allows truncation, but a truncated audit message is no longer valid XML): the spool
  records that delivery as failed, keeps the message, and the other destinations still
  receive it.

Destinations are URLs: ``tls://host:port`` (default port 6514, RFC 5425 4.1) and
``udp://host:port`` (default port 514, RFC 5426 3.3).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from atna.message import format_date_time
from atna.node_authentication import OnTlsFailure, reporting_context

# ITI TF-2 3.20.4.2.1 / RFC 5424 6.2.1: PRI = facility * 8 + severity
FACILITY_AUTHPRIV = 10
SEVERITY_NOTICE = 5
PRI = FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE  # 85
SYSLOG_VERSION = 1
MSGID = "IHE+RFC-3881"
NILVALUE = "-"
BOM = b"\xef\xbb\xbf"  # RFC 5424 6.4: MSG-UTF8 starts with a BOM

# RFC 5424 6.2: header field lengths
HOSTNAME_MAX = 255
APP_NAME_MAX = 48
PROCID_MAX = 128

TLS_DEFAULT_PORT = 6514  # RFC 5425 4.1
UDP_DEFAULT_PORT = 514  # RFC 5426 3.3
# RFC 5426 3.2: the IPv4 limit of a UDP payload (65535 - 8 UDP - 20 IP header)
UDP_MAX_PAYLOAD = 65507
CONNECT_TIMEOUT = 10.0
SEND_TIMEOUT = 30.0


class MessageTooLarge(Exception):
    """The message cannot be carried by this transport; retrying will not help."""


@lru_cache(maxsize=64)  # host, application and process names: the same few values
def _header_field(value: str | None, limit: int) -> str:
    # RFC 5424 6: header fields are PRINTUSASCII (33..126), or NILVALUE
    if not value:
        return NILVALUE
    cleaned = "".join(ch if 33 <= ord(ch) <= 126 else "_" for ch in value)
    return cleaned[:limit]


def frame(
    xml: bytes,
    *,
    timestamp: datetime,
    hostname: str | None,
    app_name: str | None,
    procid: str | None,
) -> bytes:
    """One RFC 5424 SYSLOG-MSG carrying ``xml`` (ITI TF-2 3.20.4.2.1)."""
    header = " ".join(
        (
            f"<{PRI}>{SYSLOG_VERSION}",
            format_date_time(timestamp),
            _header_field(hostname, HOSTNAME_MAX),
            _header_field(app_name, APP_NAME_MAX),
            _header_field(procid, PROCID_MAX),
            MSGID,
            NILVALUE,  # STRUCTURED-DATA
        )
    )
    return header.encode("ascii") + b" " + BOM + xml


def octet_counted(message: bytes) -> bytes:
    """RFC 5425 4.3: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(message)).encode("ascii") + b" " + message


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


_DEFAULT_PORTS = {"tls": TLS_DEFAULT_PORT, "udp": UDP_DEFAULT_PORT}


def parse_destination(url: str) -> Destination:
    """``tls://host:port`` or ``udp://host:port``."""
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an audit destination (tls:// or udp://): {url!r}")
    return Destination(parts.scheme, parts.hostname, parts.port or _DEFAULT_PORTS[parts.scheme])


@dataclass(frozen=True)
class TlsConfig:
    """This node's certificate and key, and the CA its peers' certificates chain to."""

    certfile: Path
    keyfile: Path
    cafile: Path
    check_hostname: bool = True


def client_context(config: TlsConfig) -> ssl.SSLContext:
    """RFC 5425 5 / ITI TF-2 3.19: TLS 1.2 or later, the server verified against the
    configured CA, and this node's certificate presented for mutual authentication."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(config.cafile))
    context.load_cert_chain(str(config.certfile), str(config.keyfile))
    context.check_hostname = config.check_hostname
    context.verify_mode = ssl.CERT_REQUIRED
    return context


class Sender(Protocol):
    """The transport seam: send one RFC 5424 message; raise when it did not go out."""

    async def send(self, message: bytes) -> None: ...

    async def close(self) -> None: ...


class TlsSender:
    """RFC 5425: one kept TLS connection; dropped on any error and opened again on the
    next send."""

    def __init__(self, destination: Destination, context: ssl.SSLContext) -> None:
        self._destination = destination
        self._context = context
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def _usable(self) -> bool:
        # a collector that closed its side is noticed before the next write, not after
        return not (
            self._writer is None
            or self._reader is None
            or self._writer.is_closing()
            or self._reader.at_eof()
        )

    async def _connect(self) -> asyncio.StreamWriter:
        if not self._usable():
            await self.close()
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self._destination.host,
                    self._destination.port,
                    ssl=self._context,
                    server_hostname=self._destination.host,
                ),
                CONNECT_TIMEOUT,
            )
        assert self._writer is not None
        return self._writer

    async def send(self, message: bytes) -> None:
        try:
            writer = await self._connect()
            writer.write(octet_counted(message))
            await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def send_many(self, messages: Sequence[bytes]) -> None:
        """Send ``messages`` in order in one write (TLS packs them into full records):
        RFC 5425 has no acknowledgement, so a batch is as confirmed as its last frame."""
        try:
            writer = await self._connect()
            writer.writelines([octet_counted(message) for message in messages])
            await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), CONNECT_TIMEOUT)


class _DatagramProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: Exception | None = None

    def error_received(self, exc: Exception) -> None:
        self.error = exc


class UdpSender:
    """RFC 5426: one message per datagram; refuses what a datagram cannot carry."""

    def __init__(self, destination: Destination, max_payload: int = UDP_MAX_PAYLOAD) -> None:
        self._destination = destination
        self._max_payload = max_payload
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _DatagramProtocol | None = None

    async def send(self, message: bytes) -> None:
        if len(message) > self._max_payload:
            raise MessageTooLarge(
                f"{len(message)} octets exceed the UDP limit of {self._max_payload}"
            )
        if self._transport is None or self._transport.is_closing():
            loop = asyncio.get_running_loop()
            self._transport, self._protocol = await loop.create_datagram_endpoint(
                _DatagramProtocol,
                remote_addr=(self._destination.host, self._destination.port),
            )
        assert self._protocol is not None
        if self._protocol.error is not None:
            error, self._protocol.error = self._protocol.error, None
            await self.close()
            raise error
        self._transport.sendto(message)

    async def close(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()


def make_sender(
    destination: Destination,
    tls: TlsConfig | None = None,
    on_tls_failure: OnTlsFailure | None = None,
) -> Sender:
    """The sender for ``destination``'s scheme; a failed node authentication with a TLS
    destination is reported to ``on_tls_failure`` (``atna.node_authentication``)."""
    if destination.scheme == "tls":
        if tls is None:
            raise ValueError(f"{destination.url} needs a TLS configuration")
        context = reporting_context(
            client_context(tls), on_tls_failure, scheme="tls", service=destination.url
        )
        return TlsSender(destination, context)
    return UdpSender(destination)


__all__ = [
    "BOM",
    "MSGID",
    "PRI",
    "TLS_DEFAULT_PORT",
    "UDP_DEFAULT_PORT",
    "UDP_MAX_PAYLOAD",
    "Destination",
    "MessageTooLarge",
    "Sender",
    "TlsConfig",
    "TlsSender",
    "UdpSender",
    "client_context",
    "frame",
    "make_sender",
    "octet_counted",
]
