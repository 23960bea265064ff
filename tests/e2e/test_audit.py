"""End to end: ``xdsi serve --audit tls://...`` audits every XDS.b transaction to a real
rsyslogd (imtcp with the GnuTLS driver, mutual x509 authentication), messages written
raw to a file; each message is valid against the DICOM audit schema with IHE's
relaxations.  The audit repository may go away mid-run: every event still arrives, in
spool order.  The client commands audit as requesters on the node's spool, and keep
their events spooled for the next ``xdsi serve`` when the repository is down.  The
DICOM routes (C-STORE, C-FIND, C-MOVE, WADO-RS, QIDO-RS) over ITI-19 mutual TLS name
the peer's certificate subject.  Skipped without rsyslogd or the reference schema
unless XDSI_REQUIRE_INTEROP=1."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from e2e_support import (
    NS,
    REPO_ROOT,
    TEST_CONFIG,
    ServerProcess,
    XdsPeer,
    ack_code,
    adt_a01,
    missing,
    new_patient_number,
    patient_cx,
    send_mllp,
)
from lxml import etree
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from atna.observe import is_unsettled
from atna.spool import messages_of
from imaging_source.requestor import REQUESTOR_HANDLERS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "atna"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from atna_support import AUDIT_SCHEMAS, Pki, make_pki  # noqa: E402
from dicom_studies import make_study  # noqa: E402

AUDIT_XSD = AUDIT_SCHEMAS / "ipf-dicom2017c.xsd"
TEXT = ("text/plain", b"Findings: audited.\n")
WAIT = 30.0  # seconds an expected audit message may take at most

# maxMessageSize before imtcp is loaded, imtcp's maxFrameSize, and no control character
# escaping: otherwise large messages are truncated, split or mangled
RSYSLOG_CONFIG = """
global(workDirectory="{work}"
       maxMessageSize="4m"
       parser.escapeControlCharactersOnReceive="off"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{pki.ca}"
       DefaultNetstreamDriverCertFile="{pki.server_cert}"
       DefaultNetstreamDriverKeyFile="{pki.server_key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/certvalid" maxFrameSize="4000000")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{work}/audit.log" template="raw")
