"""Soak: a bounded mixed workload against a deployment of several processes.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 8] [--processes 3]

``--processes`` ``xdsi serve`` processes share one PostgreSQL database, one blob
directory and one DICOM storage directory behind a private nginx
(``tests/e2e/cluster_support.py``).  ``--clients`` threads, each with its own patient
(ITI-8), loop a mix through the balancer; after ``--documents-per-patient`` documents
(100) a client goes on with a new patient, so that an ITI-18 answer stays the size of a
real patient's and does not grow with the length of the run:

- ITI-41 Provide and Register of one document of a few KiB to a few MiB;
- ITI-18 FindDocuments of the client's patient: every document submitted so far is found;
- ITI-43 Retrieve of one submitted document: the bytes' SHA-1 is the one sent;
- RAD-69 Retrieve Imaging Document Set of a small study stored at warm-up: every
  instance comes back as sent (RAD TF-3 4.69);
- now and then a C-STORE of a new two-instance study to one process's DICOM port, which
  that process publishes as a KOS manifest (RAD-68) once stable.

Figures: per transaction the count, p50 and p99 latency beside the same transaction's
p50 on the idle deployment at warm-up (one client); errors (must be 0); the VmRSS of
every process after warm-up and at the end, and its growth; and the consistency check
at the end: every submitted document found by ITI-18 and retrieved hash-identical by
ITI-43, the registry's DocumentEntries equal to the successful submissions, a manifest
for every stored study, and ``xdsi check`` consistent.  Each error is printed (an answer
that is not SOAP with its HTTP status and the start of its body), with what nginx logged
about the processes; so is every process's VmRSS each minute.  A run with a failed
figure keeps its working directory - every process's ``server.log``, nginx's
``error.log`` - and prints where it is.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import (
    REPO_ROOT,
    Figure,
    PgDatabase,
    lower_is_better,
    main_of,
    percentile,
)

sys.path.insert(0, str(REPO_ROOT / "tests" / "imaging_source"))

from cluster_support import Cluster, client_ssl_context, nginx_missing  # noqa: E402
from dicom_studies import make_instance, make_study  # noqa: E402
from e2e_support import (  # noqa: E402
    NS,
    SUCCESS,
    TEST_CONFIG,
    Reply,
    XdsPeer,
    ack_code,
    adt_a01,
    document_bytes,
    entries_by_unique_id,
    new_patient_number,
    patient_cx,
    rad69_request,
)
from pydicom import dcmread  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid  # noqa: E402

__all__ = ["add_arguments", "main", "run"]

TITLE = "Soak: mixed ITI-41/18/43 and RAD-69 workload on several processes"
IMAGING_SOURCE_ID = "1.3.6.1.4.1.21367.13.40.3001"
KOS_FORMAT_CODE = "1.2.840.10008.5.1.4.1.1.88.59"
RAD69_ACTION = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
RSS_GROWTH_LIMIT_MIB = 64
MiB = 1024 * 1024
# document sizes (bytes) and how often each is sent
SIZES = (4 * 1024, 64 * 1024, 512 * 1024, 3 * MiB)
SIZE_WEIGHTS = (50, 30, 15, 5)
# the mix of one client's loop
MIX = {"ITI-41": 30, "ITI-18": 25, "ITI-43": 25, "RAD-69": 17, "C-STORE": 3}
PUBLISH_WAIT = 60.0
# how much of an error answer's body is recorded
ERROR_BODY_START = 160

SOAK_CONFIG = """{base}
[imaging_source]
repository_unique_id = "{imaging_id}"
storage_dir = "{storage}"
stability_delay = 2.0
publish_interval = 0.5
"""


class _NoSchemaCheck:
    """The soak checks content, not XSD validity (tests/e2e does that): the client's CPU
    stays with the servers on a small machine."""

    def check(self, element: object) -> None:
        return None


class SoakError(Exception):
    """A transaction that did not succeed or returned other bytes than were sent."""


@dataclass(frozen=True)
class Submitted:
    unique_id: str
    sha1: str
    size: int


@dataclass
class Tally:
    """Latencies and errors of every transaction, shared by the clients."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def timed(self, name: str, work: Callable[[], object]) -> bool:
        started = time.perf_counter()
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
            with self.lock:
                self.errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
            return False
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latencies[name].append(elapsed)
        return True


# --- the transactions ------------------------------------------------------------------


def _retrieve_status(reply: Reply) -> str | None:
    """ITI TF-2 3.43.4.2.2: the status is that of the nested RegistryResponse."""
    response = reply.body.find("rs:RegistryResponse", NS)
    return None if response is None else response.get("status")


