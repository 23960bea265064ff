"""registry/bulk_load.py on SQLite and PostgreSQL: loaded entries are registered
entries.  A loaded DocumentEntry comes back from a real ITI-18 FindDocuments (the
registry's SOAP endpoint, in-process ASGI) with the metadata, rows and response shape
of the same DocumentEntry registered by ITI-42."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest
from registry_builders import PATIENT, known_patients, new_oid, new_uuid, submission_set, submit
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ebxml.messages import AdhocQueryRequest
from ebxml.model import DocumentEntry
from ebxml.vocabulary import Action, AvailabilityStatus, ResponseStatus, StoredQuery
from ebxml.wire import adhoc_query_request, parse_adhoc_query_response
from registry.bulk_load import LoadPlan, RegistryNotEmpty, load
from registry.service import DocumentRegistry
from registry.soap_service import registry_service
from registry.tables import (
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryReferenceIdRow,
    DocumentEntryRow,
    PatientRow,
    SubmissionSetRow,
)
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits

ENTRIES = 2_000
PLAN = LoadPlan(
    entries=ENTRIES,
    affinity_domain="1.3.6.1.4.1.21367.13.20.1000",
    repository_unique_id="1.3.6.1.4.1.21367.13.40.1",
    source_id="1.3.6.1.4.1.21367.13.80.1",
    seed=7,
)
# the row columns that name the object, its patient or its place: all else must match
IDENTITY_COLUMNS = {
    "id", "entry_uuid", "logical_id", "unique_id", "patient_id", "submission_set_uuid",
    "xml", "hash", "size", "creation_time", "creation_time_key", "service_start_time",
    "service_start_time_key", "service_stop_time", "service_stop_time_key",
}  # fmt: skip


@pytest.fixture
def registry(engine: Engine, session: Session) -> DocumentRegistry:
    known_patients(session)
    return DocumentRegistry(engine)


@pytest.fixture
def client(registry: DocumentRegistry) -> SoapClient:
    app = Starlette(routes=build_soap_routes([registry_service(registry)], Limits()))
    return SoapClient("http://xdsi.test/xds/registry", transport=httpx.ASGITransport(app=app))


async def find_documents(client: SoapClient, patient: str) -> list[DocumentEntry]:
    request = AdhocQueryRequest(
        query_id=StoredQuery.FIND_DOCUMENTS,
        parameters={
            "$XDSDocumentEntryPatientId": [[f"'{patient}'"]],
            "$XDSDocumentEntryStatus": [[f"('{AvailabilityStatus.APPROVED}')"]],
        },
    )
    reply = await client.call(Action.ITI18, adhoc_query_request(request), mtom=False)
    response = parse_adhoc_query_response(reply.body)
    assert response.status == ResponseStatus.SUCCESS, response.errors
    return [o for o in response.objects if isinstance(o, DocumentEntry)]


def entry_rows(session: Session, entry_uuid: str) -> dict[str, Any]:
    row = session.scalars(
        select(DocumentEntryRow).where(DocumentEntryRow.entry_uuid == entry_uuid)
    ).one()
    columns = {
        c.key: getattr(row, c.key)
        for c in DocumentEntryRow.__table__.columns
        if c.key not in IDENTITY_COLUMNS
    }
    children = {
        "codes": sorted(
            session.execute(
                select(DocumentEntryCodeRow.kind, DocumentEntryCodeRow.code, DocumentEntryCodeRow.scheme)
                .where(DocumentEntryCodeRow.document_entry_id == row.id)
            ).all()
        ),
        "authors": session.scalars(
            select(DocumentEntryAuthorRow.author_person).where(
                DocumentEntryAuthorRow.document_entry_id == row.id
            )
        ).all(),
        "reference_ids": len(
            session.scalars(
                select(DocumentEntryReferenceIdRow.id).where(
                    DocumentEntryReferenceIdRow.document_entry_id == row.id
                )
            ).all()
        ),
    }  # fmt: skip
    return {**columns, **children}


async def test_loaded_entries_are_found_like_registered_ones(
    engine: Engine, registry: DocumentRegistry, client: SoapClient, session: Session
) -> None:
    report = load(engine, PLAN)
    assert (report.entries, report.associations) == (ENTRIES, ENTRIES)
    assert report.patients == PLAN.patient_count == ENTRIES // 10

    loaded = await find_documents(client, PLAN.probe_patient)
    assert len(loaded) == PLAN.probe_entries
    # every profile's template and the columns beside it, against ITI-42's own path
    for entry in {e.title: e for e in loaded}.values():
        copy = replace(entry, entry_uuid=new_uuid(), unique_id=new_oid(), patient_id=PATIENT)
        submission = submit(copy, ss=submission_set(PATIENT, entry_uuid=new_uuid()))
        assert registry.register(submission).ok
        (registered,) = [e for e in await find_documents(client, PATIENT) if e.title == entry.title]
        assert registered == replace(
            entry,
            entry_uuid=registered.entry_uuid,
            unique_id=registered.unique_id,
            patient_id=PATIENT,
        )
        assert entry_rows(session, registered.entry_uuid) == entry_rows(session, entry.entry_uuid)
        session.rollback()  # the next registration is read in a new transaction
    assert len({e.title for e in loaded}) > 1


def test_a_registry_with_entries_is_refused_unless_appended(
    engine: Engine, session: Session
) -> None:
    plan = replace(PLAN, entries=50, patients=5, probe_entries=10)
    load(engine, plan)
    with pytest.raises(RegistryNotEmpty):
        load(engine, replace(plan, seed=8))
    report = load(engine, replace(plan, seed=8), append=True)
    assert report.entries == 50
    assert session.scalar(select(func.count()).select_from(DocumentEntryRow)) == 100
    assert session.scalar(select(func.count()).select_from(SubmissionSetRow)) == 5 + 5
    assert session.scalar(select(func.count()).select_from(PatientRow)) == 5 + 5


def test_the_same_seed_loads_the_same_entries(engine: Engine, session: Session) -> None:
    plan = replace(PLAN, entries=30, patients=3, probe_entries=10)
    load(engine, plan)
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        load(engine, plan, append=True)  # entryUUIDs already stored: nothing is written
    assert session.scalar(select(func.count()).select_from(DocumentEntryRow)) == 30
