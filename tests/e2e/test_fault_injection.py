"""Overload and faults against a running ``xdsi serve``: a full blob store, PostgreSQL
restarted under load, clients that stall.  Every answer is an XDS Failure or a SOAP
fault - never a hang, a dropped connection or a traceback - nothing partial is kept,
and the server keeps serving without being restarted.

The full disk is a real one: a small tmpfs mounted as the blob store (root only).
PostgreSQL is a throwaway cluster of this test on its own port and socket directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from e2e_support import (
    FAILURE,
    NS,
    SUCCESS,
    TEST_CONFIG,
    TEST_OID_ROOT,
    Reply,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    adt_a01,
    body_element,
    free_port,
    missing,
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

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
SOAP_FAULT = "{http://www.w3.org/2003/05/soap-envelope}Fault"


@dataclass
class FaultServer(ServerProcess):
    """``xdsi serve`` with extra configuration (and, as every ServerProcess, extra
    flags)."""

    extra_config: str = ""

    def start(self, timeout: float = 30.0) -> FaultServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "xdsi.toml").write_text(TEST_CONFIG + self.extra_config, "utf-8")
        super().start(timeout)
        return self


class TolerantPeer(XdsPeer):
    """A peer that takes a SOAP fault as an answer (schema-checking everything else)."""

    def _finish(self, response: httpx.Response, *, validate: bool = True) -> Reply:
        package = parse_response(response.headers.get("content-type", ""), response.content)
        body = body_element(package)
        if validate and body.tag != SOAP_FAULT:
            self.schemas.check(body)
        return Reply(response.status_code, package, body)


@contextlib.contextmanager
def running(server: FaultServer) -> Iterator[FaultServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def fed_patient(server: ServerProcess) -> str:
    number = new_patient_number()
    reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    assert b"MSA|AA" in reply, reply
    return patient_cx(number)


def registry_error_codes(reply: Reply) -> list[str]:
    return reply.registry_errors()


def retrieve_status(reply: Reply) -> str | None:
    """The status of an ITI-43 answer: its rs:RegistryResponse's."""
    response = reply.body.find("rs:RegistryResponse", NS)
    return None if response is None else response.get("status")


# --- 1. disk full on the blob store ---------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``path`` for the duration."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        missing("mounting a small tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        missing(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def files_in(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def repository_rows(data_dir: Path, unique_ids: list[str]) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "xdsi.sqlite")) as db:
        marks = ",".join("?" * len(unique_ids))
        query = f"SELECT count(*) FROM repository_document WHERE document_unique_id IN ({marks})"
        return db.execute(query, unique_ids).fetchone()[0]


def test_a_full_blob_store_is_out_of_resources_keeps_nothing_and_serving_goes_on(
    tmp_path: Path, schemas: ResponseSchemas
) -> None:
    with small_filesystem(tmp_path / "blobs", "1m") as blob_dir:
        # the spool stays on another filesystem: the blob store copies, and runs out
        server = FaultServer(tmp_path / "data", extra_args=["--blob-dir", str(blob_dir)])
        with running(server):
            peer = XdsPeer(server.base_url, schemas)
            patient = fed_patient(server)
            too_big = os.urandom(3 * 1024 * 1024)
            reply, uids = peer.provide(patient, [("application/pdf", too_big)])

            # ITI TF-3 Table 4.2.4.1-2
            assert reply.status_code == 200
            assert reply.status == FAILURE
            assert registry_error_codes(reply) == ["XDSRepositoryOutOfResources"]
            assert files_in(blob_dir) == []  # no blob, no temp file
            assert repository_rows(server.data_dir, uids) == 0
            assert peer.find_documents(patient).body.findall(".//{*}ExtrinsicObject") == []

            small, small_uids = peer.provide(patient, [("text/plain", b"fits on the disk\n")])
            assert small.status == SUCCESS, small.registry_errors()
            retrieved = peer.retrieve(small_uids)
            assert retrieve_status(retrieved) == SUCCESS
            assert [data for _, data in retrieved.package.parts.values()] == [b"fits on the disk\n"]
            peer.close()


