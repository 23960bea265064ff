"""storage/driver.py: a Core statement rendered once for the driver and run on the
driver's connection, on every backend."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import Engine, Integer, String, bindparam, column, literal, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from storage.driver import DriverStatement, fetch_all

ITEMS = table("driver_item", column("owner", String), column("kind", String), column("n", Integer))
ROWS = [
    {"owner": owner, "kind": kind, "n": n}
    for owner, kind, n in [
        ("p1", "a", 1),
        ("p1", "b", 2),
        ("p1", "c", 3),
        ("p2", "a", 4),
        ("p2", "b", 5),
    ]
]


def _statement(limit: int = 10):  # noqa: ANN202
    """The owner bound by name (twice: positional styles repeat it), an IN list, a limit."""
    return (
        select(ITEMS.c.n)
        .where(
            ITEMS.c.owner == bindparam("owner", ""),
            ITEMS.c.kind.in_(["a", "b"]),
            (ITEMS.c.owner + literal("")) == bindparam("owner", ""),
        )
        .order_by(ITEMS.c.n)
        .limit(limit)
    )


@contextmanager
def _filled(engine: Engine) -> Iterator[Engine]:
    """``engine``'s database with the table of ``ITEMS`` for the test's time (the
    registry's own tables are left as they are)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE driver_item (owner TEXT, kind TEXT, n INTEGER)")
        connection.execute(ITEMS.insert(), ROWS)
    try:
        yield engine
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE driver_item")


@pytest.fixture
def items(engine: Engine) -> Iterator[Engine]:
    with _filled(engine) as filled:
        yield filled


def test_rows_are_sqlalchemys_for_each_value(items: Engine) -> None:
    statement = DriverStatement.compile(_statement(), items.dialect, "owner")
    answers = {}
    with items.connect() as connection:
        for owner in ("p1", "p2", "p1", "nobody"):
            expected = connection.execute(_statement(), {"owner": owner}).all()
            answers[owner] = fetch_all(connection, statement, owner)
            assert answers[owner] == [tuple(r) for r in expected]
    assert answers == {"p1": [(1,), (2,)], "p2": [(4,), (5,)], "nobody": []}


def test_the_limit_is_fixed_with_the_statement(items: Engine) -> None:
    statement = DriverStatement.compile(_statement(limit=1), items.dialect, "owner")
    with items.connect() as connection:
        assert fetch_all(connection, statement, "p2") == [(4,)]


def test_named_and_positional_paramstyles() -> None:
    named = DriverStatement.compile(_statement(), postgresql.psycopg.dialect(), "owner")
    assert named.sql.count("%(owner)s") == 2
    assert "%(kind_1_1)s" in named.sql and "%(kind_1_2)s" in named.sql  # the IN list expanded
    assert named.parameters("p9") == {"owner": "p9", "kind_1_1": "a", "kind_1_2": "b",
                                      "param_1": "", "param_2": 10}  # fmt: skip
    positional = DriverStatement.compile(_statement(), sqlite.dialect(), "owner")
    assert "?" in positional.sql and "IN (?, ?)" in positional.sql
    assert len(positional.varying_at) == 2
    parameters = list(positional.parameters("p9"))
    assert parameters.count("p9") == 2 and parameters.count("") == 1
    assert [parameters[i] for i in positional.varying_at] == ["p9", "p9"]
    assert list(positional.parameters("p8")) != parameters  # a fresh list each run


def test_binary_results_only_on_psycopg() -> None:
    assert DriverStatement.compile(_statement(), postgresql.psycopg.dialect(), "owner",
                                   binary=True).binary  # fmt: skip
    assert not DriverStatement.compile(_statement(), sqlite.dialect(), "owner", binary=True).binary


def test_a_statement_without_the_varying_parameter_is_refused() -> None:
    with pytest.raises(ValueError, match="no parameter 'patient'"):
        DriverStatement.compile(_statement(), sqlite.dialect(), "patient")


def test_driver_errors_are_raised_as_sqlalchemy_raises_them(items: Engine) -> None:
    broken = DriverStatement.compile(
        select(column("missing")).select_from(ITEMS).where(ITEMS.c.owner == bindparam("owner")),
        items.dialect,
        "owner",
    )
    with items.connect() as connection, pytest.raises(DBAPIError) as raised:
        fetch_all(connection, broken, "p1")
    assert "missing" in str(raised.value)
    assert not raised.value.connection_invalidated


def test_a_connection_the_server_ended_is_invalidated(pg_engine: Engine) -> None:
    statement = DriverStatement.compile(_statement(), pg_engine.dialect, "owner")
    with _filled(pg_engine) as items, items.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with psycopg.connect(items.url.set(drivername="postgresql").render_as_string(False),
                             autocommit=True) as admin:  # fmt: skip
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DBAPIError) as raised:
            fetch_all(connection, statement, "p1")
        assert raised.value.connection_invalidated
        assert connection.invalidated