"""
MESSAGE_START = re.compile(rb"\n(?=<85>1 )")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Rsyslog:
    """A private rsyslogd as the audit record repository; stop and start keep its port."""

    def __init__(self, binary: str, work: Path, pki: Pki) -> None:
        self.binary = binary
        self.work = work
        self.port = _free_port()
        self.log = work / "audit.log"
        self.config = work / "rsyslog.conf"
        self.config.write_text(RSYSLOG_CONFIG.format(work=work, pki=pki, port=self.port))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Rsyslog:
        pidfile = self.work / "rsyslogd.pid"
        pidfile.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [self.binary, "-n", "-f", str(self.config), "-i", str(pidfile)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    output = self.process.stdout.read().decode() if self.process.stdout else ""
                    pytest.fail(f"rsyslogd did not start: {output}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def messages(self) -> list[bytes]:
        """The messages written whole so far: rsyslogd may be writing the last one
        (each ends with a newline; a file that does not is cut short)."""
        if not self.log.exists():
            return []
        data = self.log.read_bytes()
        messages = [m for m in MESSAGE_START.split(data.rstrip(b"\n")) if m]
        return messages if data.endswith(b"\n") else messages[:-1]


@pytest.fixture
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def audit_schema() -> etree.XMLSchema:
    if not AUDIT_XSD.exists():
        missing(f"audit schema not available: {AUDIT_XSD}")
    return etree.XMLSchema(etree.parse(str(AUDIT_XSD)))


@pytest.fixture
def rsyslog(tmp_path: Path, pki: Pki) -> Iterator[Rsyslog]:
    binary = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    if binary is None:
        missing("rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls)")
    work = tmp_path / "rsyslog"
    work.mkdir()
    collector = Rsyslog(binary, work, pki).start()
    try:
        yield collector
    finally:
        collector.stop()


@dataclass
class AuditedServer(ServerProcess):
    audit_url: str = ""

    def command(self) -> list[str]:
        return [*super().command(), "--audit", self.audit_url]


@pytest.fixture
def audited(tmp_path: Path, pki: Pki, rsyslog: Rsyslog) -> Iterator[AuditedServer]:
    data_dir = tmp_path / "xdsi"
    data_dir.mkdir()
    (data_dir / "xdsi.toml").write_text(
        TEST_CONFIG + f'\n[audit]\ntls_cert = "{pki.client_cert}"\ntls_key = "{pki.client_key}"\n'
        f'tls_ca = "{pki.ca}"\n',
        encoding="utf-8",
    )
    server = AuditedServer(data_dir, audit_url=f"tls://127.0.0.1:{rsyslog.port}").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def peer(audited: AuditedServer, schemas) -> Iterator[XdsPeer]:  # noqa: ANN001
    client = XdsPeer(audited.base_url, schemas)
    yield client
    client.close()


# --- reading what arrived -------------------------------------------------------------------
@dataclass(frozen=True)
class Seen:
    event_id: str
    event_type: str  # the transaction (or the application activity type)
    action: str
    outcome: str
    patient: str | None


def _xml(message: bytes) -> bytes:
    return message[message.index(b"<?xml") :]


def seen(message: bytes) -> Seen:
    root = etree.fromstring(_xml(message))
    event = root.find("EventIdentification")
    patients = [
        o.get("ParticipantObjectID")
        for o in root.iterfind("ParticipantObjectIdentification")
        if o.get("ParticipantObjectTypeCodeRole") == "1"
    ]
    event_type = event.find("EventTypeCode")  # DICOM events may have none
    return Seen(
        event.find("EventID").get("csd-code"),
        event_type.get("csd-code") if event_type is not None else "",
        event.get("EventActionCode"),
        event.get("EventOutcomeIndicator"),
        patients[0] if patients else None,
    )


def wait_for(rsyslog: Rsyslog, expected: list[Seen]) -> list[Seen]:
    """Everything that arrived, once ``expected`` is a sub-multiset of it."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            arrived = [seen(m) for m in rsyslog.messages()]
        except etree.XMLSyntaxError:  # a message cut at a newline of its own: read again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        left = list(arrived)
        missing_ = [e for e in expected if not (e in left and left.remove(e) is None)]
        if not missing_:
            return arrived
        if time.monotonic() > deadline:
            raise AssertionError(f"audit messages missing: {missing_}\narrived: {arrived}")
        time.sleep(0.1)


def spooled(server: ServerProcess) -> list[bytes]:
    """The server's spool, oldest first: every message it made, in shipping order (a
    deferred record read as the shipper reads it)."""
    with sqlite3.connect(f"file:{server.data_dir / 'audit-spool.sqlite3'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT message FROM atna_spool_event ORDER BY id")
        return [message for row in rows for message in messages_of(bytes(row[0]))]


def feed(server: ServerProcess, number: str) -> None:
    assert ack_code(send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))) == "AA"


# --- the tests ------------------------------------------------------------------------------
def test_every_transaction_is_audited_to_rsyslog(
    audited: AuditedServer, peer: XdsPeer, rsyslog: Rsyslog, audit_schema: etree.XMLSchema
) -> None:
    number = new_patient_number()
    patient = patient_cx(number)
    stranger = patient_cx(new_patient_number())  # never fed: its ITI-41 fails
    feed(audited, number)
    reply, uids = peer.provide(patient, [TEXT])
    assert reply.status.endswith("Success")
    assert peer.find_documents(patient).status.endswith("Success")
    retrieved = peer.retrieve(uids).body.find("rs:RegistryResponse", NS)
    assert retrieved.get("status").endswith("Success")
    failed, _ = peer.provide(stranger, [TEXT])
    assert failed.status.endswith("Failure")

    ok, bad = "0", "8"
    expected = [
        Seen("110100", "110120", "E", ok, None),  # Application Start
        Seen("110110", "ITI-8", "C", ok, patient),  # registry: patient record created
        Seen("110107", "ITI-41", "C", ok, patient),  # repository: import
        Seen("110106", "ITI-42", "R", ok, patient),  # repository: export to the registry
        Seen("110107", "ITI-42", "C", ok, patient),  # registry: import
        Seen("110112", "ITI-18", "E", ok, patient),  # registry: query
        Seen("110106", "ITI-43", "R", ok, None),  # repository: export
        Seen("110107", "ITI-41", "C", bad, stranger),
        Seen("110106", "ITI-42", "R", bad, stranger),
        Seen("110107", "ITI-42", "C", bad, stranger),
    ]
    arrived = wait_for(rsyslog, expected)
    assert len(arrived) == len(expected)
    for message in rsyslog.messages():
        document = etree.fromstring(_xml(message))
        assert audit_schema.validate(document), audit_schema.error_log

    assert audited.stop() == 0
    wait_for(rsyslog, [*expected, Seen("110100", "110121", "E", ok, None)])  # Application Stop