def test_a_full_spool_directory_is_out_of_resources_keeps_nothing_and_serving_goes_on(
    tmp_path: Path, schemas: ResponseSchemas
) -> None:
    """The disk holding the request spool (MTOM parts, ``[limits] spool_dir``) is full:
    ITI-41 answers XDSRepositoryOutOfResources (ITI TF-3 Table 4.2.4.1-2); a request
    of another endpoint whose parts cannot be spooled gets a SOAP fault, not an
    unexpected error; nothing is kept, and the server keeps serving."""
    data_dir = tmp_path / "data"
    with small_filesystem(data_dir / "spool", "1m") as spool_dir:
        server = FaultServer(data_dir)
        with running(server):
            peer = TolerantPeer(server.base_url, schemas)
            patient = fed_patient(server)
            too_big = os.urandom(3 * 1024 * 1024)
            reply, uids = peer.provide(patient, [("application/pdf", too_big)])

            assert reply.status_code == 200
            assert reply.status == FAILURE
            assert registry_error_codes(reply) == ["XDSRepositoryOutOfResources"]
            assert files_in(spool_dir) == []  # no spooled part left
            assert repository_rows(server.data_dir, uids) == 0
            assert files_in(server.data_dir / "blobs") == []

            # the spool full to the last byte: an ITI-18 (nothing to spool) is answered,
            # an MTOM request to the registry with a part to spool gets a SOAP fault
            filler = spool_dir / "filler"
            with contextlib.suppress(OSError), filler.open("wb") as out:
                while True:
                    out.write(b"\0" * 65536)
            assert peer.find_documents(patient).status == SUCCESS
            envelope = render(
                "iti18_find_documents.xml",
                message_id=new_id(),
                to=peer.registry_url,
                return_type="LeafClass",
                patient_id=patient,
                statuses="'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved'",
            )
            part = [(f"extra.{new_id()}@xdsi.e2e", "application/octet-stream", too_big)]
            faulted = peer.mtom(
                peer.registry_url, envelope, part, "urn:ihe:iti:2007:RegistryStoredQuery"
            )
            assert faulted.body.tag == SOAP_FAULT
            assert faulted.status_code == 500
            reason = faulted.body.findtext("{*}Reason/{*}Text") or ""
            assert "spool" in reason, reason
            filler.unlink()
            assert files_in(spool_dir) == []

            small, small_uids = peer.provide(patient, [("text/plain", b"fits in the spool\n")])
            assert small.status == SUCCESS, small.registry_errors()
            retrieved = peer.retrieve(small_uids)
            assert retrieve_status(retrieved) == SUCCESS
            peer.close()
        assert "Traceback" not in server.log()


# --- 2. PostgreSQL restarted under load -------------------------------------------------------


def _pg_bin(name: str) -> str | None:
    for directory in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (directory / name).is_file():
            return str(directory / name)
    return shutil.which(name)


