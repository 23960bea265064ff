"""registry/soap_remove.py: ITI-62 over the real SOAP stack (in-process ASGI), on SQLite
and PostgreSQL: Action urn:ihe:iti:2010:DeleteDocumentSet, rs:RegistryResponse back,
a REMOVED event published for what was removed."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree
from registry_builders import PATIENT, known_patients, submit
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.model import Submission
from ebxml.remove import RemoveObjectsRequest, remove_objects_request
from ebxml.vocabulary import Action, ResponseStatus
from ebxml.wire import parse_registry_response
from registry.service import DocumentRegistry, RegistryEvent, RegistryEventKind
from registry.soap_remove import remove_metadata_operation
from registry.tables import DocumentEntryRow
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
    service = Service("/xds/registry", {Action.ITI62: remove_metadata_operation(registry)})
    app = Starlette(routes=build_soap_routes([service], Limits()))
    return SoapClient(URL, transport=httpx.ASGITransport(app=app))


def stored(registry: DocumentRegistry) -> Submission:
    submission = submit()
    assert registry.register(submission).ok
    return submission


def all_uuids(submission: Submission) -> tuple[str, ...]:
    return (
        submission.submission_set.entry_uuid,
        *(d.entry_uuid for d in submission.document_entries),
        *(a.entry_uuid for a in submission.associations),
    )


async def call(client: SoapClient, body: etree._Element) -> tuple[str, object]:
    reply = await client.call(Action.ITI62, body, mtom=False)
    return reply.addressing.action, parse_registry_response(reply.body)


def documents(registry: DocumentRegistry) -> int:
    with registry.sessions() as session:
        return session.scalar(select(func.count()).select_from(DocumentEntryRow))


async def test_removal_answers_success_with_the_response_action(
    registry: DocumentRegistry, client: SoapClient
) -> None:
    submission = stored(registry)
    body = remove_objects_request(RemoveObjectsRequest(all_uuids(submission)))
    action, response = await call(client, body)
    assert action == Action.ITI62_RESPONSE
    assert response.status == ResponseStatus.SUCCESS
    assert documents(registry) == 0


async def test_unknown_object_answers_unresolved_reference(
    registry: DocumentRegistry, client: SoapClient
) -> None:
    unknown = "urn:uuid:00000000-0000-4000-8000-0000000000aa"
    _, response = await call(client, remove_objects_request(RemoveObjectsRequest((unknown,))))
    assert response.status == ResponseStatus.FAILURE
    assert [(e.code, e.location) for e in response.errors] == [
        (ErrorCode.UnresolvedReferenceException, unknown)
    ]


async def test_malformed_request_answers_registry_error(client: SoapClient) -> None:
    body = remove_objects_request(RemoveObjectsRequest(("urn:uuid:x",)))
    body.set("deletionScope", "urn:oasis:names:tc:ebxml-regrep:DeletionScopeType:DeleteAll")
    _, response = await call(client, body)
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryError]


async def test_wrong_body_answers_registry_error(client: SoapClient) -> None:
    body = etree.Element("{urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0}SubmitObjectsRequest")
    _, response = await call(client, body)
    assert response.status == ResponseStatus.FAILURE


async def test_removal_is_published(registry: DocumentRegistry, client: SoapClient) -> None:
    events: list[RegistryEvent] = []
    submission = stored(registry)
    registry.subscribe(events.append)
    uuids = all_uuids(submission)
    await call(client, remove_objects_request(RemoveObjectsRequest(uuids)))
    assert events == [RegistryEvent(RegistryEventKind.REMOVED, uuids, PATIENT)]


async def test_refused_removal_is_not_published(
    registry: DocumentRegistry, client: SoapClient
) -> None:
    events: list[RegistryEvent] = []
    submission = stored(registry)
    registry.subscribe(events.append)
    entry = submission.document_entries[0].entry_uuid
    await call(client, remove_objects_request(RemoveObjectsRequest((entry,))))
    assert events == []
