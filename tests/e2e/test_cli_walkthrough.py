"""The client commands as a person runs them, as subprocesses against a running server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from e2e_support import AFFINITY_DOMAIN, PDF_BYTES, REPO_ROOT, ServerProcess, new_patient_number


def xdsi(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xdsi", *args, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )


def test_patients_add_submit_query_retrieve(server: ServerProcess, tmp_path: Path) -> None:
    patient = new_patient_number()
    report = tmp_path / "report.pdf"
    report.write_bytes(PDF_BYTES)
    mllp = f"127.0.0.1:{server.mllp_port}"

    added = xdsi(server, "patients", "add", patient, "--mllp", mllp, "--name", "Doe^Jane")
    assert added.returncode == 0, added.stderr
    assert AFFINITY_DOMAIN in added.stdout

    submitted = xdsi(
        server, "submit", str(report), "--patient", patient,
        "--title", "Chest X-ray report",
        "--repository", f"{server.base_url}/xds/repository",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    document_uid = next(
        line.split()[1] for line in submitted.stdout.splitlines() if line.startswith("document ")
    )

    queried = xdsi(
        server, "query", "--patient", patient, "--json",
        "--registry", f"{server.base_url}/xds/registry",
    )  # fmt: skip
    assert queried.returncode == 0, queried.stderr
    rows = json.loads(queried.stdout)
    assert [(r["uniqueId"], r["title"], r["status"]) for r in rows] == [
        (document_uid, "Chest X-ray report", "approved")
    ]

    out = tmp_path / "retrieved.pdf"
    retrieved = xdsi(
        server, "retrieve", document_uid, "-o", str(out),
        "--repository", f"{server.base_url}/xds/repository",
    )  # fmt: skip
    assert retrieved.returncode == 0, retrieved.stderr
    assert out.read_bytes() == PDF_BYTES


def test_submit_for_unknown_patient_exits_1(server: ServerProcess, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("hello\n")
    result = xdsi(
        server, "submit", str(note), "--patient", new_patient_number(),
        "--repository", f"{server.base_url}/xds/repository",
    )  # fmt: skip
    assert result.returncode == 1
    assert "XDSUnknownPatientId" in result.stderr


def test_unreachable_registry_exits_2(server: ServerProcess) -> None:
    result = xdsi(
        server, "query", "--patient", "X", "--registry", "http://127.0.0.1:9/xds/registry"
    )
    assert result.returncode == 2