def _documents(reply: Reply) -> dict[str, bytes]:
    return {
        document.findtext("xdsb:DocumentUniqueId", namespaces=NS) or "": document_bytes(
            reply.package, document.find("xdsb:Document", NS)
        )
        for document in reply.body.findall("xdsb:DocumentResponse", NS)
    }


def _content(rng: random.Random) -> bytes:
    size = rng.choices(SIZES, SIZE_WEIGHTS)[0]
    size += rng.randrange(1024)
    return b"%PDF-1.4\n" + rng.randbytes(size)


def provide(peer: XdsPeer, patient: str, content: bytes) -> Submitted:
    reply, (unique_id,) = peer.provide(patient, [("application/pdf", content)])
    if reply.status != SUCCESS:
        raise SoakError(f"ITI-41 {reply.status}: {reply.registry_errors()}")
    return Submitted(unique_id, hashlib.sha1(content).hexdigest(), len(content))


def find(peer: XdsPeer, patient: str, expected: list[Submitted]) -> None:
    reply = peer.find_documents(patient)
    if reply.status != SUCCESS:
        raise SoakError(f"ITI-18 {reply.status}: {reply.registry_errors()}")
    found = entries_by_unique_id(reply)
    lost = [s.unique_id for s in expected if s.unique_id not in found]
    if lost:
        raise SoakError(f"ITI-18 misses {len(lost)} submitted documents, e.g. {lost[0]}")


def retrieve(peer: XdsPeer, wanted: list[Submitted]) -> None:
    reply = peer.retrieve([s.unique_id for s in wanted])
    if _retrieve_status(reply) != SUCCESS:
        raise SoakError(f"ITI-43 {_retrieve_status(reply)}: {reply.registry_errors()}")
    returned = _documents(reply)
    for submitted in wanted:
        data = returned.get(submitted.unique_id)
        if data is None or hashlib.sha1(data).hexdigest() != submitted.sha1:
            raise SoakError(f"ITI-43 returned other bytes for {submitted.unique_id}")


def rad69_envelope(to: str, images: list[Dataset]) -> bytes:
    return rad69_request(
        to,
        [
            (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, IMAGING_SOURCE_ID)
            for ds in images
        ],
        [ExplicitVRLittleEndian, RLELossless],
    )


def rad69(peer: XdsPeer, images: list[Dataset]) -> None:
    url = f"{peer.base_url}/xdsi/imaging-source"
    reply = peer.mtom(url, rad69_envelope(url, images), [], RAD69_ACTION)
    if _retrieve_status(reply) != SUCCESS:
        raise SoakError(f"RAD-69 {_retrieve_status(reply)}: {reply.registry_errors()}")
    returned = _documents(reply)
    for ds in images:
        data = returned.get(ds.SOPInstanceUID)
        back = None if data is None else dcmread(io.BytesIO(data))
        if back is None or back.SOPInstanceUID != ds.SOPInstanceUID or back != ds:
            raise SoakError(f"RAD-69 returned another instance for {ds.SOPInstanceUID}")


def c_store(cluster: Cluster, node: int, images: list[Dataset]) -> None:
    """One association to process ``node``'s DICOM port (ITI-19: DICOM over TLS)."""
    from pynetdicom import AE

    from imaging_source.requestor import REQUESTOR_HANDLERS

    assert cluster.pki is not None
    ae = AE(ae_title="SOAK")
    for ds in images:
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    server = cluster.servers[node]
    # xdsi answers each C-STORE without Nagle's delay; pynetdicom 3.0.4's own requestor
    # may then let its reactor take a fast C-STORE-RSP that send_c_store waits for, and
    # wait out the DIMSE timeout ("no response"): the requestor xdsi uses towards a PACS
    # closes that window (imaging_source.requestor)
    assoc = ae.associate(
        "127.0.0.1", server.dicom_port, ae_title="XDSI",
        tls_args=(client_ssl_context(cluster.pki), "localhost"),
        evt_handlers=REQUESTOR_HANDLERS,
    )  # fmt: skip
    if not assoc.is_established:
        raise SoakError(f"C-STORE: no association with process {node}")
    try:
        for ds in images:
            status = assoc.send_c_store(ds)
            if "Status" not in status:  # PS3.7 9.1.1.1.9: no C-STORE-RSP came back
                state = "aborted" if assoc.is_aborted else "no response"
                raise SoakError(f"C-STORE of {ds.SOPInstanceUID}: {state}")
            if status.Status != 0:
                raise SoakError(f"C-STORE of {ds.SOPInstanceUID}: status 0x{status.Status:04X}")
    finally:
        assoc.release()


