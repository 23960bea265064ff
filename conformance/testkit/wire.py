"""The testkit's own peer on the wire: SOAP 1.2 with WS-Addressing, MTOM/XOP, HL7 MLLP.

The runner talks to the system under test as an independent client, so nothing here
reuses xdsi's server-side framing: envelopes follow SOAP 1.2 Part 1 and WS-Addressing
1.0 (ITI TF-2 V.3.2: wsa:Action mustUnderstand), packages follow XOP 1.0 and RFC 2387,
HL7 v2 frames follow the MLLP Release 1 block format (ITI TF-2 C.2.1).
"""

from __future__ import annotations

import base64
import re
import socket
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx
from lxml import etree

from ebxml.vocabulary import NS_XOP
from soap.namespaces import NS_SOAP12, NS_WSA, WSA_ANONYMOUS

_SOAP = f"{{{NS_SOAP12}}}"
_WSA = f"{{{NS_WSA}}}"
_XOP_INCLUDE = f"{{{NS_XOP}}}Include"

# One parser for everything the system under test answers: no entities, no network.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class WireError(Exception):
    """The exchange itself failed: no answer, not SOAP, a SOAP fault, a broken package."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """One document sent or received as an XOP part."""

    content_id: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SoapReply:
    """The first child of env:Body and the parts its xop:Includes name (by Content-ID)."""

    body: etree._Element
    raw: bytes
    parts: dict[str, Attachment] = field(default_factory=dict)

    def include_bytes(self, element: etree._Element) -> bytes:
        """The content of an element carrying an xop:Include or inline base64."""
        include = element.find(_XOP_INCLUDE)
        if include is None:
            return base64.b64decode((element.text or "").strip())
        href = include.get("href", "")
        cid = unquote(href[4:] if href.startswith("cid:") else href)
        if cid not in self.parts:
            raise WireError(f"xop:Include names part <{cid}> that is not in the package")
        return self.parts[cid].data


def envelope(action: str, to: str, body: etree._Element) -> bytes:
    """A SOAP 1.2 envelope with the WS-Addressing request headers (ITI TF-2 V.3.2)."""
    env = etree.Element(_SOAP + "Envelope", nsmap={"soapenv": NS_SOAP12, "wsa": NS_WSA})
    header = etree.SubElement(env, _SOAP + "Header")
    act = etree.SubElement(header, _WSA + "Action")
    act.set(_SOAP + "mustUnderstand", "true")
    act.text = action
    etree.SubElement(header, _WSA + "MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    reply_to = etree.SubElement(header, _WSA + "ReplyTo")
    etree.SubElement(reply_to, _WSA + "Address").text = WSA_ANONYMOUS
    etree.SubElement(header, _WSA + "To").text = to
    etree.SubElement(env, _SOAP + "Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def mtom_package(root: bytes, parts: list[Attachment], action: str) -> tuple[str, bytes]:
    """multipart/related with an application/xop+xml root (SOAP MTOM 1.0, XOP 1.0)."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@xdsi.testkit"
    out = bytearray()

    def part(content_type: str, content_id: str, data: bytes) -> None:
        out.extend(f"--{boundary}\r\nContent-Type: {content_type}\r\n".encode())
        out.extend(b"Content-Transfer-Encoding: binary\r\n")
        out.extend(f"Content-ID: <{content_id}>\r\n\r\n".encode())
        out.extend(data + b"\r\n")

    part('application/xop+xml; charset=UTF-8; type="application/soap+xml"', root_id, root)
    for attachment in parts:
        part(attachment.content_type, attachment.content_id, attachment.data)
    out.extend(f"--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"; action="{action}"'
    )
    return content_type, bytes(out)


def _param(header: str, name: str) -> str | None:
    match = re.search(rf'{name}\s*=\s*(?:"([^"]*)"|([^;\s]+))', header, re.IGNORECASE)
    return (match.group(1) or match.group(2)) if match else None


def _split_multipart(content_type: str, body: bytes) -> tuple[bytes, dict[str, Attachment]]:
    """RFC 2046 5.1.1 body parts; the root is the ``start`` part, else the first."""
    boundary = _param(content_type, "boundary")
    if not boundary:
        raise WireError(f"multipart response without a boundary: {content_type}")
    start = (_param(content_type, "start") or "").strip("<>")
    root: bytes | None = None
    parts: dict[str, Attachment] = {}
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, data = chunk.partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        cid = headers.get("content-id", "").strip("<>")
        if root is None and (not start or cid == start):
            root = data
        else:
            parts[cid] = Attachment(cid, headers.get("content-type", ""), data)
    if root is None:
        raise WireError("multipart response without its root part")
    return root, parts


def _reply(response: httpx.Response) -> SoapReply:
    content_type = response.headers.get("content-type", "")
    parts: dict[str, Attachment] = {}
    root = response.content
    if content_type.lower().startswith("multipart/related"):
        root, parts = _split_multipart(content_type, response.content)
    try:
        env = etree.fromstring(root, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise WireError(f"HTTP {response.status_code}: answer is not XML ({exc})") from exc
    body = env.find(_SOAP + "Body")
    if body is None or not len(body):
        raise WireError(f"HTTP {response.status_code}: no SOAP 1.2 env:Body content")
    first = body[0]
    if first.tag == _SOAP + "Fault":
        reason = " ".join(t.strip() for t in first.itertext() if t.strip())
        raise WireError(f"SOAP Fault (HTTP {response.status_code}): {reason}")
    return SoapReply(first, response.content, parts)


class SoapClient:
    """Sends simple SOAP (ITI-18, ITI-42) and MTOM (ITI-41, ITI-43) requests."""

    def __init__(self, timeout: float = 60.0) -> None:
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def simple(self, url: str, action: str, body: etree._Element) -> tuple[bytes, SoapReply]:
        request = envelope(action, url, body)
        headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{action}"'}
        return request, self._post(url, request, headers)

    def mtom(
        self, url: str, action: str, body: etree._Element, parts: list[Attachment]
    ) -> tuple[bytes, SoapReply]:
        root = envelope(action, url, body)
        content_type, package = mtom_package(root, parts, action)
        return root, self._post(url, package, {"Content-Type": content_type})

    def _post(self, url: str, content: bytes, headers: dict[str, str]) -> SoapReply:
        try:
            response = self._http.post(url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            raise WireError(f"{url}: {exc}") from exc
        return _reply(response)


# --- HL7 v2 over MLLP (ITI TF-2 C.2.1) ------------------------------------------------
_VT, _FS, _CR = b"\x0b", b"\x1c", b"\r"


def send_mllp(address: tuple[str, int], message: bytes, timeout: float = 30.0) -> bytes:
    """One framed message on a new connection; the framed reply's payload."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(_VT + message + _FS + _CR)
            data = b""
            while _FS + _CR not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise WireError(f"MLLP {address[0]}:{address[1]}: {exc}") from exc
    if not (data.startswith(_VT) and data.endswith(_FS + _CR)):
        raise WireError(f"MLLP reply is not a block: {data[:80]!r}")
    return data[1:-2]


__all__ = [
    "Attachment",
    "SoapClient",
    "SoapReply",
    "WireError",
    "envelope",
    "mtom_package",
    "send_mllp",
]
