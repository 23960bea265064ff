"""One XDS transaction, one database transaction.

``UnitOfWork`` rolls back unless committed.  ``transact`` runs a piece of work in a
fresh unit of work and runs it again, from the start, when the database says another
transaction got in the way (a serialization failure, a deadlock, a busy SQLite, or a
unique constraint another transaction won): the work re-reads the stored state, so
a lost race is answered from what the winner stored.  Between attempts it waits a
random time of up to ``RETRY_BACKOFF_SECONDS * 2**(attempt - 1)`` ("full jitter"), so
transactions that collided do not collide again at once.  Registrations queue on
advisory locks (``registry.locks``) and so seldom need a retry; the retries remain for
the rest: a unique constraint as the last line of defence, a deadlock, a SERIALIZABLE
writer (registry.db) that lost to another.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

DEFAULT_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = 0.005  # the first wait is up to 5 ms, the fourth up to 40 ms

# SQLSTATEs that mean "run it again" (PostgreSQL Appendix A)
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


class UnitOfWork:
    """A session whose transaction is rolled back on exit unless ``commit()`` ran."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside its 'with' block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._factory()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self.session
        try:
            session.rollback()
        finally:
            session.close()
            self._session = None

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


def is_retryable(error: BaseException) -> bool:
    """True when ``error`` means another transaction got in the way."""
    if isinstance(error, IntegrityError):
        return True
    if isinstance(error, DBAPIError):
        sqlstate = getattr(error.orig, "sqlstate", None)
        if sqlstate in _RETRY_SQLSTATES:
            return True
        if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
            return True
    return False


def transact(
    factory: sessionmaker[Session],
    work: Callable[[Session], tuple[T, bool]],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff: float = RETRY_BACKOFF_SECONDS,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Run ``work(session)`` in a unit of work; it returns ``(result, commit?)``.

    Retried up to ``attempts`` times while :func:`is_retryable`, after a random wait
    of up to ``backoff * 2**(attempt - 1)`` seconds; the last error is raised when they
    are used up.  Runs on a worker thread (the SOAP endpoints call it in the
    threadpool), so the wait blocks no event loop.
    """
    for attempt in range(1, attempts + 1):
        try:
            with UnitOfWork(factory) as uow:
                result, commit = work(uow.session)
                if commit:
                    uow.commit()
                return result
        except DBAPIError as error:
            if attempt == attempts or not is_retryable(error):
                raise
        sleep(random.uniform(0, backoff * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")


__all__ = ["DEFAULT_ATTEMPTS", "RETRY_BACKOFF_SECONDS", "UnitOfWork", "is_retryable", "transact"]