def test_events_arrive_in_order_across_an_audit_repository_outage(
    audited: AuditedServer, peer: XdsPeer, rsyslog: Rsyslog
) -> None:
    number = new_patient_number()
    patient = patient_cx(number)
    feed(audited, number)
    peer.find_documents(patient)
    wait_for(rsyslog, [Seen("110112", "ITI-18", "E", "0", patient)])

    rsyslog.stop()
    for _ in range(5):
        peer.find_documents(patient)
    rsyslog.start()
    for _ in range(3):
        peer.find_documents(patient)

    deadline = time.monotonic() + WAIT
    while True:
        made = spooled(audited)
        received = rsyslog.messages()
        # at least once: a message sent just before the outage may come twice
        unique = list(dict.fromkeys(received))
        if unique == made and len(made) >= 10:
            break
        assert time.monotonic() < deadline, (
            f"{len(unique)} of {len(made)} spooled audit messages arrived in order"
        )
        time.sleep(0.2)
    assert [seen(m).event_type for m in made].count("ITI-18") == 9


# --- the client commands, as requesters -----------------------------------------------------
def xdsi(server: ServerProcess, audit_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``xdsi ARGS`` on the server's data directory (its spool), auditing to ``audit_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-m", "xdsi", *args, "--data-dir", str(server.data_dir)]
    return subprocess.run(
        [*command, "--audit", audit_url], capture_output=True, text=True, env=env, timeout=120
    )


def _human_requested(message: bytes) -> bool:
    """A client command's record: it names the OS user as the human requestor."""
    root = etree.fromstring(_xml(message))
    return any(
        p.get("UserID") == getpass.getuser() and p.find("RoleIDCode") is None
        for p in root.iterfind("ActiveParticipant")
    )


def test_client_commands_audit_as_requesters_and_spool_through_an_outage(
    audited: AuditedServer, rsyslog: Rsyslog, audit_schema: etree.XMLSchema, tmp_path: Path
) -> None:
    url = f"tls://127.0.0.1:{rsyslog.port}"
    number = new_patient_number()
    patient = patient_cx(number)
    report = tmp_path / "report.txt"
    report.write_bytes(TEXT[1])
    server = ["--registry", f"{audited.base_url}/xds/registry"]
    repository = ["--repository", f"{audited.base_url}/xds/repository"]
    mllp = ["--mllp", f"127.0.0.1:{audited.mllp_port}"]
    assert xdsi(audited, url, "patients", "add", patient, *mllp).returncode == 0
    submitted = xdsi(audited, url, "submit", str(report), "--patient", patient, *repository)
    assert submitted.returncode == 0, submitted.stderr
    (document,) = [line.split()[1] for line in submitted.stdout.splitlines() if "document" in line]
    assert xdsi(audited, url, "query", "--patient", patient, *server).returncode == 0
    out = tmp_path / "out.txt"
    assert xdsi(audited, url, "retrieve", document, "-o", str(out), *repository).returncode == 0
    assert xdsi(audited, url, "retrieve", "1.2.3.404", *repository).returncode == 1
    assert xdsi(audited, url, "audit", "tail", "-n", "1").returncode == 0

    ok, bad = "0", "8"
    mine = [
        Seen("110110", "ITI-8", "C", ok, patient),  # Patient Identity Source
        Seen("110106", "ITI-41", "R", ok, patient),  # Document Source: export
        Seen("110112", "ITI-18", "E", ok, patient),  # Document Consumer: query
        Seen("110107", "ITI-43", "C", ok, None),  # Document Consumer: import
        Seen("110107", "ITI-43", "C", bad, None),  # ... of a document that is not there
    ]
    wait_for(rsyslog, [*mine, Seen("110101", "", "R", ok, None)])  # Audit Log Used
    clients = [m for m in rsyslog.messages() if _human_requested(m)]
    assert sorted(set(map(seen, clients)), key=repr) == sorted(
        {*mine, Seen("110101", "", "R", ok, None)}, key=repr
    )
    for message in rsyslog.messages():
        assert audit_schema.validate(etree.fromstring(_xml(message))), audit_schema.error_log

    # the audit record repository down: the command waits a bounded time and exits,
    # its events stay spooled, and the next xdsi serve on the same spool ships them
    assert audited.stop() == 0
    rsyslog.stop()
    started = time.monotonic()
    done = xdsi(audited, url, "query", "--patient", patient, "--registry", "http://127.0.0.1:9/")
    assert done.returncode == 2  # no registry there: audited as a major failure (12)
    assert time.monotonic() - started < 60
    failed = Seen("110112", "ITI-18", "E", "12", patient)
    assert failed in [seen(m) for m in spooled(audited)]
    rsyslog.start()
    audited.start()
    wait_for(rsyslog, [failed])


# --- the DICOM routes over ITI-19 mutual TLS -------------------------------------------------
@dataclass
class TlsAuditedServer(AuditedServer):
    pki: Pki | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.http_port}"

    def client(self) -> ssl.SSLContext:
        assert self.pki is not None
        context = ssl.create_default_context(cafile=str(self.pki.ca))
        context.load_cert_chain(str(self.pki.client_cert), str(self.pki.client_key))
        return context

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            try:
                health = httpx.get(f"{self.base_url}/health", verify=self.client(), timeout=1)
                if health.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"xdsi serve not healthy within {timeout}s:\n{self.log()}")


