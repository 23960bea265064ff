"""A fake, non-XDS service for the soap/ tests: echo, upload (MTOM) and a failing handler.

Also runnable as a uvicorn server (``python soap_echo.py PORT SPOOL_DIR``) that reports
its own peak RSS at ``GET /rss``.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from soap.app import build_soap_routes
from soap.limits import Limits
from soap.message import Operation, OutgoingAttachment, Service, SoapRequest, SoapResponse

NS = "urn:example:echo"
ECHO = "urn:example:Echo"
ECHO_RESPONSE = "urn:example:EchoResponse"
UPLOAD = "urn:example:Upload"
UPLOAD_RESPONSE = "urn:example:UploadResponse"
BOOM = "urn:example:Boom"
PATH = "/echo"
DATA = f"{{{NS}}}Data"
WSDL = '<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" name="Echo"/>'


def q(local: str) -> str:
    return f"{{{NS}}}{local}"


async def echo(request: SoapRequest) -> SoapResponse:
    response = etree.Element(q("EchoResponse"), nsmap={"e": NS})
    response.append(etree.fromstring(etree.tostring(request.body)))
    etree.SubElement(response, q("MessageID")).text = request.addressing.message_id or ""
    return SoapResponse(response)


async def upload(request: SoapRequest) -> SoapResponse:
    """Lists the request's parts and sends each back as a part of the response."""
    response = etree.Element(q("UploadResponse"), nsmap={"e": NS})
    out = []
    for cid, attachment in sorted(request.attachments.items()):
        part = etree.SubElement(response, q("Part"))
        part.set("cid", cid)
        part.set("size", str(attachment.size))
        part.set("sha1", attachment.sha1)
        part.set("type", attachment.content_type)
        out.append(
            OutgoingAttachment(cid, attachment.content_type, attachment.path, attachment.size)
        )
    return SoapResponse(response, out)


async def boom(request: SoapRequest) -> SoapResponse:
    raise RuntimeError("secret internal detail")


def service() -> Service:
    return Service(
        path=PATH,
        operations={
            ECHO: Operation(ECHO, ECHO_RESPONSE, echo),
            UPLOAD: Operation(
                UPLOAD, UPLOAD_RESPONSE, upload, mtom=True, binary_elements=frozenset({DATA})
            ),
            BOOM: Operation(BOOM, ECHO_RESPONSE, boom),
        },
        wsdl=WSDL,
    )


def upload_body(content_id: str = "doc@1") -> etree._Element:
    """An Upload request whose Data is an xop:Include of the part ``content_id``."""
    body = etree.Element(f"{{{NS}}}Upload", nsmap={"e": NS})
    data = etree.SubElement(body, f"{{{NS}}}Data")
    include = etree.SubElement(data, "{http://www.w3.org/2004/08/xop/include}Include")
    include.set("href", "cid:" + content_id.replace("@", "%40"))
    return body


def make_app(limits: Limits | None = None, **options: bool) -> Starlette:
    return Starlette(routes=build_soap_routes([service()], limits or Limits(), **options))


def _rss_app(spool: Path) -> Starlette:
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    async def rss(_request: Request) -> JSONResponse:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return JSONResponse({"baseline_kib": baseline, "peak_kib": peak})

    routes = build_soap_routes([service()], Limits(spool_dir=spool))
    return Starlette(routes=[*routes, Route("/rss", rss)])


if __name__ == "__main__":
    import uvicorn

    port, spool = int(sys.argv[1]), Path(sys.argv[2])
    uvicorn.run(_rss_app(spool), host="127.0.0.1", port=port, log_level="warning")
