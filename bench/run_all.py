"""Every benchmark scenario in one run: one table, written to ``bench/RESULTS.md``.

    .venv/bin/python bench/run_all.py [--quick] [--only documents,audit]

``--quick`` runs reduced sizes (a 256 MiB document, fewer registrations, queries and
events) when the full run would take too long on a busy machine; the table says so.
A scenario that raises is reported with its error and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from common import Figure, Machine, render_table, write_results

__all__ = ["SCENARIOS", "main"]

# name -> (module, full-size arguments, --quick arguments)
SCENARIOS: dict[str, tuple[str, list[str], list[str]]] = {
    "documents": ("documents", [], ["--size", "256MiB", "--rounds", "2"]),
    "registrations": ("registrations", [], ["--single", "400", "--sets", "10"]),
    "audit": ("audit", [], ["--queries", "600", "--events", "10000"]),
    "imaging": ("imaging", [], ["--instances", "100", "--rounds", "2"]),
    "find_documents": ("find_documents", [], ["--sizes", "10000,100000", "--queries", "400"]),
}


def _arguments(module: object, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-append", action="store_true")
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated names")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    machine = Machine()
    figures: list[Figure] = []
    notes = [f"Sizes: {'reduced (--quick)' if args.quick else 'full'}."]
    for name in args.only.split(","):
        module_name, full, quick = SCENARIOS[name]
        module = importlib.import_module(module_name)
        started = time.monotonic()
        print(f"== {name} ...", flush=True)
        try:
            figures += module.run(_arguments(module, quick if args.quick else full))
        except Exception as exc:  # noqa: BLE001 - one broken scenario does not stop the rest
            traceback.print_exc()
            notes.append(f"- `{name}` did not complete: {type(exc).__name__}: {exc}"[:500])
        notes.append(f"- `{name}`: {time.monotonic() - started:.0f} s")
    machine.finish()
    print(f"\n{machine.describe()}\n\n" + "\n".join(notes) + f"\n\n{render_table(figures)}")
    if not args.no_append:
        write_results("make bench", figures, machine, notes)
    return 0 if all(f.passed is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
