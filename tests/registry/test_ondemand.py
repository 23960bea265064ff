"""ITI-61 Register On-Demand Document Entry (ITI TF-2 3.61) over the real SOAP stack
(in-process ASGI), with the real parser, validator and registry on both databases."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from registry_builders import (
    document_entry,
    known_patients,
    new_uuid,
    relationship,
    submit,
)
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.model import DocumentEntry, Submission
from ebxml.serialize import submit_objects_request
from ebxml.vocabulary import (
    DOC_ENTRY_ON_DEMAND,
    DOC_ENTRY_STABLE,
    RESPONSE_ACTION,
    Action,
    AssociationType,
    AvailabilityStatus,
    ResponseStatus,
)
from ebxml.wire import parse_registry_response
from registry.service import DocumentRegistry
from registry.soap_ondemand import on_demand_operation
from registry.tables import DocumentEntryRow
from soap.app import build_soap_routes
from soap.client import ClientResponse, SoapClient
from soap.limits import Limits
from soap.message import Service

URL = "http://xdsi.test/xds/registry"


def on_demand_entry(**changes: object) -> DocumentEntry:
    """An On-Demand DocumentEntry as ITI TF-3 Table 4.3.1-3 (XDS OD) has it: no hash,
    size, creationTime or legalAuthenticator."""
    entry = document_entry(object_type=DOC_ENTRY_ON_DEMAND, hash=None, size=None)
    return replace(entry, **{"creation_time": None, **changes})


@pytest.fixture(autouse=True)
def _patients(session: Session) -> None:
    known_patients(session)


@pytest.fixture
def client(registry: DocumentRegistry) -> SoapClient:
    service = Service("/xds/registry", {Action.ITI61: on_demand_operation(registry)})
    app = Starlette(routes=build_soap_routes([service], Limits()))
    return SoapClient(URL, transport=httpx.ASGITransport(app=app))


async def send(client: SoapClient, submission: Submission) -> ClientResponse:
    return await client.call(Action.ITI61, submit_objects_request(submission), mtom=False)


async def codes(client: SoapClient, submission: Submission) -> list[ErrorCode]:
    reply = await send(client, submission)
    return [e.code for e in parse_registry_response(reply.body).errors]


def stored(registry: DocumentRegistry, entry: DocumentEntry) -> DocumentEntryRow | None:
    with registry.sessions() as session:
        return session.scalar(
            select(DocumentEntryRow).where(DocumentEntryRow.entry_uuid == entry.entry_uuid)
        )


async def test_on_demand_entry_is_registered(client: SoapClient, registry) -> None:  # noqa: ANN001
    entry = on_demand_entry()
    reply = await send(client, submit(entry))
    assert parse_registry_response(reply.body).status == ResponseStatus.SUCCESS
    row = stored(registry, entry)
    assert (row.object_type, row.status) == (DOC_ENTRY_ON_DEMAND, AvailabilityStatus.APPROVED)


async def test_response_action_is_iti61_response(client: SoapClient) -> None:
    reply = await send(client, submit(on_demand_entry()))
    assert reply.addressing.action == RESPONSE_ACTION[Action.ITI61]
    assert RESPONSE_ACTION[Action.ITI61] == "urn:ihe:iti:2010:RegisterOnDemandDocumentEntryResponse"


async def test_stable_entry_is_refused(client: SoapClient, registry) -> None:  # noqa: ANN001
    # ITI TF-2 3.61.4.1.3: ITI-61 registers On-Demand entries only
    entry = on_demand_entry(object_type=DOC_ENTRY_STABLE)
    assert await codes(client, submit(entry)) == [ErrorCode.XDSRegistryMetadataError]
    assert stored(registry, entry) is None


@pytest.mark.parametrize(
    "attribute", [{"hash": "da39a3ee5e6b4b0d3255bfef95601890afd80709"}, {"size": 10}]
)
async def test_attribute_prohibited_for_on_demand_is_refused(
    client: SoapClient, attribute: dict
) -> None:
    # ITI TF-3 Table 4.3.1-3, XDS OD column: hash and size are X
    assert await codes(client, submit(on_demand_entry(**attribute))) == [
        ErrorCode.XDSRegistryMetadataError
    ]


async def test_creation_time_is_prohibited_for_on_demand(client: SoapClient) -> None:
    entry = on_demand_entry(creation_time="20240105120000")
    assert await codes(client, submit(entry)) == [ErrorCode.XDSRegistryMetadataError]


async def test_repository_unique_id_is_required_for_on_demand(client: SoapClient) -> None:
    entry = on_demand_entry(repository_unique_id=None)
    assert await codes(client, submit(entry)) == [ErrorCode.XDSRegistryMetadataError]


async def test_unknown_patient_is_refused(client: SoapClient) -> None:
    patient = "UNKNOWN^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
    entry = on_demand_entry(patient_id=patient)
    assert await codes(client, submit(entry, patient=patient)) == [ErrorCode.XDSUnknownPatientId]


async def test_duplicate_on_demand_unique_id_is_refused(client: SoapClient) -> None:
    # An On-Demand entry has no hash or size to show a resubmission identical
    first = on_demand_entry()
    assert await codes(client, submit(first)) == []
    again = on_demand_entry(unique_id=first.unique_id)
    assert await codes(client, submit(again)) == [ErrorCode.XDSDuplicateUniqueIdInRegistry]


async def test_on_demand_entry_replaces_on_demand_entry(client: SoapClient, registry) -> None:  # noqa: ANN001
    original = on_demand_entry()
    assert await codes(client, submit(original)) == []
    replacement = on_demand_entry()
    rplc = relationship(AssociationType.RPLC, replacement, original.entry_uuid)
    assert await codes(client, submit(replacement, extra=(rplc,))) == []
    assert stored(registry, original).status == AvailabilityStatus.DEPRECATED


async def test_replacing_a_missing_entry_is_unresolved(client: SoapClient) -> None:
    replacement = on_demand_entry()
    rplc = relationship(AssociationType.RPLC, replacement, new_uuid())
    assert await codes(client, submit(replacement, extra=(rplc,))) == [
        ErrorCode.UnresolvedReferenceException
    ]


async def test_snapshot_of_registered_on_demand_entry_is_accepted(
    client: SoapClient, registry: DocumentRegistry
) -> None:
    # ITI TF-3 4.2.2.2.7: a stable snapshot (ITI-42) of an On-Demand entry (ITI-61)
    on_demand = on_demand_entry()
    assert await codes(client, submit(on_demand)) == []
    snapshot = document_entry()
    link = relationship(AssociationType.IS_SNAPSHOT_OF, snapshot, on_demand.entry_uuid)
    assert registry.register(submit(snapshot, extra=(link,))).ok
    assert stored(registry, on_demand).status == AvailabilityStatus.APPROVED


async def test_wrong_body_is_metadata_error(client: SoapClient) -> None:
    from lxml import etree

    reply = await client.call(Action.ITI61, etree.Element("{urn:x}Other"), mtom=False)
    errors = parse_registry_response(reply.body).errors
    assert [e.code for e in errors] == [ErrorCode.XDSRegistryMetadataError]