def two_instance_study(patient_number: str) -> list[Dataset]:
    study, series = generate_uid(), generate_uid()
    return [
        make_instance(study, series, instance_number=n, patient_id=patient_number) for n in (1, 2)
    ]


# --- the deployment ----------------------------------------------------------------------


def start_cluster(directory: Path, database_url: str, processes: int) -> Cluster:
    storage = directory / "dicom"
    storage.mkdir(parents=True)
    for n in range(processes):  # Cluster.start names the data directories node<n>
        node = directory / f"node{n}"
        node.mkdir(parents=True)
        (node / "xdsi.toml").write_text(
            SOAK_CONFIG.format(base=TEST_CONFIG, imaging_id=IMAGING_SOURCE_ID, storage=storage),
            encoding="utf-8",
        )
    return Cluster(directory, database_url, size=processes).start()


def rss_mib(cluster: Cluster) -> list[float]:
    return [server.rss_bytes() / MiB for server in cluster.servers]


def _sql_count(dsn: str, sql: str, *params: object) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def xdsi_check(cluster: Cluster) -> tuple[bool, str]:
    """``xdsi check`` of the shared database and blob directory (hashes verified)."""
    run = subprocess.run(
        [
            sys.executable, "-m", "xdsi", "check",
            "--data-dir", str(cluster.servers[0].data_dir),
            "--database", cluster.database_url,
            "--blob-dir", str(cluster.directory / "blobs"),
        ],  # fmt: skip
        capture_output=True, text=True, timeout=600, cwd=REPO_ROOT,
    )  # fmt: skip
    last = (run.stdout.strip().splitlines() or [run.stderr.strip()])[-1]
    return run.returncode == 0, last


def _not_soap_is_an_error(response: httpx.Response) -> None:
    """An answer that is not SOAP (the balancer's own error page) names its status and
    the start of its body."""
    content_type = response.headers.get("content-type", "")
    if "xml" not in content_type and "multipart" not in content_type:
        body = response.read()[:ERROR_BODY_START].decode("utf-8", "replace")
        raise SoakError(
            f"HTTP {response.status_code} {content_type} from the balancer: {' '.join(body.split())}"
        )


