"""``xdsi serve`` as several processes behind one HTTP listener (``[server] workers``).

A Python process runs Python code on one core at a time, so one ``xdsi serve`` uses
about one core however many it has.  With ``[server] workers = N`` (``--workers N``),
``xdsi serve`` becomes a :class:`Supervisor`: it binds the HTTP listener, starts N worker
processes (``python -m xdsi.workers``) and hands each connection it accepts to the next
worker in turn, the socket passed over a Unix ``SOCK_SEQPACKET`` pair (``SCM_RIGHTS``,
unix(7)).  Handing connections out, rather than letting the workers accept from one
queue or ``SO_REUSEPORT``, spreads them evenly: four kept-alive connections opened at
once go two to each of two workers, never three and one.  The supervisor itself only
accepts; requests and answers never pass through it.

Worker 0 is the primary: it alone runs the MLLP (ITI-8) and DICOM listeners and the
automatic RAD-68, and it starts alone (migrations, the repository's recovery, the
instance store's sweep) before the others.  Every worker serves every HTTP endpoint
from the shared PostgreSQL database and spool, blob directory and instance store, as
the processes of README "Deployment: several processes" do; ``xdsi.config`` refuses
``workers > 1`` on SQLite.

A worker that exits unexpectedly is started again, after :data:`RESTART_DELAY` doubled
per failure in a row (up to :data:`RESTART_DELAY_MAX`); the others keep serving.  On
SIGTERM or SIGINT the listener closes and every worker is sent SIGTERM, finishing the
exchanges under way as a single ``xdsi serve`` does; one still running after
:data:`STOP_TIMEOUT` seconds is killed.

The channel, supervisor to worker: the :class:`Setup`, pickled, in one message; then
one message ``b"C"`` per connection with its descriptor attached.  Worker to
supervisor: ``b"R"`` once it serves.  Either end closing tells the other it is gone: a
worker whose supervisor died stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsi.config import Config

log = logging.getLogger("xdsi.workers")

READY = b"R"
CONNECTION = b"C"
SETUP_MAX_BYTES = 1 << 20
LISTEN_BACKLOG = 2048  # as uvicorn's
ACCEPTS_PER_WAKEUP = 64
START_TIMEOUT = 300.0  # a first start migrates the database
STOP_TIMEOUT = 30.0  # uvicorn's graceful shutdown and the audit drain fit in it
RESTART_DELAY = 1.0
RESTART_DELAY_MAX = 30.0
STABLE_AFTER = 60.0  # a worker that ran this long failed for the first time, not again


@dataclass(frozen=True, slots=True)
class ProcessRole:
    """What a process of ``xdsi serve`` runs beside HTTP."""

    primary: bool = True  # the MLLP and DICOM listeners, the automatic RAD-68
    sweep: bool = True  # the instance store's start-up sweep: no other process stores
    shared: bool = False  # other processes serve from the same databases and stores
    worker: int | None = None  # its index among the workers; None: the only process


SOLE_PROCESS = ProcessRole()


@dataclass(frozen=True, slots=True)
class Setup:
    """What a worker is told when it starts."""

    config: Config
    index: int
    log_level: str
    sweep: bool  # the instance store's start-up sweep (the primary's first start only)


class WorkerLink:
    """A worker's end of its channel to the supervisor (used by ``xdsi.serve.run``)."""

    def __init__(self, setup: Setup, channel: socket.socket) -> None:
        self.setup = setup
        self.channel = channel
        self.role = ProcessRole(
            primary=setup.index == 0, sweep=setup.sweep, shared=True, worker=setup.index
        )
        self._reading = False

    def receive(
        self,
        loop: asyncio.AbstractEventLoop,
        accepted: Callable[[socket.socket], None],
        gone: Callable[[], None],
    ) -> None:
        """Call ``accepted`` with each connection handed over, ``gone`` when the
        supervisor closes the channel (or dies)."""
        self.channel.setblocking(False)
        self._reading = True
        loop.add_reader(self.channel.fileno(), self._readable, loop, accepted, gone)

    def _readable(
        self,
        loop: asyncio.AbstractEventLoop,
        accepted: Callable[[socket.socket], None],
        gone: Callable[[], None],
    ) -> None:
        while True:
            try:
                data, fds, _flags, _address = socket.recv_fds(self.channel, 16, 4)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:
                self.close(loop)
                gone()
                return
            for fd in fds:
                sock = socket.socket(fileno=fd)
                if data == CONNECTION:
                    accepted(sock)
                else:  # nothing else carries a descriptor
                    sock.close()

    def ready(self) -> None:
        self.channel.sendall(READY)

    def close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take no more connections."""
        if self._reading:
            self._reading = False
            loop.remove_reader(self.channel.fileno())


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    channel: socket.socket | None = None
    ready: bool = False
    started: float = 0.0
    failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """The ``xdsi serve`` process of ``[server] workers > 1`` (see the module)."""

    def __init__(
        self, config: Config, log_level: str = "info", python: Sequence[str] = (sys.executable,)
    ) -> None:
        self.config = config
        self.log_level = log_level
        self.python = tuple(python)
        self.workers = [_Worker(n) for n in range(config.server.workers)]
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._stopping = False
        self._serving = False  # every worker started once
        self._listening = False
        self._next = 0
        self._wakeup_read, self._wakeup_write = socket.socketpair()

    # --- the run ---------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 after a clean shutdown, 1 when a worker could
        not start."""
        previous = self._install_signals()
        try:
            self._listener = self._bind()
            http = self.config.connection.http
            port = self._listener.getsockname()[1]
            # the workers' configuration names the port bound (the manifests' WADO-RS
            # base URL defaults to it)
            self.config = dataclasses.replace(
                self.config,
                connection=dataclasses.replace(
                    self.config.connection, http=dataclasses.replace(http, port=port)
                ),
            )
            if not self._start_all():
                return 1
            self._serving = True
            self._listen()
            log.info(
                "xdsi %s ready on %s:%d with %d workers",
                self.config.device.name,
                http.host,
                port,
                len(self.workers),
            )
            while not self._stopping:
                self._turn(self._timeout())
            return 0
        finally:
            self._stop_all()
            self._restore_signals(previous)
            self._selector.close()
            self._wakeup_read.close()
            self._wakeup_write.close()

    def _start_all(self) -> bool:
        """The primary alone first, then the others together; False if one could not
        start (or a signal came)."""
        first, *others = self.workers
        self._start(first, sweep=True)
        if not self._wait_ready([first]):
            return False
        for worker in others:
            self._start(worker, sweep=False)
        return self._wait_ready(others)

    def _wait_ready(self, workers: list[_Worker]) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while not self._stopping and not all(w.ready for w in workers):
            if any(w.process is None for w in workers):
                return False  # exited before it was ready
            if time.monotonic() > deadline:
                log.error("workers not ready within %.0f s", START_TIMEOUT)
                return False
            self._turn(1.0, restart=False)
        return not self._stopping

    def _turn(self, timeout: float | None, *, restart: bool = True) -> None:
        for key, _events in self._selector.select(timeout):
            key.data(key.fileobj)
        if restart:
            now = time.monotonic()
            for worker in self.workers:
                if worker.restart_at is not None and now >= worker.restart_at:
                    worker.restart_at = None
                    self._start(worker, sweep=False)

    def _timeout(self) -> float | None:
        due = [w.restart_at for w in self.workers if w.restart_at is not None]
        return max(0.0, min(due) - time.monotonic()) if due else None

    # --- signals ---------------------------------------------------------------------
    def _install_signals(self) -> dict[int, object]:
        self._wakeup_read.setblocking(False)
        self._wakeup_write.setblocking(False)
        self._selector.register(self._wakeup_read, selectors.EVENT_READ, self._woken)
        previous: dict[int, object] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, self._signalled)
        return previous

    def _restore_signals(self, previous: dict[int, object]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]

    def _signalled(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("%s: stopping the workers", signal.Signals(signum).name)
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wakeup_write.send(b"\0")

    def _woken(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.recv(4096)

    # --- the listener ------------------------------------------------------------------
    def _bind(self) -> socket.socket:
        http = self.config.connection.http
        host = "" if http.host in ("0.0.0.0", "") else http.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.create_server(
            (host, http.port), family=family, backlog=LISTEN_BACKLOG, reuse_port=False
        )
        listener.setblocking(False)
        return listener

    def _listen(self) -> None:
        """Accept while at least one worker is ready; else the connections wait in the
        listener's backlog."""
        wanted = self._serving and any(w.ready for w in self.workers)
        if self._listener is None or wanted == self._listening:
            return
        if wanted:
            self._selector.register(self._listener, selectors.EVENT_READ, self._accept)
        else:
            self._selector.unregister(self._listener)
        self._listening = wanted

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                conn, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and the like: the next wakeup tries again
                log.warning("accept failed: %s", exc)
                return
            with conn:
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._hand(conn)

    def _hand(self, conn: socket.socket) -> None:
        """Pass ``conn`` to the next ready worker that takes it; closed otherwise."""
        count = len(self.workers)
        for step in range(count):
            worker = self.workers[(self._next + step) % count]
            if not worker.ready or worker.channel is None:
                continue
            try:
                socket.send_fds(worker.channel, [CONNECTION], [conn.fileno()], socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue  # its channel is full: it is not reading, try the next
            except OSError:
                worker.ready = False  # gone; its channel's end of file says so next
                continue
            self._next = (self._next + step + 1) % count
            return
        log.warning("no worker took a connection: closed")

    # --- the workers -------------------------------------------------------------------
    def _start(self, worker: _Worker, *, sweep: bool) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            worker.process = subprocess.Popen(
                # the index too, for ps: the setup says it again
                [*self.python, "-m", "xdsi.workers", str(theirs.fileno()), str(worker.index)],
                pass_fds=(theirs.fileno(),),
            )
        setup = Setup(self.config, worker.index, self.log_level, sweep)
        with contextlib.suppress(OSError):  # it died at once: its end of file says so
            ours.sendall(pickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL))
        worker.channel = ours
        worker.ready = False
        worker.started = time.monotonic()
        self._selector.register(ours, selectors.EVENT_READ, lambda ch: self._heard(worker, ch))
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    def _heard(self, worker: _Worker, channel: socket.socket) -> None:
        try:
            data = channel.recv(16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            worker.ready = worker.ready or READY in data
        else:
            self._exited(worker)
        self._listen()

    def _exited(self, worker: _Worker) -> None:
        """``worker``'s channel closed: it stopped; started again unless stopping."""
        channel, worker.channel = worker.channel, None
        if channel is not None:
            self._selector.unregister(channel)
            channel.close()
        worker.ready = False
        process, worker.process = worker.process, None
        code = _reap(process)
        if self._stopping:
            return
        ran = time.monotonic() - worker.started
        if not self._serving:
            log.error("worker %d exited with %s before it was ready", worker.index, code)
            return
        worker.failures = 1 if ran >= STABLE_AFTER else worker.failures + 1
        delay = min(RESTART_DELAY * 2 ** (worker.failures - 1), RESTART_DELAY_MAX)
        log.error(
            "worker %d exited with %s after %.0f s; started again in %.0f s",
            worker.index,
            code,
            ran,
            delay,
        )
        worker.restart_at = time.monotonic() + delay

    def _stop_all(self) -> None:
        self._stopping = True
        if self._listener is not None:
            if self._listening:
                self._selector.unregister(self._listener)
                self._listening = False
            self._listener.close()
            self._listener = None
        running = [w for w in self.workers if w.process is not None]
        for worker in running:
            assert worker.process is not None
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in running:
            assert worker.process is not None
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error(
                    "worker %d did not stop within %.0f s: killed", worker.index, STOP_TIMEOUT
                )
                worker.process.kill()
                worker.process.wait()
            if worker.channel is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(worker.channel)
                worker.channel.close()
                worker.channel = None
            worker.process = None


def _reap(process: subprocess.Popen[bytes] | None) -> int | str | None:
    """The exit code of a process whose channel closed (it exits right after)."""
    if process is None:
        return None
    try:
        code = process.wait(10.0)
    except subprocess.TimeoutExpired:  # it closed the channel and lives on: end it
        process.kill()
        code = process.wait()
    return f"signal {signal.Signals(-code).name}" if code < 0 else code


# --- the worker process ------------------------------------------------------------------


def _read_setup(channel: socket.socket) -> Setup:
    data = channel.recv(SETUP_MAX_BYTES)
    if not data:
        raise SystemExit("xdsi.workers: the supervisor closed the channel before the setup")
    # the supervisor that started this process wrote it: trusted as the command line is
    setup = pickle.loads(data)  # noqa: S301
    if not isinstance(setup, Setup):
        raise SystemExit("xdsi.workers: not a worker setup")
    return setup


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m xdsi.workers FD INDEX``: worker INDEX on the channel inherited as FD."""
    from xdsi.serve import configure_process, run

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not all(a.isdigit() for a in args):
        print(
            "usage: python -m xdsi.workers FD INDEX (started by xdsi serve --workers)",
            file=sys.stderr,
        )
        return 2
    channel = socket.socket(fileno=int(args[0]))
    setup = _read_setup(channel)
    if setup.index != int(args[1]):
        raise SystemExit(f"xdsi.workers: started as worker {args[1]}, set up as {setup.index}")
    configure_process(setup.log_level, tag=f"worker{setup.index}")
    log.info("worker %d (pid %d) of %d", setup.index, os.getpid(), setup.config.server.workers)
    try:
        return asyncio.run(run(setup.config, worker=WorkerLink(setup, channel)))
    finally:
        channel.close()


__all__ = ["SOLE_PROCESS", "ProcessRole", "Setup", "Supervisor", "WorkerLink", "main"]

if __name__ == "__main__":
    # run as xdsi.workers, not __main__: the pickled Setup names xdsi.workers' classes
    from xdsi.workers import main as _main

    raise SystemExit(_main())
