"""The engine every actor's store uses when it shares nothing special with another:
SQLite gets WAL, full synchronous writes and a busy timeout (several processes may open
one file); a pooled server connection is checked before use, so one a database restart
closed is replaced instead of failing the next request (``storage.liveness``: without a
round trip on psycopg, ``SELECT 1`` on other drivers)."""

from __future__ import annotations

from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event

from storage.liveness import watch_liveness


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Execution option: fetch the statement's results in PostgreSQL's binary format.  In
# the text format a bytea value travels hex-encoded - twice its size, encoded by the
# server and decoded by the driver - where the binary format carries the bytes as
# they are (PostgreSQL 53.2.3 / 8.4).  For statements that return stored documents'
# metadata (the registry's canonical XML) this is most of their transfer.
BINARY_RESULTS = "xdsi_binary_results"


def _binary_results(
    _connection: Any,
    cursor: Any,
    _statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    if context is not None and context.execution_options.get(BINARY_RESULTS):
        cursor.format = psycopg.pq.Format.BINARY


def server_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a database server (PostgreSQL) whose pooled connections are checked
    before use; on psycopg it honours ``BINARY_RESULTS``."""
    engine = create_engine(url, **kwargs)
    if watch_liveness(engine):
        event.listen(engine, "before_cursor_execute", _binary_results)
        return engine
    engine.dispose()
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if not url.startswith("sqlite"):
        return server_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


__all__ = ["BINARY_RESULTS", "make_engine", "server_engine"]
