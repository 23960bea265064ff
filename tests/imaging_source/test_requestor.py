"""The pynetdicom associations xdsi requests: no response lost to the association
reactor once Nagle's delay is gone - the rule on a scripted queue.  Then a C-MOVE of a
few hundred small instances to a dcmtk storescp answering without delay
(``TCP_NODELAY=1``), under a short DIMSE timeout and threads wanting the GIL: every
sub-operation completes.  The C-MOVE once showed the race over a pynetdicom
sub-association; its sub-association is now xdsi's own (``sub_association``), held to
the same bar.  The storescp case is skipped without dcmtk unless
XDSI_REQUIRE_INTEROP=1."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from dicom_studies import make_instance
from dimse_fixtures import MOVE_DESTINATION, free_port, move_study, running_source
from instance_fixtures import migrated_sqlite, require_interop, sqlite_index_engine
from pydicom.uid import generate_uid
from sqlalchemy import Engine

from imaging_source.requestor import SLOW_PEER_POLL, CheckpointedDIMSE
from imaging_source.service import ImagingSource

INSTANCES = 200
DIMSE_TIMEOUT = 3.0
BUSY_THREADS = 2


# --- the rule -----------------------------------------------------------------------------
def _association() -> SimpleNamespace:
    checkpoint = threading.Event()
    checkpoint.set()
    return SimpleNamespace(_reactor_checkpoint=checkpoint, dimse_timeout=0.1)


def test_reactor_gets_no_message_while_a_sender_holds_the_checkpoint() -> None:
    assoc = _association()
    dimse = CheckpointedDIMSE(assoc)  # type: ignore[arg-type]
    dimse.msg_queue.put((1, "C-STORE-RSP"))
    assoc._reactor_checkpoint.clear()  # a send_* paused the reactor
    assert dimse.get_msg(block=False) == (None, None)
    assert dimse.get_msg(block=True) == (1, "C-STORE-RSP")


def test_reactor_gets_no_message_while_an_exchange_awaits_its_response() -> None:
    dimse = CheckpointedDIMSE(_association())  # type: ignore[arg-type]
    with dimse.awaiting_response():
        dimse.msg_queue.put((1, "C-STORE-RSP"))
        assert dimse.get_msg(block=False) == (None, None)
        assert dimse.get_msg(block=True) == (1, "C-STORE-RSP")


def test_reactor_gets_messages_when_no_sender_holds_the_checkpoint() -> None:
    dimse = CheckpointedDIMSE(_association())  # type: ignore[arg-type]
    dimse.msg_queue.put((1, "C-ECHO-RQ"))
    assert dimse.get_msg(block=False) == (1, "C-ECHO-RQ")
    assert dimse.get_msg(block=False) == (None, None)


# --- a slow peer is waited for without the fast poll ---------------------------------------
def _answered_after(dimse: CheckpointedDIMSE, dul: SimpleNamespace, delay: float) -> list:
    """Put a response on the queue after ``delay`` s; what the DUL polled at meanwhile."""
    seen: list[float] = []

    def answer() -> None:
        time.sleep(delay)
        seen.append(dul._run_loop_delay)
        dimse.msg_queue.put((1, "C-STORE-RSP"))

    threading.Thread(target=answer, daemon=True).start()
    return seen


def _polled(dimse_timeout: float = 2.0) -> tuple[CheckpointedDIMSE, SimpleNamespace]:
    """A provider and its DUL polling every 0.1 ms, as a sub-association's."""
    assoc = _association()
    assoc.dimse_timeout = dimse_timeout
    return CheckpointedDIMSE(assoc), SimpleNamespace(_run_loop_delay=0.0001)  # type: ignore[arg-type]


def test_a_prompt_response_is_awaited_at_the_fast_poll() -> None:
    dimse, dul = _polled()
    seen = _answered_after(dimse, dul, 0.0)
    assert dimse.await_response(dul, quick=0.5) == (1, "C-STORE-RSP")
    assert seen == [0.0001]
    assert dul._run_loop_delay == 0.0001


def test_a_slow_response_is_awaited_at_the_default_poll_then_fast_again() -> None:
    # a poll every 0.1 ms costs ~13% of a core for as long as a slow destination takes
    dimse, dul = _polled()
    seen = _answered_after(dimse, dul, 0.2)
    assert dimse.await_response(dul, quick=0.02) == (1, "C-STORE-RSP")
    assert seen == [SLOW_PEER_POLL]
    assert dul._run_loop_delay == 0.0001


def test_no_response_within_the_dimse_timeout_is_none_and_the_fast_poll_stays() -> None:
    dimse, dul = _polled(dimse_timeout=0.1)
    assert dimse.await_response(dul, quick=0.02) == (None, None)
    assert dul._run_loop_delay == 0.0001


# --- the race, on the wire ----------------------------------------------------------------
@pytest.fixture
def destination_port() -> int:
    return free_port()


@pytest.fixture
def storescp(destination_port: int) -> Iterator[None]:
    """dcmtk storescp, dropping what it receives and answering at once."""
    missing = [tool for tool in ("storescp", "echoscu") if shutil.which(tool) is None]
    if missing and not require_interop():
        pytest.skip(f"dcmtk not installed: {', '.join(missing)}")
    env = {**os.environ, "TCP_NODELAY": "1"}  # dcmtk keeps Nagle's algorithm without it
    process = subprocess.Popen(
        ["storescp", "--ignore", "-aet", MOVE_DESTINATION, str(destination_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    echo = ["echoscu", "-aec", MOVE_DESTINATION, "127.0.0.1", str(destination_port)]
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(echo, capture_output=True, timeout=10).returncode:
            assert process.poll() is None, f"storescp exited ({process.returncode})"
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def source(
    sqlite_index_engine: Engine, tmp_path: Path, destination_port: int
) -> Iterator[ImagingSource]:
    with running_source(
        sqlite_index_engine,
        tmp_path,
        destination_port,
        dimse_timeout=DIMSE_TIMEOUT,
        network_timeout=30,
    ) as imaging:
        yield imaging


@contextmanager
def busy_thread() -> Iterator[None]:
    """A thread that always wants the GIL, as a busy server's other threads do: a reactor
    woken from its checkpoint then waits for its turn while the next sub-operation is
    sent (without :class:`CheckpointedDIMSE`, most C-MOVEs here lost a response, most
    within the first hundred sub-operations)."""
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    threads = [threading.Thread(target=spin, daemon=True) for _ in range(BUSY_THREADS)]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join()


def test_c_move_to_a_prompt_destination_completes_every_sub_operation(
    storescp: None, source: ImagingSource
) -> None:
    # storescp first: it holds the destination's port before the source's listener
    # takes a free port, which could otherwise be that one
    study, series = generate_uid(), generate_uid()
    for n in range(1, INSTANCES + 1):
        source.add(make_instance(study, series, instance_number=n))
    with busy_thread():
        final = move_study(source, study, dimse_timeout=300)[-1][0]
    # a response lost or late: its sender waits out the DIMSE timeout, aborts the
    # sub-association, and every sub-operation left fails
    assert (
        final.Status,
        final.get("NumberOfCompletedSuboperations"),
        final.get("NumberOfFailedSuboperations"),
    ) == (0x0000, INSTANCES, 0)
