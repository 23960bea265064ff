"""soap/app.py driven in-process over httpx.ASGITransport with a fake echo service."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from pathlib import Path

import anyio
import httpx
import pytest
from lxml import etree
from soap_echo import BOOM, ECHO_RESPONSE, NS, PATH, UPLOAD, UPLOAD_RESPONSE, WSDL, make_app
from soap_wire import (
    ANONYMOUS,
    SOAP12,
    WSA,
    XOP_ROOT_CT,
    envelope,
    mtom_content_type,
    multipart,
    post,
)
from starlette.applications import Starlette

from soap.app import _timed, build_soap_routes
from soap.faults import SoapFault
from soap.limits import Limits
from soap.message import Service
from soap.mtom import MessageReader

ENV = f"{{{SOAP12}}}"
W = f"{{{WSA}}}"


def read(response: httpx.Response, limits: Limits):
    reader = MessageReader(response.headers["content-type"], limits)
    reader.feed(response.content)
    message = reader.finish()
    header = message.envelope.find(ENV + "Header")
    body = message.envelope.find(ENV + "Body")[0]
    return header, body, message


def fault_subcodes(body: etree._Element) -> list[str]:
    return [v.text for v in body.iter(ENV + "Value")]


async def test_response_carries_wsa_action_with_must_understand(http, limits):
    response = await post(http, envelope())
    header, _, _ = read(response, limits)
    action = header.find(W + "Action")
    assert (action.text, action.get(ENV + "mustUnderstand")) == (ECHO_RESPONSE, "true")


async def test_response_relates_to_request_message_id(http, limits):
    response = await post(http, envelope(message_id="urn:uuid:1234"))
    header, _, _ = read(response, limits)
    assert header.findtext(W + "RelatesTo") == "urn:uuid:1234"


async def test_response_has_fresh_uuid_message_id(http, limits):
    response = await post(http, envelope(message_id="urn:uuid:1234"))
    header, _, _ = read(response, limits)
    message_id = header.findtext(W + "MessageID")
    assert message_id.startswith("urn:uuid:") and message_id != "urn:uuid:1234"


async def test_simple_operation_answers_simple_soap(http):
    response = await post(http, envelope())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/soap+xml; charset=UTF-8"


async def test_handler_sees_first_body_child(http, limits):
    response = await post(http, envelope())
    _, body, _ = read(response, limits)
    assert body.findtext(f"{{{NS}}}Echo") == "hi"


async def test_unknown_action_is_action_not_supported(http, limits):
    response = await post(http, envelope(action="urn:example:Nope"))
    header, body, _ = read(response, limits)
    assert response.status_code == 400
    assert fault_subcodes(body) == ["env:Sender", "wsa:ActionNotSupported"]
    assert header.findtext(W + "Action") == "http://www.w3.org/2005/08/addressing/fault"


async def test_missing_action_is_message_addressing_header_required(http, limits):
    response = await post(http, envelope(action=None))
    _, body, _ = read(response, limits)
    assert response.status_code == 400
    assert fault_subcodes(body)[1] == "wsa:MessageAddressingHeaderRequired"


async def test_non_anonymous_reply_to_is_refused(http, limits):
    response = await post(http, envelope(reply_to="http://elsewhere.example/cb"))
    _, body, _ = read(response, limits)
    assert fault_subcodes(body)[1:] == [
        "wsa:InvalidAddressingHeader",
        "wsa:OnlyAnonymousAddressSupported",
    ]


async def test_anonymous_reply_to_is_accepted(http):
    response = await post(http, envelope(reply_to=ANONYMOUS))
    assert response.status_code == 200


async def test_unknown_must_understand_header_is_must_understand_fault(http, limits):
    extra = '<x:Thing xmlns:x="urn:x" env:mustUnderstand="true"/>'
    response = await post(http, envelope(extra_headers=extra))
    header, body, _ = read(response, limits)
    assert response.status_code == 500
    assert fault_subcodes(body) == ["env:MustUnderstand"]
    assert header.find(ENV + "NotUnderstood").get("qname").endswith(":Thing")
    assert header.findtext(W + "Action") == "http://www.w3.org/2005/08/addressing/soap/fault"


async def test_wsse_security_is_accepted_unvalidated_and_logged(http, caplog):
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    extra = f'<s:Security xmlns:s="{wsse}" env:mustUnderstand="1"/>'
    with caplog.at_level(logging.WARNING, logger="soap.app"):
        response = await post(http, envelope(extra_headers=extra))
    assert response.status_code == 200
    assert "without validating" in caplog.text


async def test_wsse_security_refused_when_not_accepted(limits):
    wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
    extra = f'<s:Security xmlns:s="{wsse}" env:mustUnderstand="true"/>'
    app = make_app(limits, accept_unvalidated_wsse_security=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await post(c, envelope(extra_headers=extra))
    assert response.status_code == 500


SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


async def test_soap11_envelope_is_a_soap11_version_mismatch_with_upgrade(http):
    """SOAP 1.2 Part 1 Appendix A: a SOAP/1.1 message is answered with a version mismatch
    fault built on the SOAP/1.1 message construct (faultcode VersionMismatch in the 1.1
    envelope namespace), over the SOAP 1.1 HTTP binding (text/xml, HTTP 500), with the
    Upgrade header block of 5.4.7 naming the SOAP 1.2 envelope.  (It used to be a SOAP
    1.2 env:VersionMismatch, which a SOAP 1.1 client cannot read.)"""
    soap11 = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<s:Body><x/></s:Body></s:Envelope>"
    )
    response = await post(http, soap11, "text/xml; charset=utf-8")
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/xml; charset=UTF-8"
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{SOAP11}}}Envelope"
    fault = root.find(f"{{{SOAP11}}}Body/{{{SOAP11}}}Fault")
    code = fault.find("faultcode")
    assert etree.QName(_resolve(code)) == etree.QName(SOAP11, "VersionMismatch")
    assert fault.findtext("faultstring")
    [upgrade] = root.find(f"{{{SOAP11}}}Header")
    assert upgrade.tag == ENV + "Upgrade"
    [supported] = upgrade
    assert supported.tag == ENV + "SupportedEnvelope"
    assert etree.QName(_resolve(supported, supported.get("qname"))) == etree.QName(
        SOAP12, "Envelope"
    )


def _resolve(element: etree._Element, text: str | None = None) -> str:
    prefix, _, local = (text if text is not None else element.text or "").partition(":")
    return f"{{{element.nsmap[prefix]}}}{local}"


async def test_unknown_envelope_namespace_is_version_mismatch_with_upgrade(http, limits):
    """SOAP 1.2 Part 1 5.4.7: a VersionMismatch names the supported envelope."""
    other = b'<s:Envelope xmlns:s="urn:example:other-envelope"><s:Body><x/></s:Body></s:Envelope>'
    response = await post(http, other)
    header, body, _ = read(response, limits)
    assert (response.status_code, fault_subcodes(body)) == (500, ["env:VersionMismatch"])
    supported = header.find(f"{ENV}Upgrade/{ENV}SupportedEnvelope")
    assert etree.QName(_resolve(supported, supported.get("qname"))) == etree.QName(
        SOAP12, "Envelope"
    )


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><r>&b;</r>',
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b'<!DOCTYPE r SYSTEM "http://127.0.0.1:1/evil.dtd"><r/>',
    ],
    ids=["entity-bomb", "external-entity", "external-dtd"],
)
async def test_doctype_is_sender_fault(http, limits, document):
    response = await post(http, document)
    _, body, _ = read(response, limits)
    assert response.status_code == 400
    assert "DOCTYPE" in body.findtext(f"{ENV}Reason/{ENV}Text")


async def test_malformed_xml_is_sender_fault(http):
    response = await post(http, envelope()[:-20])
    assert response.status_code == 400


async def test_wrong_content_type_is_refused(http):
    response = await post(http, envelope(), "application/json")
    assert response.status_code == 415


async def test_soapaction_and_action_parameter_are_ignored(http, limits):
    # ITI TF-2 V.3.2.2 (IHE-WSP211): the wsa:Action header alone decides
    response = await http.post(
        PATH,
        content=envelope(),
        headers={
            "content-type": 'application/soap+xml; action="urn:example:Boom"',
            "soapaction": BOOM,
        },
    )
    header, _, _ = read(response, limits)
    assert header.findtext(W + "Action") == ECHO_RESPONSE


async def test_handler_exception_is_generic_receiver_fault(http, limits):
    response = await post(http, envelope(action=BOOM))
    _, body, _ = read(response, limits)
    assert response.status_code == 500
    assert fault_subcodes(body) == ["env:Receiver"]
    assert b"secret internal detail" not in response.content


async def test_oversized_envelope_is_413(limits):
    app = make_app(Limits(spool_dir=limits.spool_dir, max_envelope_bytes=2000))
    big = envelope(body=f'<e:Echo xmlns:e="{NS}">{"x" * 5000}</e:Echo>')
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await post(c, big)
    assert response.status_code == 413


async def test_declared_content_length_over_cap_is_413(limits):
    app = make_app(Limits(spool_dir=limits.spool_dir, max_request_bytes=100))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await post(c, envelope())
    assert response.status_code == 413


async def test_wsdl_is_served(http):
    response = await http.get(PATH + "?wsdl")
    assert (response.status_code, response.text) == (200, WSDL)
    assert response.headers["content-type"].startswith("text/xml")


async def test_missing_wsdl_is_404(limits):
    app = Starlette(routes=build_soap_routes([Service("/none", {})], limits))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/none?wsdl")
    assert response.status_code == 404


def upload_request(content: bytes, cid: str = "doc@1.example") -> tuple[bytes, str]:
    root = envelope(
        f'<e:Upload xmlns:e="{NS}"><e:Data>'
        f'<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:{cid}"/>'
        f"</e:Data></e:Upload>",
        action=UPLOAD,
    )
    body = multipart(
        [
            ({"Content-Type": XOP_ROOT_CT, "Content-ID": "<root@test>"}, root),
            ({"Content-Type": "application/pdf", "Content-ID": f"<{cid}>"}, content),
        ]
    )
    return body, mtom_content_type()


async def test_mtom_upload_echoes_part_with_sha1_and_size(http, limits):
    content = bytes(range(256)) * 100
    body, ctype = upload_request(content)
    response = await post(http, body, ctype)
    _, response_body, message = read(response, limits)
    part = response_body.find(f"{{{NS}}}Part")
    assert (part.get("size"), part.get("sha1")) == (
        str(len(content)),
        hashlib.sha1(content).hexdigest(),
    )
    assert message.attachments["doc@1.example"].path.read_bytes() == content


async def test_mtom_response_header_action(http, limits):
    body, ctype = upload_request(b"abc")
    response = await post(http, body, ctype)
    header, _, _ = read(response, limits)
    assert header.findtext(W + "Action") == UPLOAD_RESPONSE


async def test_simple_request_to_mtom_operation_is_answered_mtom(http):
    response = await post(http, envelope(f'<e:Upload xmlns:e="{NS}"/>', action=UPLOAD))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related;")


async def test_response_content_length_equals_bytes_sent(http):
    body, ctype = upload_request(b"0123456789" * 1000)
    response = await post(http, body, ctype)
    assert int(response.headers["content-length"]) == len(response.content)


async def test_request_attachments_deleted_after_response(http, limits):
    body, ctype = upload_request(b"x" * 5000)
    response = await post(http, body, ctype)
    assert response.status_code == 200
    assert list(Path(limits.spool_dir).iterdir()) == []


async def test_missing_referenced_part_is_sender_fault(http, limits):
    body, ctype = upload_request(b"abc")
    body = body.replace(b"cid:doc@1.example", b"cid:other@1.example")
    response = await post(http, body, ctype)
    assert response.status_code == 400
    assert list(Path(limits.spool_dir).iterdir()) == []


async def test_a_body_arriving_slowly_but_steadily_is_read_whole(limits):
    # the read timeout bounds the wait for each chunk, not the whole body
    async def trickling():
        body = envelope()
        for start in range(0, len(body), len(body) // 6 + 1):
            await anyio.sleep(0.02)
            yield body[start : start + len(body) // 6 + 1]

    app = make_app(Limits(spool_dir=limits.spool_dir, read_timeout=0.05))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            PATH, content=trickling(), headers={"content-type": "application/soap+xml"}
        )
    assert response.status_code == 200, response.text


async def test_the_reader_s_own_time_between_chunks_is_not_the_sender_s():
    async def chunks():
        for n in range(3):
            yield b"x%d" % n

    seen = []
    async for chunk in _timed(chunks(), 0.05):
        seen.append(chunk)
        await asyncio.sleep(0.12)  # longer than the timeout, spent by the reader
    assert seen == [b"x0", b"x1", b"x2"]


async def test_a_timed_out_read_leaves_its_task_usable():
    async def stalls():
        yield b"first"
        await asyncio.sleep(1)
        yield b"never"

    seen = []
    with pytest.raises(SoapFault) as caught:
        async for chunk in _timed(stalls(), 0.05):
            seen.append(chunk)
    assert seen == [b"first"]
    assert caught.value.http_status == 408
    # the deadline's cancellation was taken inside the reader: none is left pending
    current = asyncio.current_task()
    assert current is not None and current.cancelling() == 0
    await asyncio.sleep(0.01)


async def test_stalled_body_times_out_with_408(limits):
    async def stalled():
        yield envelope()[:50]
        await anyio.sleep(0.5)
        yield envelope()[50:]

    app = make_app(Limits(spool_dir=limits.spool_dir, read_timeout=0.05))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            PATH, content=stalled(), headers={"content-type": "application/soap+xml"}
        )
    assert response.status_code == 408
