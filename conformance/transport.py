"""How the conformance runner talks to a system under test, written from the standards
and not from xdsi's own SOAP layer, so any vendor's endpoint is judged by the same
bytes: simple SOAP and MTOM/XOP packages (W3C SOAP MTOM 1.0, XOP 1.0, RFC 2387) over
HTTP, and HL7 v2 over MLLP (HL7 MLLP Release 1).  Transport failures raise
:class:`TransportError`; everything that arrives is returned as an :class:`Exchange`.
"""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import dataclass, field

import httpx
from lxml import etree

NS = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "soap11": "http://schemas.xmlsoap.org/soap/envelope/",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
    "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
    "query": "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0",
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
    "xdsb": "urn:ihe:iti:xds-b:2007",
    "xop": "http://www.w3.org/2004/08/xop/include",
    "iherad": "urn:ihe:rad:xdsi-b:2009",
    "rmd": "urn:ihe:iti:rmd:2017",
    "hl7": "urn:hl7-org:v3",
}
VT, FS, CR = b"\x0b", b"\x1c", b"\r"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class TransportError(Exception):
    """The system under test could not be reached or answered with something unreadable."""


@dataclass(slots=True)
class Exchange:
    """One request and what came back."""

    request: bytes
    response: bytes = b""
    http_status: int | None = None
    content_type: str = ""
    envelope: etree._Element | None = None  # the SOAP Envelope received
    parts: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # Content-ID -> part
    hl7: bytes | None = None  # the HL7 v2 reply

    @property
    def body(self) -> etree._Element | None:
        """The first child of the SOAP Body (the response message or the Fault)."""
        if self.envelope is None:
            return None
        for prefix in ("soap", "soap11"):
            found = self.envelope.find(f"{prefix}:Body/*", NS)
            if found is not None:
                return found
        return None


# --- MIME and XOP ------------------------------------------------------------------------


