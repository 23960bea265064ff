"""atna.spool on SQLite and PostgreSQL: durable order, per-destination delivery,
group commit, claims, backoff, and an enqueue that never raises."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect

from atna.spool import (
    DELIVERED,
    FAILED,
    PENDING,
    VERSION_TABLE,
    AuditSpool,
    Backoff,
    make_engine,
)

TLS, UDP = "tls://audit.example.org:6514", "udp://audit.example.org:514"


@pytest.fixture
def spool(spool_url: str) -> AuditSpool:
    spool = AuditSpool.open(spool_url, backoff=Backoff(initial=60, maximum=60))
    yield spool
    spool.engine.dispose()


def messages(count: int, prefix: str = "m") -> list[bytes]:
    return [f"{prefix}{i}".encode() for i in range(count)]


def test_migration_creates_spool_tables_and_own_version_table(spool: AuditSpool) -> None:
    names = set(inspect(spool.engine).get_table_names())
    assert {
        "atna_spool_event",
        "atna_spool_delivery",
        "atna_spool_destination",
        VERSION_TABLE,
    } <= names


def test_enqueue_stores_one_pending_delivery_per_destination(spool: AuditSpool) -> None:
    assert spool.enqueue(messages(2), [TLS, UDP])
    assert [d.status for d in spool.deliveries(TLS)] == [PENDING, PENDING]
    assert spool.pending_count(UDP) == 2


def test_claim_returns_messages_oldest_first(spool: AuditSpool) -> None:
    spool.enqueue(messages(3, "a"), [TLS])
    spool.enqueue(messages(2, "b"), [TLS])
    claim = spool.claim(TLS)
    assert [m for _, m in claim.rows] == [b"a0", b"a1", b"a2", b"b0", b"b1"]
    spool.finish(claim)


def test_a_large_group_keeps_its_order_once_destinations_are_known(spool: AuditSpool) -> None:
    # the per-event path (raw SQLite statements; one INSERT ... SELECT on PostgreSQL)
    spool.enqueue(messages(1, "first"), [TLS, UDP])
    group = [f"g{i:04d}".encode() for i in range(300)]
    assert spool.enqueue(group, [TLS, UDP])
    for destination in (TLS, UDP):
        claim = spool.claim(destination, limit=1000)
        assert [m for _, m in claim.rows] == [b"first0", *group]
        assert [i for i, _ in claim.rows] == sorted(i for i, _ in claim.rows)
        spool.finish(claim)


def test_a_lone_event_goes_to_each_destination_or_to_none(spool: AuditSpool) -> None:
    # one event is the usual group: on PostgreSQL its own statement (no bytea[])
    assert spool.enqueue(messages(1, "kept"), [])
    assert spool.enqueue(messages(1, "one"), [TLS])
    assert spool.enqueue(messages(1, "two"), [TLS, UDP])
    assert spool.pending_count(TLS) == 2 and spool.pending_count(UDP) == 1
    claim = spool.claim(TLS)
    assert [m for _, m in claim.rows] == [b"one0", b"two0"]
    claim.delivered.extend(event_id for event_id, _ in claim.rows)
    spool.finish(claim)
    assert spool.backlog() == 1  # two0, for UDP


def test_claim_is_limited(spool: AuditSpool) -> None:
    spool.enqueue(messages(5), [TLS])
    claim = spool.claim(TLS, limit=2)
    assert [m for _, m in claim.rows] == [b"m0", b"m1"]
    spool.finish(claim)


def test_destination_cannot_be_claimed_twice(spool: AuditSpool) -> None:
    spool.enqueue(messages(2), [TLS])
    claim = spool.claim(TLS)
    assert spool.claim(TLS) is None
    spool.finish(claim)
    again = spool.claim(TLS)
    spool.finish(again)
    assert again is not None


def test_another_process_cannot_claim_a_destination_held_on_postgresql(
    pg_spool_url: str,
) -> None:
    spool = AuditSpool(make_engine(pg_spool_url))
    other = AuditSpool(make_engine(pg_spool_url))  # as another process would
    spool.enqueue(messages(2), ["tls://held.example.org:6514"])
    claim = spool.claim("tls://held.example.org:6514")
    try:
        assert other.claim("tls://held.example.org:6514") is None  # FOR UPDATE SKIP LOCKED
    finally:
        spool.finish(claim)
        other.engine.dispose()
        spool.engine.dispose()


@pytest.mark.parametrize(("spool_sync", "expected"), [("full", "on"), ("normal", "off")])
def test_spool_sync_sets_synchronous_commit_of_the_spool_connections_on_postgresql(
    pg_spool_url: str, spool_sync: str, expected: str
) -> None:
    spool = AuditSpool.open(pg_spool_url, synchronous=spool_sync)
    destination = f"tls://sync-{spool_sync}.example.org:6514"
    try:
        spool.enqueue(messages(1), [destination])  # the per-event write, on a pooled connection
        with spool.engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW synchronous_commit").scalar() == expected
        claim = spool.claim(destination)
        spool.finish(claim)
        assert claim is not None and [m for _, m in claim.rows] == [b"m0"]
    finally:
        spool.engine.dispose()


def test_delivered_messages_are_not_claimed_again(spool: AuditSpool) -> None:
    spool.enqueue(messages(3), [TLS])
    claim = spool.claim(TLS)
    claim.delivered.extend(event_id for event_id, _ in claim.rows[:2])
    spool.finish(claim)
    claim = spool.claim(TLS)
    spool.finish(claim)
    assert [m for _, m in claim.rows] == [b"m2"]


def test_delivery_is_kept_per_destination(spool: AuditSpool) -> None:
    spool.enqueue(messages(1), [TLS, UDP])
    claim = spool.claim(TLS)
    claim.delivered.append(claim.rows[0][0])
    spool.finish(claim)
    assert [d.status for d in spool.deliveries(TLS)] == [DELIVERED]
    assert [d.status for d in spool.deliveries(UDP)] == [PENDING]


def test_permanent_failure_is_recorded_and_not_retried(spool: AuditSpool) -> None:
    spool.enqueue(messages(2), [UDP])
    claim = spool.claim(UDP)
    claim.failed[claim.rows[0][0]] = "too large"
    claim.delivered.append(claim.rows[1][0])
    spool.finish(claim)
    rows = spool.deliveries(UDP)
    assert [(r.status, r.last_error) for r in rows] == [(FAILED, "too large"), (DELIVERED, None)]
    assert spool.claim(UDP) is None


def test_retry_backs_off_the_destination(spool: AuditSpool) -> None:
    spool.enqueue(messages(2), [TLS])
    claim = spool.claim(TLS)
    claim.retry = (claim.rows[0][0], "ConnectionRefusedError()")
    spool.finish(claim)
    assert spool.claim(TLS) is None  # backing off for 60 s
    assert spool.next_attempt_at(TLS) > datetime.now(UTC) + timedelta(seconds=50)
    first = spool.deliveries(TLS)[0]
    assert (first.status, first.attempts, first.last_error) == (
        PENDING,
        1,
        "ConnectionRefusedError()",
    )


@pytest.mark.parametrize("failures, delay", [(1, 1.0), (2, 2.0), (3, 4.0), (10, 60.0)])
def test_backoff_doubles_up_to_the_maximum(failures: int, delay: float) -> None:
    assert Backoff(initial=1.0, maximum=60.0).delay(failures) == delay


def test_enqueue_never_raises_and_logs_the_lost_message(
    tmp_path,
    caplog: pytest.LogCaptureFixture,  # noqa: ANN001
) -> None:
    unmigrated = AuditSpool(make_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}"))
    with caplog.at_level(logging.ERROR, logger="atna.spool"):
        assert unmigrated.enqueue([b"<AuditMessage>lost?</AuditMessage>"], [TLS]) is False
    unmigrated.engine.dispose()
    assert "<AuditMessage>lost?</AuditMessage>" in caplog.text


def test_purge_removes_only_fully_handled_events(spool: AuditSpool) -> None:
    spool.enqueue(messages(2), [TLS])
    claim = spool.claim(TLS)
    claim.delivered.append(claim.rows[0][0])
    spool.finish(claim)
    assert spool.purge(datetime.now(UTC) + timedelta(seconds=1)) == 1
    claim = spool.claim(TLS)
    spool.finish(claim)
    assert [m for _, m in claim.rows] == [b"m1"]
