"""An independent XDS.b peer for the end-to-end tests.

Everything here is written from the standards, not from xdsi's own code: requests come
from the annotated raw templates in ``tests/fixtures/e2e``; MTOM packages are built by
a tiny MIME writer (W3C XOP 1.0, RFC 2387) and responses are read by a tiny MIME
parser; HL7 v2 goes over a plain socket with MLLP framing (HL7 MLLP Release 1).
Response bodies are checked against the ebRS/IHE XSDs the NIST toolkit uses.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "e2e"
SCHEMA_DIR = (
    Path(os.environ.get("XDSI_REFERENCE_DIR", str(REPO_ROOT.parent / "shared" / "reference")))
    / "schemas"
    / "nist-toolkit"
    / "v3"
)

NS = {
    "soap": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
    "rim": "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0",
    "query": "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0",
    "lcm": "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
    "xdsb": "urn:ihe:iti:xds-b:2007",
    "xop": "http://www.w3.org/2004/08/xop/include",
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
}
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DEPRECATED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Deprecated"
UNIQUE_ID_SCHEME = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"

# The affinity domain and repository id the test servers are configured with (xdsi.toml)
AFFINITY_DOMAIN = "1.3.6.1.4.1.21367.13.20.3000"
REPOSITORY_UNIQUE_ID = "1.3.6.1.4.1.21367.13.40.3000"
TEST_OID_ROOT = "1.3.6.1.4.1.21367.13.50"

PDF_BYTES = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    + bytes(range(256))  # binary content must survive unchanged
)
TEXT_BYTES = b"Findings: no acute cardiopulmonary process.\r\nImpression: normal.\n"


def require_interop() -> bool:
    return os.environ.get("XDSI_REQUIRE_INTEROP") == "1"


def missing(reason: str) -> None:
    """Skip for a missing external tool or reference; fail when interop is required."""
    if require_interop():
        pytest.fail(f"XDSI_REQUIRE_INTEROP=1 but {reason}")
    pytest.skip(reason)


# --- templates -------------------------------------------------------------------------


def render(name: str, raw: Mapping[str, str] | None = None, **values: object) -> bytes:
    """Fill a fixture template; ``values`` are XML-escaped, ``raw`` ones are not."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    escaped = {k: escape(str(v), {'"': "&quot;", "'": "&apos;"}) for k, v in values.items()}
    return Template(text).substitute({**escaped, **(raw or {})}).encode("utf-8")


# one instance asked for by RAD-69: (study, series, SOP Instance UID, repositoryUniqueId)
ImagingRequest = tuple[str, str, str, str]


def rad69_request(to: str, instances: Sequence[ImagingRequest], syntaxes: Sequence[str]) -> bytes:
    """A RetrieveImagingDocumentSetRequest (``rad69_retrieve.xml``, RAD TF-3 4.69.4.1.2):
    the instances grouped by study and series in their first-seen order, every value
    XML-escaped."""
    tree: dict[str, dict[str, list[ImagingRequest]]] = {}
    for request in instances:
        tree.setdefault(request[0], {}).setdefault(request[1], []).append(request)
    attribute = {'"': "&quot;"}
    studies = "\n".join(
        f'      <iherad:StudyRequest studyInstanceUID="{escape(study, attribute)}">'
        + "".join(
            f'<iherad:SeriesRequest seriesInstanceUID="{escape(series, attribute)}">'
            + "".join(
                "<xdsb:DocumentRequest>"
                f"<xdsb:RepositoryUniqueId>{escape(repository)}</xdsb:RepositoryUniqueId>"
                f"<xdsb:DocumentUniqueId>{escape(instance)}</xdsb:DocumentUniqueId>"
                "</xdsb:DocumentRequest>"
                for _, _, instance, repository in requests
            )
            + "</iherad:SeriesRequest>"
            for series, requests in by_series.items()
        )
        + "</iherad:StudyRequest>"
        for study, by_series in tree.items()
    )
    listed = "\n".join(
        f"        <iherad:TransferSyntaxUID>{escape(uid)}</iherad:TransferSyntaxUID>"
        for uid in syntaxes
    )
    return render(
        "rad69_retrieve.xml", {"studies": studies, "syntaxes": listed}, message_id=new_id(), to=to
    )


def new_id() -> str:
    return str(uuid.uuid4())


def unique_oid() -> str:
    """A fresh OID under the test root (ITI TF-3 4.2.3.2.26: at most 64 characters)."""
    return f"{TEST_OID_ROOT}.{uuid.uuid4().int % 10**18}.{time.time_ns() % 10**9}"


def patient_cx(number: str) -> str:
    return f"{number}^^^&{AFFINITY_DOMAIN}&ISO"


