"""Bad input against a running ``xdsi serve``: the answer the standard gives, nothing
stored, and the server keeps serving.

Every case sends one bad message over real HTTP (or MLLP) and checks three things:

1. the exact answer: HTTP status and SOAP 1.2 fault code/subcode (SOAP 1.2 Part 1 5.4,
   Part 2 7.5.1.2; WS-Addressing 1.0 SOAP Binding 6; ITI TF-2 Appendix V), or the
   RegistryResponse status and XDS error code (ITI TF-3 Table 4.2.4.1-2);
2. nothing was stored: no new registry or repository rows, no new blob, and no spooled
   part or blob temp file left behind once the answer is in;
3. the server still serves: ``/health`` and a valid ITI-18 right after.

Two servers (SQLite): one with the default configuration, one with tiny limits
(envelope, attachment count, request size, read timeout, max_results) for the
oversize cases.  Requests come from the hand-written templates in
``tests/fixtures/e2e`` and ``tests/fixtures/e2e/bad``; the error codes that
``test_xds_b.py`` already asserts over the wire (XDSUnknownPatientId,
XDSMissingDocument) are not repeated here.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest
from e2e_support import (
    APPROVED,
    CR,
    FAILURE,
    FIXTURES,
    FS,
    NS,
    REPOSITORY_UNIQUE_ID,
    SUCCESS,
    TEST_CONFIG,
    TEST_OID_ROOT,
    TEXT_BYTES,
    VT,
    Reply,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    ack_code,
    adt_a01,
    body_element,
    dtm_now,
    entries_by_unique_id,
    mtom_request,
    new_id,
    new_patient_number,
    parse_response,
    patient_cx,
    render,
    send_mllp,
    unique_oid,
)
from lxml import etree

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
PATIENT_ID_SCHEME = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
SOAP12 = "application/soap+xml; charset=UTF-8"
SOAP11_NS = "http://schemas.xmlsoap.org/soap/envelope/"
BAD = "bad"

# rows an accepted submission adds; none of them may grow after a refused one
STORED_TABLES = (
    "document_entry",
    "submission_set",
    "folder",
    "association",
    "repository_document",
)

# tiny caps for the oversize cases: a valid ITI-18 (< 2 KiB) and ITI-41 with two
# documents (< 15 KiB) still fit
TINY_ENVELOPE = 16 * 1024
TINY_ATTACHMENTS = 2
TINY_REQUEST = 64 * 1024
TINY_READ_TIMEOUT = 1.0
TINY_MAX_RESULTS = 1
TINY_CONFIG = TEST_CONFIG.replace(
    "[repository]", f"max_results = {TINY_MAX_RESULTS}\n\n[repository]", 1
) + (
    "\n[limits]\n"
    f"max_envelope_bytes = {TINY_ENVELOPE}\n"
    f"max_attachments = {TINY_ATTACHMENTS}\n"
    f"max_request_bytes = {TINY_REQUEST}\n"
    f"read_timeout = {TINY_READ_TIMEOUT}\n"
)


# --- servers -----------------------------------------------------------------------------


def _serve(data_dir: Path, config: str | None = None) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (data_dir / "xdsi.toml").write_text(config, encoding="utf-8")
    return ServerProcess(data_dir).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with the default limits for the whole module (SQLite)."""
    process = _serve(tmp_path_factory.mktemp("xdsi-bad-input"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with tiny limits and max_results (see TINY_CONFIG)."""
    process = _serve(tmp_path_factory.mktemp("xdsi-tiny-limits"), TINY_CONFIG)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def peer(server: ServerProcess, schemas: ResponseSchemas) -> Iterator[XdsPeer]:
    client = XdsPeer(server.base_url, schemas)
    yield client
    client.close()


@pytest.fixture(scope="module")
def tiny_peer(tiny: ServerProcess, schemas: ResponseSchemas) -> Iterator[XdsPeer]:
    client = XdsPeer(tiny.base_url, schemas)
    yield client
    client.close()


# --- nothing stored, still serving ---------------------------------------------------------


@dataclass(frozen=True)
class Stored:
    """What a server keeps: blob files by path, and row counts per table."""

    blobs: frozenset[str]
    rows: tuple[tuple[str, int], ...]


def _blob_dir(server: ServerProcess) -> Path:
    return server.data_dir / "blobs"


def _spool_dir(server: ServerProcess) -> Path:
    return server.data_dir / "spool"


def stored(server: ServerProcess) -> Stored:
    root = _blob_dir(server)
    blobs = frozenset(
        str(p.relative_to(root))
        for p in (root.rglob("*") if root.is_dir() else ())
        if p.is_file() and not p.name.startswith(".")
    )
    database = server.data_dir / "xdsi.sqlite"
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        rows = tuple(
            (table, db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            for table in STORED_TABLES
        )
    return Stored(blobs, rows)


def leftovers(server: ServerProcess) -> list[Path]:
    """Spooled MIME parts and blob temp files; none may outlive a request's answer."""
    spool = _spool_dir(server)
    found = list(spool.iterdir()) if spool.is_dir() else []
    blobs = _blob_dir(server)
    if blobs.is_dir():
        found += [p for p in blobs.rglob(".*") if p.is_file()]
    return found


def assert_no_leftovers(server: ServerProcess, timeout: float = 5.0) -> None:
    # a successful answer's spooled parts are removed just after it is sent
    deadline = time.monotonic() + timeout
    while (found := leftovers(server)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not found, f"files left behind: {found}"


def assert_still_serves(server: ServerProcess, peer: XdsPeer) -> None:
    assert httpx.get(f"{server.base_url}/health", timeout=10.0).status_code == 200
    assert peer.find_documents(patient_cx(new_patient_number())).status == SUCCESS


@contextlib.contextmanager
def nothing_stored(server: ServerProcess, peer: XdsPeer) -> Iterator[None]:
    """The block stores nothing and leaves no file behind; the server serves after it."""
    before = stored(server)
    yield
    assert_no_leftovers(server)
    assert stored(server) == before
    assert_still_serves(server, peer)


# --- answers ---------------------------------------------------------------------------------


def _qname(value: etree._Element) -> str:
    """A fault Code/Subcode Value (a QName in element content) in Clark notation."""
    prefix, _, local = (value.text or "").strip().rpartition(":")
    return f"{{{value.nsmap.get(prefix or None, '')}}}{local}"


@dataclass(frozen=True)
class Fault:
    status_code: int
    codes: tuple[str, ...]  # Code/Value then each Subcode/Value, Clark notation
    reason: str
    header: etree._Element | None
    raw: bytes


def read_fault(response: httpx.Response) -> Fault:
    package = parse_response(response.headers.get("content-type", ""), response.content)
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    envelope = etree.fromstring(package.root, parser)
    fault = envelope.find("soap:Body/soap:Fault", NS)
    assert fault is not None, f"not a SOAP 1.2 fault: {response.content[:500]!r}"
    values = fault.findall("soap:Code/soap:Value", NS) + fault.findall(
        "soap:Code//soap:Subcode/soap:Value", NS
    )
    return Fault(
        response.status_code,
        tuple(_qname(v) for v in values),
        fault.findtext("soap:Reason/soap:Text", default="", namespaces=NS),
        envelope.find("soap:Header", NS),
        response.content,
    )


def soap(local: str) -> str:
    return f"{{{NS['soap']}}}{local}"


def wsa(local: str) -> str:
    return f"{{{NS['wsa']}}}{local}"


def assert_fault(response: httpx.Response, status: int, *codes: str) -> Fault:
    fault = read_fault(response)
    assert (fault.status_code, fault.codes[: len(codes)]) == (status, codes), fault
    return fault


def reply_of(response: httpx.Response, schemas: ResponseSchemas) -> Reply:
    """A RegistryResponse-like answer, checked against the XSDs."""
    package = parse_response(response.headers.get("content-type", ""), response.content)
    body = body_element(package)
    schemas.check(body)
    return Reply(response.status_code, package, body)


def status_of(reply: Reply) -> str | None:
    """The ResponseStatusType of a RegistryResponse, AdhocQueryResponse or (through its
    rs:RegistryResponse) RetrieveDocumentSetResponse."""
    inner = reply.body.find("rs:RegistryResponse", NS)
    return (inner if inner is not None else reply.body).get("status")


def assert_failure(reply: Reply, code: str) -> None:
    assert reply.status_code == 200
    assert status_of(reply) == FAILURE, reply.registry_errors()
    assert code in reply.registry_errors(), reply.registry_errors()


# --- requests --------------------------------------------------------------------------------


def post(url: str, content: bytes, content_type: str | None, **headers: str) -> httpx.Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return httpx.post(url, content=content, headers=headers, timeout=15.0)


def bad_fixture(name: str) -> bytes:
    """A raw bad-input fixture, sent byte for byte (not a template)."""
    return (FIXTURES / BAD / name).read_bytes()


def feed_patient(server: ServerProcess) -> str:
    number = new_patient_number()
    assert ack_code(send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))) == "AA"
    return patient_cx(number)


def iti18(peer: XdsPeer, query_id: str, slots: str, return_type: str = "LeafClass") -> bytes:
    return render(
        f"{BAD}/iti18_query.xml",
        raw={"slots": slots},
        message_id=new_id(),
        to=peer.registry_url,
        query_id=query_id,
        return_type=return_type,
    )


def slot(name: str, *values: str) -> str:
    items = "".join(f"<rim:Value>{escape(v)}</rim:Value>" for v in values)
    return f'<rim:Slot name="{name}"><rim:ValueList>{items}</rim:ValueList></rim:Slot>'


def find_slots(patient: str) -> str:
    return slot("$XDSDocumentEntryPatientId", f"'{patient}'") + slot(
        "$XDSDocumentEntryStatus", f"('{APPROVED}')"
    )


def iti41(peer: XdsPeer, patient: str, content_id: str, **values: object) -> bytes:
    """The one-document ITI-41 template, filled as XdsPeer.provide fills it."""
    filled: dict[str, object] = {
        "message_id": new_id(),
        "to": peer.repository_url,
        "patient_id": patient,
        "ss_unique_id": unique_oid(),
        "source_id": TEST_OID_ROOT,
        "creation_time": dtm_now(),
        "doc_unique_id": unique_oid(),
        "mime_type": "text/plain",
        "format_code": "urn:ihe:iti:xds-sd:text:2008",
        "title": "Bad input",
        "content_id": content_id,
    }
    fixture = str(values.pop("fixture", "iti41_one_document.xml"))
    return render(fixture, **(filled | values))


def iti42(
    peer: XdsPeer,
    patient: str,
    content: bytes,
    *,
    doc_unique_id: str | None = None,
    ss_unique_id: str | None = None,
    size: int | None = None,
) -> bytes:
    return render(
        "iti42_register.xml",
        message_id=new_id(),
        to=peer.registry_url,
        patient_id=patient,
        ss_unique_id=ss_unique_id or unique_oid(),
        source_id=TEST_OID_ROOT,
        creation_time=dtm_now(),
        doc_unique_id=doc_unique_id or unique_oid(),
        mime_type="text/plain",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Registered directly",
        hash=hashlib.sha1(content).hexdigest(),
        size=len(content) if size is None else size,
        repository_unique_id=REPOSITORY_UNIQUE_ID,
    )


def edited(envelope: bytes, edit: Callable[[etree._Element], None]) -> bytes:
    """The envelope with one change made by ``edit`` on its tree."""
    root = etree.fromstring(envelope)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _extrinsic(root: etree._Element) -> etree._Element:
    found = root.find(".//rim:ExtrinsicObject", NS)
    assert found is not None
    return found


def _add_slot(name: str, value: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        rim = f"{{{NS['rim']}}}"
        new_slot = etree.Element(rim + "Slot", name=name)
        etree.SubElement(etree.SubElement(new_slot, rim + "ValueList"), rim + "Value").text = value
        _extrinsic(root).insert(0, new_slot)  # ebRIM 3.0: Slots come first

    return edit


def boundary_of(content_type: str) -> str:
    match = re.search(r'boundary="([^"]+)"', content_type)
    assert match
    return match.group(1)


def mime_parts(body: bytes, boundary: str) -> list[bytes]:
    """The parts of a package made by ``mtom_request``, each with its headers."""
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    assert chunks[0] == b"" and chunks[-1] == b"--\r\n"
    return [c[2:-2] for c in chunks[1:-1]]  # drop the CRLF after the delimiter and before the next


def mime_body(parts: list[bytes], boundary: str) -> bytes:
    delimiter = b"--" + boundary.encode()
    return b"".join(delimiter + b"\r\n" + p + b"\r\n" for p in parts) + delimiter + b"--\r\n"


def without_param(content_type: str, name: str) -> str:
    return re.sub(rf';\s*{name}="[^"]*"', "", content_type)


# --- raw HTTP ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawResponse:
    status_code: int
    headers: dict[str, str]
    content: bytes

    def as_httpx(self) -> httpx.Response:
        return httpx.Response(self.status_code, headers=self.headers, content=self.content)


def _read_response(sock: socket.socket) -> RawResponse | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return RawResponse(status, headers, rest[:length])


def raw_post(
    server: ServerProcess,
    path: str,
    content_type: str,
    body: bytes,
    *,
    content_length: int,
    close: bool = False,
    timeout: float = 10.0,
) -> RawResponse | None:
    """POST ``body`` on a plain socket announcing ``content_length`` (which may lie);
    ``close``: close the connection after sending instead of waiting for an answer."""
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=timeout) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {content_length}\r\n\r\n"
        )
        sock.sendall(head.encode("latin-1") + body)
        if close:
            return None
        return _read_response(sock)


