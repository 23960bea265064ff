"""What auditing costs: ITI-18 latency with auditing on and off, and audit throughput.

    .venv/bin/python bench/audit_overhead.py [--queries 2000] [--events 20000]

Needs ``rsyslogd`` with the GnuTLS driver (Debian: rsyslog, rsyslog-gnutls).

Latency: three ``xdsi serve`` processes with the same configuration: ``off``
(``[audit] enabled = false``), ``spool`` (auditing with no destination: events are
only spooled) and ``on`` (auditing to a private rsyslogd over TLS with mutual
authentication, ``--audit tls://...``).  A patient is fed (ITI-8) and given a
document (ITI-41) on each; then FindDocuments (ITI-18) is sent over one kept-alive
connection per server, in alternating blocks so drift hits both alike.  Reported:
median and 90th percentile per server, and the median's relative difference.

Throughput: in this process, an ``Auditor`` on a fresh SQLite spool records ``--events``
ITI-18 outcome records (one audit message each); reported are the rate at which they are
spooled (record -> durable, group commit) and the rate at which the shipper sends them
to rsyslogd over TLS (until rsyslogd has written the last one).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "atna"), str(ROOT / "tests" / "e2e")]

from atna_support import make_pki, stored_query  # noqa: E402
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
BLOCK = 100


def _server(data_dir: Path, audit: str, audit_url: str | None) -> ServerProcess:
    data_dir.mkdir(parents=True)
    (data_dir / "xdsi.toml").write_text(TEST_CONFIG + "\n[audit]\n" + audit, encoding="utf-8")
    if audit_url:
        return AuditedServer(data_dir, audit_url=audit_url).start()
    return ServerProcess(data_dir).start()


def _prepare(server: ServerProcess) -> bytes:
    """A fed patient with one document; the FindDocuments envelope to send."""
    number = new_patient_number()
    send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    peer = XdsPeer(server.base_url, ResponseSchemas())
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


def _block(client: httpx.Client, url: str, envelope: bytes, n: int, into: list[float]) -> None:
    headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'}
    for _ in range(n):
        started = time.perf_counter()
        response = client.post(url, content=envelope, headers=headers)
        into.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text


def latency(work: Path, pki, rsyslog: Rsyslog, queries: int) -> dict[str, list[float]]:  # noqa: ANN001
    tls = f'tls_cert = "{pki.client_cert}"\ntls_key = "{pki.client_key}"\ntls_ca = "{pki.ca}"\n'
    servers = {
        "off": _server(work / "off", "enabled = false\n", None),
        "spool": _server(work / "spool", "", None),  # auditing, no destination: spool only
        "on": _server(work / "on", tls, f"tls://127.0.0.1:{rsyslog.port}"),
    }
    try:
        envelopes = {name: _prepare(server) for name, server in servers.items()}
        times: dict[str, list[float]] = {name: [] for name in servers}
        with httpx.Client(timeout=30) as client:
            for name, server in servers.items():  # warm-up
                _block(client, f"{server.base_url}/xds/registry", envelopes[name], 50, [])
            for _ in range(queries // BLOCK):
                for name, server in servers.items():
                    url = f"{server.base_url}/xds/registry"
                    _block(client, url, envelopes[name], BLOCK, times[name])
        return times
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
    for _ in range(events):
        auditor.record(outcome)
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xdsi-audit-bench-") as temp:
        work = Path(temp)
        (work / "pki").mkdir()
        pki = make_pki(work / "pki")
        (work / "rsyslog").mkdir()
        rsyslog = Rsyslog("/usr/sbin/rsyslogd", work / "rsyslog", pki).start()
        try:
            times = latency(work, pki, rsyslog, args.queries)
            spool_rate, ship_rate = throughput(work, pki, rsyslog, args.events)
        finally:
            rsyslog.stop()
    print(f"ITI-18 FindDocuments, {len(times['on'])} queries per server, one connection")
    for name, values in times.items():
        ordered = sorted(values)
        p90 = ordered[int(len(ordered) * 0.9)]
        print(
            f"  auditing {name:5}: median {statistics.median(values) * 1e3:.2f} ms, "
            f"p90 {p90 * 1e3:.2f} ms"
        )
    off = statistics.median(times["off"])
    for name in ("spool", "on"):
        on = statistics.median(times[name])
        print(
            f"  auditing {name} adds {(on - off) * 1e3:.3f} ms to the median "
            f"({(on / off - 1) * 100:+.1f} %)"
        )
    print(f"audit throughput, {args.events} events (one message each):")
    print(f"  spooled (record -> durable in SQLite): {spool_rate:,.0f} events/s")
    print(f"  shipped to rsyslog over TLS:           {ship_rate:,.0f} events/s")


if __name__ == "__main__":
    asyncio.get_event_loop_policy()  # the auditor runs its own loops on threads
    main()
