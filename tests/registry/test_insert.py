"""registry.insert: a registration's rows, children joined to their new parents' ids, on
both backends (one statement on PostgreSQL, one INSERT per table elsewhere)."""

from __future__ import annotations

import pytest
from psycopg._queries import MAX_CACHED_STATEMENT_LENGTH
from registry_builders import PATIENT, new_oid, new_uuid
from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError

from registry.insert import JSON_INSERT, PARENT, RegistrationRows, insert_rows
from registry.tables import (
    DocumentEntryCodeRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
)


def _entry(ss_uuid: str, **changes: object) -> dict[str, object]:
    uuid = new_uuid()
    return {
        "entry_uuid": uuid,
        "logical_id": uuid,
        "version": "1",
        "unique_id": new_oid(),
        "patient_id": PATIENT,
        "status": "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
        "object_type": "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1",
        "size": 12,
        "submission_set_uuid": ss_uuid,
        "xml": b"<rim:ExtrinsicObject/>\x00\xff",  # bytes pass unchanged
        **changes,
    }


def _rows(entries: int) -> tuple[RegistrationRows, str, list[str], str]:
    ss_uuid, folder_uuid = new_uuid(), new_uuid()
    rows = RegistrationRows()
    rows.add(
        SubmissionSetRow.__table__,
        {
            "entry_uuid": ss_uuid,
            "unique_id": new_oid(),
            "patient_id": PATIENT,
            "status": "Approved",
            "xml": b"<ss/>",
        },
    )
    rows.add(SubmissionSetAuthorRow.__table__, {PARENT: ss_uuid, "author_person": "^Welby"})
    rows.add(
        FolderRow.__table__,
        {
            "entry_uuid": folder_uuid,
            "logical_id": folder_uuid,
            "version": "1",
            "unique_id": new_oid(),
            "patient_id": PATIENT,
            "status": "Approved",
            "xml": b"<folder/>",
        },
    )
    rows.add(FolderCodeRow.__table__, {PARENT: folder_uuid, "code": "F1", "scheme": "S"})
    uuids = []
    for n in range(entries):
        entry = _entry(ss_uuid)
        uuids.append(str(entry["entry_uuid"]))
        rows.add(DocumentEntryRow.__table__, entry)
        rows.add(
            DocumentEntryCodeRow.__table__,
            *(
                {PARENT: entry["entry_uuid"], "kind": "eventCodeList", "code": f"E{n}", "scheme": s}
                for s in ("S1", "S2")
            ),
        )
    return rows, ss_uuid, uuids, folder_uuid


def test_children_get_the_ids_of_their_new_parents(engine: Engine) -> None:
    rows, ss_uuid, uuids, folder_uuid = _rows(entries=3)
    with engine.begin() as connection:
        insert_rows(connection, rows)
    with engine.connect() as connection:
        ss_id = connection.scalar(
            select(SubmissionSetRow.id).where(SubmissionSetRow.entry_uuid == ss_uuid)
        )
        assert connection.scalars(select(SubmissionSetAuthorRow.submission_set_id)).all() == [ss_id]
        folder_id = connection.scalar(
            select(FolderRow.id).where(FolderRow.entry_uuid == folder_uuid)
        )
        assert connection.scalars(select(FolderCodeRow.folder_id)).all() == [folder_id]
        entries = connection.execute(
            select(
                DocumentEntryRow.entry_uuid, DocumentEntryRow.id, DocumentEntryRow.size
            ).order_by(DocumentEntryRow.id)
        ).all()
        # in the order given, the size as a number
        assert [(u, size) for u, _, size in entries] == [(u, 12) for u in uuids]
        codes = connection.execute(
            select(DocumentEntryCodeRow.document_entry_id, DocumentEntryCodeRow.code)
        ).all()
        ids = {u: id_ for u, id_, _ in entries}
        assert sorted(codes) == sorted(
            (ids[u], f"E{n}") for n, u in enumerate(uuids) for _ in range(2)
        )
        xml = connection.scalars(select(DocumentEntryRow.xml)).all()
        assert xml == [b"<rim:ExtrinsicObject/>\x00\xff"] * 3


# PostgreSQL only: SQLite does not enforce a column's length
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_value_too_long_for_its_column_fails_the_insert(engine: Engine) -> None:
    rows, *_ = _rows(entries=1)
    rows.tables[DocumentEntryRow.__tablename__][0]["hash"] = "a" * 41  # String(40)
    with pytest.raises(DBAPIError), engine.begin() as connection:
        insert_rows(connection, rows)
    with engine.connect() as connection:
        assert connection.scalars(select(SubmissionSetRow.id)).all() == []


def test_the_postgresql_statement_stays_in_the_drivers_statement_cache() -> None:
    # psycopg converts a longer statement's placeholders again on every execution
    assert len(JSON_INSERT.encode()) <= MAX_CACHED_STATEMENT_LENGTH


def test_text_arrives_as_sent(engine: Engine) -> None:
    rows, ss_uuid, *_ = _rows(entries=1)
    person = "Müller\\T\\^Hans \"Jo\" 'Ó'^^^^^^&2.16.840&ISO 漢字"
    rows.tables[SubmissionSetAuthorRow.__tablename__][0]["author_person"] = person
    with engine.begin() as connection:
        insert_rows(connection, rows)
    with engine.connect() as connection:
        assert connection.scalars(select(SubmissionSetAuthorRow.author_person)).all() == [person]