@pytest.fixture
def move_destination() -> Iterator[tuple[str, int]]:
    """A C-STORE SCP the C-MOVE sends to."""
    ae = AE(ae_title="E2EDEST")
    ae.supported_contexts = AllStoragePresentationContexts
    port = _free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda e: 0x0000)]
    )
    try:
        yield "E2EDEST", port
    finally:
        server.shutdown()


@pytest.fixture
def tls_audited(
    tmp_path: Path, pki: Pki, rsyslog: Rsyslog, move_destination: tuple[str, int]
) -> Iterator[TlsAuditedServer]:
    data_dir = tmp_path / "xdsi-tls"
    data_dir.mkdir()
    aet, port = move_destination
    (data_dir / "xdsi.toml").write_text(
        TEST_CONFIG + f'\n[audit]\ntls_cert = "{pki.client_cert}"\ntls_key = "{pki.client_key}"\n'
        f'tls_ca = "{pki.ca}"\n\n[tls]\ncert = "{pki.server_cert}"\nkey = "{pki.server_key}"\n'
        f'ca = ["{pki.ca}"]\n\n[imaging_source]\nauto_publish = false\n'
        f'peers = ["{aet}@127.0.0.1:{port}"]\n',
        encoding="utf-8",
    )
    server = TlsAuditedServer(data_dir, audit_url=f"tls://127.0.0.1:{rsyslog.port}", pki=pki)
    server.start(60)
    try:
        yield server
    finally:
        server.stop()


