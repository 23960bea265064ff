"""Fixtures for the audit tests: reference material, a test PKI, spool databases.

Reference files (audit schema, Connectathon Schematron) and PostgreSQL are skipped
when absent unless XDSI_REQUIRE_INTEROP=1, in which case their absence fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from atna_support import Pki, make_pki, require_interop
from sqlalchemy import text

from atna.spool import make_engine, upgrade

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# --- spool databases ------------------------------------------------------------------------
def _pg_admin():  # noqa: ANN202
    import psycopg

    return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)


@pytest.fixture(scope="session")
def pg_database_factory() -> Iterator[Callable[[], str]]:
    """Throwaway PostgreSQL databases (dropped after the run)."""
    import psycopg

    try:
        _pg_admin().close()
    except psycopg.OperationalError as exc:
        if require_interop():
            raise
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    created: list[str] = []

    def create() -> str:
        name = f"xdsi_atna_test_{uuid.uuid4().hex[:12]}"
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return PG_URL.format(name=name)

    yield create
    with _pg_admin() as admin:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_spool_url(pg_database_factory: Callable[[], str]) -> str:
    """One migrated PostgreSQL spool database for the run."""
    url = pg_database_factory()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def spool_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty spool database on each supported backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'spool.sqlite3'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url = request.getfixturevalue("pg_spool_url")
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text("TRUNCATE atna_spool_delivery, atna_spool_event, atna_spool_destination")
        )
    engine.dispose()
    return url
