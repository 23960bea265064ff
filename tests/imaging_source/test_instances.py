"""InstanceStore: files, index rows and C-FIND matching, on SQLite and PostgreSQL."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from dicom_studies import PATIENT_NAME, make_instance, make_study, write_files
from instance_fixtures import imaging_postgres_engine, index_engine, migrated_sqlite, store
from pydicom import dcmread
from pydicom.uid import RLELossless, generate_uid
from sqlalchemy import inspect

from imaging_source.instances import (
    INCOMING_DIR,
    VERSION_TABLE,
    InstanceChange,
    InstanceStore,
    InvalidInstance,
    ReceivedFile,
    UnknownInstance,
    is_intact,
    make_engine,
    upgrade,
)


def _add_all(store: InstanceStore, datasets) -> None:  # noqa: ANN001
    for ds in datasets:
        store.add(ds)


def test_add_dataset_indexes_its_attributes(store: InstanceStore) -> None:
    ds = make_study()[0]
    instance = store.add(ds)
    got = store.get(ds.SOPInstanceUID)
    assert got is not None and instance.change is InstanceChange.ADDED
    assert (got.study_instance_uid, got.modality, got.study_date) == (
        ds.StudyInstanceUID,
        "CT",
        "20240115",
    )
    assert got.patient_name == PATIENT_NAME  # decoded from ISO_IR 192, kept as Unicode
    assert (got.series_number, got.instance_number, got.body_part_examined) == (1, 1, "CHEST")


def test_a_file_in_iso_2022_is_indexed_decoded(store: InstanceStore, tmp_path: Path) -> None:
    # PS3.5 6.1.2.5: code extension; the header is read raw and decoded by its own
    # Specific Character Set, as every other element of the index
    ds = make_study()[0]
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.StudyDescription = "胸部CT"
    [path] = write_files([ds], tmp_path / "in")
    store.add(path)
    got = store.get(ds.SOPInstanceUID)
    assert got is not None
    assert (got.patient_name, got.study_description) == (
        "Yamada^Tarou=山田^太郎=やまだ^たろう",
        "胸部CT",
    )
    assert (got.series_number, got.instance_number, got.modality) == (1, 1, "CT")


def test_add_file_keeps_the_bytes(store: InstanceStore, tmp_path: Path) -> None:
    [path] = write_files(make_study()[:1], tmp_path / "in")
    instance = store.add(path)
    assert instance.path.read_bytes() == path.read_bytes()
    assert instance.size == path.stat().st_size
    with store.open(instance.sop_instance_uid) as stream:
        assert stream.read() == path.read_bytes()


def test_add_stream_of_compressed_instance_keeps_transfer_syntax(
    store: InstanceStore, tmp_path: Path
) -> None:
    compressed = make_study()[2]
    [path] = write_files([compressed], tmp_path / "in")
    instance = store.add(io.BytesIO(path.read_bytes()))
    assert instance.transfer_syntax_uid == RLELossless


def test_identical_resend_is_unchanged(store: InstanceStore) -> None:
    ds = make_study()[0]
    store.add(ds)
    assert store.add(ds).change is InstanceChange.UNCHANGED


def test_changed_instance_replaces_file(store: InstanceStore) -> None:
    ds = make_study()[0]
    first = store.add(ds)
    ds.StudyDescription = "changed"
    second = store.add(ds)
    assert second.change is InstanceChange.REPLACED
    assert not first.path.exists() and second.path.exists()
    assert store.get(ds.SOPInstanceUID).path == second.path


def test_not_dicom_is_refused_and_leaves_nothing(store: InstanceStore, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a dicom file" * 20)
    with pytest.raises(InvalidInstance):
        store.add(junk)
    assert list(store.studies()) == []
    assert list((store.root / ".incoming").iterdir()) == []


def test_missing_sop_instance_uid_is_refused(store: InstanceStore) -> None:
    ds = make_study()[0]
    del ds.SOPInstanceUID
    with pytest.raises(InvalidInstance):
        store.add(ds)


def test_study_groups_series_in_order(store: InstanceStore) -> None:
    datasets = make_study()
    _add_all(store, reversed(datasets))
    series = store.study(datasets[0].StudyInstanceUID)
    assert [s.modality for s in series] == ["CT", "MR", "OT"]
    assert [i.instance_number for i in series[0].instances] == [1, 2, 3]


def test_open_unknown_instance_raises(store: InstanceStore) -> None:
    with pytest.raises(UnknownInstance):
        store.open(generate_uid())


def test_find_study_by_patient_id_with_counts(store: InstanceStore) -> None:
    datasets = make_study(patient_id="PAT-7")
    _add_all(store, datasets + make_study(patient_id="OTHER"))
    [match] = list(store.find("STUDY", {"PatientID": "PAT-7"}))
    assert match["StudyInstanceUID"] == datasets[0].StudyInstanceUID
    assert match["NumberOfStudyRelatedSeries"] == 3
    assert match["NumberOfStudyRelatedInstances"] == 6
    assert match["ModalitiesInStudy"] == "CT\\MR\\OT"


def test_find_study_by_modalities_in_study(store: InstanceStore) -> None:
    _add_all(store, make_study())
    only_ct = make_instance(generate_uid(), generate_uid())
    store.add(only_ct)
    matches = list(store.find("STUDY", {"ModalitiesInStudy": "MR"}))
    assert only_ct.StudyInstanceUID not in {m["StudyInstanceUID"] for m in matches}
    assert len(matches) == 1


def test_find_wildcard_patient_name(store: InstanceStore) -> None:
    _add_all(store, make_study())
    assert len(list(store.find("STUDY", {"PatientName": "Mü*"}))) == 1
    assert list(store.find("STUDY", {"PatientName": "Schmidt*"})) == []


def test_find_study_date_range(store: InstanceStore) -> None:
    _add_all(store, make_study(study_date="20230101") + make_study(study_date="20240601"))
    assert len(list(store.find("STUDY", {"StudyDate": "20240101-"}))) == 1
    assert len(list(store.find("STUDY", {"StudyDate": "-20231231"}))) == 1
    assert len(list(store.find("STUDY", {"StudyDate": "20220101-20250101"}))) == 2


def test_find_series_by_modality(store: InstanceStore) -> None:
    datasets = make_study()
    _add_all(store, datasets)
    [match] = list(
        store.find("SERIES", {"StudyInstanceUID": datasets[0].StudyInstanceUID, "Modality": "MR"})
    )
    assert match["SeriesInstanceUID"] == datasets[3].SeriesInstanceUID
    assert match["NumberOfSeriesRelatedInstances"] == 2


def test_find_image_by_uid_list(store: InstanceStore) -> None:
    datasets = make_study()
    _add_all(store, datasets)
    wanted = f"{datasets[0].SOPInstanceUID}\\{datasets[4].SOPInstanceUID}"
    matches = list(store.find("IMAGE", {"SOPInstanceUID": wanted}))
    assert {m["SOPInstanceUID"] for m in matches} == {
        datasets[0].SOPInstanceUID,
        datasets[4].SOPInstanceUID,
    }


def test_find_ignores_keys_below_the_level(store: InstanceStore) -> None:
    _add_all(store, make_study())
    # PS3.4 C.6.2.1.2: SOPInstanceUID is an IMAGE key, not matched at STUDY level
    assert len(list(store.find("STUDY", {"SOPInstanceUID": generate_uid()}))) == 1


def test_remove_series_removes_rows_and_files(store: InstanceStore) -> None:
    datasets = make_study()
    _add_all(store, datasets)
    removed = store.remove(series_instance_uid=datasets[3].SeriesInstanceUID)
    assert {i.sop_instance_uid for i in removed} == {d.SOPInstanceUID for d in datasets[3:5]}
    assert all(not i.path.exists() for i in removed)
    assert store.get(datasets[3].SOPInstanceUID) is None
    assert len(store.study(datasets[0].StudyInstanceUID)) == 2


def test_stored_file_reads_back_as_the_dataset(store: InstanceStore) -> None:
    ds = make_study()[0]
    store.add(ds)
    back = dcmread(store.get(ds.SOPInstanceUID).path)
    assert back.PixelData == ds.PixelData


def test_migration_uses_its_own_version_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"imaging_instance", VERSION_TABLE} <= tables
    assert "alembic_version" not in tables
    engine.dispose()


def _spooled(store: InstanceStore, source: Path) -> ReceivedFile:
    """``source`` copied under the store's INCOMING_DIR, as a WADO-RS part is spooled."""
    incoming = store.root / INCOMING_DIR
    incoming.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    path = incoming / f"part-{source.name}"
    path.write_bytes(data)
    return ReceivedFile(path, hashlib.sha1(data).hexdigest(), len(data))


