"""The instance index on SQLite and on PostgreSQL (a throwaway database per run, skipped
when unreachable unless XDSI_REQUIRE_INTEROP=1), and a store under tmp_path.  Test
modules import the fixtures they use."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete

from imaging_source.instances import ImagingInstance, InstanceStore, make_engine, upgrade

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


def require_interop() -> bool:
    return os.environ.get("XDSI_REQUIRE_INTEROP") == "1"


@contextmanager
def postgres_database(prefix: str = "xdsi_imaging_test") -> Iterator[str]:
    """A new, empty PostgreSQL database (its SQLAlchemy URL), dropped at the end;
    skipped when PostgreSQL is unreachable unless XDSI_REQUIRE_INTEROP=1."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if require_interop():
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def imaging_postgres_engine() -> Iterator[Engine]:
    with postgres_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An index migrated once per run; each test gets a copy."""
    path = tmp_path_factory.mktemp("index") / "instances.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def sqlite_index_engine(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Engine]:
    """The index on SQLite only, for protocol tests (storage is tested on both)."""
    path = tmp_path / "instances.sqlite"
    shutil.copyfile(migrated_sqlite, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def index_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "instances.sqlite"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("imaging_postgres_engine")
    yield engine
    with engine.begin() as connection:
        connection.execute(delete(ImagingInstance))


@pytest.fixture
def store(index_engine: Engine, tmp_path: Path) -> InstanceStore:
    return InstanceStore(tmp_path / "store", index_engine)
