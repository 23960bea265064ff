"""repository/registry_client.py: the ITI-42 seam, in-process and over simple SOAP
(the real soap/ stack, in-process ASGI; the registry endpoint is scripted)."""

from __future__ import annotations

import httpx
import pytest
from repository_fixtures import ScriptedRegistry, document_entry
from starlette.applications import Starlette

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import Submission, SubmissionSet
from ebxml.parse import parse_submit_objects_request
from ebxml.serialize import registry_response
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus
from repository.registry_client import InProcessRegistryClient, RegistryClient, SoapRegistryClient
from soap.app import build_soap_routes
from soap.faults import sender_fault
from soap.limits import Limits
from soap.message import Operation, Service, SoapRequest, SoapResponse

URL = "http://registry.test/xds/registry"


def submission() -> Submission:
    entry = document_entry(hash="a" * 40, size=7, repository_unique_id="1.2.3.4")
    return Submission(
        SubmissionSet(entry_uuid="urn:uuid:8d1b7c2a-0000-4000-8000-000000000001"), (entry,)
    )


class RegistryEndpoint:
    """A scripted ITI-42 endpoint: keeps what it received, answers as told."""

    def __init__(self) -> None:
        self.received: list[Submission] = []
        self.response = RegistryResponse(ResponseStatus.SUCCESS)
        self.fault = False

    async def handle(self, request: SoapRequest) -> SoapResponse:
        if self.fault:
            raise sender_fault("not a SubmitObjectsRequest")
        self.received.append(parse_submit_objects_request(request.body).value)
        return SoapResponse(registry_response(self.response))

    def transport(self) -> httpx.ASGITransport:
        operation = Operation(Action.ITI42, RESPONSE_ACTION[Action.ITI42], self.handle)
        app = Starlette(
            routes=build_soap_routes(
                [Service("/xds/registry", {Action.ITI42: operation})], Limits()
            )
        )
        return httpx.ASGITransport(app=app)


@pytest.fixture
def endpoint() -> RegistryEndpoint:
    return RegistryEndpoint()


def test_in_process_client_calls_the_registry() -> None:
    registry = ScriptedRegistry()
    client = InProcessRegistryClient(registry)
    sent = submission()
    assert client.register(sent) == RegistryResponse(ResponseStatus.SUCCESS)
    assert registry.submissions == [sent]
    assert isinstance(client, RegistryClient)


def test_soap_client_sends_the_submission_as_iti42(endpoint: RegistryEndpoint) -> None:
    client = SoapRegistryClient(URL, transport=endpoint.transport())
    response = client.register(submission())
    assert response.status == ResponseStatus.SUCCESS
    [received] = endpoint.received
    [entry] = received.document_entries
    assert (entry.hash, entry.size, entry.repository_unique_id) == ("a" * 40, 7, "1.2.3.4")


def test_soap_client_answers_the_registry_errors_as_given(endpoint: RegistryEndpoint) -> None:
    error = RegistryError(ErrorCode.XDSUnknownPatientId, "patient not known", "Document01")
    endpoint.response = RegistryResponse.from_errors([error])
    response = SoapRegistryClient(URL, transport=endpoint.transport()).register(submission())
    assert response == RegistryResponse(ResponseStatus.FAILURE, (error,))


def test_unreachable_registry_is_registry_not_available() -> None:
    client = SoapRegistryClient("http://127.0.0.1:9/xds/registry", timeout=5)
    response = client.register(submission())
    assert response.status == ResponseStatus.FAILURE
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryNotAvailable]


def test_soap_fault_from_registry_is_registry_error(endpoint: RegistryEndpoint) -> None:
    endpoint.fault = True
    response = SoapRegistryClient(URL, transport=endpoint.transport()).register(submission())
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryError]
