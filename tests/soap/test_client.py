"""soap/client.py against the echo service, in-process over httpx.ASGITransport."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from lxml import etree
from soap_echo import ECHO, ECHO_RESPONSE, NS, PATH, UPLOAD, make_app, upload_body
from starlette.applications import Starlette

from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.faults import FaultCode, SoapFault
from soap.limits import Limits
from soap.message import Operation, OutgoingAttachment, Service, SoapRequest, SoapResponse

URL = "http://xdsi.test" + PATH
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"


def echo_body(text: str = "hi") -> etree._Element:
    element = etree.Element(f"{{{NS}}}Echo", nsmap={"e": NS})
    element.text = text
    return element


@pytest.fixture
def client(limits: Limits) -> SoapClient:
    return SoapClient(URL, transport=httpx.ASGITransport(app=make_app(limits)), limits=limits)


async def test_call_returns_body(client):
    response = await client.call(ECHO, echo_body("ping"), mtom=False)
    assert response.body.findtext(f"{{{NS}}}Echo") == "ping"


async def test_call_returns_addressing_of_reply(client):
    response = await client.call(ECHO, echo_body(), mtom=False)
    sent_id = response.body.findtext(f"{{{NS}}}MessageID")
    assert (response.addressing.action, response.addressing.relates_to) == (ECHO_RESPONSE, sent_id)


async def test_call_sends_uuid_message_id(client):
    response = await client.call(ECHO, echo_body(), mtom=False)
    assert response.body.findtext(f"{{{NS}}}MessageID").startswith("urn:uuid:")


async def test_call_sends_to_and_anonymous_reply_to(limits):
    seen: list[SoapRequest] = []

    async def capture(request: SoapRequest) -> SoapResponse:
        seen.append(request)
        return SoapResponse(etree.Element("ok"))

    service = Service("/c", {"urn:a": Operation("urn:a", "urn:b", capture)})
    app = Starlette(routes=build_soap_routes([service], limits))
    client = SoapClient("http://t/c", transport=httpx.ASGITransport(app=app))
    await client.call("urn:a", etree.Element("x"), mtom=False)
    assert (seen[0].addressing.to, seen[0].addressing.reply_to) == ("http://t/c", ANONYMOUS)


async def test_call_mtom_round_trip_spools_and_hashes_parts(client, tmp_path):
    content = bytes(range(256)) * 1000
    path = tmp_path / "doc.bin"
    path.write_bytes(content)
    body = upload_body("doc@1")
    attachment = OutgoingAttachment("doc@1", "application/octet-stream", path, len(content))
    response = await client.call(UPLOAD, body, attachments=[attachment], mtom=True)
    received = response.attachments["doc@1"]
    assert (received.sha1, received.path.read_bytes()) == (
        hashlib.sha1(content).hexdigest(),
        content,
    )


async def test_fault_is_raised_with_its_subcode(client):
    with pytest.raises(SoapFault) as caught:
        await client.call("urn:example:Unknown", echo_body(), mtom=False)
    fault = caught.value
    assert (fault.code, fault.subcode.localname, fault.http_status) == (
        FaultCode.SENDER,
        "ActionNotSupported",
        400,
    )


async def test_non_soap_response_is_receiver_fault(limits):
    client = SoapClient("http://t/nowhere", transport=httpx.ASGITransport(app=make_app(limits)))
    with pytest.raises(SoapFault) as caught:
        await client.call(ECHO, echo_body(), mtom=False)
    assert (caught.value.code, caught.value.http_status) == (FaultCode.RECEIVER, 404)


def test_call_sync(client):
    response = client.call_sync(ECHO, echo_body("sync"), mtom=False)
    assert response.http_status == 200


async def test_attachments_need_mtom(client, tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"a")
    with pytest.raises(ValueError):
        await client.call(
            ECHO, echo_body(), attachments=[OutgoingAttachment("a@1", "x/y", path, 1)], mtom=False
        )
