"""The rows of one registration, and how they go in.

``registry.register`` turns a checked submission into :class:`RegistrationRows`: per
table the values of each new row, a child row naming its parent by the parent's
entryUUID (its ``id`` is the database's to give).  :func:`insert_rows` writes them in
the caller's transaction:

- PostgreSQL: ONE statement, whatever the number of objects.  The rows travel as one
  jsonb parameter (``{table: [row, ...]}``), parsed once when bound (a json one is
  parsed again by every ``->``: a third of the server's CPU per registration went to
  re-reading it), and each table's go in by ``INSERT ... SELECT FROM
  jsonb_populate_recordset(...)`` in a data-modifying ``WITH`` (PostgreSQL 15 7.8.4,
  9.16); a child table joins the ``RETURNING`` of its parent's insert for the parent
  ids.  The stored XML stays out of the JSON: each table's travels as one ``bytea[]``
  parameter in binary form, zipped with the JSON rows by position (``ROWS FROM``,
  PostgreSQL 15 7.2.1.4), so PostgreSQL neither lexes it as JSON text nor decodes it
  from hex.  The statement text never
  changes, so the driver converts it once and prepares it once per connection, and a
  registration's rows are one round trip.
- elsewhere (SQLite): one multi-row INSERT per table, the parents' ids read back by
  their entryUUIDs.

Both write the same rows; parent rows in the order given, so their ids grow in
submission order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, LargeBinary, String, Table, insert, select
from sqlalchemy.dialects import postgresql

from registry.tables import (
    AssociationRow,
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
)

Row = dict[str, Any]

# Key of a child row: the entryUUID of its parent (a row of the parent table)
PARENT = "parent_uuid"


@dataclass(frozen=True, slots=True)
class _Kind:
    """One table a registration writes; a child names its parent table and the column
    that takes the parent's id."""

    table: Table
    parent: Table | None = None
    parent_key: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a row gives (not ``id``, not the parent's id)."""
        return tuple(c.name for c in self.table.columns if c.name not in ("id", self.parent_key))


def _kind(row: Any, parent: Any = None, parent_key: str | None = None) -> _Kind:
    return _Kind(row.__table__, parent.__table__ if parent else None, parent_key)


# In insertion order: a parent before its children
_KINDS = (
    _kind(SubmissionSetRow),
    _kind(SubmissionSetAuthorRow, SubmissionSetRow, "submission_set_id"),
    _kind(FolderRow),
    _kind(FolderCodeRow, FolderRow, "folder_id"),
    _kind(DocumentEntryRow),
    _kind(DocumentEntryCodeRow, DocumentEntryRow, "document_entry_id"),
    _kind(DocumentEntryAuthorRow, DocumentEntryRow, "document_entry_id"),
    _kind(DocumentEntryReferenceIdRow, DocumentEntryRow, "document_entry_id"),
    _kind(AssociationRow),
)

# The tables whose new rows' ids their children need
_PARENTS = frozenset(k.parent.name for k in _KINDS if k.parent is not None)


def _binary_column(kind: _Kind) -> str | None:
    """The table's one binary column (the stored XML), if it has one."""
    names = [c for c in kind.columns if isinstance(kind.table.c[c].type, LargeBinary)]
    assert len(names) <= 1 and not (names and kind.parent is not None), kind.table.name
    return names[0] if names else None


# Table name -> its binary column, for the tables with one
_BINARY = {k.table.name: b for k in _KINDS if (b := _binary_column(k)) is not None}


@dataclass(slots=True)
class RegistrationRows:
    """The new rows of one registration, by table name; a child row carries its
    parent's entryUUID under :data:`PARENT`."""

    tables: dict[str, list[Row]] = field(default_factory=dict)

    def add(self, table: Table, *rows: Row) -> None:
        self.tables.setdefault(table.name, []).extend(rows)

    def __getitem__(self, table: str) -> list[Row]:
        return self.tables.get(table, [])


def insert_rows(connection: Connection, rows: RegistrationRows) -> None:
    """Insert ``rows`` in ``connection``'s transaction (see the module docstring)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(JSON_INSERT, _json_parameters(rows))
    else:
        _insert_per_table(connection, rows)


# --- PostgreSQL: one statement ------------------------------------------------------------


def _record_type(column: Any, dialect: Any) -> str:
    """How a child row's JSON field is read: strings as text (a text too long for its
    column then fails the INSERT, as any other), the rest as the column's type."""
    if isinstance(column.type, String):
        return "text"
    return str(column.type.compile(dialect=dialect))


