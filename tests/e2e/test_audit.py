"""End to end: ``xdsi serve --audit tls://...`` audits every XDS.b transaction to a real
rsyslogd (imtcp with the GnuTLS driver, mutual x509 authentication), messages written
raw to a file; each message is valid against the DICOM audit schema with IHE's
relaxations.  The audit repository may go away mid-run: every event still arrives, in
spool order.  Skipped without rsyslogd or the reference schema unless
XDSI_REQUIRE_INTEROP=1."""

from __future__ import annotations

import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import (
    NS,
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "atna"))
from atna_support import AUDIT_SCHEMAS, Pki, make_pki  # noqa: E402

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
        if not self.log.exists():
            return []
        data = self.log.read_bytes()
        return [m for m in MESSAGE_START.split(data.rstrip(b"\n")) if m]


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
    return Seen(
        event.find("EventID").get("csd-code"),
        event.find("EventTypeCode").get("csd-code"),
        event.get("EventActionCode"),
        event.get("EventOutcomeIndicator"),
        patients[0] if patients else None,
    )


def wait_for(rsyslog: Rsyslog, expected: list[Seen]) -> list[Seen]:
    """Everything that arrived, once ``expected`` is a sub-multiset of it."""
    deadline = time.monotonic() + WAIT
    while True:
        arrived = [seen(m) for m in rsyslog.messages()]
        left = list(arrived)
        missing_ = [e for e in expected if not (e in left and left.remove(e) is None)]
        if not missing_:
            return arrived
        if time.monotonic() > deadline:
            raise AssertionError(f"audit messages missing: {missing_}\narrived: {arrived}")
        time.sleep(0.1)


def spooled(server: ServerProcess) -> list[bytes]:
    """The server's spool, oldest first: every message it made, in shipping order."""
    with sqlite3.connect(f"file:{server.data_dir / 'audit-spool.sqlite3'}?mode=ro", uri=True) as db:
        return [
            bytes(row[0]) for row in db.execute("SELECT message FROM atna_spool_event ORDER BY id")
        ]


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
