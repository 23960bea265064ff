"""A Core statement compiled once and run on the driver's own connection.

SQLAlchemy's ``Connection.execute`` of a statement it has already compiled still looks
the compiled form up by the statement's cache key, extracts the bind values, expands
the IN lists, builds an execution context and wraps every row: for a by-patient ITI-18
of 100 entries, 0.25 ms of CPU beside the driver's own 0.5 ms (measured in process on
a 2-vCPU machine).  A statement that runs again and again with one value changing can
skip all of it: its SQL text is rendered once for the engine's dialect (IN lists
expanded, the driver's placeholders), its other values are fixed, and each run hands
the driver that text and the values with the one that changes.  The rows come back as
the driver gives them (tuples).

On psycopg the run goes one step further down: the statement is prepared once per
connection under a name of its own and run with libpq's ``PQexecPrepared`` (psycopg's
``pq`` wrapper, which waits for the answer without holding the interpreter), and the
rows are loaded by psycopg's own ``Transformer``, as its cursors load them (the same
types, the same loaders).  psycopg's cursor machinery around the same call cost 75 us of
CPU a run for an empty answer and 250-500 us for 100 rows of 6 KB (measured in process
on the 2-vCPU machine of bench/RESULTS.md); the rows are the cursor's.  That path is
taken on a connection in autocommit outside any transaction block and pipeline, where
the statement is its own transaction and stays prepared (PostgreSQL 15 PREPARE: one
prepared inside a transaction that rolls back is gone with it); anywhere else (a
transaction psycopg would open first, or one under way) the cursor runs it.

Driver errors are raised as SQLAlchemy raises them (``DBAPIError.instance``), and a
connection the error showed to be gone is invalidated, so the pool does not hand it
out again.  A prepared statement the server no longer has (``DEALLOCATE``) is
prepared again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

# psycopg's named placeholder as SQLAlchemy renders it, and its escaped percent sign
_PYFORMAT = re.compile(r"%\(([^)]+)\)s|%%")
# the attribute of a psycopg connection naming the statements prepared on it here
_PREPARED_ON = "_xdsi_prepared"
_UNDEFINED_STATEMENT = b"26000"  # SQLSTATE invalid_sql_statement_name (PostgreSQL A)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A psycopg statement in libpq's terms: its name on every connection it is
    prepared on, its text with ``$n`` placeholders, each parameter's value in text form
    (the varying one's slots, ``varying_at``, filled in at each run; each encoded in the
    connection's encoding then)."""

    name: bytes
    sql: bytes
    values: tuple[str | None, ...]
    varying_at: tuple[int, ...]

    @classmethod
    def of(cls, sql: str, values: Mapping[str, Any], varying: str) -> Prepared | None:
        """``sql`` (psycopg's ``%(name)s`` placeholders) for libpq, or None when a fixed
        value has no plain text form here."""
        order: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            if name not in order:
                order.append(name)
            return f"${order.index(name) + 1}"

        text = _PYFORMAT.sub(placeholder, sql)
        texts: list[str | None] = []
        for name in order:
            value = values[name]
            if name == varying or value is None:
                texts.append(None)
            elif isinstance(value, bool) or not isinstance(value, str | int):
                return None  # a type whose text form psycopg's adapters would choose
            else:
                texts.append(str(value))
        digest = hashlib.sha1(text.encode()).hexdigest()[:20]
        at = tuple(i for i, name in enumerate(order) if name == varying)
        return cls(f"xdsi_{digest}".encode(), text.encode(), tuple(texts), at)


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement as the driver takes it: ``sql`` with the dialect's placeholders,
    ``values`` for every parameter but ``varying`` (by name, or by position for a
    positional paramstyle, where ``varying_at`` are the positions of ``varying``)."""

    sql: str
    values: Mapping[str, Any] | tuple[Any, ...]
    varying: str
    varying_at: tuple[int, ...] = ()
    binary: bool = False  # results in PostgreSQL's binary format (psycopg)
    prepared: Prepared | None = None  # psycopg: the statement in libpq's terms

    @classmethod
    def compile(
        cls, statement: Executable, dialect: Dialect, varying: str, *, binary: bool = False
    ) -> DriverStatement:
        """``statement`` rendered for ``dialect`` once, with every value but the
        parameter ``varying`` fixed as compiled.  The values must need no bind processing
        (strings, numbers): they are handed to the driver as they are."""
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        if compiled._bind_processors:  # noqa: SLF001 - a value the driver cannot take as is
            raise ValueError(f"values that need processing: {sorted(compiled._bind_processors)}")  # noqa: SLF001
        params = compiled.params
        if varying not in params:
            raise ValueError(f"the statement has no parameter {varying!r}")
        psycopg = dialect.driver == "psycopg"
        driver_binary = binary and psycopg
        if compiled.positional:
            names = tuple(compiled.positiontup or ())
            at = tuple(i for i, name in enumerate(names) if name == varying)
            return cls(str(compiled), tuple(params[n] for n in names), varying, at, driver_binary)
        prepared = Prepared.of(str(compiled), params, varying) if psycopg else None
        return cls(str(compiled), dict(params), varying, binary=driver_binary, prepared=prepared)

    def parameters(self, value: object) -> Mapping[str, Any] | Sequence[Any]:
        """The values of a run with ``varying`` = ``value``."""
        if isinstance(self.values, tuple):
            values = list(self.values)
            for i in self.varying_at:
                values[i] = value
            return values
        return {**self.values, self.varying: value}


def fetch_all(connection: Connection, statement: DriverStatement, value: object) -> list[Any]:
    """Every row of ``statement`` run with its varying parameter = ``value``, on
    ``connection``'s driver connection, in its transaction (if it has one)."""
    driver = connection.connection.driver_connection
    parameters = statement.parameters(value)
    try:
        if statement.prepared is not None and _runs_alone(driver):
            return _fetch_prepared(driver, statement, value)
        if statement.binary:
            with driver.cursor(binary=True) as cursor:  # type: ignore[union-attr]
                cursor.execute(statement.sql, parameters)
                return cursor.fetchall()
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(statement.sql, parameters)
            return cursor.fetchall()
        finally:
            cursor.close()
    except Exception as error:
        dbapi = connection.dialect.loaded_dbapi
        if not isinstance(error, dbapi.Error):
            raise
        gone = connection.dialect.is_disconnect(error, driver, None)
        if gone:
            connection.invalidate(error)
        raise DBAPIError.instance(
            statement.sql, parameters, error, dbapi.Error, connection_invalidated=gone
        ) from error


