"""The test harness's ``ServerProcess``: the ports it serves on are distinct."""

from __future__ import annotations

from pathlib import Path

from e2e_support import ServerProcess


def test_a_server_never_gets_one_port_twice(tmp_path: Path) -> None:
    # what two draws of a just-closed ephemeral port can give
    server = ServerProcess(tmp_path, http_port=50123, mllp_port=50123, dicom_port=50123)
    assert server.http_port == 50123
    assert len({server.http_port, server.mllp_port, server.dicom_port}) == 3
