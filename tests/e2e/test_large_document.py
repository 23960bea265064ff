"""A 64 MiB document through ITI-41 and back through ITI-43 on a real ``xdsi serve``.

The streaming client and reader of ``bench/large_document.py`` are used as the peer.
Memory is asserted (the server's RSS must not grow with the document), time is not:
``bench/large_document.py --size 1GiB`` measures that.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from e2e_support import REPO_ROOT, ServerProcess

SIZE = 64 * 1024 * 1024
MAX_GROWTH_MIB = 48  # server RSS over its level before the transaction


def _bench() -> ModuleType:
    path = REPO_ROOT / "bench" / "large_document.py"
    spec = importlib.util.spec_from_file_location("xdsi_bench_large_document", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class RoundTrip:
    sent_sha1: str
    received_sha1: str
    received_size: int
    iti41_growth_mib: float
    iti43_growth_mib: float


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    bench = _bench()
    workdir: Path = tmp_path_factory.mktemp("large-document")
    server = ServerProcess(workdir / "data").start()
    try:
        assert server.process is not None
        pid = server.process.pid
        url = f"{server.base_url}/xds/repository"
        patient = bench.feed_patient(server)
        source, output = workdir / "input.bin", workdir / "retrieved.bin"
        sent_sha1 = bench.write_input(source, SIZE)
        with httpx.Client(timeout=httpx.Timeout(120.0)) as http:
            # the first transaction loads code paths: not what this test measures
            warm = workdir / "warm.bin"
            bench.write_input(warm, 4096, seed=2)
            warm_uid = bench.unique_oid()
            bench.provide(http, url, bench.provide_request(url, patient, warm_uid, warm))
            bench.retrieve(url, warm_uid, workdir / "warm.out")

            unique_id = bench.unique_oid()
            request = bench.provide_request(url, patient, unique_id, source)
            iti41 = bench.measure(pid, SIZE, lambda: bench.provide(http, url, request))
            iti43 = bench.measure(pid, SIZE, lambda: bench.retrieve(url, unique_id, output))
        received = RoundTrip(
            sent_sha1,
            bench.sha1_file(output),
            output.stat().st_size,
            iti41.server.growth_mib,
            iti43.server.growth_mib,
        )
        source.unlink()
        output.unlink()
        return received
    finally:
        server.stop()


def test_large_document_comes_back_byte_identical(round_trip: RoundTrip) -> None:
    assert (round_trip.received_size, round_trip.received_sha1) == (SIZE, round_trip.sent_sha1)


def test_iti41_server_memory_does_not_grow_with_the_document(round_trip: RoundTrip) -> None:
    assert round_trip.iti41_growth_mib < MAX_GROWTH_MIB


def test_iti43_server_memory_does_not_grow_with_the_document(round_trip: RoundTrip) -> None:
    assert round_trip.iti43_growth_mib < MAX_GROWTH_MIB
