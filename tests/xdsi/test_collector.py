"""xdsi.collector: the cycle collector of a serving process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from xdsi import collector


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settle_raises_the_youngest_threshold_only() -> None:
    _, middle, oldest = gc.get_threshold()
    collector.settle()
    assert gc.get_threshold() == (collector.YOUNG_GENERATION_THRESHOLD, middle, oldest)
    assert collector.YOUNG_GENERATION_THRESHOLD > 700  # CPython's own


def test_what_lives_at_the_start_is_frozen() -> None:
    kept = [[n] for n in range(1000)]  # containers the collector tracks
    collector.settle()
    assert gc.get_freeze_count() >= len(kept)
    # out of every generation: no collection walks them again
    walked = {id(o) for generation in range(3) for o in gc.get_objects(generation=generation)}
    assert not any(id(o) in walked for o in kept)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_cycles_made_after_settling_are_still_collected() -> None:
    collector.settle()
    first, second = _Node(), _Node()
    first.other, second.other = second, first  # a cycle: reference counts never reach 0
    gone = weakref.ref(first)
    del first, second
    assert gone() is not None
    gc.collect()
    assert gone() is None