def _json_insert_sql() -> str:
    """The one statement: per table a CTE ``<table>_new`` inserting that table's rows
    from the JSON parameter ``rows`` (``{table: [row, ...]}``), in array order, a binary
    column's values from the array parameter ``b_<table>`` at the same positions; a
    parent returns ``(id, entry_uuid)`` for its children to join."""
    dialect = postgresql.dialect()
    parts = []
    for kind in _KINDS:
        table, names = kind.table, ", ".join(kind.columns)
        rows = f"%(rows)s->'{table.name}'"
        binary = _BINARY.get(table.name)
        if binary is not None:  # the record's column of that name is NULL: unnest's it is
            values = ", ".join("unnest" if c == binary else c for c in kind.columns)
            select_ = (
                f"SELECT {values} FROM ROWS FROM (jsonb_populate_recordset(NULL::{table.name},"
                f" {rows}), unnest(%(b_{table.name})b::bytea[]))"
            )
            target = names
        elif kind.parent is None:
            select_ = f"SELECT {names} FROM jsonb_populate_recordset(NULL::{table.name}, {rows})"
            target = names
        else:
            fields = ", ".join(f"{c} {_record_type(table.c[c], dialect)}" for c in kind.columns)
            select_ = (
                f"SELECT {names}, p.id FROM jsonb_to_recordset({rows}) AS r({PARENT} text, "
                f"{fields}) JOIN {kind.parent.name}_new AS p ON p.entry_uuid = r.{PARENT}"
            )
            target = f"{names}, {kind.parent_key}"
        returning = " RETURNING id, entry_uuid" if table.name in _PARENTS else ""
        parts.append(
            f"{table.name}_new AS (INSERT INTO {table.name} ({target}) {select_}{returning})"
        )
    return "WITH " + ",\n".join(parts) + "\nSELECT 1"


# The PostgreSQL statement.  Kept within psycopg's cache of converted statements (4096
# bytes, tests/registry/test_insert.py): a longer one is converted again on each use.
JSON_INSERT = _json_insert_sql()


def _json_parameters(rows: RegistrationRows) -> dict[str, Any]:
    """The rows as one JSON object but for the binary columns: one list of bytes each."""
    parameters: dict[str, Any] = {f"b_{name}": [] for name in _BINARY}
    json: dict[str, list[Row]] = {}
    for name, table in rows.tables.items():
        binary = _BINARY.get(name)
        if binary is None:
            json[name] = table
            continue
        parameters[f"b_{name}"] = [row[binary] for row in table]
        json[name] = [{k: v for k, v in row.items() if k != binary} for row in table]
    parameters["rows"] = Jsonb(json)
    return parameters


# --- elsewhere: one INSERT per table ------------------------------------------------------


_IN_LIMIT = 500  # entryUUIDs per read-back statement


def _insert_per_table(connection: Connection, rows: RegistrationRows) -> None:
    ids: dict[str, Mapping[str, int]] = {}
    for kind in _KINDS:
        table_rows = rows[kind.table.name]
        if not table_rows:
            continue
        if kind.parent is not None:
            parent_ids = ids[kind.parent.name]
            assert kind.parent_key is not None
            key = kind.parent_key
            table_rows = [
                {**{k: v for k, v in row.items() if k != PARENT}, key: parent_ids[row[PARENT]]}
                for row in table_rows
            ]
        # one row as a plain execute: executemany's insertmanyvalues costs more for one
        connection.execute(
            insert(kind.table), table_rows[0] if len(table_rows) == 1 else table_rows
        )
        if kind.table.name in _PARENTS:
            ids[kind.table.name] = _ids(
                connection, kind.table, [r["entry_uuid"] for r in table_rows]
            )


def _ids(connection: Connection, table: Table, uuids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(uuids), _IN_LIMIT):
        batch = uuids[start : start + _IN_LIMIT]
        query = select(table.c.entry_uuid, table.c.id).where(table.c.entry_uuid.in_(batch))
        found.update((uuid, id_) for uuid, id_ in connection.execute(query))
    return found


__all__ = ["JSON_INSERT", "PARENT", "RegistrationRows", "insert_rows"]
