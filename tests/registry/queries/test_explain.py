"""FindDocuments is one indexed statement (issue quality bar; ARCHITECTURE.md Storage):
on PostgreSQL, with enough rows for a sequential scan to cost more, the plan of the
statement ``execute_stored_query`` runs reads ``document_entry`` through the patient
index, never by a sequential scan.  Rows are written in the test's transaction and
rolled back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.dialects import postgresql

from ebxml.model import Code
from ebxml.query import FindDocumentsQuery
from ebxml.vocabulary import DOC_ENTRY_STABLE, AvailabilityStatus, StoredQuery
from registry.queries import QUERIES
from registry.stored_query import query_statement

ROWS = 20_000
PATIENTS = 1_000


@pytest.fixture(scope="module")
def filled(pg_engine: Engine) -> Iterator[Connection]:
    with pg_engine.connect() as connection:
        transaction = connection.begin()
        connection.execute(
            text(
                """
                INSERT INTO document_entry (entry_uuid, logical_id, version, unique_id,
                    patient_id, status, object_type, submission_set_uuid, xml,
                    creation_time_key, class_code, class_code_scheme)
                SELECT 'urn:uuid:explain-' || g, 'urn:uuid:explain-' || g, '1', '2.25.' || g,
                    'explain-' || (g % :patients) || '^^^&1.2.3&ISO', :status, :stable,
                    'urn:uuid:explain-ss', convert_to('<x/>', 'UTF8'),
                    lpad((20000000000000 + g)::text, 14, '0'), 'c' || (g % 7), '1.2.3'
                FROM generate_series(1, :rows) AS g
                """
            ),
            {
                "rows": ROWS,
                "patients": PATIENTS,
                "status": AvailabilityStatus.APPROVED,
                "stable": DOC_ENTRY_STABLE,
            },
        )
        connection.execute(text("ANALYZE document_entry"))
        yield connection
        transaction.rollback()


def explain(connection: Connection, params: FindDocumentsQuery) -> str:
    statement = query_statement(
        QUERIES[StoredQuery.FIND_DOCUMENTS], params, object_refs=False
    ).limit(10_001)
    sql = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    plan = connection.execute(text(f"EXPLAIN {sql}")).scalars().all()
    return "\n".join(plan)


def test_find_documents_uses_the_patient_index(filled: Connection) -> None:
    plan = explain(
        filled,
        FindDocumentsQuery(
            patient_id="explain-42^^^&1.2.3&ISO", status=(AvailabilityStatus.APPROVED,)
        ),
    )
    print(plan)
    assert "Seq Scan on document_entry" not in plan
    assert "ix_document_entry_patient_id_" in plan


def test_find_documents_with_codes_and_times_uses_an_index(filled: Connection) -> None:
    plan = explain(
        filled,
        FindDocumentsQuery(
            patient_id="explain-42^^^&1.2.3&ISO",
            status=(AvailabilityStatus.APPROVED,),
            class_code=(Code("c0", "1.2.3"),),
            creation_time_from="2000",
            creation_time_to="2001",
        ),
    )
    print(plan)
    assert "Seq Scan on document_entry" not in plan
    assert "ix_document_entry_patient_id_" in plan
