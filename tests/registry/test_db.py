"""Engine settings: SQLite WAL, foreign keys, immediate write transactions;
PostgreSQL serializable writes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, text

from registry.db import make_engine, session_factory, write_engine


def test_sqlite_uses_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    engine.dispose()


def test_sqlite_write_transaction_takes_the_write_lock_at_begin(tmp_path: Path) -> None:
    """A write session holds the lock before its first statement writes, so a second
    writer cannot start (here: it times out at once)."""
    path = tmp_path / "r.db"
    engine = make_engine(f"sqlite:///{path}")
    impatient = make_engine(f"sqlite:///{path}", sqlite_busy_timeout_ms=0)
    with session_factory(engine, write=True)() as holder:
        holder.execute(text("SELECT 1"))
        with session_factory(impatient, write=True)() as other:
            try:
                other.execute(text("SELECT 1"))
                locked = False
            except Exception as exc:  # noqa: BLE001
                locked = "locked" in str(exc)
            assert locked
    engine.dispose()
    impatient.dispose()


def test_sqlite_read_session_is_not_blocked_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    engine = make_engine(f"sqlite:///{path}")
    with session_factory(engine, write=True)() as holder:
        holder.execute(text("SELECT 1"))
        with session_factory(engine)() as reader:
            assert reader.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_write_engine_is_serializable_on_postgresql(engine: Engine) -> None:
    options = write_engine(engine).get_execution_options()
    if engine.dialect.name == "postgresql":
        assert options["isolation_level"] == "SERIALIZABLE"
    else:
        assert "isolation_level" not in options
