"""Leader/follower group commit for callers that wait for their own write.

A caller hands its messages to ``GroupCommit.commit`` and waits.  If no write is
running it becomes the leader: it takes everything handed in so far and writes it in
one transaction, in the order handed in; callers that arrive meanwhile wait and are
served by the next leader - one of them.  So a lone caller pays one commit and no
thread hop, and concurrent callers share commits (one fsync for the group) without a
dedicated writer or an artificial delay.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence

Write = Callable[[Sequence[bytes]], bool]  # one transaction; True when durable

_KEEP_OUTCOMES = 1024  # finished groups remembered for callers still waking up


class GroupCommit:
    def __init__(self, write: Write) -> None:
        self._write = write
        self._condition = threading.Condition()
        self._pending: list[bytes] = []
        self._handed = 0  # callers that handed messages in, in order
        self._written = 0  # callers whose messages are written (all up to this one)
        self._writing = False
        self._outcomes: deque[tuple[int, bool]] = deque(maxlen=_KEEP_OUTCOMES)

    def commit(self, messages: Sequence[bytes]) -> bool:
        """Write ``messages`` (with whatever else is waiting); True once durable."""
        with self._condition:
            self._pending.extend(messages)
            self._handed += 1
            mine = self._handed
            while self._written < mine:
                if self._writing:
                    self._condition.wait()
                    continue
                self._lead()
            return self._outcome(mine)

    def _lead(self) -> None:
        """Write everything handed in so far; called and returning with the lock held."""
        batch, self._pending = self._pending, []
        upto = self._handed
        self._writing = True
        self._condition.release()
        durable = False
        try:
            durable = self._write(batch) if batch else True
        finally:
            self._condition.acquire()
            self._writing = False
            self._written = upto
            self._outcomes.append((upto, durable))
            self._condition.notify_all()

    def _outcome(self, caller: int) -> bool:
        # groups are consecutive ranges of callers: mine is the first that ends at or
        # after me, almost always the newest - searched from there, not from the oldest
        found = True  # forgotten: more than _KEEP_OUTCOMES groups ago, and it was written
        for upto, durable in reversed(self._outcomes):
            if upto < caller:
                break
            found = durable
        return found


__all__ = ["GroupCommit"]
