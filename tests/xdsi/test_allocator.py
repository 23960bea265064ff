"""``xdsi.allocator``: glibc malloc settings of ``xdsi serve``, checked in a fresh
interpreter each (mallopt changes the whole process)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the settings are glibc's"
)

# malloc and free a 1 MiB block (glibc's dynamic threshold rises to 1 MiB), then ask
# whether a 512 KiB block is a mapping of its own (mallinfo2 hblks)
PROBE = """
import ctypes, json, sys
from xdsi.allocator import tune_allocator

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
applied = tune_allocator() if sys.argv[1] == "tune" else {}
libc.free(libc.malloc(1024 * 1024))
before = libc.mallinfo2().hblks
block = libc.malloc(512 * 1024)
mapped = libc.mallinfo2().hblks > before
libc.free(block)
print(json.dumps({"applied": applied, "mapped": mapped}))
"""


def probe(mode: str, **environ: str) -> dict[str, object]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"
    }
    env.update(environ, PYTHONPATH=str(REPO_ROOT))
    run = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, env=env, timeout=60
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout)
    return result


def test_large_blocks_are_mappings_of_their_own_once_tuned() -> None:
    assert probe("default")["mapped"] is False  # glibc's dynamic threshold rose
    tuned = probe("tune")
    assert tuned["applied"] == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 256 * 1024}
    assert tuned["mapped"] is True


def test_glibc_environment_variables_win() -> None:
    tuned = probe("tune", MALLOC_ARENA_MAX="8", MALLOC_MMAP_THRESHOLD_="2097152")
    assert tuned["applied"] == {}
    assert tuned["mapped"] is False  # 512 KiB is below the operator's 2 MiB