def test_dicom_routes_are_audited_with_the_tls_peer(
    tls_audited: TlsAuditedServer, rsyslog: Rsyslog, pki: Pki, audit_schema: etree.XMLSchema
) -> None:
    datasets = make_study()[:2]
    study, patient = datasets[0].StudyInstanceUID, datasets[0].PatientID
    ae = AE(ae_title="E2ESCU")
    for ds in datasets:
        ae.add_requested_context(ds.SOPClassUID, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(
        "127.0.0.1", tls_audited.dicom_port, ae_title="XDSI",
        tls_args=(tls_audited.client(), "localhost"), evt_handlers=REQUESTOR_HANDLERS,
    )  # fmt: skip
    assert assoc.is_established
    try:
        for ds in datasets:
            assert assoc.send_c_store(ds).Status == 0x0000
        query = Dataset()
        query.QueryRetrieveLevel, query.StudyInstanceUID, query.PatientID = "STUDY", study, ""
        assert [
            s.Status
            for s, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
        ][-1] == 0x0000
        move = Dataset()
        move.QueryRetrieveLevel, move.StudyInstanceUID = "STUDY", study
        assert [
            s.Status
            for s, _ in assoc.send_c_move(
                move, "E2EDEST", StudyRootQueryRetrieveInformationModelMove
            )
        ][-1] == 0x0000
    finally:
        assoc.release()
    with httpx.Client(
        base_url=f"{tls_audited.base_url}/dicomweb", verify=tls_audited.client()
    ) as web:
        accept = {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'}
        assert web.get(f"/studies/{study}", headers=accept).status_code == 200
        assert web.get("/studies", params={"PatientID": patient}).status_code == 200

    ok = "0"
    expected = [
        *[Seen("110104", "", "C", ok, patient)] * len(datasets),  # C-STORE received
        Seen("110112", "", "E", ok, None),  # C-FIND (no PatientID key)
        Seen("110104", "", "R", ok, patient),  # C-MOVE
        Seen("110104", "", "R", ok, patient),  # WADO-RS
        Seen("110112", "", "E", ok, patient),  # QIDO-RS
    ]
    wait_for(rsyslog, expected)
    subject = x509.load_pem_x509_certificate(pki.client_cert.read_bytes()).subject
    dicom = [m for m in rsyslog.messages() if seen(m).event_id in ("110104", "110112")]
    for message in dicom:
        document = etree.fromstring(_xml(message))
        assert audit_schema.validate(document), audit_schema.error_log
        requestors = document.xpath("ActiveParticipant[@UserIsRequestor='true']")
        assert [p.get("AlternativeUserID") for p in requestors] == [subject.rfc4514_string()]


def test_concurrent_exchanges_each_leave_one_settled_record(
    audited: AuditedServer,
    schemas,
    rsyslog: Rsyslog,  # noqa: ANN001
) -> None:
    """Queries from many clients at once: each is held while it runs and settled before
    its answer - the spool ends with one record per exchange, none left unsettled, and
    the audit repository receives each once, with its outcome."""
    number = new_patient_number()
    patient = patient_cx(number)
    feed(audited, number)
    clients, queries = 8, 15

    def ask(_: int) -> int:
        client = XdsPeer(audited.base_url, schemas)
        try:
            return sum(
                client.find_documents(patient).status.endswith("Success") for _ in range(queries)
            )
        finally:
            client.close()

    with ThreadPoolExecutor(clients) as pool:
        assert sum(pool.map(ask, range(clients))) == clients * queries
    expected = [Seen("110112", "ITI-18", "E", "0", patient)] * (clients * queries)
    arrived = wait_for(rsyslog, expected)
    assert sum(s.event_type == "ITI-18" for s in arrived) == clients * queries
    spool = f"file:{audited.data_dir / 'audit-spool.sqlite3'}?mode=ro"
    deadline = time.monotonic() + WAIT
    while True:  # the shipper records a delivery just after rsyslogd has the message
        with sqlite3.connect(spool, uri=True) as db:
            records = [bytes(row[0]) for row in db.execute("SELECT message FROM atna_spool_event")]
            statuses = {row[0] for row in db.execute("SELECT status FROM atna_spool_delivery")}
        if statuses == {"delivered"} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert statuses == {"delivered"}
    assert not [r for r in records if r.startswith(b"{") and is_unsettled(r)]
    assert sum(r.startswith(b"{") for r in records) == clients * queries
