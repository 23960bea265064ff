"""registry/soap_update.py: ITI-57 over the real SOAP stack (in-process ASGI), on SQLite
and PostgreSQL: Action urn:ihe:iti:2010:UpdateDocumentSet, rs:RegistryResponse back
with urn:ihe:iti:2010:UpdateDocumentSetResponse (ITI TF-2 3.57.5)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from lxml import etree
from registry_builders import document_entry, known_patients, submission_set, submit
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.serialize import submit_objects_request
from ebxml.vocabulary import Action, AvailabilityStatus, ResponseStatus
from ebxml.wire import parse_registry_response
from registry.service import DocumentRegistry
from registry.soap_update import update_operation
from registry.tables import DocumentEntryRow
from registry.update import availability_update, new_version
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits
from soap.message import Service

URL = "http://xdsi.test/xds/registry"


@pytest.fixture
def registry(engine: Engine, session: Session) -> DocumentRegistry:
    known_patients(session)
    return DocumentRegistry(engine)


@pytest.fixture
def client(registry: DocumentRegistry) -> SoapClient:
    service = Service("/xds/registry", {Action.ITI57: update_operation(registry)})
    app = Starlette(routes=build_soap_routes([service], Limits()))
    return SoapClient(URL, transport=httpx.ASGITransport(app=app))


async def call(client: SoapClient, body: etree._Element) -> tuple[str, object]:
    reply = await client.call(Action.ITI57, body, mtom=False)
    return reply.addressing.action, parse_registry_response(reply.body)


async def test_new_version_over_soap_answers_success(
    registry: DocumentRegistry, client: SoapClient
) -> None:
    entry = document_entry()
    assert registry.register(submit(entry)).ok
    request = new_version(replace(entry, logical_id=entry.entry_uuid), "1", submission_set())
    action, response = await call(client, submit_objects_request(request))
    assert action == Action.ITI57_RESPONSE
    assert response.status == ResponseStatus.SUCCESS
    with registry.sessions() as session:
        versions = set(
            session.scalars(
                select(DocumentEntryRow.version).where(
                    DocumentEntryRow.logical_id == entry.entry_uuid
                )
            )
        )
    assert versions == {"1", "2"}


async def test_status_update_over_soap_keeps_its_slots(
    registry: DocumentRegistry, client: SoapClient
) -> None:
    entry = document_entry()
    assert registry.register(submit(entry)).ok
    request = availability_update(
        submission_set(),
        entry.entry_uuid,
        AvailabilityStatus.APPROVED,
        AvailabilityStatus.DEPRECATED,
    )
    _, response = await call(client, submit_objects_request(request))
    assert response.status == ResponseStatus.SUCCESS
    with registry.sessions() as session:
        status = session.scalar(
            select(DocumentEntryRow.status).where(DocumentEntryRow.entry_uuid == entry.entry_uuid)
        )
    assert status == AvailabilityStatus.DEPRECATED


async def test_version_error_travels_in_the_response(
    registry: DocumentRegistry, client: SoapClient
) -> None:
    entry = document_entry()
    assert registry.register(submit(entry)).ok
    request = new_version(replace(entry, logical_id=entry.entry_uuid), "9", submission_set())
    _, response = await call(client, submit_objects_request(request))
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSMetadataVersionError]


async def test_other_body_is_a_metadata_error(client: SoapClient) -> None:
    _, response = await call(client, etree.Element("{urn:example}Other"))
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryMetadataError]
