"""Crash consistency: ``xdsi serve`` killed (SIGKILL) in the middle of many concurrent
ITI-41 submissions, small ones and large ones streamed from disk, several times.

ITI TF-2 3.41.4.1.3.2: a Provide and Register ends with its documents stored and
registered, or with neither.  After the rounds, ``xdsi check --repair --grace 0``
settles what the kills left (the start-up recovery of ``xdsi serve`` waits an hour
before it touches a pending document, as other processes may still be working on it);
then, on a restarted server:

- every submission set is fully registered (ITI-18 FindDocuments lists each of its
  DocumentEntries) with every document retrievable (ITI-43) and hash-correct, or none
  of its DocumentEntries is registered and none of its documents is retrievable;
- every submission answered Success is fully registered;
- no blob temp file, no spooled MTOM part is left, and ``xdsi check --grace 0`` finds
  registry, index and blob store consistent (no unreferenced blob, no pending row).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from e2e_support import (
    NS,
    REPO_ROOT,
    SUCCESS,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    ack_code,
    adt_a01,
    create_pg_database,
    document_bytes,
    drop_pg_database,
    entries_by_unique_id,
    missing,
    new_patient_number,
    patient_cx,
    send_mllp,
    unique_oid,
)

from repository.blobs import TEMP_PREFIX
from soap.mtom import SPOOL_PREFIX

pytestmark = pytest.mark.slow

ROUNDS = 3
SMALL_PER_ROUND = 24
LARGE_PER_ROUND = 1
LARGE_SIZE = int(os.environ.get("XDSI_CRASH_LARGE_MIB", "100")) * 1024 * 1024
WORKERS = 8
KILL_AFTER_AT_MOST = 20.0  # seconds: the kill comes even if answers are slow
SEED = 20240507


def _bench() -> ModuleType:
    path = REPO_ROOT / "bench" / "large_document.py"
    spec = importlib.util.spec_from_file_location("xdsi_bench_large_document_crash", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Submitted:
    """One ITI-41 sent: its documents (uniqueId -> SHA-1), whether it was large, and
    what came back (``SUCCESS``, another status, or the transport error)."""

    patient: str
    documents: dict[str, str]
    large: bool
    outcome: str = "not sent"


def _feed(server: ServerProcess) -> str:
    number = new_patient_number()
    assert ack_code(send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))) == "AA"
    return patient_cx(number)


def _send_small(base_url: str, schemas: ResponseSchemas, patient: str, n: int) -> Submitted:
    first = f"Report {n} part 1 {os.urandom(8).hex()}\n".encode() * 50
    second = f"Report {n} part 2 {os.urandom(8).hex()}\n".encode() * 70
    uids = [unique_oid(), unique_oid()]
    submitted = Submitted(
        patient,
        {
            uid: hashlib.sha1(data).hexdigest()
            for uid, data in zip(uids, (first, second), strict=True)
        },
        large=False,
    )
    peer = XdsPeer(base_url, schemas)
    try:
        reply, _ = peer.provide(
            patient,
            [("text/plain", first), ("text/plain", second)],
            doc_unique_id=uids[0],
            doc_unique_id_2=uids[1],
        )
        submitted.outcome = reply.status or f"HTTP {reply.status_code}"
    except Exception as exc:  # the server died under the request: any way it fails
        submitted.outcome = f"error {type(exc).__name__}"
    finally:
        peer.close()
    return submitted


def _send_large(bench: ModuleType, base_url: str, patient: str, path: Path, sha1: str) -> Submitted:
    uid = bench.unique_oid()
    submitted = Submitted(patient, {uid: sha1}, large=True)
    url = f"{base_url}/xds/repository"
    try:
        with httpx.Client(timeout=httpx.Timeout(120.0)) as http:
            bench.provide(http, url, bench.provide_request(url, patient, uid, path))
        submitted.outcome = SUCCESS
    except Exception as exc:  # the server died under the request: any way it fails
        submitted.outcome = f"error {type(exc).__name__}"
    return submitted


def _round(
    server: ServerProcess,
    schemas: ResponseSchemas,
    bench: ModuleType,
    rng: random.Random,
    large_file: Path,
    number: int,
) -> list[Submitted]:
    """Fire the submissions, SIGKILL the server once a random number of them has been
    answered (so the kill lands among transactions in every state), restart it."""
    patient = _feed(server)
    sha1 = bench._restamp(large_file, number)
    answered_before_kill = rng.randint(2, SMALL_PER_ROUND // 2)
    with ThreadPoolExecutor(WORKERS + LARGE_PER_ROUND) as pool:
        futures: list[Future[Submitted]] = [
            pool.submit(_send_large, bench, server.base_url, patient, large_file, sha1)
            for _ in range(LARGE_PER_ROUND)
        ]
        futures += [
            pool.submit(_send_small, server.base_url, schemas, patient, n)
            for n in range(SMALL_PER_ROUND)
        ]
        deadline = time.monotonic() + KILL_AFTER_AT_MOST
        while sum(f.done() for f in futures) < answered_before_kill:
            if time.monotonic() > deadline:
                break
            wait(futures, timeout=0.05, return_when=FIRST_COMPLETED)
        time.sleep(rng.uniform(0.0, 0.3))
        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown, no cleanup
        server.process.wait()
        server.process = None
        submitted = [f.result() for f in futures]
    server.start(timeout=60.0)
    return submitted


def _xdsi_check(server: ServerProcess, *options: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "xdsi", "check", "--data-dir", str(server.data_dir)]
    if server.database_url:
        command += ["--database", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [*command, *options], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120
    )


@dataclass
class Outcome:
    submitted: list[Submitted]
    registered: dict[str, set[str]]  # patient -> uniqueIds FindDocuments lists
    retrieved: dict[str, str | None]  # uniqueId -> SHA-1 of what ITI-43 returned
    leftovers: list[Path]
    repair: subprocess.CompletedProcess[str]
    final_check: subprocess.CompletedProcess[str]


def _retrieve_sha1(
    bench: ModuleType, peer: XdsPeer, uid: str, large: bool, work: Path
) -> str | None:
    if large:
        output = work / f"retrieved-{uid}"
        try:
            bench.retrieve(peer.repository_url, uid, output)
        except RuntimeError:
            return None
        digest = bench.sha1_file(output)
        output.unlink()
        return digest
    reply = peer.retrieve([uid])
    status = reply.body.find("rs:RegistryResponse", NS)
    if status is None or status.get("status") != SUCCESS:
        return None
    [document] = reply.body.findall("xdsb:DocumentResponse/xdsb:Document", NS)
    return hashlib.sha1(document_bytes(reply.package, document)).hexdigest()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    database_url = None
    if request.param == "postgresql":
        database_url = create_pg_database()
        if database_url is None:
            missing("no PostgreSQL at 127.0.0.1:5432 (set XDSI_TEST_POSTGRES to point elsewhere)")
    work = tmp_path_factory.mktemp(f"crash-{request.param}")
    bench = _bench()
    schemas = ResponseSchemas()
    rng = random.Random(SEED)
    large_file = work / "large.bin"
    bench.write_input(large_file, LARGE_SIZE)
    server = ServerProcess(work / "data", database_url).start()
    try:
        submitted: list[Submitted] = []
        for number in range(ROUNDS):
            submitted += _round(server, schemas, bench, rng, large_file, number)
        # the restarted server is idle: nothing it holds is in progress
        repair = _xdsi_check(server, "--repair", "--grace", "0")
        peer = XdsPeer(server.base_url, schemas)
        try:
            registered = {
                patient: set(entries_by_unique_id(peer.find_documents(patient)))
                for patient in {s.patient for s in submitted}
            }
            retrieved = {
                uid: _retrieve_sha1(bench, peer, uid, s.large, work)
                for s in submitted
                for uid in s.documents
            }
        finally:
            peer.close()
        blob_dir, spool_dir = server.data_dir / "blobs", server.data_dir / "spool"
        leftovers = [*blob_dir.glob(f"{TEMP_PREFIX}*"), *spool_dir.glob(f"{SPOOL_PREFIX}*")]
        final_check = _xdsi_check(server, "--grace", "0")
        large_file.unlink()
        return Outcome(submitted, registered, retrieved, leftovers, repair, final_check)
    finally:
        server.stop()
        if database_url is not None:
            drop_pg_database(database_url)


def _registered(outcome: Outcome, submitted: Submitted) -> list[bool]:
    listed = outcome.registered[submitted.patient]
    return [uid in listed for uid in submitted.documents]


def test_kills_interrupted_some_submissions_and_let_others_finish(outcome: Outcome) -> None:
    # the test means something only if the kills hit work in progress
    outcomes = [s.outcome for s in outcome.submitted]
    assert any(o.startswith("error") for o in outcomes), outcomes
    assert any(o == SUCCESS for o in outcomes), outcomes


def test_every_submission_set_is_registered_whole_or_not_at_all(outcome: Outcome) -> None:
    partial = [
        (s.outcome, s.documents)
        for s in outcome.submitted
        if s.documents and len(set(_registered(outcome, s))) > 1
    ]
    assert partial == []


def test_every_submission_answered_success_is_registered(outcome: Outcome) -> None:
    lost = [
        s.documents
        for s in outcome.submitted
        if s.outcome == SUCCESS and not all(_registered(outcome, s))
    ]
    assert lost == []


def test_every_registered_document_is_retrievable_and_hash_correct(outcome: Outcome) -> None:
    wrong = [
        (uid, sha1, outcome.retrieved[uid])
        for s in outcome.submitted
        if s.documents and all(_registered(outcome, s))
        for uid, sha1 in s.documents.items()
        if outcome.retrieved[uid] != sha1
    ]
    assert wrong == []


def test_no_document_of_an_unregistered_submission_is_retrievable(outcome: Outcome) -> None:
    stored = [
        uid
        for s in outcome.submitted
        if not any(_registered(outcome, s))
        for uid in s.documents
        if outcome.retrieved[uid] is not None
    ]
    assert stored == []


def test_repair_settles_what_the_kills_left(outcome: Outcome) -> None:
    assert outcome.repair.returncode == 0, outcome.repair.stdout + outcome.repair.stderr


def test_no_temp_file_or_spooled_part_is_left(outcome: Outcome) -> None:
    assert outcome.leftovers == []


def test_registry_repository_and_blobs_are_consistent_after_repair(outcome: Outcome) -> None:
    check = outcome.final_check
    assert check.returncode == 0, check.stdout + check.stderr
