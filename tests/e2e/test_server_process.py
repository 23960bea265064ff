"""The test harness's ``ServerProcess``: the ports it serves on are distinct, and a
server that never becomes healthy is not left running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from e2e_support import ServerProcess


def test_a_server_never_gets_one_port_twice(tmp_path: Path) -> None:
    # what two draws of a just-closed ephemeral port can give
    server = ServerProcess(tmp_path, http_port=50123, mllp_port=50123, dicom_port=50123)
    assert server.http_port == 50123
    assert len({server.http_port, server.mllp_port, server.dicom_port}) == 3


class _NeverHealthy(ServerProcess):
    """A process that runs on without ever answering /health."""

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_a_server_not_healthy_in_time_is_stopped_by_start(tmp_path: Path) -> None:
    server = _NeverHealthy(tmp_path)
    started: list[subprocess.Popen[bytes]] = []
    popen = subprocess.Popen

    def recorded(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        started.append(popen(*args, **kwargs))  # type: ignore[call-overload]
        return started[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess, "Popen", recorded)
        with pytest.raises(AssertionError, match="not healthy within"):
            server.start(timeout=1.0)
    assert server.process is None
    assert [p.poll() for p in started] != [None]  # it was started, and it has ended
