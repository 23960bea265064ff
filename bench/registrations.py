"""ITI-42 Register Document Set-b rates on PostgreSQL beside raw inserts of the same rows.

    .venv/bin/python bench/registrations.py [--single 2000] [--sets 40] [--clients 16]
        [--workers N]

A real ``xdsi serve`` on its own PostgreSQL database (created and dropped by the run,
default configuration: auditing on, events spooled in the same database), with as many
worker processes (``--workers``, ``[server] workers``) as the machine has cores, as a
deployment would run it, receives:

1. ``--single`` submissions of one DocumentEntry each from ``--clients`` concurrent
   clients (one kept-alive HTTP connection each, ``common.KeptAlive``);
2. ``--sets`` submission sets of ``--set-size`` DocumentEntries each from
   ``--set-clients`` clients.

The reference is the database doing only the writes: after each phase the rows the
registrations wrote (every table but ``patient``) are read back, grouped by submission
set, and written into a second, freshly migrated database over the same number of
connections, one transaction per submission set:

1. one prepared ``executemany`` per table per submission (psycopg pipeline mode);
2. one ``COPY`` per table per submission set.

So the reference writes exactly the rows, indexes and constraints xdsi writes; the
difference is the protocol, parsing, validation and the ORM.  The same two phases
against a single process (``--workers 1``) are shown beside, for information.
"""

from __future__ import annotations

import argparse
import copy
import os
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from common import Figure, KeptAlive, PgDatabase, higher_is_better, lower_is_better, main_of
from lxml import etree

__all__ = ["multi_document_envelope", "read_submissions", "run"]

TITLE = "ITI-42 registrations on PostgreSQL beside raw inserts of the same rows"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
UNIQUE_ID_SCHEME = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SUBMISSION_TABLES = (
    "submission_set",
    "submission_set_author",
    "document_entry",
    "document_entry_code",
    "document_entry_author",
    "document_entry_reference_id",
    "association",
)


# --- the submissions ---------------------------------------------------------------------


def one_document_envelope(url: str, patient: str) -> bytes:
    from e2e_support import (
        REPOSITORY_UNIQUE_ID,
        TEST_OID_ROOT,
        dtm_now,
        new_id,
        render,
        unique_oid,
    )

    return render(
        "iti42_register.xml",
        message_id=new_id(),
        to=url,
        patient_id=patient,
        ss_unique_id=unique_oid(),
        source_id=TEST_OID_ROOT,
        creation_time=dtm_now(),
        doc_unique_id=unique_oid(),
        mime_type="text/plain",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Benchmark document",
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=0,
        repository_unique_id=REPOSITORY_UNIQUE_ID,
    )


def multi_document_envelope(url: str, patient: str, documents: int) -> bytes:
    """The one-document ITI-42 with its DocumentEntry and HasMember association repeated
    ``documents`` times: symbolic ids and the uniqueId made distinct per copy."""
    from e2e_support import unique_oid

    root = etree.fromstring(one_document_envelope(url, patient))
    objects = root.find(f".//{{{RIM}}}RegistryObjectList")
    assert objects is not None
    entry = objects.find(f"{{{RIM}}}ExtrinsicObject")
    member = objects.find(f"{{{RIM}}}Association")
    assert entry is not None and member is not None
    for n in range(2, documents + 1):
        doc_id = f"Document{n:04d}"
        clone = copy.deepcopy(entry)
        clone.set("id", doc_id)
        for child in clone.iter(f"{{{RIM}}}Classification", f"{{{RIM}}}ExternalIdentifier"):
            child.set("id", f"{child.get('id')}_{n}")
            for ref in ("classifiedObject", "registryObject"):
                if child.get(ref):
                    child.set(ref, doc_id)
            if child.get("identificationScheme") == UNIQUE_ID_SCHEME:
                child.set("value", unique_oid())
        association = copy.deepcopy(member)
        association.set("id", f"as{n:04d}")
        association.set("targetObject", doc_id)
        objects.append(clone)
        objects.append(association)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def send_all(url: str, envelopes: Sequence[bytes], clients: int) -> tuple[float, int]:
    """Sends every envelope from ``clients`` threads (one connection each); (seconds,
    submissions answered with a Failure).  A failure is counted, not retried."""
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for envelope in envelopes:
        work.put(envelope)
    errors: list[str] = []
    headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI42}"'}

    target = urlsplit(url)
    base_url, path = f"{target.scheme}://{target.netloc}", target.path

    def client() -> None:
        with KeptAlive(base_url, 120) as http:
            while True:
                try:
                    envelope = work.get_nowait()
                except queue.Empty:
                    return
                status, answer = http.post(path, envelope, headers)
                if status != 200 or b"ResponseStatusType:Success" not in answer:
                    failures.append(answer[:2000].decode("utf-8", "replace"))

    failures: list[str] = []
    return _timed_threads(client, clients, errors), len(failures)