def new_patient_number() -> str:
    return f"E2E{uuid.uuid4().hex[:10].upper()}"


def dtm_now() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime())


# --- MIME (RFC 2045/2046/2387) and XOP ------------------------------------------------


def mtom_request(
    root_xml: bytes, parts: list[tuple[str, str, bytes]], action: str
) -> tuple[str, bytes]:
    """An MTOM/XOP package (W3C SOAP MTOM 1.0, XOP 1.0): (Content-Type, body)."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@xdsi.e2e"
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


@dataclass
class Package:
    """A received message: the root part and the other parts keyed by Content-ID."""

    content_type: str
    root: bytes
    parts: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def is_mtom(self) -> bool:
        return self.content_type.lower().startswith("multipart/related")


def parse_response(content_type: str, body: bytes) -> Package:
    """Split a simple SOAP or multipart/related response into its parts."""
    if not content_type.lower().startswith("multipart/related"):
        return Package(content_type, body)
    boundary = _param(content_type, "boundary")
    assert boundary, f"multipart without boundary: {content_type}"
    start = _param(content_type, "start")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    parts: dict[str, tuple[str, bytes]] = {}
    root: bytes | None = None
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, data = chunk.partition(b"\r\n\r\n")
        data = data[:-2] if data.endswith(b"\r\n") else data
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        cid = headers.get("content-id", "").strip("<>")
        if root is None and (start is None or f"<{cid}>" == start or cid == start):
            root = data
        else:
            parts[cid] = (headers.get("content-type", ""), data)
    assert root is not None, "multipart response without a root part"
    return Package(content_type, root, parts)


def body_element(package: Package) -> etree._Element:
    """The first child of env:Body, with each xop:Include replaced by the base64 of its
    part (the XOP infoset, XOP 1.0 3.2), so it can be checked against the XSDs."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    envelope = etree.fromstring(package.root, parser)
    body = envelope.find("soap:Body", NS)
    assert body is not None and len(body), "no env:Body child"
    child = body[0]
    for include in child.iter(f"{{{NS['xop']}}}Include"):
        href = include.get("href", "")
        cid = href[4:] if href.startswith("cid:") else href
        from urllib.parse import unquote

        _, data = package.parts[unquote(cid)]
        parent = include.getparent()
        parent.remove(include)
        parent.text = base64.b64encode(data).decode("ascii")
    return child


def document_bytes(package: Package, document: etree._Element) -> bytes:
    """The content of one xdsb:Document of a response: its XOP part or inline base64."""
    include = document.find("xop:Include", NS)
    if include is not None:
        from urllib.parse import unquote

        return package.parts[unquote(include.get("href", "")[4:])][1]
    return base64.b64decode(document.text or "")


# --- schema validation -------------------------------------------------------------------

_WRAPPER = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    targetNamespace="urn:xdsi:e2e:all" elementFormDefault="qualified">
  <xs:import namespace="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" schemaLocation="rs.xsd"/>
  <xs:import namespace="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" schemaLocation="query.xsd"/>
  <xs:import namespace="urn:ihe:iti:xds-b:2007" schemaLocation="XDS.b_DocumentRepository.xsd"/>
