"""What every benchmark scenario shares: the figure row, the machine, the results page.

A scenario returns a list of :class:`Figure`: the xdsi value beside a reference value
measured in the same run, the ratio the target is expressed in, and whether the target
is met.  :func:`render_table` prints them; :func:`write_results` writes the table and
the machine description (:class:`Machine`, taken at the start and at the end of the run
so the load average shows how busy the shared machine was) to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import http.client
import os
import platform
import select
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = REPO_ROOT / "bench" / "RESULTS.md"
PG_ADMIN = os.environ.get("XDSI_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

for _path in (REPO_ROOT, REPO_ROOT / "tests" / "e2e"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

__all__ = [
    "PG_ADMIN",
    "REPO_ROOT",
    "RESULTS_MD",
    "Figure",
    "KeptAlive",
    "Machine",
    "PgDatabase",
    "free_port",
    "higher_is_better",
    "lower_is_better",
    "percentile",
    "render_table",
    "write_results",
]


# --- figures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One row of the results table.

    ``ratio`` is xdsi / reference (None when there is no reference); ``passed`` is None
    for a figure shown for information only.
    """

    name: str
    xdsi: float
    reference: float | None
    unit: str
    target: str
    passed: bool | None
    reference_name: str = ""

    @property
    def ratio(self) -> float | None:
        if self.reference is None or not self.reference:
            return None
        return self.xdsi / self.reference

    def cells(self) -> tuple[str, ...]:
        ref = "-" if self.reference is None else f"{_num(self.reference)} {self.reference_name}"
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}x"
        verdict = {True: "pass", False: "FAIL", None: "-"}[self.passed]
        return (
            f"{self.name} ({self.unit})",
            _num(self.xdsi),
            ref.strip(),
            ratio,
            self.target or "-",
            verdict,
        )


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def higher_is_better(
    name: str,
    xdsi: float,
    reference: float | None,
    unit: str,
    *,
    min_ratio: float | None = None,
    min_value: float | None = None,
    reference_name: str = "",
) -> Figure:
    """A rate: met when xdsi >= ``min_ratio`` x reference and >= ``min_value``."""
    checks, target = [], []
    if min_ratio is not None and reference:
        checks.append(xdsi >= min_ratio * reference)
        target.append(f">= {min_ratio}x")
    if min_value is not None:
        checks.append(xdsi >= min_value)
        target.append(f">= {_num(min_value)} {unit}")
    return Figure(
        name, xdsi, reference, unit, ", ".join(target), all(checks) if checks else None,
        reference_name,
    )  # fmt: skip


def lower_is_better(
    name: str,
    xdsi: float,
    reference: float | None,
    unit: str,
    *,
    max_ratio: float | None = None,
    max_value: float | None = None,
    reference_name: str = "",
) -> Figure:
    """A time or a size: met when xdsi <= ``max_ratio`` x reference and < ``max_value``."""
    checks, target = [], []
    if max_ratio is not None and reference:
        checks.append(xdsi <= max_ratio * reference)
        target.append(f"<= {max_ratio}x")
    if max_value is not None:
        checks.append(xdsi < max_value)
        target.append(f"< {_num(max_value)} {unit}")
    return Figure(
        name, xdsi, reference, unit, ", ".join(target), all(checks) if checks else None,
        reference_name,
    )  # fmt: skip


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


HEADER = ("figure", "xdsi", "reference", "ratio", "target", "result")


