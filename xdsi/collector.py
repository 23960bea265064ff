"""Python's cycle collector set for a long-running server process.

CPython collects its youngest generation of container objects every 700 allocations
(net of deallocations).  A registration or a query allocates thousands of
short-lived ones (lxml element proxies, model objects, rows) that reference counting
already frees, so the collector runs again and again for next to nothing,
and each of its older generations' collections walks every object the process keeps:
modules, SQLAlchemy's and lxml's caches, the application.  Measured on ITI-42
submission sets (``bench/registrations.py``), that was about a tenth of a worker's CPU.

:func:`settle`, once the application is built and before it serves: one full
collection, everything alive then moved out of the collector's sight (``gc.freeze``:
what a server keeps from its start it keeps to the end), and the youngest
generation's threshold raised to :data:`YOUNG_GENERATION_THRESHOLD` allocations.
Garbage in reference cycles is still collected, later and in fewer passes."""

from __future__ import annotations

import gc

# Net allocations of container objects between two collections of the youngest
# generation (CPython: 700).  At about a hundred bytes each, at most a few MB of
# cyclic garbage wait for a collection.
YOUNG_GENERATION_THRESHOLD = 20_000


def settle() -> None:
    """Collect, freeze what is alive, and raise the youngest generation's threshold
    (the older generations keep theirs)."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, oldest)


__all__ = ["YOUNG_GENERATION_THRESHOLD", "settle"]
