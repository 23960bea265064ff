"""``--self``: a temporary ``xdsi serve`` to run the conformance suite against.

The server runs as a subprocess on free ports with a fresh data directory; once
``/health`` answers 200 its endpoints (and the OIDs it derived under its own OID root,
read from the data directory's configuration) are an :class:`Endpoints`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from conformance.result import Endpoints

HOST = "127.0.0.1"
# configuration of the temporary server beyond the defaults: the optional transactions
# the suite has cases for are switched on (xdsi.config: XDSI_SECTION__KEY)
SELF_CONFIGURATION: dict[str, str] = {
    "XDSI_REGISTRY__MULTI_PATIENT_QUERY": "true",  # ITI-51, off by default
    # a study received by STOW-RS is published (RAD-68) within about a second, not a minute
    "XDSI_IMAGING_SOURCE__STABILITY_DELAY": "0.5",
    "XDSI_IMAGING_SOURCE__PUBLISH_INTERVAL": "0.2",
}


class SelfServerError(RuntimeError):
    """The temporary server did not start; the message carries its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class SelfServer:
    """A context manager: ``with SelfServer() as endpoints: ...``."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        timeout: float = 60.0,
        configuration: dict[str, str] | None = None,
    ) -> None:
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._temp = tempfile.TemporaryDirectory(prefix="xdsi-conformance-")
            data_dir = Path(self._temp.name)
        self.data_dir = data_dir
        self.timeout = timeout
        self.configuration = dict(SELF_CONFIGURATION if configuration is None else configuration)
        self.http_port = free_port()
        self.mllp_port = free_port()
        self.dicom_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "xdsi", "serve",
            "--data-dir", str(self.data_dir),
            "--host", HOST,
            "--port", str(self.http_port),
            "--mllp-port", str(self.mllp_port),
            "--dicom-port", str(self.dicom_port),
            "--log-level", "warning",
        ]  # fmt: skip

    def start(self) -> Endpoints:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # the server's configuration comes from its data dir only, not from this shell
        env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
        env.update(self.configuration)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self._wait_healthy()
        return self.endpoints()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SelfServerError(
                    f"xdsi serve exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.base_url}/health", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise SelfServerError(f"xdsi serve not healthy within {self.timeout}s:\n{self.log()}")

    def endpoints(self) -> Endpoints:
        """The server's URLs and the OIDs its configuration derives (xdsi.config)."""
        from xdsi.config import DICOMWEB_PATH, IMAGING_SOURCE_PATH, load_config

        config = load_config(self.data_dir, None, None)
        return Endpoints(
            registry_url=f"{self.base_url}/xds/registry",
            repository_url=f"{self.base_url}/xds/repository",
            imaging_source_url=f"{self.base_url}{IMAGING_SOURCE_PATH}",
            mllp=(HOST, self.mllp_port),
            repository_unique_id=config.repository.repository_unique_id,
            home_community_id=config.registry.home_community_id,
            affinity_domain=config.registry.affinity_domain,
            # imaging_source.repository_unique_id, default <oid root>.7 (xdsi.config)
            imaging_source_id=config.imaging_source.repository_unique_id,
            dicomweb_url=f"{self.base_url}{DICOMWEB_PATH}",
        )

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        self.stop()
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None

    def __enter__(self) -> Endpoints:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = ["SELF_CONFIGURATION", "SelfServer", "SelfServerError", "free_port"]
