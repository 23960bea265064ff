"""Hand-written wire messages for the soap/ tests."""

from __future__ import annotations

import httpx
from soap_echo import ECHO, NS, PATH

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
ANONYMOUS = f"{WSA}/anonymous"
SOAP_CT = "application/soap+xml; charset=UTF-8"
XOP_ROOT_CT = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'


def envelope(
    body: str = f'<e:Echo xmlns:e="{NS}">hi</e:Echo>',
    *,
    action: str | None = ECHO,
    message_id: str | None = "urn:uuid:00000000-0000-4000-8000-000000000001",
    extra_headers: str = "",
    reply_to: str | None = None,
) -> bytes:
    headers = []
    if action is not None:
        headers.append(f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>')
    if message_id is not None:
        headers.append(f"<wsa:MessageID>{message_id}</wsa:MessageID>")
    if reply_to is not None:
        headers.append(f"<wsa:ReplyTo><wsa:Address>{reply_to}</wsa:Address></wsa:ReplyTo>")
    headers.append(extra_headers)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}">'
        f"<env:Header>{''.join(headers)}</env:Header>"
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def multipart(
    parts: list[tuple[dict[str, str], bytes]], boundary: str = "b0undary", *, close: bool = True
) -> bytes:
    out = b""
    for headers, content in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + content + b"\r\n"
    if close:
        out += f"--{boundary}--\r\n".encode()
    return out


def mtom_content_type(boundary: str = "b0undary", start: str | None = "<root@test>") -> str:
    start_param = f' start="{start}";' if start else ""
    return (
        f'multipart/related; type="application/xop+xml";{start_param}'
        f' start-info="application/soap+xml"; boundary="{boundary}"'
    )


async def post(client: httpx.AsyncClient, content: bytes, content_type: str = SOAP_CT):
    return await client.post(PATH, content=content, headers={"content-type": content_type})
