"""C-STORE sub-operations of C-MOVE and C-GET: the data set goes as the stored file
holds it when the peer accepted its transfer syntax (the bytes after the File Meta
Information, compressed ones included), decoded and re-encoded when it accepted only
the other uncompressed syntax; each C-STORE-RQ of a C-MOVE names its originator."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO

import pytest
from dicom_studies import make_study
from dimse_fixtures import (
    STORAGE,
    destination_port,
    move_destination,
    move_study,
    source,
    sub_associations,
)
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
from pynetdicom import AE, build_role, evt
from pynetdicom.dsutils import decode
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
)

from imaging_source import sub_operations
from imaging_source.instances import StoredInstance
from imaging_source.service import ImagingSource
from imaging_source.sub_association import StorageSubAssociation
from imaging_source.sub_operations import stored_data_set


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sub-operation that decodes its instance fails."""

    def refuse(path: object) -> None:
        raise AssertionError(f"{path} decoded")

    monkeypatch.setattr(sub_operations, "dcmread", refuse)


@pytest.fixture
def stored(source: ImagingSource) -> list[StoredInstance]:
    return [source.add(ds) for ds in make_study()]


class Received:
    """A storage SCP's C-STOREs: the data set bytes as they came, by SOP Instance UID,
    with the transfer syntax of their context."""

    def __init__(self) -> None:
        self.data: dict[str, tuple[bytes, str]] = {}

    def on_store(self, event: evt.Event) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        self.data[uid] = (event.request.DataSet.getvalue(), str(event.context.transfer_syntax))
        return 0x0000


def _move(source: ImagingSource, study_uid: str) -> Dataset:
    return move_study(source, study_uid)[-1][0]


def _move_to(
    source: ImagingSource,
    stored: list[StoredInstance],
    destination_port: int,
    syntaxes: list[str],
) -> tuple[Dataset, Received]:
    """C-MOVE the study to a destination taking ``syntaxes``: the final status, and
    what the destination received."""
    received = Received()
    with move_destination(destination_port, syntaxes, received.on_store):
        return _move(source, stored[0].study_instance_uid), received


def test_c_move_sends_each_data_set_as_stored(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int, no_decoding: None
) -> None:
    final, received = _move_to(
        source, stored, destination_port, [ExplicitVRLittleEndian, RLELossless]
    )
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, len(stored))
    assert received.data == {
        i.sop_instance_uid: (stored_data_set(i), i.transfer_syntax_uid) for i in stored
    }
    assert RLELossless in {syntax for _, syntax in received.data.values()}


def test_c_move_converts_what_the_destination_takes_only_the_other_uncompressed_way(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    final, received = _move_to(
        source, stored, destination_port, [ImplicitVRLittleEndian, RLELossless]
    )
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, len(stored))
    for instance in stored:
        data, syntax = received.data[instance.sop_instance_uid]
        if instance.transfer_syntax_uid == RLELossless:
            assert (data, syntax) == (stored_data_set(instance), RLELossless)
            continue
        assert syntax == ImplicitVRLittleEndian
        moved = decode(BytesIO(data), True, True, False)  # Implicit VR Little Endian
        assert moved.SOPInstanceUID == instance.sop_instance_uid
        assert moved.PixelData == dcmread(instance.path).PixelData


def test_c_move_sub_operations_name_their_move_originator(
    source: ImagingSource,
    stored: list[StoredInstance],
    destination_port: int,
    sub_associations: list[StorageSubAssociation],
) -> None:
    seen: set[tuple[str, int, int]] = set()

    def on_store(event: evt.Event) -> int:
        request = event.request  # PS3.7 9.1.1.1: the originator of the C-MOVE
        originator = (request.MoveOriginatorApplicationEntityTitle, request.MoveOriginatorMessageID)
        seen.add((*originator, request.Priority))
        return 0x0000

    with move_destination(destination_port, [ExplicitVRLittleEndian, RLELossless], on_store):
        final = _move(source, stored[0].study_instance_uid)
    assert final.Status == 0x0000
    assert seen == {("TESTSCU", 1, 2)}  # pynetdicom's C-MOVE-RQ is message 1; priority LOW
    assert len(sub_associations) == 1
    assert not sub_associations[0].is_established  # released at the end


def test_c_get_sends_each_data_set_as_stored(
    source: ImagingSource, stored: list[StoredInstance], no_decoding: None
) -> None:
    received = Received()
    getter = AE(ae_title="GETSCU")
    getter.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class in STORAGE:
        getter.add_requested_context(sop_class, [ExplicitVRLittleEndian])
        getter.add_requested_context(sop_class, [RLELossless])
    roles = [build_role(sop_class, scp_role=True) for sop_class in STORAGE]
    assoc = getter.associate(
        "127.0.0.1",
        source.dimse.port,
        ae_title="XDSI",
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, received.on_store)],
    )
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = stored[0].study_instance_uid
    try:
        responses = assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)
        final = list(responses)[-1][0]
    finally:
        assoc.release()
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, len(stored))
    assert received.data == {
        i.sop_instance_uid: (stored_data_set(i), i.transfer_syntax_uid) for i in stored
    }


def test_c_move_sub_operation_unanswered_within_the_dimse_timeout_fails(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    source.dimse._server.ae.dimse_timeout = 0.5  # taken by each new sub-association
    released = threading.Event()

    def slow(_event: evt.Event) -> int:
        released.wait(5)  # longer than xdsi waits for the C-STORE-RSP
        return 0x0000

    with move_destination(destination_port, [ExplicitVRLittleEndian, RLELossless], slow):
        try:
            final, identifier = move_study(source, stored[0].study_instance_uid)[-1]
        finally:
            released.set()  # before the destination shuts down
    # PS3.4 C.4.2.1.5: A702 when every sub-operation failed, each one listed
    assert (final.Status, final.NumberOfFailedSuboperations) == (0xA702, len(stored))
    failed = identifier.FailedSOPInstanceUIDList
    assert sorted(failed) == sorted(i.sop_instance_uid for i in stored)
