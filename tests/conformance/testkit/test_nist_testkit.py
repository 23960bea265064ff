"""Every registry and repository test of the NIST testkit subset runs against a real
``xdsi serve`` and passes; the imaging tests are reported NOT_RUNNABLE with the data
they lack."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))

from e2e_support import (  # noqa: E402
    AFFINITY_DOMAIN,
    REPO_ROOT,
    REPOSITORY_UNIQUE_ID,
    ServerProcess,
    missing,
)

from conformance.result import CaseResult, Endpoints, Outcome  # noqa: E402
from conformance.testkit import run_testkit  # noqa: E402

TESTKIT = (
    Path(os.environ.get("XDSI_REFERENCE_DIR", str(REPO_ROOT.parent / "shared" / "reference")))
    / "testkit"
)
REGISTRY_AND_REPOSITORY = [
    "11897", "11901", "11906", "11966", "11983", "11990", "11992", "11996",
    "12029", "12084", "12346", "12360", "15817", "15818",
]  # fmt: skip
IMAGING = ["ids_2018-4801a", "ids_2018-4803a", "ids_2018-4811"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, CaseResult]]:
    if not (TESTKIT / "tests").is_dir():
        missing(f"the NIST testkit subset is not at {TESTKIT}")
    server = ServerProcess(tmp_path_factory.mktemp("xdsi-testkit")).start()
    try:
        endpoints = Endpoints(
            registry_url=f"{server.base_url}/xds/registry",
            repository_url=f"{server.base_url}/xds/repository",
            mllp=("127.0.0.1", server.mllp_port),
            repository_unique_id=REPOSITORY_UNIQUE_ID,
            affinity_domain=AFFINITY_DOMAIN,
        )
        yield {case.case_id: case for case in run_testkit(TESTKIT, endpoints)}
    finally:
        server.stop()


def _explain(case: CaseResult) -> str:
    lines = [f"{case.case_id} {case.outcome}: {case.reason}"]
    lines += [f"  {s.name} {s.outcome}: {s.message}" for s in case.steps if s.outcome != "passed"]
    return "\n".join(lines)


def test_every_test_folder_has_a_result(results: dict[str, CaseResult]) -> None:
    assert sorted(results) == sorted(REGISTRY_AND_REPOSITORY + IMAGING)


@pytest.mark.parametrize("test_id", REGISTRY_AND_REPOSITORY)
def test_registry_and_repository_test_passes(results: dict[str, CaseResult], test_id: str) -> None:
    case = results[test_id]
    assert case.outcome == Outcome.PASSED, _explain(case)


@pytest.mark.parametrize("test_id", IMAGING)
def test_imaging_test_is_not_runnable_with_its_reason(
    results: dict[str, CaseResult], test_id: str
) -> None:
    case = results[test_id]
    assert case.outcome == Outcome.NOT_RUNNABLE, _explain(case)
    assert "ids_2018" in case.reason or "Repository simulator" in case.reason