# === malformed XML and non-XML ==================================================================

MALFORMED = {
    "truncated_tag": "truncated_tag.xml",
    "bad_encoding_declaration": "bad_encoding.xml",
    "invalid_utf8": "invalid_utf8.xml",
    "not_xml": "not_xml.txt",
}


@pytest.mark.parametrize("fixture", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_message_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, fixture: str
) -> None:
    # SOAP 1.2 Part 1 5.4.6 env:Sender; Part 2 7.5.1.2: HTTP 400
    with nothing_stored(server, peer):
        response = post(peer.registry_url, bad_fixture(fixture), SOAP12)
        assert_fault(response, 400, soap("Sender"))


def test_malformed_root_part_of_mtom_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer
) -> None:
    patient = feed_patient(server)
    envelope = iti41(peer, patient, "doc@bad")[:-200]  # cut inside the body
    with nothing_stored(server, peer):
        content_type, body = mtom_request(envelope, [("doc@bad", "text/plain", TEXT_BYTES)], ITI41)
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


# === DOCTYPE, entities, XInclude ================================================================

DOCTYPES = {
    "entity_expansion_bomb": "dtd_bomb.xml",
    "external_entity": f"{BAD}/xxe_external.xml",
    "parameter_entities": f"{BAD}/parameter_entity.xml",
}


