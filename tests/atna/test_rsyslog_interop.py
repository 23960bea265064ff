"""Interoperability: an rsyslog collector (imtcp, gtls driver, mutual x509 auth) receives
our RFC 5425 messages intact.  Needs Debian's ``rsyslog`` and ``rsyslog-gnutls``;
skipped without rsyslogd unless XDSI_REQUIRE_INTEROP=1."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from atna_support import Pki, require_interop, stored_query

from atna.events import AuditContext, Side, audit_messages
from atna.message import to_xml
from atna.syslog import TlsConfig, TlsSender, client_context, frame, parse_destination

CONFIG = """
global(workDirectory="{work}"
       DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{pki.ca}"
       DefaultNetstreamDriverCertFile="{pki.server_cert}"
       DefaultNetstreamDriverKeyFile="{pki.server_key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1"
       StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" address="127.0.0.1" port="{port}")
template(name="raw" type="string" string="%rawmsg%\\n")
action(type="omfile" file="{work}/audit.log" template="raw")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def rsyslog(tmp_path: Path, pki: Pki) -> Iterator[tuple[int, Path]]:
    binary = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if Path("/usr/sbin/rsyslogd").exists() else None
    )
    if binary is None:
        if require_interop():
            pytest.fail("rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls)")
        pytest.skip("rsyslogd not installed")
    port = _free_port()
    config = tmp_path / "rsyslog.conf"
    config.write_text(CONFIG.format(work=tmp_path, pki=pki, port=port))
    process = subprocess.Popen(
        [binary, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslogd.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    pytest.fail(f"rsyslogd did not start: {output}")
                time.sleep(0.05)
        yield port, tmp_path / "audit.log"
    finally:
        process.terminate()
        process.wait(10)


async def test_rsyslog_receives_our_audit_message_intact(rsyslog, pki: Pki) -> None:  # noqa: ANN001
    port, log_file = rsyslog
    (message,) = audit_messages(stored_query(Side.RESPONDER), AuditContext("xdsi@node1"))
    xml = to_xml(message)
    syslog_message = frame(
        xml,
        timestamp=message.event_identification.event_date_time,
        hostname="node1.example.org",
        app_name="xdsi",
        procid="4711",
    )
    sender = TlsSender(
        parse_destination(f"tls://localhost:{port}"),
        client_context(TlsConfig(pki.client_cert, pki.client_key, pki.ca)),
    )
    try:
        await sender.send(syslog_message)
        await sender.send(syslog_message)
    finally:
        await sender.close()
    deadline = time.monotonic() + 10
    while not (log_file.exists() and log_file.read_bytes().count(xml) == 2):
        assert time.monotonic() < deadline, log_file.read_bytes() if log_file.exists() else b""
        await asyncio.sleep(0.05)
    first_line = log_file.read_bytes().splitlines()[0]
    assert first_line == syslog_message
