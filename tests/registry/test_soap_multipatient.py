"""registry/soap_multipatient.py: ITI-51 over the real SOAP stack (in-process ASGI), on
SQLite and PostgreSQL: Action urn:ihe:iti:2009:MultiPatientStoredQuery answered with
urn:ihe:iti:2009:MultiPatientStoredQueryResponse (ITI TF-2 3.51), objects of several
patients in one answer; not offered at all while the option is off."""

from __future__ import annotations

import httpx
import pytest
from registry_builders import OTHER_PATIENT, PATIENT, known_patients, submit
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse
from ebxml.model import Submission
from ebxml.vocabulary import (
    Action,
    AvailabilityStatus,
    ResponseStatus,
    ReturnType,
    StoredQuery,
)
from ebxml.wire import adhoc_query_request, parse_adhoc_query_response
from registry.service import DocumentRegistry
from registry.soap_multipatient import MultiPatientQueryConfig, multi_patient_operation
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.faults import SoapFault
from soap.limits import Limits
from soap.message import Service

URL = "http://xdsi.test/xds/registry"
ENABLED = MultiPatientQueryConfig(enabled=True)
APPROVED = f"('{AvailabilityStatus.APPROVED}')"


@pytest.fixture
def registry(engine: Engine, session: Session) -> DocumentRegistry:
    known_patients(session)
    return DocumentRegistry(engine)


def client_for(operations: dict) -> SoapClient:
    app = Starlette(routes=build_soap_routes([Service("/xds/registry", operations)], Limits()))
    return SoapClient(URL, transport=httpx.ASGITransport(app=app))


@pytest.fixture
def client(registry: DocumentRegistry) -> SoapClient:
    operation = multi_patient_operation(registry, ENABLED)
    assert operation is not None
    return client_for({Action.ITI51: operation})


@pytest.fixture
def stored(registry: DocumentRegistry) -> tuple[Submission, Submission]:
    first, second = submit(patient=PATIENT), submit(patient=OTHER_PATIENT)
    assert registry.register(first).ok
    assert registry.register(second).ok
    return first, second


def find_documents(**parameters: str) -> AdhocQueryRequest:
    slots = {f"${k}": [[v]] for k, v in parameters.items()}
    return AdhocQueryRequest(
        StoredQuery.FIND_DOCUMENTS_FOR_MULTIPLE_PATIENTS, slots, ReturnType.OBJECT_REF
    )


async def call(client: SoapClient, request: AdhocQueryRequest) -> tuple[str, AdhocQueryResponse]:
    reply = await client.call(Action.ITI51, adhoc_query_request(request), mtom=False)
    return reply.addressing.action, parse_adhoc_query_response(reply.body)


async def test_answers_for_several_patients(client: SoapClient, stored) -> None:
    first, second = stored
    request = find_documents(
        XDSDocumentEntryPatientId=f"('{PATIENT}', '{OTHER_PATIENT}')",
        XDSDocumentEntryStatus=APPROVED,
    )
    action, response = await call(client, request)
    assert action == Action.ITI51_RESPONSE
    assert response.status == ResponseStatus.SUCCESS
    assert [r.id for r in response.object_refs] == [
        first.document_entries[0].entry_uuid,
        second.document_entries[0].entry_uuid,
    ]


async def test_single_patient_queries_are_unknown(client: SoapClient, stored) -> None:
    request = AdhocQueryRequest(
        StoredQuery.FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": [[f"'{PATIENT}'"]],
            "$XDSDocumentEntryStatus": [[APPROVED]],
        },
    )
    _, response = await call(client, request)
    assert [e.code for e in response.errors] == [ErrorCode.XDSUnknownStoredQuery]


async def test_a_bound_is_required(client: SoapClient, stored) -> None:
    _, response = await call(client, find_documents(XDSDocumentEntryStatus=APPROVED))
    assert [e.code for e in response.errors] == [ErrorCode.XDSStoredQueryMissingParam]


def test_option_off_by_default(registry: DocumentRegistry) -> None:
    assert multi_patient_operation(registry) is None
    assert MultiPatientQueryConfig().enabled is False


async def test_option_off_the_action_is_not_supported(registry: DocumentRegistry) -> None:
    client = client_for({})  # what the endpoint serves without the option
    with pytest.raises(SoapFault) as raised:
        await call(client, find_documents(XDSDocumentEntryStatus=APPROVED))
    assert "ActionNotSupported" in str(raised.value.subcode)
