"""Several ``xdsi serve`` processes behind nginx, sharing one PostgreSQL and one blob dir.

The deployment the README describes under "Deployment: several processes", on one
machine: each process listens with ITI-19 mutual TLS on its own ports; nginx is the
load balancer, with

- an ``http`` block on ``http_port``: plain HTTP in front, re-encrypted to the
  processes with nginx's own client certificate (``proxy_ssl_certificate``);
- a ``stream`` block on ``tls_port``: TCP passthrough, so the TLS handshake is the
  client's with xdsi and xdsi sees the client's certificate (ITI-19).

Used by ``tests/e2e/test_scale_out.py`` and ``bench/soak.py``.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from e2e_support import ServerProcess, free_port, send_mllp

from xdsi.certs import TestPki, make_test_pki

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def nginx_missing() -> str | None:
    """Why nginx with its stream module cannot run here, or None."""
    if not Path(NGINX).is_file():
        return "nginx is not installed"
    if not NGINX_STREAM_MODULE.is_file():
        return f"nginx stream module missing ({NGINX_STREAM_MODULE}: libnginx-mod-stream)"
    return None


def client_ssl_context(pki: TestPki, *, with_certificate: bool = True) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_certificate:
        context.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return context


@dataclass
class ClusterServer(ServerProcess):
    """One process of the deployment: shared ``--blob-dir``, mutual TLS on its listeners."""

    blob_dir: Path | None = None
    pki: TestPki | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self.pki is not None else "http"
        return f"{scheme}://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        cmd = super().command()
        if self.blob_dir is not None:
            cmd += ["--blob-dir", str(self.blob_dir)]
        if self.pki is not None:
            cmd += [
                "--tls-cert", str(self.pki.node_cert),
                "--tls-key", str(self.pki.node_key),
                "--tls-ca", str(self.pki.ca),
            ]  # fmt: skip
        return cmd

    def http_client(self, timeout: float = 30.0) -> httpx.Client:
        verify: ssl.SSLContext | bool = (
            client_ssl_context(self.pki) if self.pki is not None else True
        )
        return httpx.Client(timeout=timeout, verify=verify)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.http_client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"xdsi serve exited with {self.process.returncode}:\n{self.log()}"
                    )
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        raise AssertionError(f"xdsi serve not healthy within {timeout}s:\n{self.log()}")

    def rss_bytes(self) -> int:
        """Resident set size of the process (Linux /proc)."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


NGINX_CONF = """# the load balancer of an xdsi deployment of several processes
load_module {stream_module};
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 0;            # xdsi enforces its own [limits]
    proxy_request_buffering off;       # stream uploads through, do not spool them here
    proxy_buffering off;
    proxy_read_timeout 300s;
    upstream xdsi {{
{http_servers}
        keepalive 32;
        # below uvicorn's 5 s keep-alive: nginx must not reuse a connection xdsi is
        # closing, or a POST it will not re-send is answered 502
        keepalive_timeout 4s;
    }}
    server {{
        listen 127.0.0.1:{http_port};
        location / {{
            proxy_pass https://xdsi;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host:$server_port;
            proxy_ssl_certificate {client_cert};
            proxy_ssl_certificate_key {client_key};
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
            proxy_ssl_session_reuse on;
            proxy_next_upstream error timeout;   # never re-send a request xdsi received
        }}
    }}
}}

stream {{
    upstream xdsi_tls {{
{stream_servers}
    }}
    server {{
        listen 127.0.0.1:{tls_port};
        proxy_pass xdsi_tls;           # TCP passthrough: the TLS session is xdsi's
    }}
}}
"""


@dataclass
class Nginx:
    """nginx started with its own configuration in ``directory``, in the foreground."""

    directory: Path
    backends: list[int]  # the HTTPS ports of the processes
    pki: TestPki
    http_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        return NGINX_CONF.format(
            stream_module=NGINX_STREAM_MODULE,
            dir=self.directory,
            http_port=self.http_port,
            tls_port=self.tls_port,
            http_servers="\n".join(f"        server 127.0.0.1:{p};" for p in self.backends),
            stream_servers="\n".join(f"        server 127.0.0.1:{p};" for p in self.backends),
            client_cert=self.pki.client_cert,
            client_key=self.pki.client_key,
            ca=self.pki.ca,
        )

    def start(self, timeout: float = 10.0) -> Nginx:
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config(), encoding="utf-8")
        log = (self.directory / "stderr.log").open("ab")
        self.process = subprocess.Popen(
            [NGINX, "-p", str(self.directory), "-c", str(conf), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited:\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.http_port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nginx did not listen within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return "\n".join(
            p.read_text(errors="replace")
            for p in (self.directory / "error.log", self.directory / "stderr.log")
            if p.exists()
        )


@dataclass
class Cluster:
    """``size`` processes on one database and one blob directory, behind nginx."""

    directory: Path
    database_url: str
    size: int = 3
    extra_args: tuple[str, ...] = ()
    servers: list[ClusterServer] = field(default_factory=list)
    nginx: Nginx | None = None
    pki: TestPki | None = None

    @property
    def base_url(self) -> str:
        """Plain HTTP through the balancer (nginx's http block)."""
        assert self.nginx is not None
        return f"http://127.0.0.1:{self.nginx.http_port}"

    @property
    def tls_base_url(self) -> str:
        """HTTPS passed through by nginx's stream block to one of the processes."""
        assert self.nginx is not None
        return f"https://127.0.0.1:{self.nginx.tls_port}"

    def start(self) -> Cluster:
        self.pki = make_test_pki(self.directory / "pki")
        blob_dir = self.directory / "blobs"
        blob_dir.mkdir(parents=True, exist_ok=True)
        try:
            # the first process migrates the database alone, then the others join
            for n in range(self.size):
                server = ClusterServer(
                    self.directory / f"node{n}",
                    self.database_url,
                    blob_dir=blob_dir,
                    pki=self.pki,
                    extra_args=list(self.extra_args),
                )
                self.servers.append(server)
                server.start(timeout=60.0)
            self.nginx = Nginx(
                self.directory / "nginx", [s.http_port for s in self.servers], self.pki
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        for server in self.servers:
            server.stop()

    def feed_tls(self, server: ClusterServer, message: bytes, timeout: float = 10.0) -> bytes:
        """One ITI-8 message over MLLP with TLS (ITI-19) to ``server``; the reply."""
        assert self.pki is not None
        return feed_tls(self.pki, server, message, timeout)


def feed_tls(pki: TestPki, server: ServerProcess, message: bytes, timeout: float = 10.0) -> bytes:
    """One ITI-8 message over MLLP with TLS (ITI-19, the client certificate of ``pki``)
    to ``server``; the reply."""
    return send_mllp("127.0.0.1", server.mllp_port, message, timeout, tls=client_ssl_context(pki))


__all__ = [
    "Cluster",
    "ClusterServer",
    "feed_tls",
    "Nginx",
    "client_ssl_context",
    "nginx_missing",
]
