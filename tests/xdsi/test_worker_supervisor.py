"""The supervisor's dealing of connections and the worker's end of the channel
(``xdsi.workers``); whole processes are run by ``tests/e2e/test_serve_workers.py``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from xdsi.config import Config, load_config
from xdsi.workers import CONNECTION, READY, Setup, Supervisor, WorkerLink


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(
        tmp_path,
        environ={},
        overrides={
            "server": {"workers": 2},
            "database": {"url": "postgresql://xdsi@127.0.0.1:1/none"},
            "connection.http": {"port": 0},
        },
    )


@pytest.fixture
def channels() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(2)]
    yield pairs
    for pair in pairs:
        for end in pair:
            end.close()


def _ready(supervisor: Supervisor, pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    for worker, (ours, _theirs) in zip(supervisor.workers, pairs, strict=True):
        ours.setblocking(False)
        worker.channel, worker.ready = ours, True


def _handed(end: socket.socket) -> int:
    """How many connections arrived on a worker's ``end`` (their descriptors closed)."""
    end.setblocking(False)
    count = 0
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(end, 16, 4)
        except BlockingIOError:
            return count
        assert data == CONNECTION and len(fds) == 1
        socket.socket(fileno=fds[0]).close()
        count += 1


def test_connections_are_dealt_in_turn(config: Config, channels) -> None:
    supervisor = Supervisor(config)
    _ready(supervisor, channels)
    for _ in range(6):
        a, b = socket.socketpair()
        with a, b:
            supervisor._hand(a)
    assert [_handed(theirs) for _ours, theirs in channels] == [3, 3]


def test_a_worker_not_ready_or_not_reading_is_passed_over(config: Config, channels) -> None:
    supervisor = Supervisor(config)
    _ready(supervisor, channels)
    supervisor.workers[1].ready = False
    for _ in range(3):
        a, b = socket.socketpair()
        with a, b:
            supervisor._hand(a)
    assert [_handed(theirs) for _ours, theirs in channels] == [3, 0]
    supervisor.workers[1].ready = True
    full = channels[0][0]
    with contextlib.suppress(BlockingIOError):
        while True:  # worker 0 stops reading: its channel fills up
            socket.send_fds(full, [CONNECTION], [0], socket.MSG_DONTWAIT)
    a, b = socket.socketpair()
    with a, b:
        supervisor._hand(a)
    assert _handed(channels[1][1]) == 1


def test_a_worker_that_exits_before_it_is_ready_ends_the_run(config: Config) -> None:
    supervisor = Supervisor(config, python=(sys.executable, "-c", "import sys; sys.exit(3)"))
    assert supervisor.run() == 1
    assert all(w.process is None for w in supervisor.workers)


def test_the_worker_end_takes_connections_until_the_supervisor_is_gone(
    config: Config, channels
) -> None:
    supervisor_end, worker_end = channels[0]
    link = WorkerLink(Setup(config, 1, "info", sweep=False), worker_end)
    assert link.role.worker == 1 and not link.role.primary and link.role.shared

    async def scenario() -> tuple[list[bytes], bool]:
        loop = asyncio.get_running_loop()
        received: list[bytes] = []
        gone = asyncio.Event()

        def accepted(sock: socket.socket) -> None:
            with sock:
                received.append(sock.recv(16))

        link.receive(loop, accepted, gone.set)
        link.ready()
        assert supervisor_end.recv(16) == READY
        for n in range(2):
            a, b = socket.socketpair()
            with a, b:
                b.sendall(f"hello {n}".encode())
                socket.send_fds(supervisor_end, [CONNECTION], [a.fileno()])
        await asyncio.sleep(0.05)
        supervisor_end.close()
        await asyncio.wait_for(gone.wait(), 5.0)
        return received, gone.is_set()

    received, ended = asyncio.run(scenario())
    assert received == [b"hello 0", b"hello 1"]
    assert ended