@dataclass
class ThrowawayPostgres:
    """A PostgreSQL cluster of its own: its own directory, port and socket directory."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/xdsi"

    def _run(self, *args: str) -> None:
        # initdb and the server refuse to run as root
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr}"

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(_pg_bin("pg_ctl")),
            "-D", str(self.directory / "data"),
            "-l", str(self.directory / "postgres.log"),
            "-o", options,
            "-w", "-t", "30",
            *args,
        )  # fmt: skip

    def start(self) -> ThrowawayPostgres:
        import psycopg

        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            str(_pg_bin("initdb")),
            "-D", str(self.directory / "data"),
            "-U", "postgres",
            "--auth=trust",
            "--no-sync",
        )  # fmt: skip
        self._pg_ctl("start")
        admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE DATABASE xdsi")
        return self

    def restart(self) -> None:
        self._pg_ctl("-m", "fast", "restart")

    def stop(self) -> None:
        with contextlib.suppress(AssertionError):
            self._pg_ctl("-m", "immediate", "stop")


@pytest.fixture
def postgres() -> Iterator[ThrowawayPostgres]:
    if _pg_bin("initdb") is None or _pg_bin("pg_ctl") is None:
        missing("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        missing("runuser is needed to run PostgreSQL as root")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("psycopg is not installed")
    directory = Path(tempfile.mkdtemp(prefix="xdsi-faults-pg-", dir="/tmp"))
    cluster = ThrowawayPostgres(directory)
    try:
        yield cluster.start()
    finally:
        cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Outcomes:
    """How each request under load was answered."""

    answers: Counter[str] = field(default_factory=Counter)
    unclean: list[str] = field(default_factory=list)
    registered: list[tuple[str, str]] = field(default_factory=list)  # (patient, uid)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, kind: str) -> None:
        with self.lock:
            self.answers[kind] += 1

    def failed(self, what: str) -> None:
        with self.lock:
            self.unclean.append(what)


def _kind(reply: Reply) -> str:
    if reply.body.tag == SOAP_FAULT:
        assert reply.status_code >= 400, "a SOAP fault is not answered 200"
        return "fault"
    assert reply.status in (SUCCESS, FAILURE), reply.status
    return "success" if reply.status == SUCCESS else "failure"


def _load(peer: TolerantPeer, patient: str, stop: threading.Event, outcomes: Outcomes) -> None:
    while not stop.is_set():
        try:
            reply, uids = peer.provide(patient, [("text/plain", os.urandom(512))])
            kind = _kind(reply)
            outcomes.answered(kind)
            if kind == "success":
                with outcomes.lock:
                    outcomes.registered.append((patient, uids[0]))
            outcomes.answered(_kind(peer.find_documents(patient)))
        except Exception as exc:  # a hang, a dropped connection or a non-SOAP answer
            outcomes.failed(f"{type(exc).__name__}: {exc}")


def test_requests_across_a_postgresql_restart_fail_cleanly_and_service_recovers(
    tmp_path: Path, schemas: ResponseSchemas, postgres: ThrowawayPostgres
) -> None:
    server = FaultServer(tmp_path / "data", database_url=postgres.url)
    with running(server):
        patients = [fed_patient(server) for _ in range(4)]
        outcomes = Outcomes()
        stop = threading.Event()
        peers = [TolerantPeer(server.base_url, schemas) for _ in patients]
        workers = [
            threading.Thread(target=_load, args=(peer, patient, stop, outcomes))
            for peer, patient in zip(peers, patients, strict=True)
        ]
        for worker in workers:
            worker.start()
        try:
            time.sleep(1.0)
            postgres.restart()
            time.sleep(1.0)
            postgres.restart()
            time.sleep(2.0)
        finally:
            stop.set()
            for worker in workers:
                worker.join(60)
        assert not any(w.is_alive() for w in workers), "a request hung"
        assert outcomes.unclean == []
        assert outcomes.answers["success"] > 0

        # recovered by itself: after a restart while idle, the very first requests succeed
        # on pooled connections the restart closed
        postgres.restart()
        peer = peers[0]
        for patient in patients:
            reply, uids = peer.provide(patient, [("text/plain", os.urandom(256))])
            assert reply.status == SUCCESS, reply.registry_errors()
            outcomes.registered.append((patient, uids[0]))
        # what was answered Success is registered and retrievable
        found: set[str] = set()
        for patient in patients:
            reply = peer.find_documents(patient)
            assert reply.status == SUCCESS
            found |= {
                identifier.get("value") for identifier in reply.body.iter("{*}ExternalIdentifier")
            }
        assert {uid for _, uid in outcomes.registered} <= found
        retrieved = peer.retrieve([uid for _, uid in outcomes.registered[-4:]])
        assert retrieve_status(retrieved) == SUCCESS
        assert "Traceback" not in etree.tostring(retrieved.body, encoding="unicode")
        for p in peers:
            p.close()


# --- 3. slow clients -------------------------------------------------------------------------

READ_TIMEOUT = 1.0
HEADER_TIMEOUT = 1.0
SLOW_CONFIG = f"""
[limits]
read_timeout = {READ_TIMEOUT}
header_timeout = {HEADER_TIMEOUT}
max_concurrent_requests = 1
"""


def stalled_upload(server: ServerProcess) -> socket.socket:
    """An ITI-41 whose MTOM body stops half-way; the connection stays open."""
    envelope = render(
        "iti41_one_document.xml",
        message_id=new_id(),
        to=f"{server.base_url}/xds/repository",
        patient_id=patient_cx(new_patient_number()),
        ss_unique_id=unique_oid(),
        source_id=TEST_OID_ROOT,
        creation_time=time.strftime("%Y%m%d%H%M%S", time.gmtime()),
        doc_unique_id=unique_oid(),
        mime_type="text/plain",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Never finished",
        content_id="doc1@xdsi.e2e",
    )
    content_type, body = mtom_request(
        envelope, [("doc1@xdsi.e2e", "text/plain", b"x" * 4096)], ITI41
    )
    head = (
        f"POST /xds/repository HTTP/1.1\r\nHost: 127.0.0.1:{server.http_port}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", server.http_port), timeout=30)
    sock.sendall(head + body[: len(body) // 2])
    return sock


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and _complete(data):
                break
    return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def test_a_stalled_mtom_upload_is_cut_off_with_408_and_frees_the_worker(
    tmp_path: Path, schemas: ResponseSchemas
) -> None:
    server = FaultServer(tmp_path / "data", extra_config=SLOW_CONFIG)
    with running(server):
        peer = TolerantPeer(server.base_url, schemas)
        patient = fed_patient(server)
        sock = stalled_upload(server)
        try:
            time.sleep(READ_TIMEOUT / 4)
            # the stalled request holds the one slot
            busy, _ = peer.provide(patient, [("text/plain", b"while stalled\n")])
            assert registry_error_codes(busy) == ["XDSRepositoryBusy"]

            started = time.monotonic()
            answer = read_until_closed(sock, timeout=READ_TIMEOUT * 10)
            assert time.monotonic() - started < READ_TIMEOUT * 5
        finally:
            sock.close()
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"Fault" in answer and b"timed out" in answer

        reply, _ = peer.provide(patient, [("text/plain", b"after the stall\n")])
        assert reply.status == SUCCESS, reply.registry_errors()
        peer.close()


def test_a_slowloris_client_is_disconnected_after_the_header_timeout(
    tmp_path: Path, schemas: ResponseSchemas
) -> None:
    server = FaultServer(tmp_path / "data", extra_config=SLOW_CONFIG)
    with running(server):
        peer = TolerantPeer(server.base_url, schemas)
        patient = fed_patient(server)
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.http_port), timeout=30) as sock:
            sock.sendall(b"POST /xds/repository HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            closed = False
            for n in range(int(HEADER_TIMEOUT * 10)):  # a header line every 0.2 s
                time.sleep(0.2)
                try:
                    sock.sendall(f"X-Slow-{n}: 1\r\n".encode())
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            answer = b"" if closed else read_until_closed(sock, timeout=HEADER_TIMEOUT * 5)
        assert closed or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert time.monotonic() - started < HEADER_TIMEOUT * 4

        # the other clients were served meanwhile and still are
        reply, _ = peer.provide(patient, [("text/plain", b"after the slowloris\n")])
        assert reply.status == SUCCESS, reply.registry_errors()
        peer.close()
