"""ImagingSource: the StudyChanged events the publisher subscribes to."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dicom_studies import make_study
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from sqlalchemy import Engine

from imaging_source.config import ImagingSourceConfig
from imaging_source.service import ImagingSource, StudyChanged


@pytest.fixture
def imaging(sqlite_index_engine: Engine, tmp_path: Path) -> Iterator[ImagingSource]:
    source = ImagingSource(
        ImagingSourceConfig(storage_dir=tmp_path / "store"), engine=sqlite_index_engine
    )
    source.start(dimse=False)
    yield source
    source.stop()


def test_identical_resend_raises_no_event(imaging: ImagingSource) -> None:
    ds = make_study()[0]
    imaging.add(ds)
    changes: list[StudyChanged] = []
    imaging.subscribe(changes.append)
    imaging.add(ds)
    assert changes == []


def test_removal_is_announced_per_study(imaging: ImagingSource) -> None:
    datasets = make_study()
    for ds in datasets:
        imaging.add(ds)
    changes: list[StudyChanged] = []
    imaging.subscribe(changes.append)
    imaging.remove(study_instance_uid=datasets[0].StudyInstanceUID)
    [change] = changes
    assert change.study_instance_uid == datasets[0].StudyInstanceUID
    assert set(change.removed) == {ds.SOPInstanceUID for ds in datasets}


def test_failing_subscriber_does_not_fail_the_store(imaging: ImagingSource) -> None:
    def broken(_change: StudyChanged) -> None:
        raise RuntimeError("subscriber bug")

    imaging.subscribe(broken)
    ds = make_study()[0]
    imaging.add(ds)
    assert imaging.store.get(ds.SOPInstanceUID) is not None


def test_unsubscribe_stops_events(imaging: ImagingSource) -> None:
    changes: list[StudyChanged] = []
    unsubscribe = imaging.subscribe(changes.append)
    unsubscribe()
    imaging.add(make_study()[0])
    assert changes == []