def _runs_alone(driver: Any) -> bool:
    """Whether libpq may run a statement on ``driver`` (a psycopg connection) as
    psycopg's cursor would: in autocommit, outside any transaction block (a statement
    prepared inside one is gone again if it rolls back), not in a pipeline."""
    from psycopg import pq

    pgconn = driver.pgconn
    return (
        driver.autocommit
        and pgconn.transaction_status == pq.TransactionStatus.IDLE
        and pgconn.pipeline_status == pq.PipelineStatus.OFF
    )


def _fetch_prepared(driver: Any, statement: DriverStatement, value: object) -> list[Any]:
    """``statement`` run by ``PQexecPrepared`` on ``driver`` (prepared there first if it
    is not yet), its rows loaded by psycopg's Transformer."""
    from psycopg import errors, pq
    from psycopg.adapt import Transformer

    prepared = statement.prepared
    assert prepared is not None
    pgconn = driver.pgconn
    known: set[bytes] = driver.__dict__.setdefault(_PREPARED_ON, set())
    encoding = driver.info.encoding
    values = [None if v is None else v.encode(encoding) for v in prepared.values]
    varying = None if value is None else str(value).encode(encoding)
    for i in prepared.varying_at:
        values[i] = varying
    result_format = pq.Format.BINARY if statement.binary else pq.Format.TEXT
    for attempt in (1, 2):
        if prepared.name not in known:
            made = pgconn.prepare(prepared.name, prepared.sql)
            if made.status != pq.ExecStatus.COMMAND_OK:
                raise errors.error_from_result(made, encoding=encoding)
            known.add(prepared.name)
        result = pgconn.exec_prepared(prepared.name, values, result_format=result_format)
        if result.status == pq.ExecStatus.TUPLES_OK:
            break
        error = errors.error_from_result(result, encoding=encoding)
        gone = result.error_field(pq.DiagnosticField.SQLSTATE) == _UNDEFINED_STATEMENT
        if not gone or attempt == 2:
            raise error
        known.discard(prepared.name)  # deallocated meanwhile: prepared again
    loader = Transformer(driver)
    loader.set_pgresult(result)
    rows = loader.load_rows(0, result.ntuples, tuple)
    result.clear()
    return rows


__all__ = ["DriverStatement", "Prepared", "fetch_all"]
