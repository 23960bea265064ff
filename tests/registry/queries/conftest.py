"""Fixtures for the stored-query tests: a ``store`` that registers submissions through
the real ITI-42 path on every backend of the ``engine`` fixture, and ``query``, which
runs one ITI-18 request against it."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from query_data import P1, P2, Store
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse
from ebxml.vocabulary import ReturnType
from registry.db import make_engine
from registry.stored_query import StoredQueryConfig, execute_stored_query


@pytest.fixture(params=("sqlite", "postgresql"))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """As ``tests/registry/conftest.py``'s, without emptying PostgreSQL before each test:
    these tests never commit (``session`` rolls back) and use ids unique to the run."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_engine")
        return
    path = tmp_path / "registry.db"
    shutil.copy(request.getfixturevalue("sqlite_template"), path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def store(session: Session) -> Store:
    s = Store(session)
    for patient_id in (P1, P2):
        s.patient(patient_id)
    return s


QueryRunner = Callable[..., AdhocQueryResponse]


@pytest.fixture
def query(session: Session) -> QueryRunner:
    """``query(query_id, return_type=..., config=..., home=..., Param=value_or_slots)``:
    a str value is one Slot with one Value; a list is the Slots' Value lists."""

    def run(
        query_id: str,
        *,
        return_type: ReturnType = ReturnType.LEAF_CLASS,
        config: StoredQueryConfig | None = None,
        home: str | None = None,
        **slots: str | list[list[str]],
    ) -> AdhocQueryResponse:
        parameters = {f"${k}": [[v]] if isinstance(v, str) else v for k, v in slots.items()}
        request = AdhocQueryRequest(query_id, parameters, return_type=return_type, home=home)
        return execute_stored_query(session, request, config or StoredQueryConfig())

    return run
