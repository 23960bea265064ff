"""ITI-41 and ITI-43 of a 1 GiB document beside sha1sum + cp and nginx, in the same run.

    .venv/bin/python bench/documents.py [--size 1GiB] [--rounds 3]

A real ``xdsi serve`` (temp data directory on the same disk as the input file) stores
the document with ITI-41 (a streaming client, ``bench/large_document.py``) and returns
it with ITI-43.  References, same run, same disk:

- ITI-41: ``sha1sum`` then ``cp`` of the input (hash and write the bytes once).
- ITI-43: a private nginx (its own config, a free port, ``sendfile on``) serving the
  very blob file xdsi stored, fetched over loopback by the same socket client
  (``large_document.http_receive``) that reads the ITI-43 response, both into a file.
  Like with like: the client scans the nginx body for a MIME delimiter as it scans the
  ITI-43 document part (``ScannedFileSink``), so both sides pay the same client work
  per byte and the ratio is the servers'.

Both downloads are treated alike in everything else too:

- They write into one landing file (:class:`LandingFile`), written once before the
  rounds and overwritten in place, so neither pays for new page-cache pages.  On a
  virtual machine whose memory the host backs on first touch, writing 1 GiB into pages
  the guest has not used lately takes several times as long as overwriting cached ones
  (0.4 s against 2.8-5.2 s measured here); with a fresh output file per download, the
  download right after ITI-41 got such pages and the next one reused what the first
  had just freed, so the order of the round, not the server, decided the ratio.
- They alternate which goes first (odd rounds ITI-43, even rounds nginx).
- Both run under the same monitors (``large_document.measure``: RSS sampling of the
  server, the nginx worker for nginx, and of the client), so the client carries the
  same sampling threads; the servers' CPU time is reported beside each other.

Times: best of ``--rounds``; memory (the server's VmRSS growth during the transaction,
``/proc/<pid>/status``): worst round.  Every round's figures are printed as it ends.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx
from common import Figure, free_port, higher_is_better, lower_is_better, main_of
from large_document import (
    MiB,
    MultipartToFile,
    Phase,
    ServerProcess,
    _sh,
    feed_patient,
    http_receive,
    measure,
    parse_size,
    provide,
    provide_request,
    retrieve,
    sha1_file,
    timed,
    unique_oid,
    write_input,
)

__all__ = ["LandingFile", "LandingParts", "Nginx", "ScannedFileSink", "run", "scanned_download"]

TITLE = "ITI-41 / ITI-43 of a large document beside sha1sum+cp and nginx"
RSS_LIMIT_MIB = 64

NGINX_CONF = """\
daemon off;
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


def _user() -> str:
    """As root, nginx's worker would drop to ``nobody`` and not read xdsi's 0600 blobs."""
    return f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""


@dataclass
class Nginx:
    """A private nginx serving ``root`` on a free loopback port."""

    root: Path
    prefix: Path
    binary: str = "/usr/sbin/nginx"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Nginx:
        self.port = free_port()
        self.prefix.mkdir(parents=True, exist_ok=True)
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(prefix=self.prefix, port=self.port, root=self.root, user=_user()),
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.prefix), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5)
                return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen within 10 s")

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)

    @property
    def worker_pid(self) -> int:
        """The one worker process (``worker_processes 1``), which serves the requests."""
        assert self.process is not None
        pid = self.process.pid
        return int(Path(f"/proc/{pid}/task/{pid}/children").read_text().split()[0])


class LandingFile:
    """The file every download of a run writes the document into, overwritten in place.

    Made once, as long as the document, before the rounds: a download then overwrites
    page-cache pages that exist instead of freeing and allocating 1 GiB of them, and
    pays the same for it whichever server it reads and whenever it runs."""

    def __init__(self, path: Path, like: Path) -> None:
        self.path = path
        shutil.copyfile(like, path)

    def open(self) -> BinaryIO:
        """For writing from the start; :func:`close_landing` cuts what is left beyond."""
        return self.path.open("r+b")


def close_landing(out: BinaryIO) -> None:
    out.truncate()  # a shorter body must not keep the previous one's tail
    out.close()


class LandingParts(MultipartToFile):
    """``MultipartToFile`` with its one document part written into ``landing``."""

    def __init__(self, boundary: str, landing: LandingFile) -> None:
        super().__init__(boundary, landing.path.parent)
        self._landing = landing

    def _begin_part(self, content_id: str) -> None:
        self._seen += 1
        if self._seen == 1:  # the root part, kept in memory
            self._out = bytearray()
            return
        if self.parts:
            raise RuntimeError("more than one document part for one landing file")
        self.parts[content_id] = self._landing.path
        self._out = self._landing.open()

    def _end_part(self) -> None:
        if isinstance(self._out, bytearray):
            super()._end_part()
        else:
            close_landing(self._out)  # type: ignore[arg-type]
            self._out = None


class ScannedFileSink(MultipartToFile):
    """A response body written to the landing file while scanned for a MIME delimiter
    (which it does not hold), exactly as ``MultipartToFile`` reads a document part."""

    def __init__(self, landing: LandingFile) -> None:
        super().__init__(f"MIMEBoundary_{uuid.uuid4().hex}", landing.path.parent)  # as xdsi's
        self._state, self._buffer = "body", b""
        self._out = landing.open()

    def close(self) -> None:
        self._write(self._buffer)
        close_landing(self._out)  # type: ignore[arg-type]


def scanned_download(url: str, landing: LandingFile) -> int:
    """GET ``url`` into ``landing`` through a :class:`ScannedFileSink`; its size."""

    def sink_for(status_line: str, _headers: dict[str, str], rest: bytes) -> ScannedFileSink:
        if status_line.split()[1] != "200":
            raise RuntimeError(f"GET {url}: {status_line} {rest[:400]!r}")
        return ScannedFileSink(landing)

    sink = http_receive(url, sink_for)
    assert isinstance(sink, ScannedFileSink)
    sink.close()
    return landing.path.stat().st_size