@pytest.mark.parametrize("fixture", DOCTYPES.values(), ids=DOCTYPES.keys())
def test_doctype_is_a_sender_fault(server: ServerProcess, peer: XdsPeer, fixture: str) -> None:
    # SOAP 1.2 Part 1 5: a SOAP message must not contain a document type declaration
    with nothing_stored(server, peer):
        started = time.monotonic()
        response = post(peer.registry_url, render(fixture, message_id=new_id()), SOAP12)
        fault = assert_fault(response, 400, soap("Sender"))
        assert time.monotonic() - started < 5.0, "the DTD was expanded"
        assert b"root:" not in fault.raw


def test_doctype_in_mtom_root_part_is_a_sender_fault(server: ServerProcess, peer: XdsPeer) -> None:
    patient = feed_patient(server)
    envelope = iti41(peer, patient, "doc@bad")
    declaration, _, rest = envelope.partition(b"?>")
    doctype = b'<!DOCTYPE soap:Envelope [<!ENTITY passwd SYSTEM "file:///etc/passwd">]>'
    with nothing_stored(server, peer):
        content_type, body = mtom_request(
            declaration + b"?>\n" + doctype + rest, [("doc@bad", "text/plain", TEXT_BYTES)], ITI41
        )
        fault = assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))
        assert b"root:" not in fault.raw


def test_xinclude_is_not_processed(
    server: ServerProcess, peer: XdsPeer, schemas: ResponseSchemas
) -> None:
    envelope = render(f"{BAD}/xinclude.xml", message_id=new_id(), to=peer.registry_url)
    with nothing_stored(server, peer):
        response = post(peer.registry_url, envelope, SOAP12)
        assert b"root:" not in response.content
        assert_failure(reply_of(response, schemas), "XDSStoredQueryMissingParam")


# === Content-Type ===============================================================================

CONTENT_TYPES = {
    "text_plain": ("text/plain", 415),
    "application_xml": ("application/xml", 415),
    "multipart_form_data": ("multipart/form-data; boundary=xyz", 415),
    "missing": (None, 415),
    "multipart_related_without_boundary": (
        'multipart/related; type="application/xop+xml"; start-info="application/soap+xml"',
        415,
    ),
}


