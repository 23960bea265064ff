"""xdsi's own C-MOVE sub-association against real peers: a pynetdicom storage SCP with a
small maximum PDU length, one that rejects the association, accepts only some SOP
classes or aborts half-way, none listening, and a raw socket breaking PS3.8.  Each C-MOVE
ends with the final status PS3.4 C.4.2.1.5 gives it, and xdsi goes on serving.  Also the pacing of the Pending responses (PS3.4 C.4.2.3.1)."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dicom_studies import make_instance, make_study
from dimse_fixtures import (
    MOVE_DESTINATION,
    STORAGE,
    destination_port,
    move_study,
    source,
    sub_associations,
)
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_FIND, C_MOVE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import SecondaryCaptureImageStorage

from imaging_source import sub_association
from imaging_source.instances import StoredInstance
from imaging_source.pending import PendingPacer
from imaging_source.service import ImagingSource
from imaging_source.sub_association import StorageSubAssociation
from imaging_source.sub_operations import stored_data_set

SYNTAXES = [ExplicitVRLittleEndian, RLELossless]


@pytest.fixture
def stored(source: ImagingSource) -> list[StoredInstance]:
    return [source.add(ds) for ds in make_study()]


@contextmanager
def destination(
    port: int,
    *,
    sop_classes: tuple[str, ...] = STORAGE,
    on_store: Callable[[evt.Event], int] = lambda _event: 0x0000,
    maximum_pdu: int = 16382,
    callers: list[str] | None = None,
    on_pdu: Callable[[evt.Event], None] = lambda _event: None,
    on_end: Callable[[evt.Event], None] = lambda _event: None,
) -> Iterator[None]:
    ae = AE(ae_title=MOVE_DESTINATION)
    ae.maximum_pdu_size = maximum_pdu
    if callers is not None:
        ae.require_calling_aet = callers
    for sop_class in sop_classes:
        ae.add_supported_context(sop_class, SYNTAXES)
    handlers = [
        (evt.EVT_C_STORE, on_store),
        (evt.EVT_PDU_RECV, on_pdu),
        (evt.EVT_RELEASED, on_end),
        (evt.EVT_ABORTED, on_end),
    ]
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers)
    try:
        yield
    finally:
        server.shutdown()


def _moved_whole(source: ImagingSource, stored: list[StoredInstance], port: int) -> None:
    """A C-MOVE to a well-behaved destination: every instance arrives."""
    with destination(port):
        final = move_study(source, stored[0].study_instance_uid)[-1][0]
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, len(stored))


def test_data_sets_keep_within_a_small_maximum_pdu_length(
    source: ImagingSource,
    stored: list[StoredInstance],
    destination_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sub_association, "DATA_WINDOW", 10_000)  # two fragments a read
    large = make_instance(stored[0].study_instance_uid, generate_uid(), instance_number=9)
    large.Rows = large.Columns = 128  # 32 KiB of pixels: 5 reads, 9 P-DATA-TF PDUs of 4 KB
    large.PixelData = bytes(i * 7 % 251 for i in range(128 * 128 * 2))
    instances = [*stored, source.add(large)]
    lengths: list[int] = []
    received: dict[str, bytes] = {}

    def on_pdu(event: evt.Event) -> None:
        if isinstance(event.pdu, P_DATA_TF):
            lengths.append(event.pdu.pdu_length)

    def on_store(event: evt.Event) -> int:
        received[str(event.request.AffectedSOPInstanceUID)] = event.request.DataSet.getvalue()
        return 0x0000

    with destination(destination_port, maximum_pdu=4096, on_store=on_store, on_pdu=on_pdu):
        final = move_study(source, stored[0].study_instance_uid)[-1][0]
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0x0000, len(instances))
    assert max(lengths) == 4096  # PS3.8 D.1: the PDU's variable field, at most
    assert received == {i.sop_instance_uid: stored_data_set(i) for i in instances}


def test_the_sub_association_is_released_at_the_end(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    ended: list[str] = []
    with destination(destination_port, on_end=lambda event: ended.append(event.event.name)):
        final = move_study(source, stored[0].study_instance_uid)[-1][0]
        for _ in range(100):  # the destination's reactor notices the release
            if ended:
                break
            threading.Event().wait(0.05)
    assert final.Status == 0x0000
    assert ended == ["EVT_RELEASED"]  # PS3.8 7.2: A-RELEASE, not A-ABORT


def test_a_destination_that_rejects_the_association_is_a801(
    source: ImagingSource,
    stored: list[StoredInstance],
    destination_port: int,
    sub_associations: list[StorageSubAssociation],
) -> None:
    with destination(destination_port, callers=["SOMEONE"]):
        final = move_study(source, stored[0].study_instance_uid)[-1][0]
    assert final.Status == 0xA801  # PS3.4 C.4.2.1.5: refused: move destination unknown
    assert sub_associations[0]._socket is None  # closed
    _moved_whole(source, stored, destination_port)


def test_a_destination_not_listening_is_a801(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    assert move_study(source, stored[0].study_instance_uid)[-1][0].Status == 0xA801
    _moved_whole(source, stored, destination_port)


def test_instances_no_context_was_accepted_for_fail_the_others_arrive(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    with destination(destination_port, sop_classes=(SecondaryCaptureImageStorage,)):
        final, identifier = move_study(source, stored[0].study_instance_uid)[-1]
    # PS3.4 C.4.2.1.5: B000, some sub-operations failed, each listed
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0xB000, 1)
    assert final.NumberOfFailedSuboperations == len(stored) - 1
    expected = {
        i.sop_instance_uid for i in stored if i.sop_class_uid != SecondaryCaptureImageStorage
    }
    assert set(identifier.FailedSOPInstanceUIDList) == expected


def test_a_destination_that_aborts_fails_the_rest(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    count = 0

    def on_store(event: evt.Event) -> int:
        nonlocal count
        count += 1
        if count == 2:
            event.assoc.abort()
        return 0x0000

    with destination(destination_port, on_store=on_store):
        final, identifier = move_study(source, stored[0].study_instance_uid)[-1]
    assert (final.Status, final.NumberOfCompletedSuboperations) == (0xB000, 1)
    assert final.NumberOfFailedSuboperations == len(stored) - 1
    assert len(identifier.FailedSOPInstanceUIDList) == len(stored) - 1
    _moved_whole(source, stored, destination_port)


def test_a_file_gone_before_its_sub_operation_fails_that_one_alone(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    arrived: list[str] = []

    def on_store(event: evt.Event) -> int:
        if not arrived:  # the plan is made; one file goes before it is sent
            next(
                i
                for i in stored
                if i.sop_instance_uid != event.request.AffectedSOPInstanceUID
                and i.transfer_syntax_uid == ExplicitVRLittleEndian
            ).path.unlink()
        arrived.append(str(event.request.AffectedSOPInstanceUID))
        return 0x0000

    with destination(destination_port, on_store=on_store):
        final, identifier = move_study(source, stored[0].study_instance_uid)[-1]
    assert (final.Status, final.NumberOfFailedSuboperations) == (0xB000, 1)
    assert final.NumberOfCompletedSuboperations == len(stored) - 1
    gone = identifier.FailedSOPInstanceUIDList  # one value: pydicom gives the UID itself
    assert isinstance(gone, str) and gone not in arrived and len(arrived) == len(stored) - 1


def _read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    header = b""
    while len(header) < 6:
        chunk = conn.recv(6 - len(header))
        if not chunk:
            return 0, b""
        header += chunk
    pdu_type, length = struct.unpack(">BxI", header)
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return pdu_type, body


def _accept_then(port: int, answer: bytes, seen: list[int]) -> threading.Thread:
    """A raw peer: accepts the first proposed context, then answers the first P-DATA-TF
    with ``answer`` and records the types of the PDUs it gets after."""
    listener = socket.create_server(("127.0.0.1", port))

    def run() -> None:
        conn, _ = listener.accept()
        listener.close()
        with conn:
            _type, rq = _read_pdu(conn)
            items = rq[68:]
            context = items[items.index(b"\x20\x00") :]  # the first presentation context
            context_id = context[4]
            syntax = b"1.2.840.10008.1.2.1"
            ac_context = bytes([0x21, 0, 0, 8 + len(syntax), context_id, 0, 0, 0])
            ac_context += bytes([0x40, 0, 0, len(syntax)]) + syntax
            user = bytes([0x50, 0, 0, 8, 0x51, 0, 0, 4]) + struct.pack(">I", 16384)
            app = bytes([0x10, 0, 0, 21]) + b"1.2.840.10008.3.1.1.1"
            body = rq[:68] + app + ac_context + user
            conn.sendall(struct.pack(">BxI", 0x02, len(body)) + body)
            answered = False
            while True:
                pdu_type, _body = _read_pdu(conn)
                if pdu_type == 0:
                    return
                if pdu_type == 0x04 and not answered:
                    conn.sendall(answer)
                    answered = True
                elif pdu_type != 0x04:
                    seen.append(pdu_type)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "answer",
    [
        b"\x09\x00\x00\x00\x00\x00",  # not a PDU type (PS3.8 9.3.1)
        b"\x04\x00\x00\x00\x00\x08" + b"\x00\x00\x00\x04\x01\x00\x00\x00",  # data set PDV
        b"\x04\x00\x7f\xff\xff\xff",  # longer than the maximum xdsi said it takes
    ],
)
def test_a_destination_breaking_ps3_8_gets_an_a_abort(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int, answer: bytes
) -> None:
    seen: list[int] = []
    peer = _accept_then(destination_port, answer, seen)
    final = move_study(source, stored[0].study_instance_uid)[-1][0]
    peer.join(10)
    assert 0x07 in seen  # A-ABORT
    assert final.Status in (0xA702, 0xB000)  # every sub-operation, or all but some, failed
    assert final.NumberOfCompletedSuboperations == 0
    _moved_whole(source, stored, destination_port)


def test_pending_responses_are_paced(
    source: ImagingSource, stored: list[StoredInstance], destination_port: int
) -> None:
    with destination(destination_port):
        responses = move_study(source, stored[0].study_instance_uid)
    statuses = [status.Status for status, _ in responses]
    assert statuses == [0xFF00, 0x0000]  # the first Pending, then the final response
    assert responses[0][0].NumberOfRemainingSuboperations == len(stored) - 1


def _response(kind: type, status: int) -> Any:
    primitive = kind()
    primitive.Status = status
    return primitive


def test_pending_pacer_lets_one_pending_through_per_interval() -> None:
    sent: list[tuple[str, int]] = []
    now = [100.0]
    pacer = PendingPacer(
        lambda primitive, _cx: sent.append((type(primitive).__name__, primitive.Status)),
        interval=1.0,
        clock=lambda: now[0],
    )
    for at, kind, status in [
        (100.0, C_MOVE, 0xFF00),
        (100.5, C_MOVE, 0xFF00),  # held back
        (100.6, C_FIND, 0xFF00),  # a match: always sent
        (101.1, C_MOVE, 0xFF00),
        (101.2, C_MOVE, 0x0000),  # the final response: always sent
    ]:
        now[0] = at
        pacer(_response(kind, status), 1)
    assert sent == [
        ("C_MOVE", 0xFF00),
        ("C_FIND", 0xFF00),
        ("C_MOVE", 0xFF00),
        ("C_MOVE", 0x0000),
    ]
