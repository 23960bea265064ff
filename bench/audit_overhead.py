"""What auditing costs: ITI-18 latency with auditing on and off, and audit throughput.

    .venv/bin/python bench/audit_overhead.py [--queries 2000] [--events 20000] [--baseline REF]

Needs ``rsyslogd`` with the GnuTLS driver (Debian: rsyslog, rsyslog-gnutls).

Latency: four ``xdsi serve`` processes with the same configuration: ``off``
(``[audit] enabled = false``), ``spool`` (auditing with no destination: events are
only spooled), ``on`` (auditing to a private rsyslogd over TLS with mutual
authentication, ``--audit tls://...``) and ``on-normal`` (the same with
``[audit] spool_sync = "normal"``: no fsync per commit).  A patient is fed (ITI-8) and given a
document (ITI-41) on each; then FindDocuments (ITI-18) is sent over one kept-alive
connection per server, in alternating blocks so drift hits all alike.  Reported:
median and 90th percentile per server, the median's relative difference, and the CPU
time each server process spent per query (all its threads: the request, the audit
writer, the shipper), which a busy machine disturbs far less than latency.

``--baseline REF`` adds a fourth server, ``on@REF``: the same ``on`` configuration
running the code of the git commit REF (exported with ``git archive``, read-only), so
that a change is measured against its predecessor on the same machine in the same run.

Throughput: in this process, an ``Auditor`` on a fresh SQLite spool records ``--events``
ITI-18 outcome records (one audit message each) from 16 threads; reported are the rate
at which they are spooled (record -> durable, group commit) and the rate at which the
shipper sends them to rsyslogd over TLS (until rsyslogd has written the last one).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "atna"), str(ROOT / "tests" / "e2e")]

from atna_support import make_pki, stored_query  # noqa: E402
from common import KeptAlive  # noqa: E402
from e2e_support import (  # noqa: E402
    TEST_CONFIG,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    adt_a01,
    new_patient_number,
    patient_cx,
    render,
    send_mllp,
)
from test_audit import AuditedServer, Rsyslog  # noqa: E402

from atna.auditor import Auditor  # noqa: E402
from atna.events import Side  # noqa: E402
from atna.spool import AuditSpool, default_url  # noqa: E402
from atna.syslog import TlsConfig  # noqa: E402

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
START_TIMEOUT = 120.0  # seconds; a busy machine starts servers slowly
RECORDING_THREADS = 16  # threads recording events at once in the throughput run
BLOCK = 20  # queries per server in turn: small, so load changes hit every server


def export_tree(ref: str, into: Path) -> Path:
    """The source tree of commit ``ref`` (``git archive``: reads the repository only)."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _server(
    data_dir: Path, audit: str, audit_url: str | None, root: Path | None = None
) -> ServerProcess:
    data_dir.mkdir(parents=True)
    (data_dir / "xdsi.toml").write_text(TEST_CONFIG + "\n[audit]\n" + audit, encoding="utf-8")
    tree = {"root": root} if root is not None else {}
    if audit_url:
        return AuditedServer(data_dir, audit_url=audit_url, **tree).start(START_TIMEOUT)
    return ServerProcess(data_dir, **tree).start(START_TIMEOUT)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` and all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prepare(server: ServerProcess, entries: int = 1) -> bytes:
    """A fed patient with ``entries`` documents; the FindDocuments envelope to send."""
    number = new_patient_number()
    send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    peer = XdsPeer(server.base_url, ResponseSchemas())
    for _ in range(entries):
        peer.provide(patient_cx(number), [("text/plain", b"bench\n")])
    peer.close()
    return render(
        "iti18_find_documents.xml",
        message_id="urn:uuid:00000000-0000-4000-8000-000000000000",
        to=f"{server.base_url}/xds/registry",
        return_type="LeafClass",
        patient_id=patient_cx(number),
        statuses="'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved'",
    )


def _block(client: KeptAlive, envelope: bytes, n: int, into: list[float]) -> None:
    headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'}
    for _ in range(n):
        started = time.perf_counter()
        status, answer = client.post("/xds/registry", envelope, headers)
        into.append(time.perf_counter() - started)
        assert status == 200, answer[:3000]


def latency(
    work: Path,
    pki,  # noqa: ANN001
    rsyslog: Rsyslog,
    queries: int,
    baseline: tuple[str, Path] | None = None,
    entries: int = 1,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Per server: the query times, and the CPU seconds its process spent per query;
    the query finds ``entries`` DocumentEntries."""
    tls = f'tls_cert = "{pki.client_cert}"\ntls_key = "{pki.client_key}"\ntls_ca = "{pki.ca}"\n'
    audit_url = f"tls://127.0.0.1:{rsyslog.port}"
    servers = {
        "off": _server(work / "off", "enabled = false\n", None),
        "spool": _server(work / "spool", "", None),  # auditing, no destination: spool only
        "on": _server(work / "on", tls, audit_url),
        "on-normal": _server(work / "on-normal", tls + 'spool_sync = "normal"\n', audit_url),
    }
    if baseline is not None:
        ref, root = baseline
        servers[f"on@{ref}"] = _server(work / "on-baseline", tls, audit_url, root)
    try:
        envelopes = {name: _prepare(server, entries) for name, server in servers.items()}
        times: dict[str, list[float]] = {name: [] for name in servers}
        pids = {name: server.process.pid for name, server in servers.items() if server.process}
        # one kept-alive connection per server (common.KeptAlive: httpx's own CPU per
        # exchange was several times the audit's)
        clients = {name: KeptAlive(server.base_url, 30) for name, server in servers.items()}
        try:
            for name in servers:  # warm-up
                _block(clients[name], envelopes[name], 50, [])
            time.sleep(1.0)  # let the warm-up's audit messages be spooled and shipped
            started = {name: cpu_seconds(pid) for name, pid in pids.items()}
            for _ in range(queries // BLOCK):
                for name in servers:
                    _block(clients[name], envelopes[name], BLOCK, times[name])
            time.sleep(1.0)  # the audit work of the last queries is counted too
        finally:
            for client in clients.values():
                client.close()
        per_query = {
            name: (cpu_seconds(pid) - started[name]) / len(times[name])
            for name, pid in pids.items()
        }
        return times, per_query
    finally:
        for server in servers.values():
            server.stop()


def throughput(work: Path, pki, rsyslog: Rsyslog, events: int) -> tuple[float, float]:  # noqa: ANN001
    """(events/s spooled, events/s shipped to rsyslog over TLS)."""
    spool = AuditSpool.open(default_url(work))
    auditor = Auditor(
        spool,
        [f"tls://127.0.0.1:{rsyslog.port}"],
        "xdsi-bench",
        tls=TlsConfig(pki.client_cert, pki.client_key, pki.ca),
    )
    outcome = stored_query(Side.RESPONDER)
    before = len(rsyslog.messages())
    started = time.perf_counter()
    # as request threads do: each record() durable when it returns, concurrent callers
    # sharing commits (atna.group_commit)
    with ThreadPoolExecutor(RECORDING_THREADS) as pool:
        list(pool.map(lambda _: auditor.record(outcome), range(events)))
    auditor.flush()
    spooled = time.perf_counter() - started
    started = time.perf_counter()
    auditor.start()
    while len(rsyslog.messages()) < before + events:
        time.sleep(0.05)
    shipped = time.perf_counter() - started
    auditor.stop()
    spool.engine.dispose()
    return events / spooled, events / shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--baseline", metavar="REF", help="also run commit REF's code")
    parser.add_argument("--entries", type=int, default=1, help="documents the query finds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xdsi-audit-bench-") as temp:
        work = Path(temp)
        (work / "pki").mkdir()
        pki = make_pki(work / "pki")
        (work / "rsyslog").mkdir()
        baseline = None
        if args.baseline:
            baseline = (args.baseline, export_tree(args.baseline, work / "baseline"))
        rsyslog = Rsyslog("/usr/sbin/rsyslogd", work / "rsyslog", pki).start()
        try:
            times, cpu = latency(work, pki, rsyslog, args.queries, baseline, args.entries)
            spool_rate, ship_rate = throughput(work, pki, rsyslog, args.events)
        finally:
            rsyslog.stop()
    print(
        f"ITI-18 FindDocuments finding {args.entries} entries, "
        f"{len(times['on'])} queries per server, one connection"
    )
    print(
        f"  {'auditing':14} {'median':>9} {'p90':>9} {'vs off':>8} {'CPU/query':>10} {'vs off':>8}"
    )
    off, off_cpu = statistics.median(times["off"]), cpu["off"]
    for name, values in times.items():
        ordered = sorted(values)
        median = statistics.median(values)
        p90 = ordered[int(len(ordered) * 0.9)]
        print(
            f"  {name:14} {median * 1e3:6.2f} ms {p90 * 1e3:6.2f} ms {median / off:7.3f}x "
            f"{cpu[name] * 1e3:7.2f} ms {cpu[name] / off_cpu:7.3f}x"
        )
    print(f"audit throughput, {args.events} events (one message each):")
    print(f"  spooled (record -> durable in SQLite): {spool_rate:,.0f} events/s")
    print(f"  shipped to rsyslog over TLS:           {ship_rate:,.0f} events/s")


if __name__ == "__main__":
    asyncio.get_event_loop_policy()  # the auditor runs its own loops on threads
    main()
