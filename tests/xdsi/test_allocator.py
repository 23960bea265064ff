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

# malloc and free an 8 MiB block (glibc's dynamic threshold rises to 8 MiB), then ask
# whether a 6 MiB block is a mapping of its own (mallinfo2 hblks); and whether a 2 MiB
# block freed at the top of the heap is kept (not trimmed: no page faults to take it
# again) - the heap's size (mallinfo2 arena) after its free
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
libc.free(libc.malloc(8 * 1024 * 1024))
before = libc.mallinfo2().hblks
block = libc.malloc(6 * 1024 * 1024)
mapped = libc.mallinfo2().hblks > before
libc.free(block)
heap = libc.mallinfo2().arena
block = libc.malloc(2 * 1024 * 1024)
grown = libc.mallinfo2().arena - heap
libc.free(block)
kept = libc.mallinfo2().arena - heap >= grown > 0
print(json.dumps({"applied": applied, "mapped": mapped, "kept": kept}))
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
    assert tuned["applied"] == {
        "MALLOC_ARENA_MAX": 2,
        "MALLOC_MMAP_THRESHOLD_": 4 * 1024 * 1024,
        "MALLOC_TRIM_THRESHOLD_": 8 * 1024 * 1024,
    }
    assert tuned["mapped"] is True


def test_a_freed_block_below_the_threshold_stays_in_the_heap_once_tuned() -> None:
    # a fixed mmap threshold alone leaves glibc's 128 KiB trim threshold: every large
    # free at the top of the heap would be given back and faulted in again
    assert probe("default", MALLOC_MMAP_THRESHOLD_="4194304")["kept"] is False
    assert probe("tune")["kept"] is True


def test_glibc_environment_variables_win() -> None:
    tuned = probe(
        "tune",
        MALLOC_ARENA_MAX="8",
        MALLOC_MMAP_THRESHOLD_="8388608",
        MALLOC_TRIM_THRESHOLD_="131072",
    )
    assert tuned["applied"] == {}
    assert tuned["mapped"] is False  # 6 MiB is below the operator's 8 MiB
    assert tuned["kept"] is False  # the operator's 128 KiB trim threshold