def _timed_threads(target: Callable[[], None], count: int, errors: list[str]) -> float:
    threads = [threading.Thread(target=target) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"{len(errors)} failures, the first:\n{errors[0]}")
    return seconds


# --- the reference -----------------------------------------------------------------------

Rows = dict[str, list[tuple[Any, ...]]]


def read_submissions(dsn: str) -> tuple[list[str], dict[str, list[str]], list[Rows]]:
    """The rows the registrations wrote, grouped by submission set: (tables in insert
    order, their columns, one {table: rows} per submission set)."""
    import psycopg

    groups: dict[str, Rows] = defaultdict(lambda: defaultdict(list))
    columns: dict[str, list[str]] = {}
    with psycopg.connect(dsn) as conn:
        ss_uuid = dict(conn.execute("SELECT id, entry_uuid FROM submission_set").fetchall())
        entry_ss = dict(conn.execute("SELECT id, submission_set_uuid FROM document_entry"))
        key_of: dict[str, Callable[[dict[str, Any]], str]] = {
            "submission_set": lambda r: r["entry_uuid"],
            "submission_set_author": lambda r: ss_uuid[r["submission_set_id"]],
            "document_entry": lambda r: r["submission_set_uuid"],
            "association": lambda r: r["source_uuid"],
        }
        for table in SUBMISSION_TABLES:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY id")
            columns[table] = [c.name for c in cursor.description or ()]
            key = key_of.get(table, lambda r: entry_ss[r["document_entry_id"]])
            for row in cursor:
                groups[key(dict(zip(columns[table], row, strict=True)))][table].append(row)
    return list(SUBMISSION_TABLES), columns, list(groups.values())


def _replay(
    dsn: str,
    tables: list[str],
    columns: dict[str, list[str]],
    submissions: Iterable[Rows],
    clients: int,
    write: Callable[[Any, str, list[str], list[tuple[Any, ...]]], None],
) -> float:
    import psycopg

    work: queue.SimpleQueue[Rows] = queue.SimpleQueue()
    for submission in submissions:
        work.put(submission)
    errors: list[str] = []
    connections = [psycopg.connect(dsn, prepare_threshold=0) for _ in range(clients)]

    def client(conn: Any) -> Callable[[], None]:
        def loop() -> None:
            while True:
                try:
                    submission = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    with conn.transaction(), conn.cursor() as cursor:
                        for table in tables:
                            if submission.get(table):
                                write(cursor, table, columns[table], submission[table])
                except Exception as exc:  # noqa: BLE001 - reported after the run
                    errors.append(repr(exc))
                    return

        return loop

    loops = iter([client(conn) for conn in connections])
    try:
        return _timed_threads(lambda: next(loops)(), clients, errors)
    finally:
        for conn in connections:
            conn.close()


