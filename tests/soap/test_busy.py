"""soap/app.py: at ``Limits.max_concurrent_requests`` an endpoint refuses at once."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest
from lxml import etree
from starlette.applications import Starlette

from soap.app import build_soap_routes, content_type_action
from soap.limits import Limits
from soap.message import Operation, Service, SoapRequest, SoapResponse

ACTION = "urn:example:Slow"
RESPONSE_ACTION = "urn:example:SlowResponse"
NS = "urn:example:busy"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"


def _envelope() -> bytes:
    return (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f"<wsa:Action>{ACTION}</wsa:Action><wsa:MessageID>urn:uuid:1</wsa:MessageID>"
        f'</env:Header><env:Body><b:Go xmlns:b="{NS}"/></env:Body></env:Envelope>'
    ).encode()


def _app(tmp_path: Path, release: anyio.Event, busy: bool) -> Starlette:
    async def slow(request: SoapRequest) -> SoapResponse:
        await release.wait()
        return SoapResponse(etree.Element(f"{{{NS}}}Done"))

    def busy_body(action: str) -> etree._Element:
        element = etree.Element(f"{{{NS}}}Busy")
        element.text = action
        return element

    service = Service(
        "/slow",
        {ACTION: Operation(ACTION, RESPONSE_ACTION, slow)},
        busy=busy_body if busy else None,
    )
    limits = Limits(spool_dir=tmp_path, max_concurrent_requests=2)
    return Starlette(routes=build_soap_routes([service], limits))


async def _post(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post(
        "http://test/slow",
        content=_envelope(),
        headers={"content-type": f'application/soap+xml; charset=UTF-8; action="{ACTION}"'},
    )


async def _third_while_two_wait(tmp_path: Path, busy: bool) -> tuple[httpx.Response, list[int]]:
    release = anyio.Event()
    transport = httpx.ASGITransport(app=_app(tmp_path, release, busy))
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport) as client:

        async def waiting() -> None:
            statuses.append((await _post(client)).status_code)

        async with anyio.create_task_group() as group:
            group.start_soon(waiting)
            group.start_soon(waiting)
            await anyio.sleep(0.1)
            third = await _post(client)
            release.set()
    return third, statuses


@pytest.mark.anyio
async def test_request_beyond_the_bound_gets_the_services_busy_body(tmp_path: Path) -> None:
    third, statuses = await _third_while_two_wait(tmp_path, busy=True)
    assert third.status_code == 200
    body = etree.fromstring(third.content).find(f"{{{SOAP12}}}Body")[0]
    assert body.tag == f"{{{NS}}}Busy" and body.text == ACTION
    assert statuses == [200, 200]


@pytest.mark.anyio
async def test_busy_answer_carries_the_response_action(tmp_path: Path) -> None:
    third, _ = await _third_while_two_wait(tmp_path, busy=True)
    action = etree.fromstring(third.content).find(f"{{{SOAP12}}}Header/{{{WSA}}}Action")
    assert action is not None and action.text == RESPONSE_ACTION


@pytest.mark.anyio
async def test_request_beyond_the_bound_without_busy_body_is_503(tmp_path: Path) -> None:
    third, statuses = await _third_while_two_wait(tmp_path, busy=False)
    assert third.status_code == 503
    assert third.headers["retry-after"] == "1"
    assert statuses == [200, 200]


@pytest.mark.anyio
async def test_requests_within_the_bound_are_answered(tmp_path: Path) -> None:
    release = anyio.Event()
    release.set()
    transport = httpx.ASGITransport(app=_app(tmp_path, release, busy=True))
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(5):  # one at a time: the counter goes back down
            response = await _post(client)
            body = etree.fromstring(response.content).find(f"{{{SOAP12}}}Body")[0]
            assert body.tag == f"{{{NS}}}Done"


def test_content_type_action_reads_the_quoted_parameter() -> None:
    assert content_type_action('application/soap+xml; action="urn:a:B"') == "urn:a:B"


def test_content_type_action_reads_the_bare_parameter() -> None:
    assert content_type_action("application/soap+xml;action=urn:a:B") == "urn:a:B"


def test_content_type_action_is_none_without_the_parameter() -> None:
    assert content_type_action("application/soap+xml; charset=UTF-8") is None
