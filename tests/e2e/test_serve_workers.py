"""``xdsi serve --workers 2``: one HTTP listener, two worker processes, one PostgreSQL.

The supervisor hands each accepted connection to the next worker; ``/health`` names the
worker that answers, so a test can pick the worker it talks to by opening connections
until one lands there.  Worker 0 alone runs the MLLP and DICOM listeners and the
automatic RAD-68, so a study stored by STOW-RS on worker 1 is published by worker 0
from the shared instance index.  A worker killed is started again; SIGTERM to the
supervisor stops them all.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cluster_support import ClusterServer, client_ssl_context
from e2e_support import (
    REPO_ROOT,
    SUCCESS,
    TEST_CONFIG,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    adt_a01,
    create_pg_database,
    document_bytes,
    drop_pg_database,
    entries_by_unique_id,
    missing,
    new_patient_number,
    patient_cx,
    send_mllp,
)
from pydicom import dcmread

sys.path.insert(0, str(REPO_ROOT / "tests" / "imaging_source"))
from dicom_studies import make_study, write_files  # noqa: E402

from xdsi.certs import make_test_pki  # noqa: E402

pytestmark = pytest.mark.slow

WORKERS = 2
RESTART_WAIT = 20.0
PUBLISH_TIMEOUT = 30.0
BOUNDARY = "xdsi-workers-test"
CONFIG = f"""{TEST_CONFIG}
[imaging_source]
stability_delay = 1.0
publish_interval = 0.3
"""


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    url = create_pg_database()
    if url is None:
        missing("no PostgreSQL at 127.0.0.1:5432 (set XDSI_TEST_POSTGRES to point elsewhere)")
    assert url is not None
    try:
        yield url
    finally:
        drop_pg_database(url)


def _start(data_dir: Path, database: str) -> ServerProcess:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "xdsi.toml").write_text(CONFIG, encoding="utf-8")
    server = ServerProcess(data_dir, database_url=database, extra_args=["--workers", str(WORKERS)])
    return server.start(timeout=90.0)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[ServerProcess]:
    server = _start(tmp_path_factory.mktemp("workers"), database)
    try:
        yield server
    finally:
        server.stop()


def _worker_of(client: httpx.Client, base_url: str) -> int:
    response = client.get(f"{base_url}/health")
    assert response.status_code == 200, response.text
    return int(response.json()["worker"])


def _client_on(server: ServerProcess, worker: int, timeout: float = 10.0) -> httpx.Client:
    """A kept-alive client whose connection the supervisor handed to ``worker``."""
    deadline = time.monotonic() + timeout
    while True:
        client = httpx.Client(timeout=30.0)
        try:
            if _worker_of(client, server.base_url) == worker:
                return client
        except (httpx.TransportError, AssertionError):
            if time.monotonic() > deadline:
                raise
        client.close()
        if time.monotonic() > deadline:
            raise AssertionError(f"no connection reached worker {worker} within {timeout}s")
        time.sleep(0.05)


def _peer(server: ServerProcess, worker: int) -> XdsPeer:
    peer = XdsPeer(server.base_url, ResponseSchemas())
    peer.http.close()
    peer.http = _client_on(server, worker)
    return peer


def _workers(server: ServerProcess) -> dict[int, int]:
    """Worker index -> pid, from the supervisor's children's command lines."""
    assert server.process is not None
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == server.process.pid and b"xdsi.workers" in argv:
            found[int(argv[argv.index(b"xdsi.workers") + 2])] = int(entry.name)
    return found


def _feed(server: ServerProcess) -> str:
    number = new_patient_number()
    reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    assert b"MSA|AA" in reply, reply
    return number


def test_connections_are_handed_to_the_workers_in_turn(server: ServerProcess) -> None:
    seen = []
    for _ in range(4 * WORKERS):
        with httpx.Client(timeout=10.0) as client:  # a new connection each time
            seen.append(_worker_of(client, server.base_url))
    assert Counter(seen) == {n: 4 for n in range(WORKERS)}
    assert all(a != b for a, b in zip(seen, seen[1:], strict=False))


def test_a_document_provided_on_one_worker_is_found_and_retrieved_on_the_other(
    server: ServerProcess,
) -> None:
    patient = patient_cx(_feed(server))
    content = b"provided through worker 0\n"
    with contextlib.closing(_peer(server, 0)) as first:
        reply, unique_ids = first.provide(patient, [("text/plain", content)])
    assert reply.status == SUCCESS, reply.registry_errors()
    with contextlib.closing(_peer(server, 1)) as second:
        found = entries_by_unique_id(second.find_documents(patient))
        assert set(found) == set(unique_ids)
        retrieved = second.retrieve(unique_ids)
    document = next(retrieved.body.iter("{urn:ihe:iti:xds-b:2007}Document"))
    assert document_bytes(retrieved.package, document) == content


def test_a_study_stored_on_a_secondary_worker_is_published_by_the_primary(
    server: ServerProcess, tmp_path: Path
) -> None:
    number = _feed(server)
    study = make_study(patient_id=number)
    files = write_files(study, tmp_path / "study")
    body = (
        b"".join(
            f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + path.read_bytes()
            + b"\r\n"
            for path in files
        )
        + f"--{BOUNDARY}--\r\n".encode()
    )
    with contextlib.closing(_client_on(server, 1)) as client:
        response = client.post(
            f"{server.base_url}/dicomweb/studies",
            content=body,
            headers={
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            },
        )
    assert response.status_code == 200, response.text
    with contextlib.closing(_peer(server, 0)) as consumer:
        deadline = time.monotonic() + PUBLISH_TIMEOUT
        while not (manifests := entries_by_unique_id(consumer.find_documents(patient_cx(number)))):
            assert time.monotonic() < deadline, "no manifest published"
            time.sleep(0.3)
        ((unique_id, entry),) = manifests.items()
        assert entry.get("mimeType") == "application/dicom"
        retrieved = consumer.retrieve([unique_id])
    document = next(retrieved.body.iter("{urn:ihe:iti:xds-b:2007}Document"))
    kos = dcmread(io.BytesIO(document_bytes(retrieved.package, document)))
    referenced = {
        item.ReferencedSOPInstanceUID
        for series in kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert referenced == {ds.SOPInstanceUID for ds in study}


def test_a_killed_worker_is_started_again_and_the_other_serves_meanwhile(
    server: ServerProcess,
) -> None:
    before = _workers(server)
    assert sorted(before) == list(range(WORKERS))
    os.kill(before[1], signal.SIGKILL)
    for _ in range(4):  # while worker 1 is away, every connection goes to worker 0
        with httpx.Client(timeout=10.0) as client:
            assert _worker_of(client, server.base_url) in (0, 1)
    _client_on(server, 1, timeout=RESTART_WAIT).close()
    after = _workers(server)
    assert after[1] != before[1] and after[0] == before[0]


def test_a_killed_primary_comes_back_with_the_patient_feed(server: ServerProcess) -> None:
    before = _workers(server)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + RESTART_WAIT
    while True:
        try:
            _feed(server)
            break
        except (OSError, AssertionError):
            assert time.monotonic() < deadline, "the MLLP listener did not come back"
            time.sleep(0.2)
    assert _workers(server)[0] != before[0]


def test_sigterm_stops_the_supervisor_and_every_worker(tmp_path: Path, database: str) -> None:
    server = _start(tmp_path / "stopping", database)
    pids = list(_workers(server).values())
    assert len(pids) == WORKERS
    assert server.stop() == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_workers_do_the_mutual_tls_handshake_of_the_connections_handed_to_them(
    tmp_path: Path, database: str
) -> None:
    pki = make_test_pki(tmp_path / "pki")
    server = ClusterServer(
        tmp_path / "tls", database, pki=pki, extra_args=["--workers", str(WORKERS)]
    )
    server.start(timeout=90.0)
    try:
        seen = []
        for _ in range(2 * WORKERS):
            with server.http_client(timeout=10.0) as client:  # a new connection each time
                seen.append(_worker_of(client, server.base_url))
        assert sorted(seen) == sorted(list(range(WORKERS)) * 2)
        refused = client_ssl_context(pki, with_certificate=False)
        with (
            httpx.Client(verify=refused, timeout=10.0) as client,
            pytest.raises(httpx.TransportError),
        ):
            client.get(f"{server.base_url}/health")
        with server.http_client(timeout=10.0) as client:  # and the worker serves on
            assert _worker_of(client, server.base_url) in range(WORKERS)
    finally:
        assert server.stop() == 0