@pytest.mark.parametrize(
    ("content_type", "status"), CONTENT_TYPES.values(), ids=CONTENT_TYPES.keys()
)
def test_wrong_content_type_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, content_type: str | None, status: int
) -> None:
    envelope = render(
        f"{BAD}/iti18_headers.xml",
        raw={"headers": f'<wsa:Action soap:mustUnderstand="1">{ITI18}</wsa:Action>'},
        patient_id=patient_cx("X"),
    )
    with nothing_stored(server, peer):
        response = post(peer.registry_url, envelope, content_type)
        assert_fault(response, status, soap("Sender"))


def test_boundary_that_never_appears_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer
) -> None:
    patient = feed_patient(server)
    content_type, body = mtom_request(
        iti41(peer, patient, "doc@bad"), [("doc@bad", "text/plain", TEXT_BYTES)], ITI41
    )
    content_type = content_type.replace(boundary_of(content_type), "never-in-the-body")
    with nothing_stored(server, peer):
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


# === ITI-41 MTOM/XOP packages ===================================================================


@pytest.fixture
def package(server: ServerProcess, peer: XdsPeer) -> tuple[bytes, str]:
    """A valid ITI-41 root part for a known patient and the Content-ID it references."""
    content_id = f"doc.{new_id()}@bad"
    return iti41(peer, feed_patient(server), content_id), content_id


def test_missing_xop_part_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # XOP 1.0 3.1: every xop:Include names a part of the package
    envelope, _ = package
    with nothing_stored(server, peer):
        content_type, body = mtom_request(envelope, [], ITI41)
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


