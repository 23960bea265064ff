"""atna.syslog: RFC 5424 framing, RFC 5425 TLS with mutual authentication, RFC 5426 UDP."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime

import pytest
from atna_support import TlsCollector, UdpCollector

from atna.syslog import (
    MessageTooLarge,
    TlsConfig,
    TlsSender,
    UdpSender,
    client_context,
    frame,
    octet_counted,
    parse_destination,
)

XML = b"<?xml version='1.0' encoding='UTF-8'?><AuditMessage/>"
MOMENT = datetime(2024, 5, 1, 12, 30, 15, 123000, tzinfo=UTC)


def framed(xml: bytes = XML) -> bytes:
    return frame(
        xml, timestamp=MOMENT, hostname="node1.example.org", app_name="xdsi", procid="4711"
    )


def test_frame_bytes_follow_rfc5424_and_iti20() -> None:
    assert framed() == (
        b"<85>1 2024-05-01T12:30:15.123Z node1.example.org xdsi 4711 IHE+RFC-3881 - "
        b"\xef\xbb\xbf" + XML
    )


def test_missing_header_fields_are_nilvalue() -> None:
    message = frame(XML, timestamp=MOMENT, hostname=None, app_name="", procid=None)
    assert message.startswith(b"<85>1 2024-05-01T12:30:15.123Z - - - IHE+RFC-3881 - \xef\xbb\xbf")


def test_header_fields_are_printable_ascii_without_spaces() -> None:
    message = frame(XML, timestamp=MOMENT, hostname="a b", app_name="x\u00e9", procid="1")
    assert message.split(b" ")[2:4] == [b"a_b", b"x_"]


def test_app_name_is_cut_to_48_characters() -> None:
    message = frame(XML, timestamp=MOMENT, hostname="h", app_name="a" * 60, procid="1")
    assert message.split(b" ")[3] == b"a" * 48


def test_octet_counting_prefixes_length_and_space() -> None:
    assert octet_counted(b"abc") == b"3 abc"


def test_octet_count_is_in_octets_not_characters() -> None:
    assert octet_counted("\u00e9".encode()) == b"2 \xc3\xa9"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("tls://audit.example.org:6514", ("tls", "audit.example.org", 6514)),
        ("tls://audit.example.org", ("tls", "audit.example.org", 6514)),
        ("udp://10.0.0.1", ("udp", "10.0.0.1", 514)),
        ("udp://10.0.0.1:1514", ("udp", "10.0.0.1", 1514)),
    ],
)
def test_destination_urls(url: str, expected: tuple[str, str, int]) -> None:
    destination = parse_destination(url)
    assert (destination.scheme, destination.host, destination.port) == expected


@pytest.mark.parametrize("url", ["http://x:1", "tcp://x:1", "tls://"])
def test_other_destination_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_destination(url)


def test_client_context_requires_tls12_and_verifies_the_server(pki) -> None:  # noqa: ANN001
    context = client_context(TlsConfig(pki.client_cert, pki.client_key, pki.ca))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


async def test_tls_sender_delivers_octet_counted_messages_with_client_certificate(pki) -> None:  # noqa: ANN001
    collector = await TlsCollector(pki).start()
    sender = TlsSender(
        parse_destination(f"tls://localhost:{collector.port}"),
        client_context(TlsConfig(pki.client_cert, pki.client_key, pki.ca)),
    )
    try:
        messages = [
            framed(),
            framed("<AuditMessage>\u00e9</AuditMessage>".encode()),
        ]
        for message in messages:
            await sender.send(message)
        await collector.received.wait_for(2)
    finally:
        await sender.close()
        await collector.stop()
    assert collector.received.messages == messages
    assert [size for size, _ in collector.received.frames] == [len(m) for m in messages]
    assert collector.received.peers == ["xdsi-node"]  # one kept connection, our certificate


async def test_collector_refuses_a_client_without_certificate(pki) -> None:  # noqa: ANN001
    collector = await TlsCollector(pki).start()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(pki.ca))
    try:
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            reader, writer = await asyncio.open_connection(
                "localhost", collector.port, ssl=context, server_hostname="localhost"
            )
            writer.write(octet_counted(framed()))
            await writer.drain()
            # TLS 1.3: the server's refusal arrives after the client's handshake
            if not await asyncio.wait_for(reader.read(1), 5):
                raise ConnectionError("closed by the collector")
    finally:
        await collector.stop()
    assert collector.received.messages == []


async def test_sender_refuses_a_collector_with_an_untrusted_certificate(pki) -> None:  # noqa: ANN001
    collector = await TlsCollector(pki).start()
    sender = TlsSender(
        parse_destination(f"tls://localhost:{collector.port}"),
        client_context(TlsConfig(pki.client_cert, pki.client_key, pki.other_ca)),
    )
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            await sender.send(framed())
    finally:
        await sender.close()
        await collector.stop()


async def test_tls_sender_reconnects_after_the_collector_restarts(pki) -> None:  # noqa: ANN001
    config = TlsConfig(pki.client_cert, pki.client_key, pki.ca)
    collector = await TlsCollector(pki).start()
    port = collector.port
    sender = TlsSender(parse_destination(f"tls://localhost:{port}"), client_context(config))
    try:
        await sender.send(framed())
        await collector.received.wait_for(1)
        await collector.stop()
        await asyncio.sleep(0.05)
        restarted = await TlsCollector(pki, port).start()
        await sender.send(framed())
        await restarted.received.wait_for(1)
        await restarted.stop()
    finally:
        await sender.close()


async def test_udp_sender_sends_one_message_per_datagram() -> None:
    collector = await UdpCollector().start()
    sender = UdpSender(parse_destination(f"udp://127.0.0.1:{collector.port}"))
    try:
        await sender.send(framed())
        await sender.send(framed())
        await collector.received.wait_for(2)
    finally:
        await sender.close()
        await collector.stop()
    assert collector.received.messages == [framed(), framed()]


async def test_udp_sender_refuses_a_message_larger_than_a_datagram() -> None:
    collector = await UdpCollector().start()
    sender = UdpSender(parse_destination(f"udp://127.0.0.1:{collector.port}"), max_payload=100)
    try:
        with pytest.raises(MessageTooLarge):
            await sender.send(framed(b"<AuditMessage>" + b"x" * 200 + b"</AuditMessage>"))
    finally:
        await sender.close()
        await collector.stop()
    assert collector.received.messages == []
