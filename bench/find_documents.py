"""ITI-18 FindDocuments latency at 10k, 100k and 1M registered entries, beside the bare SQL.

    .venv/bin/python bench/find_documents.py [--sizes 10000,100000,1000000] [--queries 1000]
        [--baseline REF]

For each size, a PostgreSQL database of its own (created and dropped by the run) is
filled by the bulk loader (``registry.bulk_load``, what ``xdsi bench load`` runs):
one patient per 10 entries, the probe patient with 100, entries of every patient
scattered over the table.  The load time is recorded; then ``ANALYZE``, a real
``xdsi serve`` on that database, and FindDocuments (ITI TF-2 3.18.4.1.2.3.7.1: the probe
patient, status Approved, returnType LeafClass, 100 entries answered) sent over one
kept-alive HTTP connection by the standard library's client (``common.KeptAlive``: httpx
spent more CPU reading the 640 KB answer than the server spent answering).

The reference, in the same run and on the same database: the statement the registry
runs for that query (``registry.stored_query.query_statement`` compiled for
PostgreSQL, the same limit) executed directly with psycopg over one connection and
fetched whole (xml included) in the binary format the registry asks for.  Both are timed in alternating blocks so load changes on
the shared machine hit both.  ``--baseline REF`` adds a third in turn: a server running
the code of git commit REF (``git archive``) on the same database, so that a change is
measured beside its predecessor in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    Figure,
    KeptAlive,
    PgDatabase,
    higher_is_better,
    lower_is_better,
    main_of,
    percentile,
)

__all__ = ["run"]

TITLE = "ITI-18 FindDocuments at 10k / 100k / 1M entries beside the bare SQL"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
EXTRINSIC_OBJECT = b"<rim:ExtrinsicObject "
BLOCK = 20  # queries per side in turn
PROBE_ENTRIES = 100
MAX_RESULTS = 1000  # [registry] max_results of the default configuration


def load_registry(database: PgDatabase, entries: int) -> tuple[str, float]:
    """Migrates and bulk-loads ``database``; (probe patient, seconds)."""
    from e2e_support import AFFINITY_DOMAIN, REPOSITORY_UNIQUE_ID, TEST_OID_ROOT

    from registry.bulk_load import LoadPlan, load
    from registry.db import make_engine, upgrade

    engine = make_engine(database.url)
    try:
        upgrade(engine)
        plan = LoadPlan(
            entries=entries,
            affinity_domain=AFFINITY_DOMAIN,
            repository_unique_id=REPOSITORY_UNIQUE_ID,
            source_id=TEST_OID_ROOT,
            probe_entries=PROBE_ENTRIES,
        )
        report = load(engine, plan)
    finally:
        engine.dispose()
    return report.probe_patient, report.seconds


def analyze(database: PgDatabase) -> None:
    import psycopg

    with psycopg.connect(database.dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")


def bare_sql(envelope: bytes, max_results: int) -> tuple[str, dict[str, object]]:
    """The statement the registry runs for the FindDocuments in ``envelope`` (its
    parameters parsed as the registry parses them), compiled for psycopg."""
    from lxml import etree
    from sqlalchemy.dialects import postgresql

    from ebxml.query import parse_stored_query
    from ebxml.vocabulary import Transaction
    from ebxml.wire import parse_adhoc_query_request
    from registry.queries import QUERIES
    from registry.stored_query import query_statement

    body = etree.fromstring(envelope).find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert body is not None
    request = parse_adhoc_query_request(body[0])
    params = parse_stored_query(request, Transaction.ITI18).params
    assert params is not None
    statement = query_statement(QUERIES[request.query_id], params, object_refs=False)
    compiled = statement.limit(max_results + 1).compile(
        dialect=postgresql.psycopg.dialect(), compile_kwargs={"render_postcompile": True}
    )
    return str(compiled), dict(compiled.params)


def timed(call: Callable[[], None], count: int, into: list[float]) -> None:
    for _ in range(count):
        started = time.perf_counter()
        call()
        into.append(time.perf_counter() - started)


@dataclass
class Measured:
    """Query times (seconds) of xdsi, of the bare SQL and of the baseline tree's xdsi
    (empty without one); CPU seconds per query of each server."""

    xdsi: list[float] = field(default_factory=list)
    sql: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    cpu: float = 0.0
    baseline_cpu: float = 0.0


def measure(
    database: PgDatabase, patient: str, queries: int, baseline: Path | None = None
) -> Measured:
    """FindDocuments through ``xdsi serve`` (and through a server of the ``baseline``
    source tree, on the same database) and the bare SQL, in turn."""
    import psycopg
    from audit_overhead import cpu_seconds
    from e2e_support import ServerProcess, new_id, render

    with tempfile.TemporaryDirectory(prefix="xdsi-bench-find-") as temp:
        server = ServerProcess(Path(temp) / "data", database_url=database.url).start(60)
        old = None
        if baseline is not None:
            old = ServerProcess(Path(temp) / "old", database_url=database.url, root=baseline)
            old.start(60)
        try:
            url = f"{server.base_url}/xds/registry"
            envelope = render(
                "iti18_find_documents.xml", message_id=new_id(), to=url,
                return_type="LeafClass", patient_id=patient, statuses=f"'{APPROVED}'",
            )  # fmt: skip
            headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'}
            sql, values = bare_sql(envelope, MAX_RESULTS)
            with (
                contextlib.ExitStack() as clients,
                psycopg.connect(database.dsn, autocommit=True) as conn,
            ):
                http = clients.enter_context(KeptAlive(server.base_url))
                old_http = clients.enter_context(KeptAlive(old.base_url)) if old else None

                def find_at(client: KeptAlive) -> Callable[[], None]:
                    def find() -> None:
                        _, answer = client.post("/xds/registry", envelope, headers)
                        if answer.count(EXTRINSIC_OBJECT) != PROBE_ENTRIES:
                            raise RuntimeError(f"unexpected answer: {answer[:3000]!r}")

                    return find

                find = find_at(http)
                find_old = find_at(old_http) if old_http else None

                def select() -> None:
                    # results in the binary format, as the registry fetches them
                    rows = conn.execute(sql, values, binary=True).fetchall()
                    if len(rows) != PROBE_ENTRIES:
                        raise RuntimeError(f"the bare SQL returned {len(rows)} rows")

                timed(find, 50, [])  # warm-up: caches, prepared statements
                timed(select, 50, [])
                if find_old:
                    timed(find_old, 50, [])
                measured = Measured()
                assert server.process is not None
                pid = server.process.pid
                old_pid = old.process.pid if old and old.process else None
                cpu_start = cpu_seconds(pid)
                old_start = cpu_seconds(old_pid) if old_pid else 0.0
                for _ in range(max(1, queries // BLOCK)):
                    timed(find, BLOCK, measured.xdsi)
                    timed(select, BLOCK, measured.sql)
                    if find_old:
                        timed(find_old, BLOCK, measured.baseline)
                measured.cpu = (cpu_seconds(pid) - cpu_start) / len(measured.xdsi)
                if old_pid:
                    used = cpu_seconds(old_pid) - old_start
                    measured.baseline_cpu = used / len(measured.baseline)
        except Exception:
            print(server.log()[-6000:])
            raise
        finally:
            server.stop()
            if old:
                old.stop()
    return measured


def run(args: argparse.Namespace) -> list[Figure]:
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: list[Figure] = []
    p50s: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="xdsi-bench-find-tree-") as trees:
        baseline = None
        if args.baseline:
            from audit_overhead import export_tree

            baseline = export_tree(args.baseline, Path(trees) / "baseline")
        for size in sizes:
            with PgDatabase() as database:
                patient, load_s = load_registry(database, size)
                print(f"{size:,} entries loaded in {load_s:.0f} s ({size / load_s:,.0f}/s)")
                analyze(database)
                measured = measure(database, patient, args.queries, baseline)
            figures += size_figures(size, load_s, measured, args.baseline)
            p50s[size] = percentile(measured.xdsi, 50) * 1e3
    smallest, largest = min(p50s), max(p50s)
    if largest != smallest:
        figures.append(
            lower_is_better(
                f"FindDocuments p50 at {largest:,} vs {smallest:,}", p50s[largest],
                p50s[smallest], "ms", max_ratio=1.5, reference_name=f"at {smallest:,}",
            )
        )  # fmt: skip
    return figures


def size_figures(
    size: int, load_s: float, measured: Measured, baseline: str | None
) -> list[Figure]:
    """The figures of one registry size (and of the baseline tree's server, if any)."""
    from common import load_average

    p50, p99 = percentile(measured.xdsi, 50) * 1e3, percentile(measured.xdsi, 99) * 1e3
    ref50, ref99 = percentile(measured.sql, 50) * 1e3, percentile(measured.sql, 99) * 1e3
    label = f"{size:,} entries"
    print(
        f"{label}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, bare SQL p50 {ref50:.2f} ms, "
        f"p99 {ref99:.2f} ms, server CPU {measured.cpu * 1e3:.2f} ms/query, "
        f"load {load_average()}"
    )
    at_max = size >= 1_000_000
    figures = [
        lower_is_better(
            f"FindDocuments p50, {label}", p50, ref50, "ms", max_ratio=3.0,
            max_value=5.0 if at_max else None, reference_name="bare SQL",
        ),
        lower_is_better(
            f"FindDocuments p99, {label}", p99, ref99, "ms", max_ratio=3.0,
            max_value=25.0 if at_max else None, reference_name="bare SQL",
        ),
        lower_is_better(
            f"FindDocuments server CPU, {label}", measured.cpu * 1e3,
            measured.baseline_cpu * 1e3 if baseline else None, "ms/query",
            reference_name=baseline or "",
        ),
        higher_is_better(f"bulk load, {label}", size / load_s, None, "entries/s"),
    ]  # fmt: skip
    if baseline:
        old50 = percentile(measured.baseline, 50) * 1e3
        figures.append(
            lower_is_better(
                f"FindDocuments p50 beside {baseline}, {label}", p50, old50, "ms",
                reference_name=baseline,
            )
        )  # fmt: skip
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="10000,100000,1000000", help="entries, comma-separated")
    parser.add_argument("--queries", type=int, default=1000, help="FindDocuments per size")
    parser.add_argument(
        "--baseline", metavar="REF", help="also time a server running git commit REF's code"
    )


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
