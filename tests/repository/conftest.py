"""Fixtures for the repository tests: the index on SQLite and PostgreSQL, a blob
store under tmp_path, ITI-41 requests with spooled documents, a scripted registry and
a real one sharing the repository's database."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from registry_actor import open_registry
from repository_fixtures import ScriptedRegistry
from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session, sessionmaker

from ebxml.messages import DocumentContent
from registry.service import DocumentRegistry
from repository.blobs import BlobStore
from repository.db import make_engine, session_factory, upgrade
from repository.tables import RepositoryDocument

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _require_interop() -> bool:
    return os.environ.get("XDSI_REQUIRE_INTEROP") == "1"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run."""
    import psycopg

    name = f"xdsi_repository_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.OperationalError as exc:
        if _require_interop():
            raise
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'repository.sqlite'}")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("postgres_engine")
    yield engine
    with engine.begin() as connection:
        connection.execute(delete(RepositoryDocument))


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


@pytest.fixture
def spool(tmp_path: Path) -> Callable[[bytes], DocumentContent]:
    """Spool bytes as soap/ does (hashed while written) and describe them as a Document."""
    directory = tmp_path / "spool"
    directory.mkdir()

    def make(
        data: bytes, doc_id: str = "Document01", content_type: str = "text/plain"
    ) -> DocumentContent:
        path = directory / uuid.uuid4().hex
        path.write_bytes(data)
        return DocumentContent(
            id=doc_id,
            path=path,
            size=len(data),
            sha1=hashlib.sha1(data).hexdigest(),
            content_type=content_type,
            content_id=f"{doc_id}@xdsi.test",
        )

    return make


@pytest.fixture
def registry() -> ScriptedRegistry:
    return ScriptedRegistry()


@pytest.fixture
def document_registry(engine: Engine) -> Iterator[DocumentRegistry]:
    """The real registry actor on the repository's database (as ``xdsi serve`` runs it)."""
    yield from open_registry(engine)
