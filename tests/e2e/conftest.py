"""Fixtures of the end-to-end tests: running servers and an independent peer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    create_pg_database,
    drop_pg_database,
    missing,
)


@pytest.fixture(scope="session")
def schemas() -> ResponseSchemas:
    return ResponseSchemas()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One ``xdsi serve`` per database for the whole run; SQLite is the default store."""
    database_url = None
    if request.param == "postgresql":
        database_url = create_pg_database()
        if database_url is None:
            missing("no PostgreSQL at 127.0.0.1:5432 (set XDSI_TEST_POSTGRES to point elsewhere)")
    data_dir: Path = tmp_path_factory.mktemp(f"xdsi-{request.param}")
    process = ServerProcess(data_dir, database_url).start()
    try:
        yield process
    finally:
        process.stop()
        if database_url is not None:
            drop_pg_database(database_url)


@pytest.fixture
def peer(server: ServerProcess, schemas: ResponseSchemas) -> Iterator[XdsPeer]:
    client = XdsPeer(server.base_url, schemas)
    yield client
    client.close()
