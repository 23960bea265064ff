"""``xdsi bench load`` (xdsi/bench_commands.py) on the data directory's SQLite database:
loads, names the probe patient, refuses a second load unless --append."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.db import make_engine
from registry.tables import DocumentEntryRow
from xdsi.cli import main


def entries(data_dir: Path) -> int:
    engine = make_engine(f"sqlite:///{data_dir / 'xdsi.sqlite'}")
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(DocumentEntryRow))
    finally:
        engine.dispose()


def test_bench_load_fills_the_registry_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["bench", "load", "--data-dir", str(tmp_path), "--entries", "40", "--patients", "4"]
    assert main([*args, "--probe-entries", "10"]) == 0
    out = capsys.readouterr().out
    assert "loaded 40 DocumentEntries" in out
    assert "probe patient (10 entries): BULK0000P00000000^^^&" in out
    assert entries(tmp_path) == 40

    assert main(args) == 1  # the registry has entries now
    assert "append" in capsys.readouterr().err
    assert main([*args, "--append", "--seed", "1"]) == 0
    assert entries(tmp_path) == 80