def test_add_cached_moves_the_files_in_and_indexes_them_at_once(
    store: InstanceStore, tmp_path: Path
) -> None:
    study = make_study()
    files = [_spooled(store, p) for p in write_files(study, tmp_path / "in")]
    stored, refused = store.add_cached(files)
    assert refused == [] and not any(f.path.exists() for f in files)  # moved, not copied
    assert {i.sop_instance_uid for i in stored} == {ds.SOPInstanceUID for ds in study}
    assert all(i.change is InstanceChange.ADDED for i in stored)
    by_uid = store.get_many(ds.SOPInstanceUID for ds in study)
    for file, instance in zip(files, stored, strict=True):
        assert by_uid[instance.sop_instance_uid].sha1 == file.sha1
        assert instance.path.stat().st_size == file.size and is_intact(instance)


def test_add_cached_refuses_what_is_not_dicom_and_updates_what_is_indexed(
    store: InstanceStore, tmp_path: Path
) -> None:
    [ds] = make_study()[:1]
    store.add(ds)  # indexed already: the cached copy goes through the row-by-row path
    [path] = write_files([ds], tmp_path / "in")
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(bytes(128) + b"DICM" + b"\x02\x00\x10\x00UI\x04\x00abcd")
    stored, refused = store.add_cached([_spooled(store, path), _spooled(store, junk)])
    assert [i.sop_instance_uid for i in stored] == [ds.SOPInstanceUID]
    assert len(refused) == 1 and isinstance(refused[0], InvalidInstance)
    assert store.get(ds.SOPInstanceUID) is not None


def test_locate_files_reads_what_serving_a_file_needs_as_get_many_has_it(
    store: InstanceStore,
) -> None:
    study = make_study()
    for ds in study:
        store.add(ds)
    uids = [ds.SOPInstanceUID for ds in study]
    wanted = [*uids, uids[0], "1.2.3.4"]  # a repeat and an unknown UID
    located, stored = store.locate_files(wanted), store.get_many(wanted)
    assert located.keys() == stored.keys() == set(uids)
    for uid, file in located.items():
        whole = stored[uid]
        assert file == (
            whole.sop_instance_uid, whole.study_instance_uid, whole.series_instance_uid,
            whole.transfer_syntax_uid, whole.sha1, whole.path, whole.size,
        )  # fmt: skip
        assert file.path.is_absolute() and is_intact(file)


def test_a_file_cut_short_is_not_intact(store: InstanceStore) -> None:
    instance = store.add(make_study()[0])
    assert is_intact(instance)
    with instance.path.open("r+b") as f:  # as a crash may leave an unsynced cached copy
        f.truncate(instance.size // 2)
    assert not is_intact(instance)
    assert store.get_many([instance.sop_instance_uid, "1.2.3.4"]).keys() == {
        instance.sop_instance_uid
    }
