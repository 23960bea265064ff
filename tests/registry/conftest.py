"""Database fixtures for the registry tests, on SQLite and on PostgreSQL.

``engine``: a migrated, empty registry database, parametrised over both backends
(PostgreSQL at 127.0.0.1:5432, user postgres, a throwaway ``xdsi_test_<random>``
database per test run; skipped when unreachable unless XDSI_REQUIRE_INTEROP=1).
``empty_database_url``: an un-migrated database, for migration tests.
``session``: a write session on ``engine`` (rolled back at the end unless committed).
``registry``: a ``DocumentRegistry`` on ``engine`` with the standard validation.
Valid submissions and known patients come from ``registry_builders``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from registry.db import make_engine, session_factory, upgrade
from registry.service import DocumentRegistry
from registry.tables import RegistryBase

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
BACKENDS = ("sqlite", "postgresql")


def require_interop() -> bool:
    return os.environ.get("XDSI_REQUIRE_INTEROP") == "1"


def _pg_admin():  # noqa: ANN202
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Creates throwaway PostgreSQL databases (dropped after the run); yields their URLs."""
    import psycopg

    try:
        _pg_admin().close()
    except psycopg.OperationalError as exc:
        if require_interop():
            raise
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    created: list[str] = []

    def create() -> str:
        name = f"xdsi_test_{uuid.uuid4().hex[:12]}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            # a throwaway database need not wait for the disk on commit
            admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        created.append(name)
        return PG_URL.format(name=name)

    yield create
    with _pg_admin() as admin:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_engine(pg_database_factory: Callable[[], str]) -> Iterator[Engine]:
    engine = make_engine(pg_database_factory())
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("registry") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _empty(engine: Engine) -> None:
    # DELETE is much faster than TRUNCATE on the few rows a test leaves
    with engine.begin() as connection:
        for table in reversed(RegistryBase.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty, migrated registry database on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "registry.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
    else:
        engine = request.getfixturevalue("pg_engine")
        _empty(engine)
        yield engine


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (no tables) on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("pg_database_factory")()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_factory(engine, write=True)() as session:
        yield session
        session.rollback()


@pytest.fixture
def registry(engine: Engine) -> DocumentRegistry:
    return DocumentRegistry(engine)
