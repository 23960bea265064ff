"""End to end: SIGKILL of ``xdsi serve`` loses no spooled audit event.

An event is spooled (group commit) before the transaction answers; the shipper sends
it later.  Killing the server with SIGKILL while the audit record repository (a private
rsyslogd over mutually authenticated TLS, as in test_audit.py) is down, or while
messages are in flight, and starting it again on the same data directory: every event
spooled before the kill arrives, in spool order, and a message arrives twice only if
it was sent but its delivery not yet recorded when the server died - at most one
shipper batch (``atna.shipper.BATCH_SIZE``), the unconfirmed window.  Skipped without
rsyslogd unless XDSI_REQUIRE_INTEROP=1."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import TEST_CONFIG, XdsPeer, new_patient_number, patient_cx
from test_audit import (  # noqa: F401 (fixtures)
    WAIT,
    AuditedServer,
    Rsyslog,
    feed,
    pki,
    rsyslog,
    seen,
    spooled,
)

from atna.shipper import BATCH_SIZE

QUERIES = 12


@pytest.fixture
def data_dir(tmp_path: Path, pki) -> Path:  # noqa: ANN001, F811
    directory = tmp_path / "xdsi"
    directory.mkdir()
    (directory / "xdsi.toml").write_text(
        TEST_CONFIG + f'\n[audit]\ntls_cert = "{pki.client_cert}"\ntls_key = "{pki.client_key}"\n'
        f'tls_ca = "{pki.ca}"\n',
        encoding="utf-8",
    )
    return directory


@pytest.fixture
def servers(data_dir: Path, rsyslog: Rsyslog) -> Iterator[list[AuditedServer]]:  # noqa: F811
    """Servers started on ``data_dir`` (one at a time); whatever still runs is stopped."""
    started: list[AuditedServer] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[AuditedServer], data_dir: Path, rsyslog: Rsyslog) -> AuditedServer:  # noqa: F811
    server = AuditedServer(data_dir, audit_url=f"tls://127.0.0.1:{rsyslog.port}").start(60)
    servers.append(server)
    return server


def kill(server: AuditedServer) -> None:
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    assert server.process.wait(10) == -signal.SIGKILL
    server.process = None


def run_transactions(server: AuditedServer, schemas) -> str:  # noqa: ANN001
    """An ITI-8 feed and QUERIES ITI-18 queries; returns the patient."""
    number = new_patient_number()
    feed(server, number)
    peer = XdsPeer(server.base_url, schemas)
    try:
        for _ in range(QUERIES):
            assert peer.find_documents(patient_cx(number)).status.endswith("Success")
    finally:
        peer.close()
    return patient_cx(number)


def wait_spooled(server: AuditedServer, patient: str) -> list[bytes]:
    """The spool once the feed and every query of ``patient`` are in it."""
    deadline = time.monotonic() + WAIT
    while True:
        made = spooled(server)
        kinds = Counter(seen(m).event_type for m in made if seen(m).patient == patient)
        if kinds["ITI-8"] == 1 and kinds["ITI-18"] == QUERIES:
            return made
        assert time.monotonic() < deadline, f"not spooled in time: {kinds}"
        time.sleep(0.05)


def wait_arrived(rsyslog: Rsyslog, expected: list[bytes]) -> list[bytes]:  # noqa: F811
    """What rsyslogd received, once every ``expected`` message is among it."""
    deadline = time.monotonic() + WAIT
    while True:
        received = rsyslog.messages()
        missing_ = set(expected) - set(received)
        if not missing_:
            return received
        assert time.monotonic() < deadline, f"{len(missing_)} of {len(expected)} never arrived"
        time.sleep(0.1)


def in_spool_order(received: list[bytes], made: list[bytes]) -> bool:
    """The first arrival of each message follows the spool's order."""
    position = {message: index for index, message in enumerate(made)}
    firsts = [position[m] for m in dict.fromkeys(received) if m in position]
    return firsts == sorted(firsts)


def test_events_spooled_while_the_repository_is_down_survive_sigkill(
    data_dir: Path,
    rsyslog: Rsyslog,  # noqa: F811
    servers: list[AuditedServer],
    schemas,  # noqa: ANN001
) -> None:
    rsyslog.stop()
    server = start(servers, data_dir, rsyslog)
    patient = run_transactions(server, schemas)
    made = wait_spooled(server, patient)
    kill(server)

    rsyslog.start()
    restarted = start(servers, data_dir, rsyslog)
    received = wait_arrived(rsyslog, made)

    assert in_spool_order(received, made)
    # nothing was sent before the kill, so nothing is unconfirmed: no duplicates
    duplicates = [m for m, n in Counter(received).items() if n > 1]
    assert duplicates == []
    # the restarted server audits its own start after what the killed one spooled
    assert spooled(restarted)[: len(made)] == made


def test_events_in_flight_at_sigkill_arrive_with_duplicates_only_in_the_window(
    data_dir: Path,
    rsyslog: Rsyslog,  # noqa: F811
    servers: list[AuditedServer],
    schemas,  # noqa: ANN001
) -> None:
    server = start(servers, data_dir, rsyslog)
    patient = run_transactions(server, schemas)
    made = wait_spooled(server, patient)
    kill(server)  # the shipper may be anywhere: claimed, sending, recording

    restarted = start(servers, data_dir, rsyslog)
    received = wait_arrived(rsyslog, made)

    assert in_spool_order(received, made)
    counts = Counter(m for m in received if m in set(made))
    assert max(counts.values()) <= 2
    assert sum(n - 1 for n in counts.values()) <= BATCH_SIZE
    assert spooled(restarted)[: len(made)] == made
