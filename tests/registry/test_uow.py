"""The unit of work rolls back unless committed; transact retries lost races."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from registry.db import session_factory
from registry.patients import register_patient
from registry.tables import PatientRow
from registry.uow import UnitOfWork, is_retryable, transact

P = "P^^^&1.2.3&ISO"


def patients(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(PatientRow))


def test_unit_of_work_rolls_back_without_commit(engine: Engine) -> None:
    with UnitOfWork(session_factory(engine, write=True)) as uow:
        register_patient(uow.session, P)
    assert patients(engine) == 0


def test_unit_of_work_keeps_committed_work(engine: Engine) -> None:
    with UnitOfWork(session_factory(engine, write=True)) as uow:
        register_patient(uow.session, P)
        uow.commit()
    assert patients(engine) == 1


def test_unit_of_work_rolls_back_on_exception(engine: Engine) -> None:
    with pytest.raises(RuntimeError), UnitOfWork(session_factory(engine, write=True)) as uow:
        register_patient(uow.session, P)
        raise RuntimeError("abort")
    assert patients(engine) == 0


def test_transact_retries_a_lost_unique_race(engine: Engine) -> None:
    """The first attempt collides with a row committed meanwhile; the rerun sees it."""
    factory = session_factory(engine, write=True)
    calls = []

    def work(session: Session) -> tuple[bool, bool]:
        calls.append(1)
        if len(calls) == 1:
            with factory() as rival:  # another transaction wins the race
                register_patient(rival, P)
                rival.commit()
            session.add(PatientRow(patient_id=P))
            session.flush()
        return register_patient(session, P), True

    assert transact(factory, work) is False
    assert len(calls) == 2
    assert patients(engine) == 1


def test_transact_gives_up_after_its_attempts(engine: Engine) -> None:
    calls = []

    def work(session: Session) -> tuple[None, bool]:
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        transact(session_factory(engine, write=True), work, attempts=3)
    assert len(calls) == 3


def test_transact_waits_longer_before_each_retry(engine: Engine) -> None:
    """Full-jitter backoff: the n-th wait is at most backoff * 2**(n-1), never negative."""
    waits: list[float] = []

    def work(session: Session) -> tuple[None, bool]:
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    with pytest.raises(IntegrityError):
        transact(
            session_factory(engine, write=True), work, attempts=4, backoff=1.0, sleep=waits.append
        )
    assert len(waits) == 3  # between attempts, none after the last
    assert all(0 <= wait <= 2**n for n, wait in enumerate(waits))


def test_transact_does_not_retry_other_errors(engine: Engine) -> None:
    calls = []

    def work(session: Session) -> tuple[None, bool]:
        calls.append(1)
        raise OperationalError("SELECT", {}, Exception("no such table: x"))

    with pytest.raises(OperationalError):
        transact(session_factory(engine, write=True), work)
    assert len(calls) == 1


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "retry"), [("40001", True), ("40P01", True), ("42P01", False)]
)
def test_is_retryable_by_sqlstate(sqlstate: str, retry: bool) -> None:
    assert is_retryable(OperationalError("SELECT", {}, _PgError(sqlstate))) is retry


def test_sqlite_locked_is_retryable() -> None:
    assert is_retryable(OperationalError("BEGIN", {}, Exception("database is locked")))