def mtom_package(
    root_xml: bytes, parts: list[tuple[str, str, bytes]], action: str
) -> tuple[str, bytes]:
    """(Content-Type, body) of an MTOM/XOP package whose root is ``root_xml`` and whose
    other parts are (Content-ID, Content-Type, bytes) (ITI TF-2 V.3.2)."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@conformance.xdsi"
    out = bytearray()
    out += f"--{boundary}\r\n".encode()
    out += b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
    out += b"Content-Transfer-Encoding: binary\r\n"
    out += f"Content-ID: <{root_id}>\r\n\r\n".encode()
    out += root_xml + b"\r\n"
    for content_id, content_type, data in parts:
        out += f"--{boundary}\r\n".encode()
        out += f"Content-Type: {content_type}\r\n".encode()
        out += b"Content-Transfer-Encoding: binary\r\n"
        out += f"Content-ID: <{content_id}>\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"; action="{action}"'
    )
    return content_type, bytes(out)


def _param(header: str, name: str) -> str | None:
    match = re.search(rf'{name}\s*=\s*(?:"([^"]*)"|([^;\s]+))', header, re.IGNORECASE)
    return (match.group(1) or match.group(2)) if match else None


def split_multipart(content_type: str, body: bytes) -> tuple[bytes, dict[str, tuple[str, bytes]]]:
    """The root part and the other parts (Content-ID -> (Content-Type, bytes)) of a
    multipart/related body (RFC 2046 5.1, RFC 2387)."""
    boundary = _param(content_type, "boundary")
    if not boundary:
        raise TransportError(f"multipart response without a boundary: {content_type}")
    start = (_param(content_type, "start") or "").strip("<>")
    chunks = body.split(b"--" + boundary.encode())
    root: bytes | None = None
    parts: dict[str, tuple[str, bytes]] = {}
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise TransportError("a MIME part without a header/body separator")
        data = data[:-2] if data.endswith(b"\r\n") else data
        headers = {}
        for line in head.decode("latin-1").strip().split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        content_id = headers.get("content-id", "").strip("<>")
        if root is None and (not start or content_id == start):
            root = data
        else:
            parts[content_id] = (headers.get("content-type", ""), data)
    if root is None:
        raise TransportError("multipart response without its root part")
    return root, parts


def resolve_document(exchange: Exchange, element: etree._Element) -> bytes | None:
    """The bytes of an ``xdsb:Document``: its xop:Include part, or inline base64."""
    include = element.find("xop:Include", NS)
    if include is not None:
        href = include.get("href", "")
        cid = href[4:] if href.startswith("cid:") else href
        from urllib.parse import unquote

        part = exchange.parts.get(cid) or exchange.parts.get(unquote(cid))
        return part[1] if part else None
    import base64

    try:
        return base64.b64decode((element.text or "").strip(), validate=False)
    except ValueError:
        return None


# --- HTTP ----------------------------------------------------------------------------------


class SoapTransport:
    """Posts envelopes, simple or MTOM, and reads what comes back."""

    def __init__(self, client: httpx.Client | None = None, timeout: float = 60.0) -> None:
        self.client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def post(
        self,
        url: str,
        envelope: bytes,
        *,
        action: str,
        mtom: bool,
        parts: list[tuple[str, str, bytes]] | None = None,
        content_type: str | None = None,
    ) -> Exchange:
        if mtom:
            ctype, body = mtom_package(envelope, parts or [], action)
        else:
            ctype = f'application/soap+xml; charset=UTF-8; action="{action}"'
            body = envelope
        ctype = content_type or ctype
        try:
            response = self.client.post(url, content=body, headers={"Content-Type": ctype})
        except httpx.HTTPError as exc:
            raise TransportError(f"{url}: {type(exc).__name__}: {exc}") from exc
        return read_response(body, response.status_code, response.headers, response.content)

    def post_raw(self, url: str, body: bytes, content_type: str) -> Exchange:
        """A non-SOAP POST (STOW-RS): the answer is kept as bytes, not parsed."""
        try:
            response = self.client.post(url, content=body, headers={"Content-Type": content_type})
        except httpx.HTTPError as exc:
            raise TransportError(f"{url}: {type(exc).__name__}: {exc}") from exc
        return Exchange(
            body, response.content, response.status_code, response.headers.get("content-type", "")
        )


def read_response(
    request: bytes, status: int, headers: httpx.Headers | dict[str, str], content: bytes
) -> Exchange:
    content_type = headers.get("content-type", "")
    exchange = Exchange(request, content, status, content_type)
    root = content
    if content_type.lower().startswith("multipart/related"):
        root, exchange.parts = split_multipart(content_type, content)
    if not root.strip():
        return exchange  # no envelope: the assertions say what was missing
    try:
        exchange.envelope = etree.fromstring(root, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise TransportError(f"HTTP {status}: the response is not XML: {exc}") from exc
    return exchange


# --- MLLP ------------------------------------------------------------------------------------


def send_mllp(host: str, port: int, message: bytes, timeout: float = 30.0) -> Exchange:
    """One framed message on a new connection; the reply is ``Exchange.hl7``."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(VT + message + FS + CR)
            data = b""
            while FS + CR not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise TransportError(f"MLLP {host}:{port}: {exc}") from exc
    start = data.find(VT)
    end = data.find(FS + CR)
    if start < 0 or end < 0:
        raise TransportError(f"MLLP {host}:{port}: not an MLLP frame: {data[:200]!r}")
    reply = data[start + 1 : end]
    return Exchange(message, reply, hl7=reply)


def ack_code_v3(envelope: etree._Element | None) -> str:
    """acknowledgement/typeCode/@code of an HL7 V3 MCCI_IN000002UV01 in a SOAP Body
    (ITI TF-2 3.44.4.2.3; '' when there is none)."""
    if envelope is None:
        return ""
    found = envelope.xpath("//hl7:acknowledgement/hl7:typeCode/@code", namespaces=NS)
    return str(found[0]) if isinstance(found, list) and found else ""


def ack_details_v3(envelope: etree._Element | None) -> list[str]:
    """The HL7 Table 0357 codes of every acknowledgementDetail/code of an MCCI answer."""
    if envelope is None:
        return []
    found = envelope.xpath(
        "//hl7:acknowledgement/hl7:acknowledgementDetail/hl7:code/@code", namespaces=NS
    )
    return [str(code) for code in found] if isinstance(found, list) else []


def ack_code(reply: bytes) -> str:
    """MSA-1 of an HL7 v2 acknowledgement ('' when there is no MSA segment)."""
    for segment in reply.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA") and len(segment) > 3:
            fields = segment.split(segment[3:4])
            return fields[1].decode("latin-1") if len(fields) > 1 else ""
    return ""


__all__ = [
    "NS",
    "Exchange",
    "SoapTransport",
    "TransportError",
    "ack_code",
    "ack_code_v3",
    "ack_details_v3",
    "mtom_package",
    "read_response",
    "resolve_document",
    "send_mllp",
    "split_multipart",
]
