"""Large documents through ITI-41 and ITI-43: time, throughput and memory, measured.

    .venv/bin/python bench/large_document.py --size 1GiB

Starts a real ``xdsi serve`` on free ports with its data directory in a temp folder
(the same disk as the input file), feeds a patient over MLLP (ITI-8), writes a file of
pseudo-random content, sends it as the XOP part of an ITI-41 Provide and Register from
a streaming client (an httpx request whose content is a generator reading the file in
chunks), then retrieves it with ITI-43, streaming the response part to a file, and
checks the copy's SHA-1 against the original.  The server's VmRSS/VmHWM
(``/proc/<pid>/status``) is sampled throughout; the peak is reset before each phase
(``/proc/<pid>/clear_refs``) so each direction reports its own.  Reference figures from
the same run on the same disk: ``sha1sum`` + ``cp`` of the input (what ITI-41 has to
do at least: hash and write the bytes once) and ``cat > /dev/null`` / a plain Python
copy of the stored blob (what ITI-43 has to do at least).

The results table is printed and appended, with a machine description, to
``bench/RESULTS.md``.  Every temp file is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

import httpx
from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

from e2e_support import (  # noqa: E402  (the e2e peer lives beside the tests)
    REPOSITORY_UNIQUE_ID,
    SUCCESS,
    TEST_OID_ROOT,
    ServerProcess,
    ack_code,
    adt_a01,
    dtm_now,
    new_id,
    new_patient_number,
    parse_response,
    patient_cx,
    render,
    send_mllp,
    unique_oid,
)

MiB = 1024 * 1024
CHUNK = 1 * MiB  # what the client reads from / writes to disk at a time
RESULTS_MD = REPO_ROOT / "bench" / "RESULTS.md"
ITI41_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI43_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
MIME_TYPE = "application/octet-stream"
FORMAT_CODE = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
RS_STATUS = "{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryResponse"
XOP_INCLUDE = "{http://www.w3.org/2004/08/xop/include}Include"
_UNITS = {"": 1, "b": 1, "k": 1024, "kib": 1024, "m": MiB, "mib": MiB, "g": 1024 * MiB}
_UNITS["gib"] = _UNITS["g"]


def parse_size(text: str) -> int:
    """``1GiB``, ``64MiB``, ``512k``, ``1000`` -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 1GiB, 64MiB)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


