"""atna.Auditor: record() to a collector end to end; record never fails the caller."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from atna_support import PATIENT, ScriptedSender, TlsCollector, stored_query, submission
from lxml import etree

from atna import Auditor, AuditSpool, Side, TlsConfig
from atna.auditor import _Queued, durable, wait_durable
from atna.spool import make_engine
from ebxml.vocabulary import Transaction

DEST = "tls://localhost:6514"


def auditor(spool_url: str, sender: ScriptedSender) -> Auditor:
    return Auditor(
        AuditSpool(make_engine(spool_url)),
        [DEST],
        "xdsi@node1",
        "1.2.3",
        hostname="node1.example.org",
        senders={DEST: sender},
        shipper_options={"poll_interval": 0.02},
    )


def xml_of(message: bytes) -> etree._Element:
    return etree.fromstring(message.split(b"\xef\xbb\xbf", 1)[1])


async def test_recorded_outcomes_reach_the_collector_in_order(spool_url: str) -> None:
    sender = ScriptedSender()
    audit = auditor(spool_url, sender)
    task = asyncio.create_task(audit.run())
    for side in (Side.REQUESTER, Side.RESPONDER):
        audit.record(stored_query(side))
    audit.record(submission(Transaction.ITI41, Side.RESPONDER))
    async with asyncio.timeout(10):
        while len(sender.sent) < 3:
            await asyncio.sleep(0.01)
    audit.stop()
    await task
    audit.spool.engine.dispose()
    assert [xml_of(m).find("EventIdentification/EventID").get("csd-code") for m in sender.sent] == [
        "110112",
        "110112",
        "110107",
    ]
    assert all(m.startswith(b"<85>1 ") for m in sender.sent)


def test_record_never_raises_on_an_event_it_cannot_build(spool_url: str, caplog) -> None:  # noqa: ANN001
    audit = auditor(spool_url, ScriptedSender())
    audit.record("not an event")  # type: ignore[arg-type]
    audit.record(stored_query(Side.RESPONDER))
    assert audit.flush(10)
    audit.stop()
    assert audit.spool.pending_count(DEST) == 1
    assert "could not be built" in caplog.text
    audit.spool.engine.dispose()


def test_events_recorded_together_are_spooled_in_one_transaction(spool_url: str) -> None:
    class CountingSpool(AuditSpool):
        groups: list[int]

        def enqueue(self, messages, destinations):  # noqa: ANN001, ANN202
            self.groups.append(len(messages))
            return super().enqueue(messages, destinations)

    spool = CountingSpool(make_engine(spool_url))
    spool.groups = []
    audit = Auditor(spool, [DEST], "xdsi", senders={DEST: ScriptedSender()})
    for _ in range(20):  # 20 record() calls arriving before the writer takes any
        audit._queue.put_nowait(_Queued(stored_query(Side.RESPONDER), Future()))
    audit._ensure_writer()
    assert audit.flush(10)
    audit.stop()
    spool.engine.dispose()
    assert spool.groups == [20]


async def test_auditor_ships_over_mutual_tls_with_start_and_stop(spool_url: str, pki) -> None:  # noqa: ANN001
    collector = await TlsCollector(pki).start()
    url = f"tls://localhost:{collector.port}"
    audit = Auditor(
        AuditSpool(make_engine(spool_url)),
        [url],
        "xdsi@node1",
        tls=TlsConfig(pki.client_cert, pki.client_key, pki.ca),
        shipper_options={"poll_interval": 0.02},
    )
    audit.start()
    audit.record(stored_query(Side.RESPONDER))
    try:
        await collector.received.wait_for(1)
    finally:
        await asyncio.to_thread(audit.stop)
        await collector.stop()
        audit.spool.engine.dispose()
    (message,) = collector.received.messages
    patient = xml_of(message).find("ParticipantObjectIdentification")
    assert patient.get("ParticipantObjectID") == PATIENT
    assert message.split(b" ", 6)[5] == b"IHE+RFC-3881"


def test_record_hands_back_a_ticket_resolved_once_the_event_is_durable(spool_url: str) -> None:
    audit = auditor(spool_url, ScriptedSender())
    ticket = audit.record(stored_query(Side.RESPONDER))
    assert wait_durable(ticket, 10) is True
    # durable means committed: another connection sees it before anything is flushed
    assert AuditSpool(make_engine(spool_url)).pending_count(DEST) == 1
    audit.stop()
    audit.spool.engine.dispose()


async def test_durable_awaits_the_ticket_on_the_event_loop(spool_url: str) -> None:
    audit = auditor(spool_url, ScriptedSender())
    assert await durable(audit.record(stored_query(Side.RESPONDER)), 10) is True
    assert await durable(None) is True  # an observer that recorded nothing
    audit.stop()
    audit.spool.engine.dispose()


def test_a_full_spool_refuses_then_accepts_again_with_security_alerts(spool_url: str) -> None:
    audit = auditor(spool_url, ScriptedSender())
    audit.spool_limit = 5
    for _ in range(4):
        audit.record(stored_query(Side.RESPONDER))
    assert audit.flush(10) and audit.accepting
    assert wait_durable(audit.record(stored_query(Side.RESPONDER)), 10)
    assert not audit.accepting  # 5 waiting for the destination: the limit
    messages = [m for _, m in audit.spool.events()]
    alert = xml_of(messages[-1])
    assert alert.find("EventIdentification/EventID").get("csd-code") == "110113"
    assert alert.find("EventIdentification/EventTypeCode").get("csd-code") == "110133"
    assert "undelivered" in etree.tostring(alert).decode()
    # the shipper delivers the backlog: accepting again, with the matching alert
    audit.shipper.on_shipped = audit._on_shipped

    async def ship() -> None:
        await audit.shipper.ship_once(DEST)

    asyncio.run(ship())
    assert audit.accepting
    last = xml_of([m for _, m in audit.spool.events()][-1])
    assert last.find("EventIdentification/EventTypeCode").get("csd-code") == "110134"
    audit.stop()
    audit.spool.engine.dispose()
