"""PacsSource's cache bookkeeping and the query helpers, without a PACS: instances
already in the local store are served without asking the PACS; eviction goes by last
use, seeded from reception order."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest
from dicom_studies import make_study
from http_fixtures import BytesResponse
from instance_fixtures import imaging_postgres_engine, index_engine, migrated_sqlite, store
from pydicom.dataset import Dataset

from imaging_source.instances import InstanceStore, QueryLevel
from imaging_source.pacs import (
    InstanceRef,
    LocalSource,
    PacsSource,
    WadoRsFetcher,
    _PartSpool,
    match_dict,
    return_keys,
)
from imaging_source.wado_retrieve import BUFFER_SIZE, read_multipart


def ref(ds: Dataset) -> InstanceRef:
    return InstanceRef(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


@pytest.fixture
def cached(store: InstanceStore) -> list[Dataset]:
    datasets = make_study()
    for ds in datasets:
        store.add(ds)
    return datasets


def unreachable_pacs() -> WadoRsFetcher:
    # nothing listens on port 9 (discard); a fetch would fail loudly
    return WadoRsFetcher("http://127.0.0.1:9/dicom-web", client=httpx.Client(timeout=1))


def test_cached_instances_are_located_without_the_pacs(
    store: InstanceStore, cached: list[Dataset]
) -> None:
    source = PacsSource(store, unreachable_pacs(), max_bytes=10**9)
    found = source.locate([ref(ds) for ds in cached])
    assert set(found) == {ds.SOPInstanceUID for ds in cached}


def test_eviction_removes_least_recently_used_first(
    store: InstanceStore, cached: list[Dataset]
) -> None:
    source = PacsSource(store, unreachable_pacs(), max_bytes=10**9)
    source.locate([ref(cached[0])])  # the oldest received becomes the most recently used
    one = store.get(cached[0].SOPInstanceUID)
    assert one is not None
    source.max_bytes = one.size
    evicted = source.evict()
    assert cached[0].SOPInstanceUID not in evicted
    assert store.get(cached[0].SOPInstanceUID) is not None
    assert set(evicted) == {ds.SOPInstanceUID for ds in cached[1:]}
    assert store.total_size() <= one.size


def test_located_instance_keeps_its_own_series_for_the_caller_to_check(
    store: InstanceStore, cached: list[Dataset]
) -> None:
    wrong = InstanceRef(cached[0].StudyInstanceUID, "1.2.3", cached[0].SOPInstanceUID)
    found = LocalSource(store).locate([wrong])
    assert found[cached[0].SOPInstanceUID].series_instance_uid == cached[0].SeriesInstanceUID


def test_located_files_are_the_intact_ones_with_their_own_series(
    store: InstanceStore, cached: list[Dataset]
) -> None:
    wrong = InstanceRef(cached[0].StudyInstanceUID, "1.2.3", cached[0].SOPInstanceUID)
    cut = store.get(cached[1].SOPInstanceUID)
    assert cut is not None
    with cut.path.open("r+b") as f:
        f.truncate(cut.size // 2)
    found = LocalSource(store).locate_files([wrong, *map(ref, cached[1:])])
    assert set(found) == {ds.SOPInstanceUID for ds in cached} - {cached[1].SOPInstanceUID}
    assert found[cached[0].SOPInstanceUID].series_instance_uid == cached[0].SeriesInstanceUID


def test_match_dict_joins_multiple_values_and_names_persons() -> None:
    ds = Dataset()
    ds.ModalitiesInStudy = ["CT", "MR"]
    ds.PatientName = "Müller^Jürgen"
    ds.NumberOfStudyRelatedInstances = 6
    assert match_dict(ds) == {
        "ModalitiesInStudy": "CT\\MR",
        "PatientName": "Müller^Jürgen",
        "NumberOfStudyRelatedInstances": 6,
    }


def test_image_level_return_keys_include_the_unique_keys_above() -> None:
    keys = return_keys(QueryLevel.IMAGE)
    assert {"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"} <= set(keys)


def test_part_spool_writes_each_part_whole_whatever_the_views(tmp_path: Path) -> None:
    # parts larger and smaller than the reader's buffer, given in pieces across it
    big = bytes(range(256)) * (BUFFER_SIZE * 5 // 2 // 256) + b"tail"
    small = b"a small part"
    boundary = "b0undary"
    body = (
        b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + part + b"\r\n"
                for part in (big, small, big)
            ]
        )
        + f"--{boundary}--\r\n".encode()
    )
    spool = _PartSpool(tmp_path)
    read_multipart(BytesResponse(body, 65_000), boundary, spool)
    assert [f.path.read_bytes() for f in spool.files] == [big, small, big]
    assert [(f.size, f.sha1) for f in spool.files] == [
        (len(part), hashlib.sha1(part).hexdigest()) for part in (big, small, big)
    ]
