"""atna.observe over HTTP: a real SOAP route (soap.app) with the audit observer; the
request path records the exchange, the audit message is made from it afterwards."""

from __future__ import annotations

import httpx
import pytest
from lxml import etree
from starlette.applications import Starlette

from atna.events import AuditContext, AuditEvent, audit_messages
from atna.message import to_xml
from atna.observe import ObservedExchange, SoapAuditObserver
from ebxml.messages import RegistryResponse
from ebxml.remove import RemoveObjectsRequest, remove_objects_request
from ebxml.serialize import registry_response
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus
from soap.app import build_soap_routes
from soap.limits import Limits
from soap.message import Operation, Service, SoapRequest, SoapResponse

ENTRY_UUID = "urn:uuid:7c1fa7a6-0a5c-4f4b-8f3e-1b2f0f6a9a01"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"


async def removed(_request: SoapRequest) -> SoapResponse:
    return SoapResponse(registry_response(RegistryResponse(ResponseStatus.SUCCESS)))


def envelope(action: str, body: etree._Element) -> bytes:
    return (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>'
        "<wsa:MessageID>urn:uuid:00000000-0000-4000-8000-000000000062</wsa:MessageID>"
        f"</env:Header><env:Body>{etree.tostring(body).decode()}</env:Body></env:Envelope>"
    ).encode()


@pytest.fixture
def recorded() -> list[AuditEvent]:
    return []


@pytest.fixture
def app(recorded: list[AuditEvent]) -> Starlette:
    operation = Operation(Action.ITI62, RESPONSE_ACTION[Action.ITI62], removed)
    service = Service("/xds/registry", {Action.ITI62: operation})
    observer = SoapAuditObserver(recorded.append, peer=lambda: "CN=admin")
    return Starlette(routes=build_soap_routes([service], Limits(), on_exchange=observer))


async def test_remove_metadata_over_http_is_audited_as_a_deletion(
    app: Starlette, recorded: list[AuditEvent]
) -> None:
    body = remove_objects_request(RemoveObjectsRequest((ENTRY_UUID,)))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        response = await client.post(
            "/xds/registry",
            content=envelope(Action.ITI62, body),
            headers={"Content-Type": f'application/soap+xml; action="{Action.ITI62}"'},
        )
    assert response.status_code == 200
    (event,) = recorded
    assert isinstance(event, ObservedExchange)
    (message,) = audit_messages(event, AuditContext("xdsi"))
    document = etree.fromstring(to_xml(message))
    identification = document.find("EventIdentification")
    assert identification.find("EventID").get("csd-code") == "110110"
    assert identification.get("EventActionCode") == "D"
    assert identification.find("EventTypeCode").get("csd-code") == "ITI-62"
    requester = document.find("ActiveParticipant[@UserIsRequestor='true']")
    assert (requester.get("NetworkAccessPointID"), requester.get("AlternativeUserID")) == (
        "10.1.2.3",
        "CN=admin",
    )
    assert document.xpath("ParticipantObjectIdentification/@ParticipantObjectID") == [ENTRY_UUID]
