"""Audit events shipped to rsyslog over TLS, and ITI-18 latency with auditing on vs off.

    .venv/bin/python bench/audit.py [--queries 2000] [--events 20000]

The measurement is ``bench/audit_overhead.py``'s (a private rsyslogd with mutual TLS,
three ``xdsi serve`` processes: auditing off, spooled only, shipped over TLS); this
script turns it into figures beside their targets.
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
            times, _cpu = latency(work, pki, rsyslog, args.queries)
            _spooled, shipped = throughput(work, pki, rsyslog, args.events)
        finally:
            rsyslog.stop()
    on, off = (statistics.median(times[k]) * 1e3 for k in ("on", "off"))
    return [
        higher_is_better(
            "audit events shipped to rsyslog over TLS", shipped, None, "events/s",
            min_value=5000,
        ),
        lower_is_better(
            "ITI-18 median latency, auditing on (TLS)", on, off, "ms", max_ratio=1.05,
            reference_name="auditing off",
        ),
        lower_is_better(
            "ITI-18 median latency, auditing on, spool_sync=normal",
            statistics.median(times["on-normal"]) * 1e3, off, "ms", max_ratio=1.05,
            reference_name="auditing off",
        ),
        lower_is_better(
            "ITI-18 p90 latency, auditing on (TLS)", percentile(times["on"], 90) * 1e3,
            percentile(times["off"], 90) * 1e3, "ms", reference_name="auditing off",
        ),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--events", type=int, default=20000)


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
