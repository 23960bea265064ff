"""DIMSE services against a pynetdicom SCU in-process: C-ECHO, C-STORE, C-FIND at three
levels, C-MOVE, C-GET, and failures answered with a status while the SCP keeps serving."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dicom_studies import PATIENT_NAME, make_study
from dimse_fixtures import MOVE_DESTINATION, STORAGE, destination_port, move_destination, source
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from imaging_source.dimse import CANNOT_UNDERSTAND, IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
from imaging_source.requestor import REQUESTOR_HANDLERS
from imaging_source.service import ImagingSource, StudyChanged

SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless]


def _scu() -> AE:
    ae = AE(ae_title="TESTSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    ae.add_requested_context(Verification)
    for sop_class in STORAGE:
        ae.add_requested_context(sop_class, SYNTAXES[:2])
        ae.add_requested_context(sop_class, RLELossless)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    return ae


@pytest.fixture
def assoc(source: ImagingSource) -> Iterator:
    association = _scu().associate(
        "127.0.0.1", source.dimse.port, ae_title="XDSI", evt_handlers=REQUESTOR_HANDLERS
    )
    assert association.is_established
    yield association
    association.release()


def _store_all(assoc, datasets) -> None:  # noqa: ANN001
    for ds in datasets:
        assert assoc.send_c_store(ds).Status == 0x0000


def _find(assoc, **keys) -> list[Dataset]:  # noqa: ANN001, ANN003
    query = Dataset()
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    assert responses[-1][0].Status == 0x0000
    return [identifier for status, identifier in responses if status.Status == 0xFF00]


def test_c_echo(assoc) -> None:  # noqa: ANN001
    assert assoc.send_c_echo().Status == 0x0000


def test_wrong_called_ae_title_is_rejected(source: ImagingSource) -> None:
    association = _scu().associate("127.0.0.1", source.dimse.port, ae_title="NOTXDSI")
    assert association.is_rejected


def test_c_store_indexes_and_announces(assoc, source: ImagingSource) -> None:  # noqa: ANN001
    changes: list[StudyChanged] = []
    source.subscribe(changes.append)
    datasets = make_study()
    _store_all(assoc, datasets)
    stored = source.store.get(datasets[2].SOPInstanceUID)
    assert stored is not None and stored.transfer_syntax_uid == RLELossless
    assert [c.added[0] for c in changes] == [d.SOPInstanceUID for d in datasets]


def test_c_store_of_malformed_data_set_fails_and_scp_keeps_serving(
    assoc,  # noqa: ANN001
    source: ImagingSource,
) -> None:
    bad = make_study()[0]
    bad.StudyInstanceUID = "not a uid"
    assert assoc.send_c_store(bad).Status == CANNOT_UNDERSTAND
    assert source.store.get(bad.SOPInstanceUID) is None
    assert assoc.send_c_echo().Status == 0x0000


def test_c_find_study_level(assoc) -> None:  # noqa: ANN001
    datasets = make_study(patient_id="FIND-1")
    _store_all(assoc, datasets)
    [answer] = _find(
        assoc,
        QueryRetrieveLevel="STUDY",
        PatientID="FIND-1",
        PatientName="",
        StudyInstanceUID="",
        ModalitiesInStudy="",
        NumberOfStudyRelatedInstances="",
    )
    assert answer.StudyInstanceUID == datasets[0].StudyInstanceUID
    assert str(answer.PatientName) == PATIENT_NAME
    assert list(answer.ModalitiesInStudy) == ["CT", "MR", "OT"]
    assert answer.NumberOfStudyRelatedInstances == 6
    assert answer.RetrieveAETitle == "XDSI"


def test_c_find_series_level(assoc) -> None:  # noqa: ANN001
    datasets = make_study()
    _store_all(assoc, datasets)
    answers = _find(
        assoc,
        QueryRetrieveLevel="SERIES",
        StudyInstanceUID=datasets[0].StudyInstanceUID,
        SeriesInstanceUID="",
        Modality="",
    )
    assert sorted(a.Modality for a in answers) == ["CT", "MR", "OT"]


def test_c_find_image_level(assoc) -> None:  # noqa: ANN001
    datasets = make_study()
    _store_all(assoc, datasets)
    answers = _find(
        assoc,
        QueryRetrieveLevel="IMAGE",
        StudyInstanceUID=datasets[0].StudyInstanceUID,
        SeriesInstanceUID=datasets[0].SeriesInstanceUID,
        SOPInstanceUID="",
        InstanceNumber="",
    )
    assert [a.InstanceNumber for a in answers] == [1, 2, 3]


def test_c_find_with_unknown_level_fails(assoc) -> None:  # noqa: ANN001
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = ""
    [(status, _)] = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    assert status.Status == IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS


def test_c_find_handler_exception_becomes_failure_status(
    assoc,  # noqa: ANN001
    source: ImagingSource,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("index unavailable")

    monkeypatch.setattr(source.store, "find", broken)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    [(status, _)] = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    assert status.Status == CANNOT_UNDERSTAND
    assert assoc.send_c_echo().Status == 0x0000


def test_c_move_to_unknown_destination_fails(assoc) -> None:  # noqa: ANN001
    datasets = make_study()
    _store_all(assoc, datasets)
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = datasets[0].StudyInstanceUID
    responses = list(
        assoc.send_c_move(query, "UNKNOWN", StudyRootQueryRetrieveInformationModelMove)
    )
    assert responses[-1][0].Status == 0xA801  # PS3.4 C.4.2.1.5


def test_c_move_sends_every_instance_to_the_destination(
    assoc,  # noqa: ANN001
    destination_port: int,
) -> None:
    datasets = make_study()
    _store_all(assoc, datasets)
    received: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        received.append(event.dataset)
        return 0x0000

    with move_destination(destination_port, SYNTAXES, on_store):
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = datasets[0].StudyInstanceUID
        responses = list(
            assoc.send_c_move(query, MOVE_DESTINATION, StudyRootQueryRetrieveInformationModelMove)
        )
    final = responses[-1][0]
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, 6)
    by_uid = {ds.SOPInstanceUID: ds for ds in received}
    assert {uid: ds.PixelData for uid, ds in by_uid.items()} == {
        ds.SOPInstanceUID: ds.PixelData for ds in datasets
    }


def test_c_get_returns_the_series(source: ImagingSource, assoc) -> None:  # noqa: ANN001
    datasets = make_study()
    _store_all(assoc, datasets)
    received: list[Dataset] = []

    def on_store(event: evt.Event) -> int:
        received.append(event.dataset)
        return 0x0000

    getter = AE(ae_title="GETSCU")
    getter.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    getter.add_requested_context(MRImageStorage, SYNTAXES[:2])
    roles = [build_role(MRImageStorage, scp_role=True)]
    association = getter.associate(
        "127.0.0.1",
        source.dimse.port,
        ae_title="XDSI",
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    assert association.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = datasets[3].StudyInstanceUID
    query.SeriesInstanceUID = datasets[3].SeriesInstanceUID
    responses = list(association.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))
    association.release()
    assert responses[-1][0].Status == 0x0000
    assert sorted(ds.SOPInstanceUID for ds in received) == sorted(
        ds.SOPInstanceUID for ds in datasets[3:5]
    )
