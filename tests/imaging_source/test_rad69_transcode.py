"""Transcoder: conversions cached by source hash and target syntax, bounded in size."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import os
from pathlib import Path

import pytest
from dicom_studies import make_study
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.uid import RLELossless
from sqlalchemy import Engine

from imaging_source.instances import InstanceStore
from imaging_source.transcode import (
    ANY_TRANSFER_SYNTAX,
    TranscodeError,
    Transcoder,
)


@pytest.fixture
def native(sqlite_index_engine: Engine, tmp_path: Path):  # noqa: ANN201
    store = InstanceStore(tmp_path / "store", sqlite_index_engine)
    return [store.add(ds) for ds in make_study()[:2]]


def test_any_syntax_is_as_stored(native, tmp_path: Path) -> None:  # noqa: ANN001
    delivery = Transcoder(tmp_path / "t").deliver(native[0], (RLELossless, ANY_TRANSFER_SYNTAX))
    assert delivery.path == native[0].path and not delivery.transcoded


def test_conversion_is_reused(native, tmp_path: Path) -> None:  # noqa: ANN001
    transcoder = Transcoder(tmp_path / "t")
    first = transcoder.deliver(native[0], (RLELossless,))
    second = transcoder.deliver(native[0], (RLELossless,))
    assert first.transcoded and first.path == second.path
    assert len(list((tmp_path / "t").iterdir())) == 1


def test_unproducible_syntax_is_a_transcode_error(native, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(TranscodeError):
        Transcoder(tmp_path / "t").deliver(native[0], ("1.2.840.10008.1.2.4.50",))


def test_least_recently_used_conversion_goes_beyond_the_bound(
    native,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    transcoder = Transcoder(tmp_path / "t", max_bytes=10**9)
    old = transcoder.deliver(native[0], (RLELossless,))
    os.utime(old.path, (1, 1))
    transcoder.max_bytes = old.size  # room for one conversion only
    new = transcoder.deliver(native[1], (RLELossless,))
    assert new.path.exists() and not old.path.exists()
