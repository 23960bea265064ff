"""atna.shipper: in order, retried while the collector is down, resumed after a
restart, never one message sent twice at the same time by two shippers."""

from __future__ import annotations

import asyncio

import pytest
from atna_support import ScriptedSender, TlsCollector, UdpCollector

from atna.shipper import Shipper
from atna.spool import DELIVERED, FAILED, AuditSpool, Backoff, make_engine
from atna.syslog import TlsConfig, TlsSender, UdpSender, client_context, parse_destination

DEST = "tls://localhost:6514"
FAST = Backoff(initial=0.02, maximum=0.1)


@pytest.fixture
def spool(spool_url: str) -> AuditSpool:
    spool = AuditSpool(make_engine(spool_url), backoff=FAST)
    yield spool
    spool.engine.dispose()


async def run_until(shipper: Shipper, done, timeout: float = 10.0) -> None:  # noqa: ANN001
    task = asyncio.create_task(shipper.run())
    try:
        async with asyncio.timeout(timeout):
            while not done():
                await asyncio.sleep(0.01)
    finally:
        shipper.stop()
        await task


def messages(count: int) -> list[bytes]:
    return [f"<AuditMessage n='{i}'/>".encode() for i in range(count)]


async def test_messages_are_shipped_in_order(spool: AuditSpool) -> None:
    spool.enqueue(messages(25), [DEST])
    sender = ScriptedSender()
    await run_until(Shipper(spool, {DEST: sender}, batch_size=10), lambda: len(sender.sent) == 25)
    assert sender.sent == messages(25)
    assert {d.status for d in spool.deliveries(DEST)} == {DELIVERED}


async def test_shipping_is_retried_until_the_tls_collector_is_up(spool: AuditSpool, pki) -> None:  # noqa: ANN001
    probe = await TlsCollector(pki).start()  # find a free port, then leave it closed
    port = probe.port
    await probe.stop()
    url = f"tls://localhost:{port}"
    sender = TlsSender(
        parse_destination(url),
        client_context(TlsConfig(pki.client_cert, pki.client_key, pki.ca)),
    )
    spool.enqueue(messages(3), [url])
    shipper = Shipper(spool, {url: sender}, poll_interval=0.05)
    task = asyncio.create_task(shipper.run())
    try:
        async with asyncio.timeout(10):
            while not spool.deliveries(url)[0].attempts:
                await asyncio.sleep(0.02)
        collector = await TlsCollector(pki, port).start()
        await collector.received.wait_for(3, timeout=10)
    finally:
        shipper.stop()
        await task
    await collector.stop()
    assert collector.received.messages == messages(3)
    assert spool.deliveries(url)[0].attempts >= 2


async def test_a_restarted_shipper_resumes_from_the_spool(
    spool: AuditSpool, spool_url: str
) -> None:
    spool.enqueue(messages(6), [DEST])
    first = ScriptedSender()
    await run_until(Shipper(spool, {DEST: first}, batch_size=2), lambda: len(first.sent) >= 2)
    assert first.sent == messages(6)[: len(first.sent)]

    restarted = AuditSpool(make_engine(spool_url), backoff=FAST)
    second = ScriptedSender()
    remaining = 6 - len(first.sent)
    await run_until(Shipper(restarted, {DEST: second}), lambda: len(second.sent) == remaining)
    restarted.engine.dispose()
    assert first.sent + second.sent == messages(6)


async def test_later_messages_wait_behind_a_failed_one(spool: AuditSpool) -> None:
    spool.enqueue(messages(3), [DEST])
    sender = ScriptedSender()
    sender.down = True
    shipper = Shipper(spool, {DEST: sender}, poll_interval=0.02)
    assert await shipper.ship_once(DEST) == 0
    sender.down = False
    await run_until(shipper, lambda: len(sender.sent) == 3)
    assert sender.sent == messages(3)


async def test_message_too_large_for_udp_is_recorded_failed_and_others_go_on(
    spool: AuditSpool,
) -> None:
    collector = await UdpCollector().start()
    url = f"udp://127.0.0.1:{collector.port}"
    small, large = b"<AuditMessage/>", b"<AuditMessage>" + b"x" * 500 + b"</AuditMessage>"
    spool.enqueue([small, large, small], [url])
    shipper = Shipper(spool, {url: UdpSender(parse_destination(url), max_payload=200)})
    try:
        await run_until(shipper, lambda: len(collector.received.frames) == 2)
    finally:
        await collector.stop()
    assert [d.status for d in spool.deliveries(url)] == [DELIVERED, FAILED, DELIVERED]
    assert "UDP limit" in spool.deliveries(url)[1].last_error


async def test_two_shippers_on_postgresql_never_send_a_message_twice_at_once(
    pg_spool_url: str,
) -> None:
    from sqlalchemy import text

    first_spool = AuditSpool(make_engine(pg_spool_url), backoff=FAST)
    with first_spool.engine.begin() as connection:
        connection.execute(
            text("TRUNCATE atna_spool_delivery, atna_spool_event, atna_spool_destination")
        )
    second_spool = AuditSpool(make_engine(pg_spool_url), backoff=FAST)  # as another process
    first_spool.enqueue(messages(120), [DEST])
    in_flight: set[bytes] = set()
    a, b = ScriptedSender(0.001, in_flight), ScriptedSender(0.001, in_flight)
    one = Shipper(first_spool, {DEST: a}, batch_size=7, poll_interval=0.01)
    two = Shipper(second_spool, {DEST: b}, batch_size=7, poll_interval=0.01)
    tasks = [asyncio.create_task(one.run()), asyncio.create_task(two.run())]
    try:
        async with asyncio.timeout(20):
            # both compete for the destination; then the first "process" stops and the
            # second must take over what is left
            while len(a.sent) + len(b.sent) < 60:
                await asyncio.sleep(0.005)
            one.stop()
            while len(a.sent) + len(b.sent) < 120:
                await asyncio.sleep(0.01)
    finally:
        one.stop()
        two.stop()
        await asyncio.gather(*tasks)
        first_spool.engine.dispose()
        second_spool.engine.dispose()
    assert a.overlaps == b.overlaps == []
    assert sorted(a.sent + b.sent) == sorted(messages(120))  # each once
    assert b.sent, "the second shipper took over"
