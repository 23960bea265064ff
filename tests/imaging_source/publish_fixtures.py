"""Fixtures of the publishing tests: a real in-process Document Repository and Document
Registry sharing one database (SQLite, and PostgreSQL when reachable - skipped when it
is not, unless XDSI_REQUIRE_INTEROP=1), as ``xdsi serve`` runs them, with the
publishing journal's table beside theirs.  Test modules import the fixtures they use
(each registered under the name given in ``name=``)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from imaging_source import published
from registry import db as registry_db
from registry.patients import register_patient
from registry.service import DocumentRegistry
from repository import db as repository_db
from repository.blobs import BlobStore
from repository.registry_client import InProcessRegistryClient
from repository.service import DocumentRepository, RepositoryConfig

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
AFFINITY_PATIENT = "IHERED-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
REPOSITORY_UNIQUE_ID = "1.3.6.1.4.1.21367.13.71.100"


def _migrate(url: str) -> None:
    """The registry's, the repository's and the publishing journal's tables, each by
    its own Alembic environment, and the test patient known."""
    for make_engine, upgrade in (
        (registry_db.make_engine, registry_db.upgrade),
        (repository_db.make_engine, repository_db.upgrade),
        (repository_db.make_engine, published.upgrade),
    ):
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
    engine = registry_db.make_engine(url)
    with DocumentRegistry(engine).write_sessions.begin() as session:
        register_patient(session, AFFINITY_PATIENT)
    engine.dispose()


@pytest.fixture(scope="session", name="publish_sqlite_template")
def sqlite_template_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating is the slow part)."""
    path = tmp_path_factory.mktemp("publish-template") / "xdsi.sqlite"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session", name="publish_postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    import psycopg

    name = f"xdsi_publish_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        _migrate(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"], name="database_url")
def database_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "xdsi.sqlite"
        shutil.copyfile(request.getfixturevalue("publish_sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("publish_postgres_url")


@pytest.fixture(name="registry")
def registry_fixture(database_url: str) -> Iterator[DocumentRegistry]:
    engine = registry_db.make_engine(database_url)
    yield DocumentRegistry(engine)
    engine.dispose()


@pytest.fixture(name="repository")
def repository_fixture(
    database_url: str, registry: DocumentRegistry, tmp_path: Path
) -> Iterator[DocumentRepository]:
    engine = repository_db.make_engine(database_url)
    yield DocumentRepository(
        engine,
        BlobStore(tmp_path / "blobs"),
        InProcessRegistryClient(registry),
        RepositoryConfig(REPOSITORY_UNIQUE_ID),
    )
    engine.dispose()
