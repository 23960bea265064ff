"""``xdsi bench load``: fill a registry database with synthetic, registered-looking
entries (``registry.bulk_load``) for benchmarks at 10^4 to 10^6 entries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from xdsi.config import load_config


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmark tools")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    p = bsub.add_parser(
        "load",
        help="bulk-load synthetic DocumentEntries into a registry database "
        "(COPY on PostgreSQL); refuses a registry that has entries unless --append",
    )
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default ./data)")
    p.add_argument("--config", type=Path, default=None, help="TOML file")
    p.add_argument("--database", help="SQLAlchemy URL ([database] url)")
    p.add_argument("--entries", type=int, required=True, help="DocumentEntries to load")
    p.add_argument(
        "--patients", type=int, default=None, help="patients sharing them (default entries/10)"
    )
    p.add_argument(
        "--probe-entries", type=int, default=100,
        help="entries of the first patient, the one benchmarks query (default 100)",
    )  # fmt: skip
    p.add_argument(
        "--entries-per-submission", type=int, default=10,
        help="DocumentEntries per SubmissionSet (default 10)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="same seed, same entries (default 0)")
    p.add_argument("--append", action="store_true", help="add to a registry that has entries")
    p.set_defaults(run=bench_load)


def bench_load(args: argparse.Namespace) -> int:
    from registry import db as registry_db
    from registry.bulk_load import LoadPlan, RegistryNotEmpty, load
    from xdsi.serve import _sqlalchemy_url as database_url

    if args.entries < 1 or (args.patients is not None and args.patients < 1):
        print("xdsi: --entries and --patients must be positive", file=sys.stderr)
        return 2
    config = load_config(args.data_dir, args.config, {"database": {"url": args.database}})
    plan = LoadPlan(
        entries=args.entries,
        affinity_domain=config.registry.affinity_domain,
        repository_unique_id=config.repository.repository_unique_id,
        source_id=config.oid_root,
        patients=args.patients,
        probe_entries=args.probe_entries,
        entries_per_submission=args.entries_per_submission,
        seed=args.seed,
    )
    engine = registry_db.make_engine(database_url(config.database.url))
    try:
        registry_db.upgrade(engine)
        report = load(
            engine,
            plan,
            append=args.append,
            progress=lambda n: print(f"{n} entries", file=sys.stderr, flush=True),
        )
    except RegistryNotEmpty as exc:
        print(f"xdsi: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"loaded {report.entries} DocumentEntries, {report.submission_sets} SubmissionSets, "
        f"{report.patients} new patients in {report.seconds:.1f} s "
        f"({report.entries_per_second:,.0f} entries/s)"
    )
    print(f"probe patient ({plan.entries_of()[0]} entries): {report.probe_patient}")
    return 0


__all__ = ["add_parser", "bench_load"]