# --- memory -----------------------------------------------------------------------------


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def _reset_peak(pid: int) -> bool:
    """proc(5) clear_refs ``5``: VmHWM is set back to the current VmRSS."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (proc(5) /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class RssMonitor:
    """Samples a process's VmRSS every ``interval`` seconds while a phase runs, and
    counts the CPU time it used."""

    pid: int
    interval: float = 0.01
    baseline_kib: int = 0
    peak_kib: int = 0
    cpu_seconds: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssMonitor:
        _reset_peak(self.pid)
        self.baseline_kib = self.peak_kib = _status_kib(self.pid, "VmRSS")
        self.cpu_seconds = -_cpu_seconds(self.pid)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(OSError, KeyError):
                self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmRSS"))

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        with contextlib.suppress(OSError, KeyError):
            # VmHWM catches a peak between two samples (it was reset on entry)
            self.peak_kib = max(self.peak_kib, _status_kib(self.pid, "VmHWM"))
        self.cpu_seconds += _cpu_seconds(self.pid)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.baseline_kib) / 1024


# --- files -------------------------------------------------------------------------------


def write_input(path: Path, size: int, seed: int = 41) -> str:
    """A file of ``size`` pseudo-random bytes (not compressible, not zeros); its SHA-1."""
    rng = random.Random(seed)
    digest = hashlib.sha1()
    with path.open("wb") as out:
        left = size
        while left:
            block = rng.randbytes(min(CHUNK, left))
            digest.update(block)
            out.write(block)
            left -= len(block)
        # on disk before the rounds: the kernel's own writeback must not run during them
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def sha1_file(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            yield block


# --- ITI-41 from a streaming client -----------------------------------------------------


@dataclass(frozen=True)
class StreamedRequest:
    content_type: str
    length: int
    body: Callable[[], Iterator[bytes]]


def provide_request(url: str, patient: str, unique_id: str, document: Path) -> StreamedRequest:
    """An ITI-41 MTOM/XOP package (XOP 1.0, RFC 2387) whose document part is read from
    ``document`` in chunks while it is sent; the Content-Length is known beforehand."""
    content_id = f"doc1.{new_id()}@xdsi.bench"
    envelope = render(
        "iti41_one_document.xml",
        message_id=new_id(),
        to=url,
        patient_id=patient,
        ss_unique_id=unique_oid(),
        source_id=TEST_OID_ROOT,
        creation_time=dtm_now(),
        doc_unique_id=unique_id,
        mime_type=MIME_TYPE,
        format_code=FORMAT_CODE,
        title="Large document",
        content_id=content_id,
    )
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.{uuid.uuid4().hex}@xdsi.bench"
    head = (
        (
            f"--{boundary}\r\n"
            'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{root_id}>\r\n\r\n"
        ).encode()
        + envelope
        + (
            f"\r\n--{boundary}\r\n"
            f"Content-Type: {MIME_TYPE}\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{content_id}>\r\n\r\n"
        ).encode()
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<{root_id}>"; start-info="application/soap+xml"; action="{ITI41_ACTION}"'
    )

    def body() -> Iterator[bytes]:
        yield head
        yield from read_chunks(document)
        yield tail

    return StreamedRequest(content_type, len(head) + document.stat().st_size + len(tail), body)


def provide(http: httpx.Client, url: str, request: StreamedRequest) -> None:
    response = http.post(
        url,
        content=request.body(),
        headers={"content-type": request.content_type, "content-length": str(request.length)},
    )
    package = parse_response(response.headers.get("content-type", ""), response.content)
    status = etree.fromstring(package.root).find(f".//{RS_STATUS}")
    if response.status_code != 200 or status is None or status.get("status") != SUCCESS:
        raise RuntimeError(f"ITI-41 failed: HTTP {response.status_code}\n{package.root[:4000]!r}")


# --- ITI-43, the response part streamed to a file ----------------------------------------


class MultipartToFile:
    """A streaming multipart/related reader (RFC 2046 5.1.1): the root part is kept in
    memory, every other part goes to ``<directory>/<n>`` as it arrives."""

    def __init__(self, boundary: str, directory: Path) -> None:
        self._boundary = boundary.encode("latin-1")
        self._delimiter = b"\r\n--" + self._boundary
        self._buffer = b"\r\n"  # the first delimiter has no CRLF of its own
        self._state = "preamble"
        self._directory = directory
        self._out: object = None
        self._seen = 0
        self.root: bytes | None = None
        self.parts: dict[str, Path] = {}

    def feed(self, data: bytes | memoryview) -> None:
        if self._state == "body" and self._feed_body(data):
            return
        self._buffer += data
        while self._step():
            pass

    def _feed_body(self, data: bytes | memoryview) -> bool:
        """Inside a part, when no delimiter starts in what is held or in ``data``: write
        both but the last ``len(delimiter) - 1`` bytes, which are held (a delimiter may
        start there).  False, nothing done, when a delimiter does start.

        The scan looks for the boundary itself, then checks the CRLF ``--`` before it:
        bytes.find skips faster through a needle of fewer distinct bytes."""
        delimiter, boundary = self._delimiter, self._boundary
        keep = len(delimiter) - 1
        if len(data) < keep or (self._buffer + data[:keep]).find(delimiter) >= 0:
            return False
        chunk = data if isinstance(data, bytes) else bytes(data)
        at = chunk.find(boundary, 4)
        while at >= 0:
            if chunk[at - 4 : at] == b"\r\n--":
                return False
            at = chunk.find(boundary, at + 1)
        self._write(self._buffer)
        self._write(memoryview(chunk)[:-keep])
        self._buffer = chunk[-keep:]
        return True

    def _step(self) -> bool:
        buffer, delimiter = self._buffer, self._delimiter
        if self._state in ("preamble", "body"):
            at = buffer.find(delimiter)
            if at < 0:
                keep = len(delimiter) - 1
                if self._state == "body" and len(buffer) > keep:
                    self._write(memoryview(buffer)[:-keep])  # no copy of the chunk
                    self._buffer = buffer[-keep:]
                return False
            if self._state == "body":
                self._write(buffer[:at])
                self._end_part()
            self._buffer = buffer[at + len(delimiter) :]
            self._state = "after-delimiter"
            return True
        if self._state == "after-delimiter":
            if len(buffer) < 2:
                return False
            if buffer.startswith(b"--"):
                self._state = "done"
                return False
            eol = buffer.find(b"\r\n")
            if eol < 0:
                return False
            self._buffer = buffer[eol + 2 :]
            self._state = "headers"
            return True
        if self._state == "headers":
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return False
            headers = {}
            for line in buffer[:end].decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self._begin_part(headers.get("content-id", "").strip("<>"))
            self._buffer = buffer[end + 4 :]
            self._state = "body"
            return True
        return False

    def _begin_part(self, content_id: str) -> None:
        self._seen += 1
        if self._seen == 1:  # the root part comes first (xdsi sends it so)
            self._out = bytearray()
            return
        path = self._directory / f"part-{len(self.parts) + 1}"
        self.parts[content_id] = path
        self._out = path.open("wb")

    def _write(self, data: bytes | memoryview) -> None:
        if isinstance(self._out, bytearray):
            self._out += data
        else:
            self._out.write(data)  # type: ignore[union-attr]

    def _end_part(self) -> None:
        if isinstance(self._out, bytearray):
            self.root = bytes(self._out)
        else:
            self._out.close()  # type: ignore[union-attr]
        self._out = None

    @property
    def complete(self) -> bool:
        return self._state == "done"


def retrieve_request(url: str, unique_id: str) -> tuple[str, bytes]:
    """ITI-43 for one document, as an MTOM/XOP package without attachments (small)."""
    requests = (
        "      <xdsb:DocumentRequest>\n"
        f"        <xdsb:RepositoryUniqueId>{escape(REPOSITORY_UNIQUE_ID)}</xdsb:RepositoryUniqueId>\n"
        f"        <xdsb:DocumentUniqueId>{escape(unique_id)}</xdsb:DocumentUniqueId>\n"
        "      </xdsb:DocumentRequest>"
    )
    envelope = render(
        "iti43_retrieve.xml", raw={"document_requests": requests}, message_id=new_id(), to=url
    )
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
            "Content-Transfer-Encoding: binary\r\nContent-ID: <root@xdsi.bench>\r\n\r\n"
        ).encode()
        + envelope
        + f"\r\n--{boundary}--\r\n".encode()
    )
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<root@xdsi.bench>"; start-info="application/soap+xml"; action="{ITI43_ACTION}"'
    )
    return content_type, body


class FileSink:
    """A response body written to a file as it arrives."""

    def __init__(self, output: Path) -> None:
        self._out = output.open("wb")
        self.complete = False

    def feed(self, data: bytes | memoryview) -> None:
        self._out.write(data)

    def close(self) -> None:
        self._out.close()
        self.complete = True


def http_receive(
    url: str,
    sink_for: Callable[[str, dict[str, str], bytes], FileSink | MultipartToFile],
    *,
    method: str = "GET",
    content_type: str | None = None,
    body: bytes = b"",
) -> FileSink | MultipartToFile:
    """One HTTP/1.1 exchange on a plain socket (RFC 9112); the response body is fed, as it
    arrives, to the sink ``sink_for(status_line, headers, first_bytes)`` returns.

    Read in 1 MiB steps: httpx's 64 KiB reads would make the client,
    not the server, the bottleneck.  The ITI-43 retrieve and the nginx reference of
    ``bench/documents.py`` both use this one client.
    """
    target = urlsplit(url)
    head = f"{method} {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    if body or method != "GET":
        head += f"Content-Length: {len(body)}\r\n"
    head += "Connection: close\r\n\r\n"
    with socket.create_connection((target.hostname, target.port or 80)) as sock:
        sock.sendall(head.encode("latin-1") + body)
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            if not data:
                raise RuntimeError(f"{url}: connection closed before the response headers")
            received += data
        response_head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = response_head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
        sink = sink_for(status_line, headers, rest)
        sink.feed(rest)
        remaining = int(headers["content-length"]) - len(rest)
        while remaining > 0:
            data = sock.recv(min(CHUNK, remaining))  # bytes: a sink scans them uncopied
            if not data:
                raise RuntimeError(f"{url}: response truncated")
            sink.feed(data)
            remaining -= len(data)
    if isinstance(sink, FileSink):
        sink.close()
    return sink


def download(url: str, output: Path) -> int:
    """GET ``url`` into ``output`` with :func:`http_receive`; its size."""

    def sink_for(status_line: str, _headers: dict[str, str], rest: bytes) -> FileSink:
        if status_line.split()[1] != "200":
            raise RuntimeError(f"GET {url}: {status_line} {rest[:400]!r}")
        return FileSink(output)

    http_receive(url, sink_for)
    return output.stat().st_size


def retrieve(
    url: str,
    unique_id: str,
    output: Path,
    reader_for: Callable[[str, Path], MultipartToFile] = MultipartToFile,
) -> int:
    """ITI-43: the one document of the response streamed to ``output``; its size.

    ``reader_for(boundary, directory)`` makes the multipart reader (``bench/documents.py``
    passes one that writes the part into a file of its own)."""
    content_type, body = retrieve_request(url, unique_id)

    def sink_for(status_line: str, headers: dict[str, str], rest: bytes) -> MultipartToFile:
        boundary = re.search(r'boundary="?([^";]+)"?', headers.get("content-type", ""))
        if status_line.split()[1] != "200" or boundary is None:
            raise RuntimeError(f"ITI-43 failed: {status_line} {rest[:4000]!r}")
        return reader_for(boundary.group(1), output.parent)

    reader = http_receive(url, sink_for, method="POST", content_type=content_type, body=body)
    assert isinstance(reader, MultipartToFile)
    if not reader.complete or reader.root is None:
        raise RuntimeError("ITI-43 response truncated")
    root = etree.fromstring(reader.root)
    status = root.find(f".//{RS_STATUS}")
    include = root.find(f".//{XOP_INCLUDE}")
    if status is None or status.get("status") != SUCCESS or include is None:
        raise RuntimeError(f"ITI-43 failed:\n{reader.root[:4000]!r}")
    part = reader.parts[unquote(include.get("href", "")[4:])]
    part.replace(output)
    return output.stat().st_size


# --- the run -------------------------------------------------------------------------------


@dataclass
class Phase:
    seconds: float
    size: int
    server: RssMonitor
    client: RssMonitor

    @property
    def mib_per_s(self) -> float:
        return self.size / MiB / self.seconds


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(server_pid: int, size: int, run: Callable[[], object]) -> Phase:
    with RssMonitor(server_pid) as server, RssMonitor(os.getpid()) as client:
        seconds = timed(run)
    return Phase(seconds, size, server, client)


def _sh(*argv: str, stdout: int | None = subprocess.DEVNULL) -> None:
    subprocess.run(argv, check=True, stdout=stdout)


@dataclass
class Round:
    """One ITI-41 + ITI-43 of the document and the reference figures taken beside it."""

    iti41: Phase
    iti43: Phase
    ref_sha1sum_cp: float
    ref_sync: float
    ref_cat: float
    ref_pycopy: float


@dataclass
class Results:
    size: int
    rounds: list[Round]
    server_start_rss_mib: float

    def best(self, figure: Callable[[Round], float]) -> float:
        return min(figure(r) for r in self.rounds)

    def worst(self, figure: Callable[[Round], float]) -> float:
        return max(figure(r) for r in self.rounds)


def feed_patient(server: ServerProcess) -> str:
    number = new_patient_number()
    reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    if ack_code(reply) != "AA":
        raise RuntimeError(f"ITI-8 not accepted: {reply!r}")
    return patient_cx(number)


def _restamp(path: Path, n: int) -> str:
    """Make the document new for round ``n`` (its first 8 bytes); its SHA-1."""
    with path.open("r+b") as f:
        f.write(n.to_bytes(8, "big"))
    return sha1_file(path)


def run_round(
    server: ServerProcess, http: httpx.Client, patient: str, source: Path, n: int
) -> Round:
    assert server.process is not None
    pid, size = server.process.pid, source.stat().st_size
    url = f"{server.base_url}/xds/repository"
    workdir = source.parent
    source_sha1 = _restamp(source, n)
    unique_id = unique_oid()
    request = provide_request(url, patient, unique_id, source)
    iti41 = measure(pid, size, lambda: provide(http, url, request))
    output = workdir / "retrieved.bin"
    iti43 = measure(pid, size, lambda: retrieve(url, unique_id, output))
    if output.stat().st_size != size or sha1_file(output) != source_sha1:
        raise RuntimeError("ITI-43 returned other bytes than ITI-41 sent")
    output.unlink()
    blob = server.data_dir / "blobs" / source_sha1[:2] / source_sha1[2:4] / source_sha1
    if not blob.is_file():
        raise RuntimeError(f"no blob at {blob}")

    copy = workdir / "copy.bin"
    ref_sha1sum_cp = timed(lambda: (_sh("sha1sum", str(source)), _sh("cp", str(source), str(copy))))
    ref_sync = timed(lambda: _sh("sync", "--data", str(copy)))
    copy.unlink()
    ref_cat = timed(lambda: _sh("sh", "-c", f'cat "{blob}" > /dev/null'))
    ref_pycopy = timed(lambda: _python_copy(blob, copy))
    copy.unlink()
    return Round(iti41, iti43, ref_sha1sum_cp, ref_sync, ref_cat, ref_pycopy)


def run_benchmark(
    size: int, workdir: Path, *, rounds: int = 3, log: Callable[[str], None] = print
) -> Results:
    """``rounds`` rounds in ``workdir`` (which the caller removes afterwards)."""
    server = ServerProcess(workdir / "data")
    log(f"starting xdsi serve (data dir {server.data_dir})")
    server.start()
    try:
        assert server.process is not None
        url = f"{server.base_url}/xds/repository"
        patient = feed_patient(server)
        source = workdir / "input.bin"
        log(f"writing {size / MiB:.0f} MiB of pseudo-random content to {source}")
        write_input(source, size)
        with httpx.Client(timeout=httpx.Timeout(600.0)) as http:
            # warm-up: the first transaction loads code paths, not document bytes
            warm = workdir / "warm.bin"
            write_input(warm, 64 * 1024, seed=1)
            warm_uid = unique_oid()
            provide(http, url, provide_request(url, patient, warm_uid, warm))
            retrieve(url, warm_uid, workdir / "warm.out")
            start_rss = _status_kib(server.process.pid, "VmRSS") / 1024
            done = []
            for n in range(1, rounds + 1):
                log(f"round {n}/{rounds}: ITI-41, ITI-43, references ...")
                done.append(run_round(server, http, patient, source, n))
    finally:
        server.stop()
    return Results(size, done, start_rss)


def _python_copy(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        while block := src.read(CHUNK):
            dst.write(block)


# --- report -------------------------------------------------------------------------------


def _rows(r: Results) -> list[tuple[str, str, str, str]]:
    """Times and CPU: the best round; memory: the worst round."""
    mib = r.size / MiB

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "-"

    t41, t43 = r.best(lambda x: x.iti41.seconds), r.best(lambda x: x.iti43.seconds)
    cp, cp_sync = (
        r.best(lambda x: x.ref_sha1sum_cp),
        r.best(lambda x: x.ref_sha1sum_cp + x.ref_sync),
    )
    pycopy, cat = r.best(lambda x: x.ref_pycopy), r.best(lambda x: x.ref_cat)
    cpu = {
        name: r.best(figure)
        for name, figure in {
            "41s": lambda x: x.iti41.server.cpu_seconds,
            "41c": lambda x: x.iti41.client.cpu_seconds,
            "43s": lambda x: x.iti43.server.cpu_seconds,
            "43c": lambda x: x.iti43.client.cpu_seconds,
        }.items()
    }
    mem = {
        name: r.worst(figure)
        for name, figure in {
            "41p": lambda x: x.iti41.server.peak_mib,
            "41g": lambda x: x.iti41.server.growth_mib,
            "41c": lambda x: x.iti41.client.peak_mib,
            "43p": lambda x: x.iti43.server.peak_mib,
            "43g": lambda x: x.iti43.server.growth_mib,
            "43c": lambda x: x.iti43.client.peak_mib,
        }.items()
    }
    return [
        ("ITI-41 wall time (s)", f"{t41:.2f}", f"{cp:.2f} sha1sum+cp", ratio(t41, cp)),
        ("ITI-41 wall time vs sha1sum+cp+fsync (s)", f"{t41:.2f}", f"{cp_sync:.2f}", ratio(t41, cp_sync)),
        ("ITI-41 throughput (MiB/s)", f"{mib / t41:.0f}", f"{mib / cp:.0f}", ratio(mib / cp, mib / t41)),
        ("ITI-41 server CPU time (s)", f"{cpu['41s']:.2f}", "", ""),
        ("ITI-41 client CPU time (s)", f"{cpu['41c']:.2f}", "", ""),
        ("ITI-41 server peak RSS (MiB)", f"{mem['41p']:.1f}", "", ""),
        ("ITI-41 server RSS growth (MiB)", f"{mem['41g']:.1f}", "", ""),
        ("ITI-41 client peak RSS (MiB)", f"{mem['41c']:.1f}", "", ""),
        ("ITI-43 wall time (s)", f"{t43:.2f}", f"{pycopy:.2f} python copy", ratio(t43, pycopy)),
        ("ITI-43 wall time vs cat > /dev/null (s)", f"{t43:.2f}", f"{cat:.2f}", ratio(t43, cat)),
        ("ITI-43 throughput (MiB/s)", f"{mib / t43:.0f}", f"{mib / pycopy:.0f}", ratio(mib / pycopy, mib / t43)),
        ("ITI-43 server CPU time (s)", f"{cpu['43s']:.2f}", "", ""),
        ("ITI-43 client CPU time (s)", f"{cpu['43c']:.2f}", "", ""),
        ("ITI-43 server peak RSS (MiB)", f"{mem['43p']:.1f}", "", ""),
        ("ITI-43 server RSS growth (MiB)", f"{mem['43g']:.1f}", "", ""),
        ("ITI-43 client peak RSS (MiB)", f"{mem['43c']:.1f}", "", ""),
    ]  # fmt: skip


def rounds_line(r: Results) -> str:
    """Every round's wall times, so the spread is on record beside the best."""

    def each(figure: Callable[[Round], float]) -> str:
        return ", ".join(f"{figure(x):.2f}" for x in r.rounds)

    return (
        f"Wall times of the {len(r.rounds)} rounds (s): ITI-41 {each(lambda x: x.iti41.seconds)}; "
        f"sha1sum+cp {each(lambda x: x.ref_sha1sum_cp)}; fsync {each(lambda x: x.ref_sync)}; "
        f"ITI-43 {each(lambda x: x.iti43.seconds)}; python copy {each(lambda x: x.ref_pycopy)}; "
        f"cat {each(lambda x: x.ref_cat)}."
    )