</xs:schema>"""


class ResponseSchemas:
    """rs.xsd, query.xsd and XDS.b_DocumentRepository.xsd compiled once."""

    def __init__(self) -> None:
        self._schema: etree.XMLSchema | None = None

    def check(self, element: etree._Element) -> None:
        if not SCHEMA_DIR.is_dir():
            if require_interop():
                pytest.fail(f"XDSI_REQUIRE_INTEROP=1 but {SCHEMA_DIR} is missing")
            return  # reference schemas absent: the check is skipped
        if self._schema is None:
            doc = etree.fromstring(_WRAPPER.encode(), base_url=f"{SCHEMA_DIR.as_posix()}/all.xsd")
            self._schema = etree.XMLSchema(etree.ElementTree(doc))
        copy = etree.fromstring(etree.tostring(element))
        if not self._schema.validate(copy):
            errors = "\n".join(str(e) for e in self._schema.error_log)
            raise AssertionError(f"response body is not schema-valid:\n{errors}")


# --- SOAP over HTTP ------------------------------------------------------------------------


@dataclass
class Reply:
    status_code: int
    package: Package
    body: etree._Element

    def registry_errors(self) -> list[str]:
        return [e.get("errorCode", "") for e in self.body.iter(f"{{{NS['rs']}}}RegistryError")]

    @property
    def status(self) -> str | None:
        return self.body.get("status")


class XdsPeer:
    """Sends the fixture messages to one running server and checks every answer."""

    def __init__(self, base_url: str, schemas: ResponseSchemas) -> None:
        self.base_url = base_url
        self.registry_url = f"{base_url}/xds/registry"
        self.repository_url = f"{base_url}/xds/repository"
        self.schemas = schemas
        self.http = httpx.Client(timeout=30.0)

    def close(self) -> None:
        self.http.close()

    def _finish(self, response: httpx.Response, *, validate: bool = True) -> Reply:
        package = parse_response(response.headers.get("content-type", ""), response.content)
        body = body_element(package)
        if validate:
            self.schemas.check(body)
        return Reply(response.status_code, package, body)

    def simple(self, url: str, envelope: bytes, action: str) -> Reply:
        response = self.http.post(
            url,
            content=envelope,
            headers={"Content-Type": f'application/soap+xml; charset=UTF-8; action="{action}"'},
        )
        return self._finish(response)

    def mtom(
        self, url: str, envelope: bytes, parts: list[tuple[str, str, bytes]], action: str
    ) -> Reply:
        content_type, body = mtom_request(envelope, parts, action)
        response = self.http.post(url, content=body, headers={"Content-Type": content_type})
        return self._finish(response)

    # -- the transactions --

    def provide(
        self, patient: str, documents: list[tuple[str, bytes]], **extra: str
    ) -> tuple[Reply, list[str]]:
        """ITI-41 with one or two documents ((mime type, bytes) each); returns the reply
        and the DocumentEntry uniqueIds sent."""
        action = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
        uids = [unique_oid() for _ in documents]
        formats = {
            "application/pdf": "urn:ihe:iti:xds-sd:pdf:2008",
            "text/plain": "urn:ihe:iti:xds-sd:text:2008",
        }
        values: dict[str, object] = {
            "message_id": new_id(),
            "to": self.repository_url,
            "patient_id": patient,
            "ss_unique_id": unique_oid(),
            "source_id": TEST_OID_ROOT,
            "creation_time": dtm_now(),
            "doc_unique_id": uids[0],
            "mime_type": documents[0][0],
            "format_code": formats[documents[0][0]],
            "title": "End-to-end document 1",
            "content_id": f"doc1.{new_id()}@xdsi.e2e",
        }
        parts = [(str(values["content_id"]), documents[0][0], documents[0][1])]
        if len(documents) == 2:
            values |= {
                "doc_unique_id_2": uids[1],
                "mime_type_2": documents[1][0],
                "format_code_2": formats[documents[1][0]],
                "title_2": "End-to-end document 2",
                "content_id_2": f"doc2.{new_id()}@xdsi.e2e",
            }
            parts.append((str(values["content_id_2"]), documents[1][0], documents[1][1]))
        fixture = extra.pop("fixture", None) or (
            "iti41_one_document.xml" if len(documents) == 1 else "iti41_two_documents.xml"
        )
        values |= extra
        envelope = render(fixture, **values)
        if fixture == "iti41_missing_document.xml":
            parts = []
        return self.mtom(self.repository_url, envelope, parts, action), uids

    def register(
        self, patient: str, content: bytes, mime_type: str = "text/plain"
    ) -> tuple[Reply, str]:
        import hashlib

        uid = unique_oid()
        envelope = render(
            "iti42_register.xml",
            message_id=new_id(),
            to=self.registry_url,
            patient_id=patient,
            ss_unique_id=unique_oid(),
            source_id=TEST_OID_ROOT,
            creation_time=dtm_now(),
            doc_unique_id=uid,
            mime_type=mime_type,
            format_code="urn:ihe:iti:xds-sd:text:2008",
            title="Registered directly",
            hash=hashlib.sha1(content).hexdigest(),
            size=len(content),
            repository_unique_id=REPOSITORY_UNIQUE_ID,
        )
        return self.simple(
            self.registry_url, envelope, "urn:ihe:iti:2007:RegisterDocumentSet-b"
        ), uid

    def find_documents(
        self, patient: str, return_type: str = "LeafClass", statuses: tuple[str, ...] = (APPROVED,)
    ) -> Reply:
        envelope = render(
            "iti18_find_documents.xml",
            message_id=new_id(),
            to=self.registry_url,
            return_type=return_type,
            patient_id=patient,
            statuses=",".join(f"'{s}'" for s in statuses),
        )
        return self.simple(self.registry_url, envelope, "urn:ihe:iti:2007:RegistryStoredQuery")

    def retrieve(
        self, unique_ids: list[str], repository_unique_id: str = REPOSITORY_UNIQUE_ID
    ) -> Reply:
        requests = "\n".join(
            "      <xdsb:DocumentRequest>\n"
            f"        <xdsb:RepositoryUniqueId>{escape(repository_unique_id)}</xdsb:RepositoryUniqueId>\n"
            f"        <xdsb:DocumentUniqueId>{escape(uid)}</xdsb:DocumentUniqueId>\n"
            "      </xdsb:DocumentRequest>"
            for uid in unique_ids
        )
        envelope = render(
            "iti43_retrieve.xml",
            raw={"document_requests": requests},
            message_id=new_id(),
            to=self.repository_url,
        )
        return self.mtom(self.repository_url, envelope, [], "urn:ihe:iti:2007:RetrieveDocumentSet")


def entries_by_unique_id(reply: Reply) -> dict[str, etree._Element]:
    """LeafClass ExtrinsicObjects of an AdhocQueryResponse keyed by their uniqueId."""
    found = {}
    for extrinsic in reply.body.iter(f"{{{NS['rim']}}}ExtrinsicObject"):
        for identifier in extrinsic.findall("rim:ExternalIdentifier", NS):
            if identifier.get("identificationScheme") == UNIQUE_ID_SCHEME:
                found[identifier.get("value")] = extrinsic
    return found


# --- HL7 v2 over MLLP ------------------------------------------------------------------

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def adt_a01(patient_number: str, family: str = "Doe", given: str = "Jane") -> bytes:
    text = render(
        "adt_a01.hl7",
        timestamp=dtm_now(),
        control_id=uuid.uuid4().hex[:20],
        patient_number=patient_number,
        affinity_domain=AFFINITY_DOMAIN,
        family=family,
        given=given,
    ).decode("utf-8")
    # the template keeps one segment per line; HL7 v2 separates segments with CR
    return "\r".join(line for line in text.splitlines() if line).encode("utf-8") + CR


def send_mllp(
    host: str,
    port: int,
    message: bytes,
    timeout: float = 10.0,
    tls: ssl.SSLContext | None = None,
) -> bytes:
    """One framed message on a new connection (over TLS with ``tls``, the server
    named ``localhost``); returns the reply payload."""
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.create_connection((host, port), timeout=timeout))
        if tls is not None:
            sock = stack.enter_context(tls.wrap_socket(sock, server_hostname="localhost"))
        sock.sendall(VT + message + FS + CR)
        data = b""
        while FS + CR not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    assert data.startswith(VT) and data.endswith(FS + CR), f"not an MLLP frame: {data!r}"
    return data[1:-2]


def ack_code(reply: bytes) -> str:
    for segment in reply.split(CR):
        if segment.startswith(b"MSA|"):
            return segment.split(b"|")[1].decode()
    raise AssertionError(f"no MSA segment in {reply!r}")


# --- the server process --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


TEST_CONFIG = f"""# xdsi configuration of an end-to-end test server
[device]
name = "xdsi-e2e"

