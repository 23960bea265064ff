"""The engine every actor's store uses when it shares nothing special with another:
SQLite gets WAL, full synchronous writes and a busy timeout (several processes may open
one file); a pooled server connection is checked before use, so one a database restart
closed is replaced instead of failing the next request (``storage.liveness``: without a
round trip on psycopg, ``SELECT 1`` on other drivers)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event

from storage.liveness import watch_liveness


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def server_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a database server (PostgreSQL) whose pooled connections are checked
    before use."""
    engine = create_engine(url, **kwargs)
    if watch_liveness(engine):
        return engine
    engine.dispose()
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if not url.startswith("sqlite"):
        return server_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


__all__ = ["make_engine", "server_engine"]
