"""repository/db.py: the engine."""

from __future__ import annotations

from pathlib import Path

from repository.db import make_engine


def test_pooled_connections_are_checked_before_use(tmp_path: Path) -> None:
    # a database restart closes every pooled connection: each is pinged and replaced
    # when dead instead of failing the request that draws it
    engine = make_engine(f"sqlite:///{tmp_path / 'repository.sqlite'}")
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
    engine.dispose()