def test_extra_unreferenced_part_is_missing_document_metadata(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # ITI TF-2 3.41.4.1.3.2: a document without a DocumentEntry -> XDSMissingDocumentMetadata
    envelope, content_id = package
    parts = [(content_id, "text/plain", TEXT_BYTES), ("extra@bad", "text/plain", b"stray\n")]
    with nothing_stored(server, peer):
        content_type, body = mtom_request(envelope, parts, ITI41)
        reply = reply_of(post(peer.repository_url, body, content_type), peer.schemas)
        assert_failure(reply, "XDSMissingDocumentMetadata")


def test_content_id_mismatch_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    envelope, content_id = package
    with nothing_stored(server, peer):
        content_type, body = mtom_request(
            envelope, [(f"other.{content_id}", "text/plain", TEXT_BYTES)], ITI41
        )
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


def test_duplicate_content_ids_are_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # RFC 2045 7 / RFC 2392: a Content-ID is unique
    envelope, content_id = package
    parts = [(content_id, "text/plain", TEXT_BYTES), (content_id, "text/plain", b"second\n")]
    with nothing_stored(server, peer):
        content_type, body = mtom_request(envelope, parts, ITI41)
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


def test_no_root_part_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # RFC 2387 3.2: ``start`` names the root part; here no part has that Content-ID
    envelope, content_id = package
    content_type, body = mtom_request(envelope, [(content_id, "text/plain", TEXT_BYTES)], ITI41)
    content_type = re.sub(r'start="<[^>]*>"', 'start="<absent@bad>"', content_type)
    with nothing_stored(server, peer):
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


def test_root_part_not_first_without_start_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # RFC 2387 3.2: without ``start`` the first part is the root - here the document
    envelope, content_id = package
    content_type, body = mtom_request(envelope, [(content_id, "text/plain", TEXT_BYTES)], ITI41)
    boundary = boundary_of(content_type)
    root, document = mime_parts(body, boundary)
    content_type = without_param(content_type, "start")
    with nothing_stored(server, peer):
        body = mime_body([document, root], boundary)
        response = post(peer.repository_url, body, content_type)
        assert_fault(response, 400, soap("Sender"))


def test_missing_close_delimiter_is_a_sender_fault(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # RFC 2046 5.1.1: the body ends with the close delimiter
    envelope, content_id = package
    content_type, body = mtom_request(envelope, [(content_id, "text/plain", TEXT_BYTES)], ITI41)
    truncated = body[: body.rindex(b"--" + boundary_of(content_type).encode())]
    with nothing_stored(server, peer):
        assert_fault(post(peer.repository_url, truncated, content_type), 400, soap("Sender"))


def test_connection_closed_mid_part_stores_nothing(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    envelope, content_id = package
    content_type, body = mtom_request(
        envelope, [(content_id, "text/plain", TEXT_BYTES * 50)], ITI41
    )
    with nothing_stored(server, peer):
        raw_post(
            server,
            "/xds/repository",
            content_type,
            body[: len(body) - 1000],
            content_length=len(body),
            close=True,
        )
        time.sleep(0.2)  # let the server notice the disconnect


def test_body_longer_than_content_length_ends_the_connection(
    server: ServerProcess, peer: XdsPeer, package: tuple[bytes, str]
) -> None:
    # RFC 9112 6.3: the message ends after Content-Length octets, which here cuts the
    # close delimiter off; the octets after it are not an HTTP request: 400 and close
    envelope, content_id = package
    content_type, body = mtom_request(envelope, [(content_id, "text/plain", TEXT_BYTES)], ITI41)
    with nothing_stored(server, peer):
        response = raw_post(
            server, "/xds/repository", content_type, body, content_length=len(body) - 20
        )
        assert response is not None
        assert response.status_code == 400


def test_body_shorter_than_content_length_times_out(
    tiny: ServerProcess, tiny_peer: XdsPeer
) -> None:
    # the server waits read_timeout for the rest, then answers 408 (RFC 9110 15.5.9)
    patient = feed_patient(tiny)
    content_id = "doc@bad"
    content_type, body = mtom_request(
        iti41(tiny_peer, patient, content_id), [(content_id, "text/plain", TEXT_BYTES)], ITI41
    )
    with nothing_stored(tiny, tiny_peer):
        response = raw_post(
            tiny, "/xds/repository", content_type, body, content_length=len(body) + 100
        )
        assert response is not None
        assert_fault(response.as_httpx(), 408, soap("Sender"))


NEVER_ENDING_HEADERS = {
    "endless_line": b"X-Filler: " + b"a" * 20_000,
    "endless_lines": (b"X-Filler: " + b"a" * 60 + b"\r\n") * 400,
}


@pytest.mark.parametrize("headers", NEVER_ENDING_HEADERS.values(), ids=NEVER_ENDING_HEADERS.keys())
def test_part_headers_that_never_end_are_413(
    server: ServerProcess, peer: XdsPeer, headers: bytes
) -> None:
    # the header section of a part is capped by limits.max_part_header_bytes (16 KiB)
    boundary = "never-ending-headers"
    body = f"--{boundary}\r\nContent-Type: application/xop+xml\r\n".encode() + headers
    content_type = f'multipart/related; boundary="{boundary}"; type="application/xop+xml"'
    with nothing_stored(server, peer):
        assert_fault(post(peer.repository_url, body, content_type), 413, soap("Sender"))


def test_part_headers_cut_by_end_of_body_are_a_sender_fault(
    server: ServerProcess, peer: XdsPeer
) -> None:
    boundary = "cut-headers"
    body = f"--{boundary}\r\nContent-Type: application/xop+xml\r\nContent-ID: <r".encode()
    content_type = f'multipart/related; boundary="{boundary}"; type="application/xop+xml"'
    with nothing_stored(server, peer):
        assert_fault(post(peer.repository_url, body, content_type), 400, soap("Sender"))


# === oversized messages (tiny limits) ===========================================================


def test_envelope_over_its_cap_is_413(tiny: ServerProcess, tiny_peer: XdsPeer) -> None:
    padding = f"<!-- {'x' * TINY_ENVELOPE} -->"
    envelope = render(
        f"{BAD}/iti18_headers.xml",
        raw={"headers": f'<wsa:Action soap:mustUnderstand="1">{ITI18}</wsa:Action>{padding}'},
        patient_id=patient_cx("X"),
    )
    with nothing_stored(tiny, tiny_peer):
        assert_fault(post(tiny_peer.registry_url, envelope, SOAP12), 413, soap("Sender"))


def test_too_many_attachments_is_413(tiny: ServerProcess, tiny_peer: XdsPeer) -> None:
    content_id = "doc@bad"
    envelope = iti41(tiny_peer, feed_patient(tiny), content_id)
    parts = [(content_id, "text/plain", TEXT_BYTES)] + [
        (f"extra{n}@bad", "text/plain", b"x") for n in range(TINY_ATTACHMENTS)
    ]
    with nothing_stored(tiny, tiny_peer):
        content_type, body = mtom_request(envelope, parts, ITI41)
        assert_fault(post(tiny_peer.repository_url, body, content_type), 413, soap("Sender"))


def test_declared_request_over_its_cap_is_413(tiny: ServerProcess, tiny_peer: XdsPeer) -> None:
    content_id = "doc@bad"
    envelope = iti41(tiny_peer, feed_patient(tiny), content_id)
    big = b"x" * (TINY_REQUEST + 1)
    with nothing_stored(tiny, tiny_peer):
        content_type, body = mtom_request(envelope, [(content_id, "text/plain", big)], ITI41)
        assert_fault(post(tiny_peer.repository_url, body, content_type), 413, soap("Sender"))


def test_chunked_request_over_its_cap_is_413(tiny: ServerProcess, tiny_peer: XdsPeer) -> None:
    # no Content-Length (chunked transfer coding): the cap is enforced while reading
    content_id = "doc@bad"
    envelope = iti41(tiny_peer, feed_patient(tiny), content_id)
    big = b"x" * (TINY_REQUEST + 1)
    content_type, body = mtom_request(envelope, [(content_id, "text/plain", big)], ITI41)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    with nothing_stored(tiny, tiny_peer):
        response = httpx.post(
            tiny_peer.repository_url,
            content=chunks(),
            headers={"Content-Type": content_type},
            timeout=15.0,
        )
        assert "content-length" not in response.request.headers
        assert_fault(response, 413, soap("Sender"))


# === SOAP and WS-Addressing =====================================================================


def test_soap11_envelope_is_a_version_mismatch(server: ServerProcess, peer: XdsPeer) -> None:
    envelope = render(f"{BAD}/soap11_envelope.xml", message_id=new_id(), patient_id=patient_cx("X"))
    with nothing_stored(server, peer):
        response = post(
            peer.registry_url, envelope, "text/xml; charset=UTF-8", SOAPAction=f'"{ITI18}"'
        )
        # SOAP 1.2 Part 1 Appendix A: a SOAP/1.1 VersionMismatch over the SOAP 1.1 HTTP
        # binding (text/xml, HTTP 500), with the 5.4.7 Upgrade header naming SOAP 1.2
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/xml")
        root = etree.fromstring(response.content)
        assert root.tag == f"{{{SOAP11_NS}}}Envelope"
        fault = root.find(f"{{{SOAP11_NS}}}Body/{{{SOAP11_NS}}}Fault")
        prefix, _, local = (fault.findtext("faultcode") or "").partition(":")
        assert (fault.nsmap.get(prefix), local) == (SOAP11_NS, "VersionMismatch")
        supported = root.find(
            f"{{{SOAP11_NS}}}Header/{soap('Upgrade')}/{soap('SupportedEnvelope')}"
        )
        assert supported is not None
        prefix, _, local = supported.get("qname", "").partition(":")
        assert (supported.nsmap.get(prefix), local) == (NS["soap"], "Envelope")


def _headers_envelope(headers: str) -> bytes:
    return render(f"{BAD}/iti18_headers.xml", raw={"headers": headers}, patient_id=patient_cx("X"))


ADDRESSING = {
    # WS-Addressing 1.0 SOAP Binding 6.4.3 / ITI TF-2 V.3.2: wsa:Action is required
    "missing_action": (
        f"<wsa:MessageID>urn:uuid:{new_id()}</wsa:MessageID>",
        (soap("Sender"), wsa("MessageAddressingHeaderRequired")),
    ),
    # SOAP Binding 6.4.4
    "unknown_action": (
        '<wsa:Action soap:mustUnderstand="1">urn:ihe:iti:2007:NoSuchTransaction</wsa:Action>',
        (soap("Sender"), wsa("ActionNotSupported")),
    ),
    # SOAP Binding 6.4.1: xdsi answers synchronously only
    "non_anonymous_reply_to": (
        f'<wsa:Action soap:mustUnderstand="1">{ITI18}</wsa:Action>'
        "<wsa:ReplyTo><wsa:Address>http://elsewhere.example.org/reply</wsa:Address></wsa:ReplyTo>",
        (
            soap("Sender"),
            wsa("InvalidAddressingHeader"),
            wsa("OnlyAnonymousAddressSupported"),
        ),
    ),
}


@pytest.mark.parametrize(("headers", "codes"), ADDRESSING.values(), ids=ADDRESSING.keys())
def test_addressing_fault(
    server: ServerProcess, peer: XdsPeer, headers: str, codes: tuple[str, ...]
) -> None:
    with nothing_stored(server, peer):
        response = post(peer.registry_url, _headers_envelope(headers), SOAP12)
        fault = assert_fault(response, 400, *codes)
        assert len(fault.codes) == len(codes), fault


def test_unknown_must_understand_header_is_a_must_understand_fault(
    server: ServerProcess, peer: XdsPeer
) -> None:
    headers = (
        f'<wsa:Action soap:mustUnderstand="1">{ITI18}</wsa:Action>'
        '<x:Unknown xmlns:x="urn:example:unknown" soap:mustUnderstand="true">1</x:Unknown>'
    )
    with nothing_stored(server, peer):
        response = post(peer.registry_url, _headers_envelope(headers), SOAP12)
        # SOAP 1.2 Part 1 5.4.8: env:MustUnderstand, HTTP 500, an env:NotUnderstood block
        fault = assert_fault(response, 500, soap("MustUnderstand"))
        assert fault.header is not None
        blocks = fault.header.findall("soap:NotUnderstood", NS)
        assert len(blocks) == 1
        prefix, _, local = blocks[0].get("qname", "").partition(":")
        assert (blocks[0].nsmap.get(prefix), local) == ("urn:example:unknown", "Unknown")


# === XDS errors over the wire ==================================================================


def test_patient_id_does_not_match(server: ServerProcess, peer: XdsPeer) -> None:
    # ITI TF-3 4.1.4: the DocumentEntry patientId is the SubmissionSet's
    content_id = "doc@bad"
    other = feed_patient(server)

    def entry_patient(root: etree._Element) -> None:
        for identifier in _extrinsic(root).findall("rim:ExternalIdentifier", NS):
            if identifier.get("identificationScheme") == PATIENT_ID_SCHEME:
                identifier.set("value", other)

    envelope = edited(iti41(peer, feed_patient(server), content_id), entry_patient)
    with nothing_stored(server, peer):
        reply = peer.mtom(
            peer.repository_url, envelope, [(content_id, "text/plain", TEXT_BYTES)], ITI41
        )
        assert_failure(reply, "XDSPatientIdDoesNotMatch")


def _second_entry(root: etree._Element) -> None:
    """A second DocumentEntry with the same uniqueId as the first, in the SubmissionSet."""
    first = _extrinsic(root)
    second = copy.deepcopy(first)
    second.set("id", "Document02")
    for element in second.iter():
        if element.get("id") and element is not second:
            element.set("id", element.get("id") + "b")
        for ref in ("classifiedObject", "registryObject"):
            if element.get(ref) == "Document01":
                element.set(ref, "Document02")
    first.addnext(second)
    association = root.find(".//rim:Association", NS)
    assert association is not None
    member = copy.deepcopy(association)
    member.set("id", "as01b")
    member.set("targetObject", "Document02")
    association.addnext(member)


def test_duplicate_unique_id_in_message(server: ServerProcess, peer: XdsPeer) -> None:
    # ITI TF-2 3.42.4.1.3: a uniqueId used twice in one submission
    envelope = edited(iti42(peer, feed_patient(server), TEXT_BYTES), _second_entry)
    with nothing_stored(server, peer):
        reply = peer.simple(peer.registry_url, envelope, ITI42)
        assert_failure(reply, "XDSRegistryDuplicateUniqueIdInMessage")


def test_duplicate_submission_set_unique_id_in_registry(
    server: ServerProcess, peer: XdsPeer
) -> None:
    # ITI TF-2 3.42.4.1.3.3: a SubmissionSet uniqueId is unique in the registry
    patient = feed_patient(server)
    ss_unique_id = unique_oid()
    first = peer.simple(
        peer.registry_url, iti42(peer, patient, TEXT_BYTES, ss_unique_id=ss_unique_id), ITI42
    )
    assert first.status == SUCCESS, first.registry_errors()
    with nothing_stored(server, peer):
        reply = peer.simple(
            peer.registry_url, iti42(peer, patient, TEXT_BYTES, ss_unique_id=ss_unique_id), ITI42
        )
        assert_failure(reply, "XDSDuplicateUniqueIdInRegistry")


@pytest.fixture
def registered(server: ServerProcess, peer: XdsPeer) -> tuple[str, str]:
    """(patient, DocumentEntry uniqueId) of TEXT_BYTES registered with ITI-42."""
    patient, uid = feed_patient(server), unique_oid()
    reply = peer.simple(
        peer.registry_url, iti42(peer, patient, TEXT_BYTES, doc_unique_id=uid), ITI42
    )
    assert reply.status == SUCCESS, reply.registry_errors()
    return patient, uid


def test_same_unique_id_with_other_hash_is_non_identical_hash(
    server: ServerProcess, peer: XdsPeer, registered: tuple[str, str]
) -> None:
    # ITI TF-2 3.42.4.1.3.3.1: the same uniqueId again only with the same hash and size
    patient, uid = registered
    other = bytes(reversed(TEXT_BYTES))  # same size, other content
    with nothing_stored(server, peer):
        reply = peer.simple(
            peer.registry_url, iti42(peer, patient, other, doc_unique_id=uid), ITI42
        )
        assert_failure(reply, "XDSNonIdenticalHash")
        assert "XDSNonIdenticalSize" not in reply.registry_errors()


def test_same_unique_id_with_other_size_is_non_identical_size(
    server: ServerProcess, peer: XdsPeer, registered: tuple[str, str]
) -> None:
    patient, uid = registered
    envelope = iti42(peer, patient, TEXT_BYTES, doc_unique_id=uid, size=len(TEXT_BYTES) + 1)
    with nothing_stored(server, peer):
        reply = peer.simple(peer.registry_url, envelope, ITI42)
        assert_failure(reply, "XDSNonIdenticalSize")
        assert "XDSNonIdenticalHash" not in reply.registry_errors()


def _entry_uuid(
    peer: XdsPeer, patient: str, uid: str, statuses: tuple[str, ...] = (APPROVED,)
) -> str:
    return entries_by_unique_id(peer.find_documents(patient, statuses=statuses))[uid].get("id")


def test_replacing_a_deprecated_document_is_refused(server: ServerProcess, peer: XdsPeer) -> None:
    # ITI TF-2 3.42.4.1.3.5: only an Approved DocumentEntry may be replaced
    patient = feed_patient(server)
    _, (original_uid,) = peer.provide(patient, [("text/plain", TEXT_BYTES)])
    original = _entry_uuid(peer, patient, original_uid)
    first, _ = peer.provide(
        patient,
        [("text/plain", b"corrected\n")],
        fixture="iti41_replace.xml",
        original_entry_uuid=original,
    )
    assert first.status == SUCCESS, first.registry_errors()
    with nothing_stored(server, peer):
        again, _ = peer.provide(
            patient,
            [("text/plain", b"corrected again\n")],
            fixture="iti41_replace.xml",
            original_entry_uuid=original,
        )
        assert_failure(again, "XDSRegistryDeprecatedDocumentError")


def test_replacing_an_unknown_document_is_an_unresolved_reference(
    server: ServerProcess, peer: XdsPeer
) -> None:
    # ITI TF-2 3.42.4.1.3.5: the target of RPLC must be in the registry
    patient = feed_patient(server)
    with nothing_stored(server, peer):
        reply, _ = peer.provide(
            patient,
            [("text/plain", TEXT_BYTES)],
            fixture="iti41_replace.xml",
            original_entry_uuid=f"urn:uuid:{new_id()}",
        )
        assert_failure(reply, "UnresolvedReferenceException")


@pytest.mark.parametrize(
    ("name", "value"),
    [("hash", "0" * 40), ("size", str(len(TEXT_BYTES) + 1))],
    ids=["hash", "size"],
)
def test_hash_or_size_unlike_the_document_is_a_repository_metadata_error(
    server: ServerProcess, peer: XdsPeer, name: str, value: str
) -> None:
    # ITI TF-2 3.41.4.1.3.2: hash and size, when sent, must be the document's
    content_id = "doc@bad"
    envelope = edited(iti41(peer, feed_patient(server), content_id), _add_slot(name, value))
    with nothing_stored(server, peer):
        reply = peer.mtom(
            peer.repository_url, envelope, [(content_id, "text/plain", TEXT_BYTES)], ITI41
        )
        assert_failure(reply, "XDSRepositoryMetadataError")


STORED_QUERY_ERRORS = {
    # ITI TF-2 3.18.4.1.2.3.7.1: $XDSDocumentEntryPatientId is required
    "missing_param": (
        FIND_DOCUMENTS,
        slot("$XDSDocumentEntryStatus", f"('{APPROVED}')"),
        "XDSStoredQueryMissingParam",
    ),
    # a single-valued parameter given twice
    "param_number": (
        FIND_DOCUMENTS,
        find_slots(patient_cx("A")) + slot("$XDSDocumentEntryPatientId", f"'{patient_cx('B')}'"),
        "XDSStoredQueryParamNumber",
    ),
    "unknown_query": (
        "urn:uuid:00000000-1111-2222-3333-444444444444",
        find_slots(patient_cx("A")),
        "XDSUnknownStoredQuery",
    ),
}


@pytest.mark.parametrize(
    ("query_id", "slots", "code"), STORED_QUERY_ERRORS.values(), ids=STORED_QUERY_ERRORS.keys()
)
def test_stored_query_error(
    server: ServerProcess, peer: XdsPeer, query_id: str, slots: str, code: str
) -> None:
    with nothing_stored(server, peer):
        reply = peer.simple(peer.registry_url, iti18(peer, query_id, slots), ITI18)
        assert_failure(reply, code)


def test_too_many_results(tiny: ServerProcess, tiny_peer: XdsPeer) -> None:
    # ITI TF-2 3.18.4.1.3: more results than the registry returns -> XDSTooManyResults
    patient = feed_patient(tiny)
    provided, _ = tiny_peer.provide(
        patient, [("text/plain", TEXT_BYTES), ("text/plain", b"second document\n")]
    )
    assert provided.status == SUCCESS, provided.registry_errors()
    with nothing_stored(tiny, tiny_peer):
        assert_failure(tiny_peer.find_documents(patient), "XDSTooManyResults")


def test_result_spanning_two_patients(server: ServerProcess, peer: XdsPeer) -> None:
    # ITI TF-2 3.18.4.1.3: a result holds the objects of one patient only
    uuids = []
    for _ in range(2):
        patient = feed_patient(server)
        reply, (uid,) = peer.provide(patient, [("text/plain", TEXT_BYTES)])
        assert reply.status == SUCCESS, reply.registry_errors()
        uuids.append(_entry_uuid(peer, patient, uid))
    slots = slot("$XDSDocumentEntryEntryUUID", "(" + ",".join(f"'{u}'" for u in uuids) + ")")
    with nothing_stored(server, peer):
        reply = peer.simple(peer.registry_url, iti18(peer, GET_DOCUMENTS, slots), ITI18)
        assert_failure(reply, "XDSResultNotSinglePatient")


@pytest.fixture
def provided(server: ServerProcess, peer: XdsPeer) -> str:
    """The uniqueId of a document provided with ITI-41."""
    reply, (uid,) = peer.provide(feed_patient(server), [("text/plain", TEXT_BYTES)])
    assert reply.status == SUCCESS, reply.registry_errors()
    return uid


def test_retrieve_unknown_document(server: ServerProcess, peer: XdsPeer) -> None:
    # ITI TF-2 3.43.4.1.3: a DocumentUniqueId this repository does not hold
    with nothing_stored(server, peer):
        reply = peer.retrieve([unique_oid()])
        assert_failure(reply, "XDSDocumentUniqueIdError")
        assert not reply.package.parts


def test_retrieve_from_unknown_repository(
    server: ServerProcess, peer: XdsPeer, provided: str
) -> None:
    with nothing_stored(server, peer):
        reply = peer.retrieve([provided], repository_unique_id="1.2.3.4.5.6.7.8.9")
        assert_failure(reply, "XDSUnknownRepositoryId")


def test_mixed_retrieve_is_partial_success(
    server: ServerProcess, peer: XdsPeer, provided: str
) -> None:
    # ITI TF-2 3.43.4.2.3: some documents returned, some not -> PartialSuccess
    with nothing_stored(server, peer):
        reply = peer.retrieve([provided, unique_oid()])
        assert status_of(reply) == PARTIAL_SUCCESS
        assert reply.registry_errors() == ["XDSDocumentUniqueIdError"]
        assert [data for _, data in reply.package.parts.values()] == [TEXT_BYTES]


# === ITI-8 over MLLP ============================================================================


def _read_frame(sock: socket.socket) -> bytes:
    data = b""
    while FS + CR not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed; received {data!r}"
        data += chunk
    assert data.startswith(VT), data
    return data[1 : data.index(FS + CR)]


def test_feed_survives_garbage_and_unsupported_messages(server: ServerProcess) -> None:
    a01 = adt_a01(new_patient_number())
    unsupported = a01.replace(b"|ADT^A01|", b"|ORU^R01|", 1)
    with socket.create_connection(("127.0.0.1", server.mllp_port), timeout=10.0) as sock:
        # HL7 v2.3.1 2.16.8: the ACK of a message that cannot be processed is AR
        sock.sendall(VT + b"\x00\xffthis is not HL7\r" + FS + CR)
        assert ack_code(_read_frame(sock)) == "AR"
        sock.sendall(VT + unsupported + FS + CR)
        reply = _read_frame(sock)
        assert ack_code(reply) == "AR"
        assert b"^200&" in reply  # HL7 table 0357: 200 unsupported message type
        sock.sendall(VT + a01 + FS + CR)
        assert ack_code(_read_frame(sock)) == "AA"


# === many clients ===============================================================================


def test_concurrent_bad_and_good_requests(server: ServerProcess, peer: XdsPeer) -> None:
    """50 requests over 10 connections, good ones interleaved with bad ones."""
    patient = feed_patient(server)
    connections, per_connection = 10, 5
    good_provides = 0
    plans: list[list[tuple[str, str, str | None, bytes]]] = []
    for c in range(connections):
        plan = []
        for n in range(per_connection):
            kind = ("find", "malformed", "provide", "missing_part", "wrong_type")[(c + n) % 5]
            if kind == "find":
                body = iti18(peer, FIND_DOCUMENTS, find_slots(patient))
                plan.append((kind, peer.registry_url, SOAP12, body))
            elif kind == "malformed":
                plan.append((kind, peer.registry_url, SOAP12, bad_fixture("truncated_tag.xml")))
            elif kind == "wrong_type":
                body = iti18(peer, FIND_DOCUMENTS, find_slots(patient))
                plan.append((kind, peer.registry_url, "text/plain", body))
            else:
                cid = f"doc.{c}.{n}@bad"
                parts = [(cid, "text/plain", f"document {c}.{n}\n".encode())]
                envelope = iti41(peer, patient, cid)
                content_type, body = mtom_request(
                    envelope, parts if kind == "provide" else [], ITI41
                )
                good_provides += kind == "provide"
                plan.append((kind, peer.repository_url, content_type, body))
        plans.append(plan)

    def run(plan: list[tuple[str, str, str | None, bytes]]) -> list[tuple[str, httpx.Response]]:
        with httpx.Client(timeout=30.0) as client:
            return [
                (kind, client.post(url, content=body, headers={"Content-Type": ctype}))
                for kind, url, ctype, body in plan
            ]

    before = stored(server)
    with ThreadPoolExecutor(connections) as pool:
        results = [r for done in pool.map(run, plans) for r in done]
    assert len(results) == connections * per_connection
    expected_status = {"malformed": 400, "missing_part": 400, "wrong_type": 415}
    for kind, response in results:
        if kind in expected_status:
            assert_fault(response, expected_status[kind], soap("Sender"))
        else:
            assert reply_of(response, peer.schemas).status == SUCCESS, kind
    assert_no_leftovers(server)
    after = dict(stored(server).rows)
    assert after["repository_document"] - dict(before.rows)["repository_document"] == good_provides
    assert after["document_entry"] - dict(before.rows)["document_entry"] == good_provides
    found = peer.find_documents(patient)
    assert len(entries_by_unique_id(found)) == good_provides
    assert_still_serves(server, peer)
