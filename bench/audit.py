"""Audit events shipped to rsyslog over TLS, and ITI-18 latency with auditing on vs off.

    .venv/bin/python bench/audit.py [--queries 2000] [--events 20000] [--entries 1,100]

The measurement is ``bench/audit_overhead.py``'s (a private rsyslogd with mutual TLS,
``xdsi serve`` processes with auditing off, spooled only, shipped over TLS with
``spool_sync`` full and normal); this script turns it into figures beside their
targets.  The latency is measured for each ``--entries``: a FindDocuments finding one
DocumentEntry (the least work a query does, so auditing's fixed cost weighs most) and
one finding 100 (the patient of the ITI-18 scenario of ``bench/find_documents.py``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from common import Figure, higher_is_better, lower_is_better, main_of, percentile

__all__ = ["run"]

TITLE = "ATNA: audit shipping rate and ITI-18 latency with auditing on vs off"


def run(args: argparse.Namespace) -> list[Figure]:
    from audit_overhead import Rsyslog, latency, make_pki, throughput

    with tempfile.TemporaryDirectory(prefix="xdsi-bench-audit-") as temp:
        work = Path(temp)
        (work / "pki").mkdir()
        pki = make_pki(work / "pki")
        (work / "rsyslog").mkdir()
        rsyslog = Rsyslog("/usr/sbin/rsyslogd", work / "rsyslog", pki).start()
        try:
            latencies = {
                entries: latency(work / f"e{entries}", pki, rsyslog, args.queries, None, entries)[0]
                for entries in (int(n) for n in args.entries.split(","))
            }
            _spooled, shipped = throughput(work, pki, rsyslog, args.events)
        finally:
            rsyslog.stop()
    figures = [
        higher_is_better(
            "audit events shipped to rsyslog over TLS", shipped, None, "events/s",
            min_value=5000,
        ),
    ]  # fmt: skip
    for entries, times in latencies.items():
        query = f"ITI-18 finding {entries} {'entry' if entries == 1 else 'entries'}"
        on, off = (statistics.median(times[k]) * 1e3 for k in ("on", "off"))
        figures += [
            lower_is_better(
                f"{query}, median latency, auditing on (TLS)", on, off, "ms", max_ratio=1.05,
                reference_name="auditing off",
            ),
            lower_is_better(
                f"{query}, median latency, auditing on, spool_sync=normal",
                statistics.median(times["on-normal"]) * 1e3, off, "ms", max_ratio=1.05,
                reference_name="auditing off",
            ),
            lower_is_better(
                f"{query}, p90 latency, auditing on (TLS)", percentile(times["on"], 90) * 1e3,
                percentile(times["off"], 90) * 1e3, "ms", reference_name="auditing off",
            ),
        ]  # fmt: skip
    return figures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--entries", default="1,100", help="entries the query finds, each")


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
