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

Times: best of ``--rounds``; memory (the server's VmRSS growth during the transaction,
``/proc/<pid>/status``): worst round.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from common import Figure, free_port, higher_is_better, lower_is_better, main_of
from large_document import (
    MiB,
    MultipartToFile,
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

__all__ = ["Nginx", "ScannedFileSink", "run", "scanned_download"]

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


class ScannedFileSink(MultipartToFile):
    """A response body written to a file while scanned for a MIME delimiter (which it
    does not hold), exactly as ``MultipartToFile`` reads the part of a document."""

    def __init__(self, output: Path) -> None:
        super().__init__(f"MIMEBoundary_{uuid.uuid4().hex}", output.parent)  # as xdsi's
        self._state, self._buffer = "body", b""
        self._out = output.open("wb")

    def close(self) -> None:
        self._write(self._buffer)
        self._out.close()  # type: ignore[attr-defined]


def scanned_download(url: str, output: Path) -> int:
    """GET ``url`` into ``output`` through a :class:`ScannedFileSink`; its size."""

    def sink_for(status_line: str, _headers: dict[str, str], rest: bytes) -> ScannedFileSink:
        if status_line.split()[1] != "200":
            raise RuntimeError(f"GET {url}: {status_line} {rest[:400]!r}")
        return ScannedFileSink(output)

    sink = http_receive(url, sink_for)
    assert isinstance(sink, ScannedFileSink)
    sink.close()
    return output.stat().st_size


@dataclass
class Round:
    iti41_s: float
    iti41_growth: float
    iti43_s: float
    iti43_growth: float
    sha1sum_cp_s: float
    nginx_s: float


def _round(server: ServerProcess, nginx: Nginx, patient: str, source: Path, n: int) -> Round:
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
    output = workdir / "retrieved.bin"
    iti43 = measure(pid, size, lambda: retrieve(url, unique_id, output))
    if sha1_file(output) != digest:
        raise RuntimeError("ITI-43 returned other bytes than ITI-41 sent")
    output.unlink()
    blob_path = f"{digest[:2]}/{digest[2:4]}/{digest}"
    if not (server.data_dir / "blobs" / blob_path).is_file():
        raise RuntimeError(f"no blob at {blob_path}")
    nginx_s = timed(lambda: scanned_download(f"http://127.0.0.1:{nginx.port}/{blob_path}", output))
    if output.stat().st_size != size:
        raise RuntimeError("nginx returned a different size")
    output.unlink()
    copy = workdir / "copy.bin"
    sha1sum_cp = timed(lambda: (_sh("sha1sum", str(source)), _sh("cp", str(source), str(copy))))
    copy.unlink()
    return Round(
        iti41.seconds, iti41.server.growth_mib, iti43.seconds, iti43.server.growth_mib,
        sha1sum_cp, nginx_s,
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
            with Nginx(server.data_dir / "blobs", workdir / "nginx") as nginx:
                rounds = [
                    _round(server, nginx, patient, source, n) for n in range(1, args.rounds + 1)
                ]
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    mib = args.size / MiB
    best = {k: min(getattr(r, k) for r in rounds) for k in ("iti41_s", "iti43_s")}
    best |= {k: min(getattr(r, k) for r in rounds) for k in ("sha1sum_cp_s", "nginx_s")}
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
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--rounds", type=int, default=3)


main = main_of(TITLE, run, add_arguments)

if __name__ == "__main__":
    raise SystemExit(main())
