"""repository/db.py: the engine; storage/liveness.py: pooled PostgreSQL connections
checked before use without a round trip."""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import event, text

from repository.db import make_engine
from storage.liveness import connection_ended

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def _backend_pid(engine) -> int:  # noqa: ANN001
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_the_server_ended_is_replaced_on_checkout(postgres_url: str) -> None:
    # a database restart or an administrator ends pooled connections: the next
    # transaction gets a new one instead of failing, and no SELECT 1 is sent for it
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        assert not engine.pool._pre_ping  # type: ignore[attr-defined]
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first  # a live connection is kept, not replaced
        with psycopg.connect(ADMIN, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (first,))
        sent: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        for _ in range(100):  # the backend has exited: its FATAL and close were sent
            with psycopg.connect(ADMIN) as probe:
                query = "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
                if not probe.execute(query, (first,)).fetchall():
                    break
            time.sleep(0.02)
        second = _backend_pid(engine)
        assert second != first
        assert sent == ["SELECT pg_backend_pid()"]
    finally:
        engine.dispose()


def test_an_idle_connection_is_not_taken_for_ended(postgres_url: str) -> None:
    connection = psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql"))
    try:
        connection.execute("SELECT 1").fetchall()
        connection.commit()
        assert not connection_ended(connection)
        connection.close()
        assert connection_ended(connection)
    finally:
        connection.close()