@dataclass
class Client:
    """One looping consumer/source with its own patient and what it submitted."""

    number: int
    cluster: Cluster
    study: list[Dataset]
    tally: Tally
    patient_number: str = field(default_factory=new_patient_number)
    submitted: list[Submitted] = field(default_factory=list)
    studies: list[str] = field(default_factory=list)
    per_patient: int = 100
    # the earlier patients of this client and what was submitted for each
    earlier: list[tuple[str, list[Submitted]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.number)
        self.peer = XdsPeer(self.cluster.base_url, _NoSchemaCheck())  # type: ignore[arg-type]
        self.peer.http = httpx.Client(
            timeout=120.0, event_hooks={"response": [_not_soap_is_an_error]}
        )

    @property
    def patient(self) -> str:
        return patient_cx(self.patient_number)

    def episodes(self) -> list[tuple[str, list[Submitted]]]:
        """Every patient of this client (CX) with its submitted documents."""
        return [(patient_cx(n), docs) for n, docs in self.earlier] + [
            (self.patient, self.submitted)
        ]

    def _next_patient(self) -> bool:
        number = new_patient_number()
        server = self.cluster.servers[self.number % len(self.cluster.servers)]
        fed = self.tally.timed(
            "ITI-8",
            lambda: _fed(self.cluster.feed_tls(server, adt_a01(number))),
        )
        if fed:
            self.earlier.append((self.patient_number, self.submitted))
            self.patient_number, self.submitted = number, []
        return fed

    def one(self, name: str) -> bool:
        if name == "ITI-41" and len(self.submitted) >= self.per_patient:
            return self._next_patient()
        if name == "ITI-41" or (name in ("ITI-18", "ITI-43") and not self.submitted):
            content = _content(self.rng)
            return self.tally.timed(
                "ITI-41", lambda: self.submitted.append(provide(self.peer, self.patient, content))
            )
        if name == "ITI-18":
            expected = list(self.submitted)
            return self.tally.timed(name, lambda: find(self.peer, self.patient, expected))
        if name == "ITI-43":
            wanted = [self.rng.choice(self.submitted)]
            return self.tally.timed(name, lambda: retrieve(self.peer, wanted))
        if name == "RAD-69":
            return self.tally.timed(name, lambda: rad69(self.peer, self.study))
        images = two_instance_study(self.patient_number)
        node = self.rng.randrange(len(self.cluster.servers))
        stored = self.tally.timed(name, lambda: c_store(self.cluster, node, images))
        if stored:
            self.studies.append(images[0].StudyInstanceUID)
        return stored

    def loop(self, until: float) -> None:
        names, weights = list(MIX), list(MIX.values())
        while time.monotonic() < until:
            self.one(self.rng.choices(names, weights)[0])

    def close(self) -> None:
        self.peer.close()


# --- the end -----------------------------------------------------------------------------


def _fed(ack: bytes | str) -> None:
    if ack_code(ack) != "AA":
        raise RuntimeError(f"ITI-8 not accepted: {ack!r}"[:200])


def _manifest_count(peer: XdsPeer, patient: str) -> int:
    reply = peer.find_documents(patient)
    return sum(
        1
        for entry in reply.body.iter(f"{{{NS['rim']}}}ExtrinsicObject")
        for c in entry.findall("rim:Classification", NS)
        if c.get("nodeRepresentation") == KOS_FORMAT_CODE
    )


def consistency(clients: list[Client], cluster: Cluster, dsn: str) -> dict[str, float]:
    """Problems found after the run (each should be 0) and what was counted."""
    problems: dict[str, float] = defaultdict(float)
    checker = Tally()
    for client in clients:
        for patient, documents in client.episodes():
            if not checker.timed(
                "find", lambda c=client, p=patient, d=documents: find(c.peer, p, d)
            ):
                problems["documents not found by ITI-18"] += 1
            for start in range(0, len(documents), 8):
                batch = documents[start : start + 8]
                if not checker.timed("retrieve", lambda b=batch, c=client: retrieve(c.peer, b)):
                    problems["documents not retrieved hash-identical"] += len(batch)
    submitted = sum(len(d) for c in clients for _, d in c.episodes())
    registered = _sql_count(
        dsn, "SELECT count(*) FROM document_entry WHERE format_code <> %s", KOS_FORMAT_CODE
    )
    problems["DocumentEntries - successful ITI-41"] = abs(registered - submitted)
    studies = sum(len(c.studies) for c in clients)
    deadline = time.monotonic() + PUBLISH_WAIT
    while True:  # RAD-68 follows the C-STOREs once a study is stable
        manifests = sum(
            _manifest_count(c.peer, patient) for c in clients for patient, _ in c.episodes()
        )
        if manifests >= studies or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    problems["stored studies - manifests"] = abs(studies - manifests)
    consistent, verdict = xdsi_check(cluster)
    print(f"xdsi check: {verdict}", flush=True)
    problems["xdsi check inconsistent"] = 0 if consistent else 1
    for error in checker.errors[:5]:
        print(f"  {error}", flush=True)
    problems["_submitted"], problems["_studies"] = submitted, studies
    return problems


def run(args: argparse.Namespace) -> list[Figure]:
    reason = nginx_missing()
    if reason is not None:
        raise SystemExit(f"soak needs nginx: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="xdsi-soak-"))
    keep = True  # the servers' and nginx's logs of a run that failed or broke off
    try:
        with PgDatabase() as database:
            cluster = start_cluster(workdir, database.url, args.processes)
            try:
                figures = _soak(cluster, database.dsn, args)
                keep = any(f.passed is False for f in figures)
                return figures
            finally:
                cluster.stop()
    finally:
        if keep:
            print(f"kept for reading: {workdir} (server.log per node, nginx/error.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _soak(cluster: Cluster, dsn: str, args: argparse.Namespace) -> list[Figure]:
    warm = Tally()
    clients = [
        Client(n, cluster, [], warm, per_patient=args.documents_per_patient)
        for n in range(args.clients)
    ]
    study = make_study(patient_id=clients[0].patient_number)  # published as well
    for client in clients:
        client.study = study
    for n, client in enumerate(clients):  # ITI-8 over MLLP/TLS, spread over the processes
        server = cluster.servers[n % len(cluster.servers)]
        if ack_code(cluster.feed_tls(server, adt_a01(client.patient_number))) != "AA":
            raise SystemExit("ITI-8 refused the soak's patient")
    c_store(cluster, 0, study)
    clients[0].studies.append(study[0].StudyInstanceUID)
    # warm-up: one client alone (the idle reference), then every client a few times
    for name in ("ITI-41", "ITI-18", "ITI-43", "RAD-69") * 5:
        clients[0].one(name)
    reference = {name: percentile(v, 50) for name, v in warm.latencies.items()}
    for client in clients[1:]:
        for name in ("ITI-41", "ITI-18", "ITI-43", "RAD-69"):
            client.one(name)
    if warm.errors:
        raise SystemExit("warm-up failed:\n" + "\n".join(warm.errors[:10]))
    rss_start = rss_mib(cluster)
    tally = Tally()
    for client in clients:
        client.tally = tally
    until = time.monotonic() + args.minutes * 60
    print(f"soak: {args.clients} clients, {args.processes} processes, {args.minutes} min",
          flush=True)  # fmt: skip
    with ThreadPoolExecutor(len(clients) + 1) as pool:
        pool.submit(_sample_rss, cluster, until)
        list(pool.map(lambda c: c.loop(until), clients))
    rss_end = rss_mib(cluster)
    for error in tally.errors[:10]:
        print(f"  {error}", flush=True)
    for line in _upstream_errors(cluster)[:10]:
        print(f"  nginx: {line}", flush=True)
    for n, line in _server_problems(cluster)[:20]:
        print(f"  process {n}: {line}", flush=True)
    try:
        problems = consistency(clients, cluster, dsn)
    finally:
        for client in clients:
            client.close()
    return _figures(tally, reference, rss_start, rss_end, problems, args.minutes)


def _upstream_errors(cluster: Cluster) -> list[str]:
    """What nginx logged about the processes (a 502 names its cause there)."""
    assert cluster.nginx is not None
    return [line for line in cluster.nginx.log().splitlines() if "upstream" in line]


def _server_problems(cluster: Cluster) -> list[tuple[int, str]]:
    """The warnings, errors and tracebacks the processes logged."""
    marks = (" WARNING ", " ERROR ", "Traceback", "Error:")
    return [
        (n, line[:300])
        for n, server in enumerate(cluster.servers)
        for line in server.log().splitlines()
        if any(mark in line for mark in marks) and "no [audit] destinations" not in line
    ]


def _sample_rss(cluster: Cluster, until: float) -> None:
    """Every process's VmRSS each minute, printed: does it level off or keep growing?"""
    minute = 0
    while time.monotonic() + 60 < until:
        time.sleep(60)
        minute += 1
        rss = ", ".join(f"{m:.0f}" for m in rss_mib(cluster))
        print(f"RSS (MiB) after {minute} min: {rss}", flush=True)


def _figures(
    tally: Tally,
    reference: dict[str, float],
    rss_start: list[float],
    rss_end: list[float],
    problems: dict[str, float],
    minutes: float,
) -> list[Figure]:
    figures: list[Figure] = []
    for name in MIX:
        values = [v * 1000 for v in tally.latencies.get(name, [])]
        if not values:
            continue
        idle = reference.get(name)
        idle_ms = None if idle is None else idle * 1000
        figures += [
            Figure(f"{name} in {minutes:g} min", len(values), None, "requests", "", None),
            lower_is_better(f"{name} p50", percentile(values, 50), idle_ms, "ms",
                            reference_name="idle p50"),
            lower_is_better(f"{name} p99", percentile(values, 99), idle_ms, "ms",
                            reference_name="idle p50"),
        ]  # fmt: skip
    figures.append(lower_is_better("errors", len(tally.errors), None, "requests", max_value=1))
    for n, (start, end) in enumerate(zip(rss_start, rss_end, strict=True)):
        figures.append(
            lower_is_better(
                f"process {n} RSS at end", end, start, "MiB", reference_name="after warm-up"
            )  # fmt: skip
        )
        figures.append(
            lower_is_better(
                f"process {n} RSS growth", end - start, None, "MiB", max_value=RSS_GROWTH_LIMIT_MIB
            )  # fmt: skip
        )
    figures.append(
        Figure("submitted and checked", problems.pop("_submitted"), None, "documents", "", None)
    )
    figures.append(Figure("stored by C-STORE", problems.pop("_studies"), None, "studies", "", None))
    figures += [lower_is_better(name, value, None, "count", max_value=1)
                for name, value in problems.items()]  # fmt: skip
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--processes", type=int, default=3, help="xdsi serve processes (3)")
    parser.add_argument(
        "--documents-per-patient",
        type=int,
        default=100,
        help="documents submitted for one patient before a client takes a new one (100)",
    )


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
