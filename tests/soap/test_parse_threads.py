"""Messages parsed while others are, their trees read in worker threads meanwhile: a
libxml2 parser takes the string dictionary of the thread it starts on, and adds to it.
A parser fed from several threads corrupted it (free(): invalid pointer, mangled
names); trees of the event loop read in workers while the loop parsed messages of new
names crashed the process (segmentation fault).  Run in a child process: the failures
this guards against kill the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STRESS = textwrap.dedent(
    """
    import asyncio, sys, time
    import anyio
    from soap.limits import Limits
    from soap.mtom import MessageReader, read_message

    SOAP = "http://www.w3.org/2003/05/soap-envelope"
    limits = Limits(spool_dir=sys.argv[2], max_envelope_bytes=64 << 20,
                    max_request_bytes=64 << 20)

    def body(n: int) -> bytes:
        # names of its own per message: each parse adds to its thread's dictionary;
        # every other message small (read in one go), the rest large (fed in batches)
        count = 4000 if n % 2 else 60
        items = b"".join(
            b'<e%d_%d a%d="v"><c%d>t%d</c%d></e%d_%d>' % (n, j, j % 97, j % 89, j, j % 89, n, j)
            for j in range(count)
        )
        return (b'<env:Envelope xmlns:env="%s"><env:Body><r>' % SOAP.encode()
                + items + b"</r></env:Body></env:Envelope>")

    kept = []  # trees read by worker threads while new messages are parsed

    def read_kept() -> None:
        for envelope in list(kept[-16:]):
            for child in envelope.iter("{%s}Body" % SOAP):
                len(child.findall("r"))

    async def chunks(data: bytes):
        for start in range(0, len(data), 16384):
            yield data[start:start + 16384]
            await asyncio.sleep(0)

    async def one(n: int) -> None:
        data = body(n)
        reader = MessageReader("application/soap+xml", limits)
        message = await read_message(reader, chunks(data))
        names = await anyio.to_thread.run_sync(
            lambda: [child.tag for child in message.envelope[0][0]])
        expected = ["e%d_%d" % (n, j) for j in range(4000 if n % 2 else 60)]
        if names != expected:
            sys.exit(f"message {n}: names mangled")
        kept.append(message.envelope)
        await anyio.to_thread.run_sync(read_kept)

    done = False

    def keep_reading() -> None:
        while not done:
            read_kept()
            time.sleep(0.0005)  # leave the interpreter to the parses now and then

    async def small(n: int) -> None:
        # a message of 200 new names, parsed while workers read the trees kept
        names = b"".join(b"<s%d_%d/>" % (n, j) for j in range(200))
        data = (b'<env:Envelope xmlns:env="%s"><env:Body><r>' % SOAP.encode()
                + names + b"</r></env:Body></env:Envelope>")
        reader = MessageReader("application/soap+xml", limits)
        message = await read_message(reader, chunks(data))
        kept.append(message.envelope)
        del kept[:-32]

    async def main() -> None:
        async with anyio.create_task_group() as readers:
            for _ in range(3):
                readers.start_soon(anyio.to_thread.run_sync, keep_reading)
            for batch in range(int(sys.argv[1])):
                async with anyio.create_task_group() as group:
                    for n in range(batch * 8, batch * 8 + 8):
                        group.start_soon(one, n)
                    for n in range(batch * 60, batch * 60 + 60):
                        await small(n)
            global done
            done = True

    anyio.run(main)
    print("ok")
    """
)


def test_messages_parsed_at_once_and_read_in_workers_keep_their_process_whole(
    tmp_path: Path,
) -> None:
    script = tmp_path / "stress.py"
    script.write_text(STRESS, encoding="utf-8")
    spool = tmp_path / "spool"
    spool.mkdir()
    done = subprocess.run(
        [sys.executable, str(script), "20", str(spool)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", (
        done.returncode,
        done.stdout[-2000:],
        done.stderr[-2000:],
    )
