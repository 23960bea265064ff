"""The registry's database: engines, session factories, and its Alembic migrations.

SQLite (WAL) is the embedded store, PostgreSQL 15 the production one.  Write
transactions are made so that checks read inside them stay true until commit:

- SQLite: ``BEGIN IMMEDIATE`` takes the write lock up front (other writers wait on
  ``busy_timeout``); readers keep using plain ``BEGIN`` and are never blocked (WAL).
- PostgreSQL: ``SERIALIZABLE`` by default (the patient feed, removals); a lost race
  surfaces as a serialization failure or a unique violation, and
  ``registry.uow.transact`` retries it from the start.  Registrations and updates
  (ITI-42, ITI-57), which race on uniqueIds and relationship targets, begin their
  transaction at READ COMMITTED holding advisory locks on what they touch
  (``registry.locks``): conflicting ones queue instead of aborting each other.

The registry keeps its own Alembic environment (``registry/migrations``) and version
table (``alembic_version_registry``) so the repository can share the database.
Nothing here runs at import.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from storage.engine import server_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_registry"
SQLITE_BUSY_TIMEOUT_MS = 30_000

# A server database's pool keeps up to this many idle connections (SQLAlchemy's default
# is 5), so that a few dozen concurrent requests do not close and reopen connections -
# each a PostgreSQL backend started and its caches and prepared statements warmed again.
# Connections are still opened only as concurrency asks for them.
POOL_SIZE = 20

# execution option read by the SQLite "begin" hook (see write_engine)
_WRITE_OPTION = "xdsi_registry_write"


def _sqlite_connect(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    # let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would defer it)
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(
    url: str, *, sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs: Any
) -> Engine:
    """An engine for an SQLAlchemy ``url`` (``sqlite:///...`` or
    ``postgresql+psycopg://...``), configured for the registry.  On SQLite a writer
    waits up to ``sqlite_busy_timeout_ms`` for another to finish."""
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, **kwargs.pop("connect_args", {})}
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", partial(_sqlite_connect, sqlite_busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", POOL_SIZE)
    return server_engine(url, **kwargs)


def write_engine(engine: Engine) -> Engine:
    """``engine`` set up for one XDS write transaction (see the module docstring)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{_WRITE_OPTION: True})
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="SERIALIZABLE")
    return engine


def session_factory(engine: Engine, *, write: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``write=True`` for sessions that register or merge."""
    bind = write_engine(engine) if write else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


def single_statement_connections(engine: Engine) -> Callable[[], Connection]:
    """Connections for work that reads with ONE Core statement (an ITI-18 stored query):
    no ORM session around it; on PostgreSQL in autocommit, so the statement is its own
    transaction (one snapshot) and no BEGIN and ROLLBACK travel with it; elsewhere the
    connection's own transaction, rolled back when it closes."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT").connect
    return engine.connect


def alembic_config(engine: Engine | None = None) -> Config:
    """A programmatic Alembic configuration for the registry's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    if engine is not None:
        config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the registry's tables in ``engine``'s database to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


__all__ = [
    "MIGRATIONS_DIR",
    "VERSION_TABLE",
    "alembic_config",
    "make_engine",
    "session_factory",
    "single_statement_connections",
    "upgrade",
    "write_engine",
]
