"""soap.app.SoapDispatch: a SOAP POST goes to its endpoint ahead of Starlette's stack;
a WSDL, another route and the lifespan go through the app as before."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from soap_echo import ECHO_RESPONSE, PATH, service
from soap_wire import envelope, post
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from soap.app import SoapDispatch, build_soap_endpoints, soap_routes
from soap.limits import Limits


class Seen:
    """ASGI middleware recording the paths that went through the app's stack."""

    paths: list[str] = []

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            Seen.paths.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


def _app(limits: Limits) -> SoapDispatch:
    endpoints = build_soap_endpoints([service()], limits)
    other = Route("/other", lambda _request: PlainTextResponse("other"), methods=["GET", "POST"])
    starlette = Starlette(routes=[*soap_routes(endpoints), other], middleware=[Middleware(Seen)])
    return SoapDispatch(endpoints, starlette)


@pytest.fixture
async def dispatched(limits: Limits):
    Seen.paths = []
    transport = httpx.ASGITransport(app=_app(limits), root_path="")
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        yield client


async def test_a_soap_post_goes_straight_to_its_endpoint(dispatched: httpx.AsyncClient) -> None:
    response = await post(dispatched, envelope())
    assert response.status_code == 200
    assert ECHO_RESPONSE.encode() in response.content
    assert Seen.paths == []


async def test_everything_else_goes_through_the_app(dispatched: httpx.AsyncClient) -> None:
    wsdl = await dispatched.get(PATH, params={"wsdl": ""})
    other = await dispatched.post("/other", content=b"x")
    assert (wsdl.status_code, other.text) == (200, "other")
    assert Seen.paths == [f"GET {PATH}", "POST /other"]


async def test_the_path_is_read_below_the_root_path(limits: Limits) -> None:
    Seen.paths = []
    transport = httpx.ASGITransport(app=_app(limits), root_path="/xdsi-root")
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        response = await client.post(
            f"/xdsi-root{PATH}",
            content=envelope(),
            headers={"content-type": "application/soap+xml; charset=utf-8"},
        )
    assert ECHO_RESPONSE.encode() in response.content
    assert Seen.paths == []
