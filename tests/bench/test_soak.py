"""``bench/soak.py`` for twelve seconds: the script still runs end to end against a
deployment of two processes behind nginx, with no error and a consistent result.

Skipped without nginx (and its stream module) or PostgreSQL unless
XDSI_REQUIRE_INTEROP=1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

from cluster_support import nginx_missing  # noqa: E402
from e2e_support import create_pg_database, drop_pg_database, missing  # noqa: E402

pytestmark = pytest.mark.slow


def test_short_soak_has_no_error_and_a_consistent_end(tmp_path: Path) -> None:
    reason = nginx_missing()
    if reason is not None:
        missing(reason)
    probe = create_pg_database()
    if probe is None:
        missing("no PostgreSQL at 127.0.0.1:5432")
    assert probe is not None
    drop_pg_database(probe)
    run = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "bench" / "soak.py"),
            "--minutes",
            "0.2",
            "--clients",
            "3",
            "--processes",
            "2",
            "--no-append",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    table = run.stdout
    for row in ("ITI-41 p99", "ITI-18 p99", "ITI-43 p99", "RAD-69 p99", "process 1 RSS growth"):
        assert row in table
    assert "FAIL" not in table
    assert "xdsi check: " in table and ": consistent" in table


def test_an_error_page_is_recorded_with_its_status_and_body_start() -> None:
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    import httpx
    import soak

    page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>" + b"x" * 500
    response = httpx.Response(502, headers={"content-type": "text/html"}, content=page)
    with pytest.raises(soak.SoakError) as raised:
        soak._not_soap_is_an_error(response)
    message = str(raised.value)
    assert message.startswith("HTTP 502 text/html from the balancer: <html> <head><title>502")
    assert len(message) < 300
    soap = httpx.Response(200, headers={"content-type": "application/soap+xml"}, content=b"<x/>")
    soak._not_soap_is_an_error(soap)