def _executemany(cursor: Any, table: str, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    marks = ", ".join(["%s"] * len(names))
    cursor.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", rows)


def _copy(cursor: Any, table: str, names: list[str], rows: list[tuple[Any, ...]]) -> None:
    from psycopg.types.json import Json

    with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy_:
        for row in rows:
            copy_.write_row([Json(v) if isinstance(v, dict | list) else v for v in row])


def _raw_database(source: PgDatabase, target: PgDatabase) -> None:
    """Migrates ``target`` and gives it ``source``'s patients."""
    import psycopg

    from registry.db import make_engine, upgrade

    engine = make_engine(target.url)
    upgrade(engine)
    engine.dispose()
    with psycopg.connect(source.dsn) as src, psycopg.connect(target.dsn) as dst:
        cursor = src.execute("SELECT * FROM patient")
        names = [c.name for c in cursor.description or ()]
        with dst.cursor() as out:
            _copy(out, "patient", names, cursor.fetchall())


def _truncate(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(f"TRUNCATE {', '.join(SUBMISSION_TABLES)}")


# --- the run -------------------------------------------------------------------------------


class Measured(NamedTuple):
    single_s: float
    single_failed: int
    single_rows: Any
    sets_s: float
    sets_failed: int
    set_rows: Any


def _measure(args: argparse.Namespace, xdsi_db: PgDatabase, workers: int) -> Measured:
    """Both phases against a fresh ``xdsi serve --workers workers`` on ``xdsi_db``."""
    import tempfile

    from large_document import ServerProcess, feed_patient

    with tempfile.TemporaryDirectory(prefix="xdsi-bench-iti42-") as temp:
        server = ServerProcess(
            Path(temp) / "data", database_url=xdsi_db.url, extra_args=["--workers", str(workers)]
        ).start()
        try:
            url = f"{server.base_url}/xds/registry"
            patients = [feed_patient(server) for _ in range(args.clients)]
            for p in patients:  # warm-up, one at a time
                send_all(url, [one_document_envelope(url, p)], 1)
            _truncate(xdsi_db.dsn)
            singles = [
                one_document_envelope(url, patients[n % len(patients)]) for n in range(args.single)
            ]
            single_s, single_failed = send_all(url, singles, args.clients)
            print(f"{args.single} single registrations: {single_s:.1f} s, {single_failed} failed")
            single_rows = read_submissions(xdsi_db.dsn)
            _truncate(xdsi_db.dsn)
            sets = [
                multi_document_envelope(url, patients[n % len(patients)], args.set_size)
                for n in range(args.sets)
            ]
            sets_s, sets_failed = send_all(url, sets, args.set_clients)
            print(f"{args.sets} sets of {args.set_size}: {sets_s:.1f} s, {sets_failed} failed")
            set_rows = read_submissions(xdsi_db.dsn)
        except Exception:
            print(server.log()[-6000:])
            raise
        finally:
            server.stop()
    return Measured(single_s, single_failed, single_rows, sets_s, sets_failed, set_rows)


def run(args: argparse.Namespace) -> list[Figure]:
    with PgDatabase() as xdsi_db, PgDatabase() as raw_db:
        one = _measure(args, xdsi_db, 1) if args.workers > 1 else None
        print(f"--- {args.workers} workers")
        single_s, single_failed, single_rows, sets_s, sets_failed, set_rows = _measure(
            args, xdsi_db, args.workers
        )
        _raw_database(xdsi_db, raw_db)
        # the reference writes what xdsi stored (the failed submissions left no rows)
        raw_s = _replay(raw_db.dsn, *single_rows, args.clients, _executemany)
        _truncate(raw_db.dsn)
        copy_s = _replay(raw_db.dsn, *set_rows, args.set_clients, _copy)
    documents = (args.sets - sets_failed) * args.set_size
    stored = args.single - single_failed
    shape = f"{args.workers} workers" if args.workers > 1 else "1 process"
    compared = []
    if one is not None:  # for information: the same load on one process
        compared = [
            higher_is_better(
                f"ITI-42 1 document each, {args.clients} clients, 1 process",
                (args.single - one.single_failed) / one.single_s,
                stored / raw_s,
                "registrations/s",
                reference_name="executemany",
            ),
            higher_is_better(
                f"ITI-42 {args.set_size}-document sets, {args.set_clients} clients, 1 process",
                (args.sets - one.sets_failed) * args.set_size / one.sets_s,
                documents / copy_s,
                "documents/s",
                reference_name="COPY",
            ),
        ]
    return [
        higher_is_better(
            f"ITI-42 1 document each, {args.clients} clients, {shape}", stored / single_s,
            stored / raw_s, "registrations/s", min_ratio=0.3, min_value=300,
            reference_name="executemany",
        ),
        higher_is_better(
            f"ITI-42 {args.set_size}-document sets, {args.set_clients} clients, {shape}",
            documents / sets_s, documents / copy_s, "documents/s", min_value=2000,
            reference_name="COPY",
        ),
        *compared,
        lower_is_better(
            f"ITI-42 1 document each, {args.clients} clients: failed", single_failed, None,
            "submissions", max_value=1,
        ),
        lower_is_better(
            f"ITI-42 {args.set_size}-document sets: failed", sets_failed, None, "submissions",
            max_value=1,
        ),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--single", type=int, default=2000, help="one-document submissions")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--sets", type=int, default=40, help="multi-document submissions")
    parser.add_argument("--set-size", type=int, default=100)
    parser.add_argument("--set-clients", type=int, default=4)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="xdsi serve --workers (default: the machine's cores)",
    )  # fmt: skip


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
