"""soap/app.py ``on_exchange``: every exchange is observed once, answered, faulted or
refused, and an observer that fails never changes the answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from soap_echo import BOOM, ECHO, NS, PATH, service
from soap_wire import ANONYMOUS, envelope, post
from starlette.applications import Starlette

from soap.app import ExchangeInfo, build_soap_routes
from soap.faults import FaultCode, SoapFault
from soap.limits import Limits
from soap.message import SoapRequest

Seen = list[tuple[SoapRequest | None, object, SoapFault | None, ExchangeInfo]]


@pytest.fixture
def seen() -> Seen:
    return []


@pytest.fixture
async def observed(limits: Limits, seen: Seen) -> AsyncIterator[httpx.AsyncClient]:
    def observe(request, body, fault, info) -> None:  # noqa: ANN001
        seen.append((request, body, fault, info))

    app = Starlette(routes=build_soap_routes([service()], limits, on_exchange=observe))
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        yield client


async def test_answered_exchange_is_observed_with_request_and_response_body(observed, seen):
    await post(observed, envelope(reply_to=ANONYMOUS))
    ((request, body, fault, info),) = seen
    assert request is not None and request.addressing.reply_to == ANONYMOUS
    assert (body.tag, fault) == (f"{{{NS}}}EchoResponse", None)
    assert (info.endpoint, info.action, info.http_status) == (PATH, ECHO, 200)


async def test_exchange_info_names_client_address_and_url(observed, seen):
    await post(observed, envelope())
    info = seen[0][3]
    assert (info.client_host, info.client_port, info.url) == (
        "10.1.2.3",
        4711,
        "http://xdsi.test/echo",
    )


async def test_handler_failure_is_observed_as_receiver_fault_with_its_request(observed, seen):
    await post(observed, envelope(action=BOOM))
    ((request, body, fault, info),) = seen
    assert request is not None and body is None
    assert (fault.code, info.http_status, info.action) == (FaultCode.RECEIVER, 500, BOOM)


async def test_refused_message_is_observed_without_a_request(observed, seen):
    await post(observed, b"<not-soap/>")
    ((request, body, fault, info),) = seen
    assert (request, body, fault.code, info.action) == (None, None, FaultCode.SENDER, None)


async def test_unknown_action_is_observed_with_the_action_it_named(observed, seen):
    await post(observed, envelope(action="urn:example:Nothing"))
    ((request, _, fault, info),) = seen
    assert (request, info.action) == (None, "urn:example:Nothing")
    assert fault is not None


async def test_failing_observer_does_not_change_the_answer(limits: Limits):
    def broken(*_args: object) -> None:
        raise RuntimeError("observer bug")

    app = Starlette(routes=build_soap_routes([service()], limits, on_exchange=broken))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        response = await post(client, envelope())
    assert response.status_code == 200 and b"EchoResponse" in response.content
