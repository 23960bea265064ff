"""storage/driver.py: a Core statement rendered once for the driver and run on the
driver's connection, on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    LargeBinary,
    String,
    bindparam,
    column,
    literal,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from storage.driver import DriverStatement, Prepared, fetch_all

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


def _ended_by_the_server(
    engine: Engine, connection: Connection, statement: DriverStatement
) -> None:
    """The server ends ``connection``'s backend: the next run of ``statement`` raises,
    and the connection is invalidated."""
    pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(False),
                         autocommit=True) as admin:  # fmt: skip
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(DBAPIError) as raised:
        fetch_all(connection, statement, "p1")
    assert raised.value.connection_invalidated
    assert connection.invalidated


def test_a_connection_the_server_ended_is_invalidated(pg_engine: Engine) -> None:
    statement = DriverStatement.compile(_statement(), pg_engine.dialect, "owner")
    with _filled(pg_engine) as items, items.connect() as connection:
        _ended_by_the_server(items, connection, statement)


# --- psycopg: prepared once per connection, run by libpq ----------------------------------

BLOBS = table(
    "driver_blob",
    column("owner", String),
    column("n", Integer),
    column("label", String),
    column("data", LargeBinary),
)


def _blob_statement(mark: str = ""):  # noqa: ANN202
    """A statement whose text (so whose prepared name) is its own per ``mark``: the
    engine's connections outlive a test."""
    return (
        select(BLOBS.c.n, BLOBS.c.label, BLOBS.c.data)
        .where(BLOBS.c.owner == bindparam("owner", ""), (BLOBS.c.n % 10) >= 0)  # '%' escaped
        .where(literal_column(f"'{mark}'") == literal_column(f"'{mark}'"))
        .order_by(BLOBS.c.n)
    )


@pytest.fixture
def blobs(pg_engine: Engine) -> Iterator[Engine]:
    with pg_engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE driver_blob (owner TEXT, n INTEGER, label TEXT, data BYTEA)"
        )
        connection.execute(
            BLOBS.insert(),
            [
                {"owner": "p1", "n": 1, "label": "één", "data": b"\x00\xff<x/>"},
                {"owner": "p1", "n": 2, "label": None, "data": None},
                {"owner": "p2", "n": 3, "label": "b", "data": b""},
                {"owner": "pé€", "n": 4, "label": "c", "data": b"c"},
            ],
        )
    try:
        yield pg_engine
    finally:
        with pg_engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE driver_blob")


def _prepared_here(connection) -> set[bytes]:  # noqa: ANN001
    return getattr(connection.connection.driver_connection, "_xdsi_prepared", set())


@pytest.mark.parametrize("binary", [True, False])
def test_libpq_rows_are_the_cursors(blobs: Engine, binary: bool) -> None:
    statement = DriverStatement.compile(
        _blob_statement(uuid.uuid4().hex), blobs.dialect, "owner", binary=binary
    )
    assert statement.prepared is not None
    with blobs.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        assert statement.prepared.name not in _prepared_here(connection)
        for owner in ("p1", "p2", "nobody", "pé€", "p1"):
            expected = [tuple(r) for r in connection.execute(_blob_statement(), {"owner": owner})]
            assert fetch_all(connection, statement, owner) == expected
        assert statement.prepared.name in _prepared_here(connection)
    assert expected == [(1, "één", b"\x00\xff<x/>"), (2, None, None)]


def test_a_deallocated_statement_is_prepared_again(blobs: Engine) -> None:
    statement = DriverStatement.compile(_blob_statement(), blobs.dialect, "owner", binary=True)
    with blobs.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        assert len(fetch_all(connection, statement, "p1")) == 2
        connection.exec_driver_sql("DEALLOCATE ALL")
        assert len(fetch_all(connection, statement, "p1")) == 2


def test_in_a_transaction_the_cursor_runs_it(blobs: Engine) -> None:
    """Outside autocommit psycopg opens the transaction at the first statement, and a
    statement prepared in a transaction that rolls back is gone: there the cursor runs
    every statement (the transaction is open after the first, as after any of its)."""
    statement = DriverStatement.compile(
        _blob_statement(uuid.uuid4().hex), blobs.dialect, "owner", binary=True
    )
    assert statement.prepared is not None
    with blobs.connect() as connection:
        pgconn = connection.connection.driver_connection.pgconn
        assert pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert len(fetch_all(connection, statement, "p1")) == 2
        assert pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert len(fetch_all(connection, statement, "p2")) == 1
        assert statement.prepared.name not in _prepared_here(connection)
        connection.rollback()


def test_libpq_errors_are_raised_as_sqlalchemy_raises_them(blobs: Engine) -> None:
    broken = DriverStatement.compile(
        select(BLOBS.c.n).where(BLOBS.c.owner == bindparam("owner"), BLOBS.c.n > literal(1) / 0),
        blobs.dialect,
        "owner",
        binary=True,
    )
    with blobs.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        with pytest.raises(DBAPIError, match="division by zero") as raised:
            fetch_all(connection, broken, "p1")
        assert not raised.value.connection_invalidated
        assert len(fetch_all(connection, DriverStatement.compile(
            _blob_statement(), blobs.dialect, "owner", binary=True), "p1")) == 2  # fmt: skip


def test_a_connection_the_server_ended_is_invalidated_under_libpq(blobs: Engine) -> None:
    statement = DriverStatement.compile(_blob_statement(), blobs.dialect, "owner", binary=True)
    with blobs.execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        assert len(fetch_all(connection, statement, "p1")) == 2
        _ended_by_the_server(blobs, connection, statement)


def test_libpq_form_of_the_text() -> None:
    prepared = Prepared.of(
        "SELECT %(a)s, %(b)s, 'x%%' || %(a)s, %(c)s", {"a": "", "b": 7, "c": None}, "a"
    )
    assert prepared is not None
    assert prepared.sql == b"SELECT $1, $2, 'x%' || $1, $3"
    assert prepared.values == (None, "7", None)
    assert prepared.varying_at == (0,)
    assert prepared.name.startswith(b"xdsi_")
    assert Prepared.of("SELECT %(a)s, %(b)s", {"a": "", "b": 1.5}, "a") is None
    assert Prepared.of("SELECT %(a)s, %(b)s", {"a": "", "b": True}, "a") is None