@dataclass
class Round:
    iti41_s: float
    iti41_growth: float
    iti43_s: float
    iti43_growth: float
    iti43_cpu_s: float
    sha1sum_cp_s: float
    nginx_s: float
    nginx_cpu_s: float


def _round(
    server: ServerProcess, nginx: Nginx, patient: str, source: Path, landing: LandingFile, n: int
) -> Round:
    assert server.process is not None
    pid, size, workdir = server.process.pid, source.stat().st_size, source.parent
    url = f"{server.base_url}/xds/repository"
    with source.open("r+b") as f:  # a new document each round
        f.write(n.to_bytes(8, "big"))
    digest = sha1_file(source)
    unique_id = unique_oid()
    request = provide_request(url, patient, unique_id, source)
    with httpx.Client(timeout=httpx.Timeout(600.0)) as http:
        iti41 = measure(pid, size, lambda: provide(http, url, request))
    blob_path = f"{digest[:2]}/{digest[2:4]}/{digest}"
    if not (server.data_dir / "blobs" / blob_path).is_file():
        raise RuntimeError(f"no blob at {blob_path}")

    def iti43() -> Phase:
        phase = measure(
            pid,
            size,
            lambda: retrieve(
                url, unique_id, landing.path, lambda boundary, _: LandingParts(boundary, landing)
            ),
        )
        if sha1_file(landing.path) != digest:
            raise RuntimeError("ITI-43 returned other bytes than ITI-41 sent")
        return phase

    def from_nginx() -> Phase:
        blob_url = f"http://127.0.0.1:{nginx.port}/{blob_path}"
        phase = measure(nginx.worker_pid, size, lambda: scanned_download(blob_url, landing))
        if landing.path.stat().st_size != size:
            raise RuntimeError("nginx returned a different size")
        return phase

    # the order alternates, so what ITI-41 leaves behind falls on each side in turn
    if n % 2:
        xdsi, reference = iti43(), from_nginx()
    else:
        reference, xdsi = from_nginx(), iti43()
    mib = size / MiB
    print(
        f"round {n}: ITI-43 {mib / xdsi.seconds:,.0f} MiB/s (server CPU "
        f"{xdsi.server.cpu_seconds:.2f} s), nginx {mib / reference.seconds:,.0f} MiB/s "
        f"(worker CPU {reference.server.cpu_seconds:.2f} s), ratio "
        f"{reference.seconds / xdsi.seconds:.2f}x, {'ITI-43' if n % 2 else 'nginx'} first",
        file=sys.stderr,
        flush=True,
    )
    copy = workdir / "copy.bin"
    sha1sum_cp = timed(lambda: (_sh("sha1sum", str(source)), _sh("cp", str(source), str(copy))))
    copy.unlink()
    return Round(
        iti41.seconds, iti41.server.growth_mib, xdsi.seconds, xdsi.server.growth_mib,
        xdsi.server.cpu_seconds, sha1sum_cp, reference.seconds, reference.server.cpu_seconds,
    )  # fmt: skip


def run(args: argparse.Namespace) -> list[Figure]:
    workdir = Path(tempfile.mkdtemp(prefix="xdsi-bench-documents-"))
    try:
        server = ServerProcess(workdir / "data").start()
        try:
            patient = feed_patient(server)
            source = workdir / "input.bin"
            write_input(source, args.size)
            warm = workdir / "warm.bin"
            write_input(warm, 64 * 1024, seed=1)
            url = f"{server.base_url}/xds/repository"
            with httpx.Client(timeout=60) as http:
                warm_uid = unique_oid()
                provide(http, url, provide_request(url, patient, warm_uid, warm))
            retrieve(url, warm_uid, workdir / "warm.out")
            landing = LandingFile(workdir / "retrieved.bin", like=source)
            with Nginx(server.data_dir / "blobs", workdir / "nginx") as nginx:
                rounds = [
                    _round(server, nginx, patient, source, landing, n)
                    for n in range(1, args.rounds + 1)
                ]
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mib = args.size / MiB
    best = {k: min(getattr(r, k) for r in rounds) for k in ("iti41_s", "iti43_s")}
    best |= {k: min(getattr(r, k) for r in rounds) for k in ("sha1sum_cp_s", "nginx_s")}
    best |= {k: min(getattr(r, k) for r in rounds) for k in ("iti43_cpu_s", "nginx_cpu_s")}
    label = f"{mib:.0f} MiB"
    return [
        lower_is_better(
            f"ITI-41 provide {label}, wall time", best["iti41_s"], best["sha1sum_cp_s"], "s",
            max_ratio=1.5, reference_name="sha1sum+cp",
        ),
        lower_is_better(
            "ITI-41 server RSS growth", max(r.iti41_growth for r in rounds), None, "MiB",
            max_value=RSS_LIMIT_MIB,
        ),
        higher_is_better(
            f"ITI-43 retrieve {label}, throughput", mib / best["iti43_s"],
            mib / best["nginx_s"], "MiB/s", min_ratio=0.7, reference_name="nginx",
        ),
        lower_is_better(
            "ITI-43 server RSS growth", max(r.iti43_growth for r in rounds), None, "MiB",
            max_value=RSS_LIMIT_MIB,
        ),
        lower_is_better(
            f"ITI-43 server CPU time, {label}", best["iti43_cpu_s"], best["nginx_cpu_s"], "s",
            reference_name="nginx",
        ),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--rounds", type=int, default=3)


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
