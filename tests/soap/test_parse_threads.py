"""Large bodies parsed while others are: a libxml2 parser takes the string dictionary of
the thread it starts on, and one fed from several threads - while those threads parse
other messages with their own - corrupts it (free(): invalid pointer, mangled names).
Run in a child process: the failure this guards against kills the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STRESS = textwrap.dedent(
    """
    import asyncio, sys, tempfile
    import anyio
    from soap.limits import Limits
    from soap.mtom import MessageReader, read_message

    SOAP = "http://www.w3.org/2003/05/soap-envelope"
    limits = Limits(spool_dir=tempfile.mkdtemp(), max_envelope_bytes=64 << 20,
                    max_request_bytes=64 << 20)

    def body(n: int) -> bytes:
        # names of its own per message: each parse adds to its thread's dictionary
        items = b"".join(
            b'<e%d_%d a%d="v"><c%d>t%d</c%d></e%d_%d>' % (n, j, j % 97, j % 89, j, j % 89, n, j)
            for j in range(4000)
        )
        return (b'<env:Envelope xmlns:env="%s"><env:Body><r>' % SOAP.encode()
                + items + b"</r></env:Body></env:Envelope>")

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
        expected = ["e%d_%d" % (n, j) for j in range(4000)]
        if names != expected:
            sys.exit(f"message {n}: names mangled")

    async def main() -> None:
        for batch in range(int(sys.argv[1])):
            async with anyio.create_task_group() as group:
                for n in range(batch * 8, batch * 8 + 8):
                    group.start_soon(one, n)

    anyio.run(main)
    print("ok")
    """
)


def test_large_bodies_parsed_at_once_in_worker_threads_keep_their_process_whole(
    tmp_path: Path,
) -> None:
    script = tmp_path / "stress.py"
    script.write_text(STRESS, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), "30"],
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