def render_table(figures: Sequence[Figure]) -> str:
    """A Markdown table (readable as plain text too)."""
    rows = [HEADER, *(figure.cells() for figure in figures)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


# --- the machine -----------------------------------------------------------------------


def _first_line(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    return out.strip().splitlines()[-1] if out.strip() else "?"


def _field(path: str, key: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def _disk(path: Path) -> str:
    source = _first_line("findmnt", "-no", "SOURCE,FSTYPE", "-T", str(path))
    device = Path(source.split()[0]).name if source != "?" else ""
    rotational = Path(f"/sys/block/{device}/queue/rotational")
    kind = "unknown kind"
    if rotational.exists():
        kind = "rotational" if rotational.read_text().strip() == "1" else "non-rotational"
    return f"{source} ({kind})"


def _postgres_version() -> str:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0]}" if row else "?"
    except Exception as exc:  # noqa: BLE001 - the description says why
        return f"PostgreSQL unreachable ({type(exc).__name__})"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Machine:
    """The machine a run measured, with the load average at its start and end."""

    nproc: str = field(default_factory=lambda: _first_line("nproc"))
    cpu: str = field(default_factory=lambda: _field("/proc/cpuinfo", "model name"))
    memory: str = field(default_factory=lambda: _field("/proc/meminfo", "MemTotal"))
    disk: str = field(default_factory=lambda: _disk(Path(os.environ.get("TMPDIR", "/tmp"))))
    python: str = field(default_factory=platform.python_version)
    kernel: str = field(default_factory=lambda: f"{platform.system()} {platform.release()}")
    postgres: str = field(default_factory=_postgres_version)
    load_start: str = field(default_factory=load_average)
    load_end: str = ""

    def finish(self) -> None:
        self.load_end = load_average()

    def describe(self) -> str:
        return "\n".join(
            [
                f"- CPU: `nproc` {self.nproc}, {self.cpu}",
                f"- memory: {self.memory}",
                f"- disk (temp files): {self.disk}",
                f"- Python {self.python}, {self.kernel}, {self.postgres}",
                f"- load average (1/5/15 min) at start: {self.load_start}; "
                f"at end: {self.load_end or load_average()}",
            ]
        )


def write_results(
    title: str,
    figures: Sequence[Figure],
    machine: Machine,
    notes: Sequence[str] = (),
    path: Path = RESULTS_MD,
) -> None:
    """Appends a dated section (newest last) to ``path``."""
    if not path.exists():
        path.write_text(
            "# xdsi benchmarks\n\nAppended by `make bench` and the `bench/` scripts, newest "
            "last.  Every reference is measured in the same run on the same machine.\n",
            encoding="utf-8",
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [f"\n## {stamp}: {title}\n", machine.describe(), ""]
    body += [*notes, ""] if notes else []
    body += [render_table(figures), ""]
    with path.open("a", encoding="utf-8") as out:
        out.write("\n".join(body))


# --- peers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KeptAlive:
    """The benchmarks' HTTP/1.1 client for whole requests and answers: one kept-alive
    connection (the standard library's ``http.client``); a connection the server
    closed while idle is opened again before the next request.

    On the 2-core machine of RESULTS.md, httpx (the tests' client) spent 1.8 ms of CPU
    on a FindDocuments with an empty answer and 3.8 ms on one of 640 KB, against 0.5
    and 0.8 ms for ``http.client``, in the same run.  The client shares the cores with
    the server and PostgreSQL, so that was the client's own time counted in xdsi's
    figures, where the references (psycopg over libpq) spend next to nothing."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        scheme, _, rest = base_url.partition("://")
        if scheme != "http":
            raise ValueError(f"not an http:// URL: {base_url!r}")
        host, _, port = rest.rstrip("/").partition(":")
        self._connection = http.client.HTTPConnection(host, int(port or 80), timeout=timeout)

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        """POST ``body`` to ``path``; (HTTP status, the whole answer).  A kept-alive
        connection that turns out closed before any answer came is opened again and the
        request sent once more (the server closed it unread: nothing was done)."""
        reused = self._connection.sock is not None and not self._closed_while_idle()
        try:
            return self._exchange(path, body, headers)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused:
                raise
            self._connection.close()
            return self._exchange(path, body, headers)

    def _exchange(self, path: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, bytes]:
        self._connection.request("POST", path, body=body, headers=dict(headers))
        response = self._connection.getresponse()
        return response.status, response.read()

    def _closed_while_idle(self) -> bool:
        """Whether the idle connection is readable - the server closed it (or broke the
        protocol) - and so was closed here, to be opened again by the next request."""
        sock = self._connection.sock
        if sock is None or not select.select([sock], [], [], 0)[0]:
            return False
        self._connection.close()
        return True

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> KeptAlive:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass
class PgDatabase:
    """A throwaway PostgreSQL database of this run (created on enter, dropped on exit)."""

    name: str = field(default_factory=lambda: f"xdsi_bench_{uuid.uuid4().hex[:12]}")
    admin_url: str = PG_ADMIN

    @property
    def url(self) -> str:
        """The SQLAlchemy URL."""
        base = self.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        return f"{base}/{self.name}"

    @property
    def dsn(self) -> str:
        """The libpq URL (psycopg)."""
        return f"{self.admin_url.rsplit('/', 1)[0]}/{self.name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql)

    def __enter__(self) -> PgDatabase:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *_exc: object) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def main_of(
    title: str, run: Callable[..., list[Figure]], parser_setup: Callable[..., None] | None = None
) -> Callable[[list[str] | None], int]:
    """A ``main`` for a scenario script: parse, run, print the table, append RESULTS.md."""
    import argparse

    def main(argv: list[str] | None = None) -> int:
        parser = argparse.ArgumentParser(description=title)
        parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
        if parser_setup:
            parser_setup(parser)
        args = parser.parse_args(argv)
        machine = Machine()
        figures = run(args)
        machine.finish()
        print(f"\n{machine.describe()}\n\n{render_table(figures)}")
        if not args.no_append:
            write_results(title, figures, machine)
        return 0 if all(f.passed is not False for f in figures) else 1

    return main