[registry]
affinity_domain = "{AFFINITY_DOMAIN}"

[repository]
repository_unique_id = "{REPOSITORY_UNIQUE_ID}"
"""


@dataclass
class ServerProcess:
    """``xdsi serve`` as a subprocess on free ports, with its own data directory."""

    data_dir: Path
    database_url: str | None = None
    http_port: int = field(default_factory=free_port)
    mllp_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    root: Path = REPO_ROOT  # the source tree to run (a benchmark's baseline: another one)
    extra_args: list[str] = field(default_factory=list)  # more `xdsi serve` options

    def __post_init__(self) -> None:
        # the ports are drawn one after the other, each socket closed before the next
        # draw: the kernel may hand out the same port twice
        while len({self.http_port, self.mllp_port, self.dicom_port}) < 3:
            self.mllp_port, self.dicom_port = free_port(), free_port()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "xdsi", "serve",
            "--data-dir", str(self.data_dir),
            "--host", "127.0.0.1",
            "--port", str(self.http_port),
            "--mllp-port", str(self.mllp_port),
            "--dicom-port", str(self.dicom_port),
        ]  # fmt: skip
        if self.database_url:
            cmd += ["--database", self.database_url]
        return [*cmd, *self.extra_args]

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "xdsi.toml"
        if not config.exists():
            config.write_text(TEST_CONFIG, encoding="utf-8")
        self.log_path = self.data_dir / "server.log"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("XDSI_") or k == "XDSI_REQUIRE_INTEROP"
        }
        env["PYTHONPATH"] = str(self.root)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root, env=env
            )
        try:
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()  # a server that never became healthy is not left running
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"xdsi serve exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"xdsi serve not healthy within {timeout}s:\n{self.log()}")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        return (
            self.log_path.read_text(errors="replace")
            if self.log_path and self.log_path.exists()
            else ""
        )


# --- PostgreSQL ------------------------------------------------------------------------

PG_ADMIN_URL = os.environ.get("XDSI_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_pg_database() -> str | None:
    """A fresh database on the test PostgreSQL; its SQLAlchemy URL, or None if none runs."""
    try:
        import psycopg
    except ImportError:
        return None
    name = f"xdsi_e2e_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
