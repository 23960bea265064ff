"""glibc malloc settings for the long-running ``xdsi serve`` process.

``xdsi serve`` handles requests on many short-lived worker threads (anyio's pool, the
per-transfer threads of ``xdsi.zero_copy``, pynetdicom's association threads).  glibc
gives threads their own malloc arenas, up to eight per CPU core, and a chunk freed in an
arena stays there for that arena's next allocations; under a steady mix of requests with
buffers from a few KiB to a few MiB, the free space held by the arenas grows while the
memory in use does not.  ``bench/soak.py`` (three processes, ten minutes) measured the
resident set growing by 109-139 MiB per process with glibc's defaults, with
``mallinfo2()`` showing the bytes in use flat at ~33 MiB and the free bytes in the
arenas climbing linearly (bench/RESULTS.md).

:func:`tune_allocator` therefore sets, before the first thread starts:

- ``M_ARENA_MAX`` = :data:`ARENA_MAX` (2): threads share two arenas, whose free space
  is reused instead of stranded in a dozen;
- ``M_MMAP_THRESHOLD`` = :data:`MMAP_THRESHOLD` (4 MiB): a buffer that large (a
  document, a big DICOM instance) is its own mapping, given back to the system when
  freed, instead of glibc's dynamic threshold drifting up to 32 MiB and placing such
  buffers in the arenas;
- ``M_TRIM_THRESHOLD`` = :data:`TRIM_THRESHOLD` (8 MiB, twice the mmap threshold, as
  glibc's dynamic rule keeps it): an arena keeps up to that much free memory at its top
  rather than handing it back after every large free.

Both thresholds matter for speed as much as for memory.  A buffer served by a fresh
mapping, or by heap memory just trimmed away, is paid for again page by page (a page
fault and a zeroed page each, several microseconds per 4 KiB on a virtual machine):
with a 256 KiB threshold and glibc's 128 KiB trim threshold, joining the ~640 KiB of a
100-entry ITI-18 answer took 0.4-0.8 ms instead of 0.02-0.06 ms, and every response
body, SOAP envelope and DICOM instance of a few hundred KiB paid the same.

Measured with ``bench/soak.py --minutes 4 --clients 4 --processes 1`` (RSS growth after
warm-up): glibc's defaults +87 MiB, still climbing ~13 MiB a minute, the arenas' free
bytes 4 -> 74 MiB; ``MALLOC_ARENA_MAX=2`` alone +44 MiB; a fixed 256 KiB threshold alone
+65 MiB; both +41 MiB, the arenas' free bytes 4 -> 23 MiB.  A ``malloc_trim(0)`` every
10 s instead gave back 6-50 MiB a call, yet the resident set still climbed.  The arena
limit does most of the work; the 4 MiB / 8 MiB thresholds keep it (bench/RESULTS.md).

The trade-off is a little lock contention between threads sharing an arena, an
``mmap``/``munmap`` per buffer over 4 MiB and up to 8 MiB of free memory kept per arena.
glibc's own environment variables win: ``MALLOC_ARENA_MAX``, ``MALLOC_MMAP_THRESHOLD_``
and ``MALLOC_TRIM_THRESHOLD_`` (glibc applies them at start-up), when set, are left as
they are, so ``MALLOC_ARENA_MAX=8`` (or any value) restores a choice of the operator's.
On a C library other than glibc nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Mapping

log = logging.getLogger("xdsi.allocator")

# glibc malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

ARENA_MAX = 2
MMAP_THRESHOLD = 4 * 1024 * 1024
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD

# (mallopt parameter, value, the glibc environment variable that overrides it)
SETTINGS = (
    (M_ARENA_MAX, ARENA_MAX, "MALLOC_ARENA_MAX"),
    (M_MMAP_THRESHOLD, MMAP_THRESHOLD, "MALLOC_MMAP_THRESHOLD_"),
    (M_TRIM_THRESHOLD, TRIM_THRESHOLD, "MALLOC_TRIM_THRESHOLD_"),
)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc


def tune_allocator(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply :data:`SETTINGS` not overridden in ``environ``; what was set, by the name of
    its environment variable."""
    libc = _glibc()
    if libc is None:
        return {}
    applied: dict[str, int] = {}
    for parameter, value, variable in SETTINGS:
        if variable in environ:
            continue
        if libc.mallopt(ctypes.c_int(parameter), ctypes.c_int(value)) == 1:
            applied[variable] = value
        else:
            log.warning("mallopt(%d, %d) refused", parameter, value)
    return applied


__all__ = ["ARENA_MAX", "MMAP_THRESHOLD", "SETTINGS", "TRIM_THRESHOLD", "tune_allocator"]