def table(r: Results) -> str:
    header = ("figure", "xdsi", "reference", "ratio")
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|---:|---:|---:|",
        *("| " + " | ".join(row) + " |" for row in _rows(r)),
    ]
    return "\n".join(lines)


def _first_line(*argv: str) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.strip().splitlines()[-1] if out.strip() else "?"


def machine(workdir: Path) -> str:
    mem_kib = _status_line("/proc/meminfo", "MemTotal")
    source = _first_line("findmnt", "-no", "SOURCE,FSTYPE", "-T", str(workdir))
    device = Path(source.split()[0]).name if source != "?" else ""
    rotational = Path(f"/sys/block/{device}/queue/rotational")
    kind = (
        ("rotational" if rotational.read_text().strip() == "1" else "non-rotational")
        if rotational.exists()
        else "unknown kind"
    )
    cpu = _status_line("/proc/cpuinfo", "model name", raw=True)
    return (
        f"{os.cpu_count()} CPUs (`nproc` {_first_line('nproc')}, {cpu}), "
        f"{mem_kib // 1024} MiB memory, disk {source} ({kind}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def _status_line(path: str, key: str, *, raw: bool = False) -> object:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(key):
                value = line.split(":", 1)[1].strip()
                return value if raw else int(value.split()[0])
    return "?"


def append_results(r: Results, description: str, path: Path = RESULTS_MD) -> None:
    if not path.exists():
        path.write_text(
            "# Large documents through ITI-41 and ITI-43\n\n"
            "Appended by `bench/large_document.py`, newest last.  References come from the\n"
            "same run on the same disk; the page cache is warm for all of them.\n",
            encoding="utf-8",
        )
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with path.open("a", encoding="utf-8") as out:
        out.write(
            f"\n## {stamp}: {r.size / MiB:.0f} MiB\n\n{description}\n\n"
            f"Server RSS after start-up and warm-up: {r.server_start_rss_mib:.1f} MiB.  "
            f"Times and CPU: best of {len(r.rounds)} rounds; memory: worst round.\n"
            f"{rounds_line(r)}\n\n"
            f"{table(r)}\n"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--rounds", type=int, default=3, help="ITI-41 + ITI-43 rounds")
    parser.add_argument("--workdir", type=Path, default=None, help="temp folder parent")
    parser.add_argument("--no-append", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="xdsi-bench-", dir=args.workdir))
    try:
        results = run_benchmark(args.size, workdir, rounds=args.rounds)
        description = machine(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n{description}\n{rounds_line(results)}\n\n{table(results)}")
    if not args.no_append:
        append_results(results, description)
        print(f"\nappended to {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
