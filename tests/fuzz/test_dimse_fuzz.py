"""Malformed DICOM peers against the Imaging Document Source's DIMSE SCP.

Over a raw socket, an A-ASSOCIATE-RQ (PS3.8 9.3.2) broken byte by byte - truncated,
wrong PDU and item lengths, unknown PDU and item types, oversized lengths, garbage,
abrupt disconnects - and garbage after an accepted association: the SCP answers with
A-ASSOCIATE-AC/RJ or A-ABORT, or closes the connection; it never hangs.  Through
pynetdicom, C-STOREs of broken data sets (truncated, wrong value lengths, undefined-length
garbage, a data set of another SOP Class or SOP Instance than the request names, UIDs
missing): a failure status (PS3.4 B.2.3) or an A-ABORT, and nothing stored - the
instance index and the storage directory are unchanged; what is accepted reads back
whole.  After each example a C-ECHO and a C-STORE succeed: the SCP keeps serving.
"""

from __future__ import annotations

import io
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filereader import data_element_generator
from pydicom.filewriter import dcmwrite
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, Association, _config
from pynetdicom.sop_class import CTImageStorage, MRImageStorage, Verification
from sqlalchemy import func, select

from imaging_source.config import ImagingSourceConfig
from imaging_source.instances import ImagingInstance, make_engine
from imaging_source.requestor import REQUESTOR_HANDLERS
from imaging_source.service import ImagingSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from dicom_studies import make_instance  # noqa: E402

FUZZ = settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
AE_TITLE = "XDSI"
REPLY_WAIT = 10.0  # seconds a peer waits for the SCP's answer or close
# PS3.8 9.3.1: PDU types
A_ASSOCIATE_AC, A_ASSOCIATE_RJ, P_DATA_TF, A_RELEASE_RP, A_ABORT = 0x02, 0x03, 0x04, 0x06, 0x07


# --- the SCP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """What a C-STORE may change: index rows and every file under the storage dir."""

    rows: int
    files: frozenset[str]


class Scp:
    def __init__(self, source: ImagingSource) -> None:
        self.source = source
        self.root = Path(source.config.storage_dir)

    @property
    def port(self) -> int:
        return self.source.dimse.port

    def snapshot(self) -> Snapshot:
        with self.source.engine.connect() as connection:
            rows = connection.scalar(select(func.count()).select_from(ImagingInstance)) or 0
        files = frozenset(
            str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()
        )
        return Snapshot(rows, files)

    def still_serving(self) -> None:
        """A C-ECHO and a C-STORE of a valid instance succeed (and the instance goes).

        The association threads of peers that just went away end on their own; until
        they have, the SCP may refuse a new association for its limit of 32 (PS3.8
        9.3.4: A-ASSOCIATE-RJ, local limit exceeded), so it gets REPLY_WAIT to recover."""
        ds = make_instance(generate_uid(), generate_uid())
        deadline = time.monotonic() + REPLY_WAIT

        def connect() -> Association:
            return scu().associate(
                "127.0.0.1", self.port, ae_title=AE_TITLE, evt_handlers=REQUESTOR_HANDLERS
            )

        assoc = connect()
        while not assoc.is_established and time.monotonic() < deadline:
            time.sleep(0.2)
            assoc = connect()
        assert assoc.is_established, "the SCP no longer accepts associations"
        try:
            assert assoc.send_c_echo().Status == 0x0000
            assert assoc.send_c_store(ds).Status == 0x0000
        finally:
            assoc.release()
        assert self.source.store.get(ds.SOPInstanceUID) is not None
        self.source.store.remove(sop_instance_uids=[ds.SOPInstanceUID])


def scu() -> AE:
    ae = AE(ae_title="FUZZSCU")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = REPLY_WAIT
    ae.add_requested_context(Verification)
    for sop_class in (CTImageStorage, MRImageStorage):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    return ae


@pytest.fixture(scope="module")
def scp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scp]:
    directory = tmp_path_factory.mktemp("dimse-fuzz")
    config = ImagingSourceConfig(
        storage_dir=directory / "store",
        dicom_host="127.0.0.1",
        dicom_port=0,
        ae_title=AE_TITLE,
        acse_timeout=3,
        dimse_timeout=5,
        network_timeout=3,
    )
    engine = make_engine(f"sqlite:///{directory / 'instances.sqlite'}")
    source = ImagingSource(config, engine=engine)
    source.start()
    try:
        scp = Scp(source)
        scp.still_serving()
        yield scp
    finally:
        source.stop()
        engine.dispose()


# --- A-ASSOCIATE-RQ by hand (PS3.8 9.3.2) -------------------------------------------------


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def associate_rq(called: str = AE_TITLE, calling: str = "RAWPEER") -> bytes:
    """A valid A-ASSOCIATE-RQ proposing Verification in Implicit VR Little Endian."""
    application_context = _item(0x10, b"1.2.840.10008.3.1.1.1")
    presentation_context = _item(
        0x20,
        bytes([1, 0, 0, 0])
        + _item(0x30, Verification.encode())
        + _item(0x40, ImplicitVRLittleEndian.encode()),
    )
    user_information = _item(0x50, _item(0x51, struct.pack(">I", 16384)))
    variable = application_context + presentation_context + user_information
    fixed = (
        struct.pack(">HH", 1, 0)
        + called.encode().ljust(16)
        + calling.encode().ljust(16)
        + bytes(32)
    )
    body = fixed + variable
    return struct.pack(">BBI", 0x01, 0, len(body)) + body


ASSOCIATE_RQ = associate_rq()
# offsets of the length fields of the variable items (after the 6-byte PDU header and
# the 68-byte fixed part)
_VARIABLE = 6 + 68


def _item_offsets(pdu: bytes) -> list[int]:
    offsets, at = [], _VARIABLE
    while at + 4 <= len(pdu):
        offsets.append(at)
        at += 4 + struct.unpack(">H", pdu[at + 2 : at + 4])[0]
    return offsets


@dataclass(frozen=True)
class PduMutation:
    kind: str
    position: float  # 0..1, where in the PDU
    value: int
    data: bytes


def apply_pdu(pdu: bytes, m: PduMutation) -> bytes:
    at = int(m.position * (len(pdu) - 1))
    items = _item_offsets(pdu)
    item = items[int(m.position * (len(items) - 1))]
    if m.kind == "truncate":
        return pdu[:at]
    if m.kind == "byte":
        return pdu[:at] + bytes([m.value & 0xFF]) + pdu[at + 1 :]
    if m.kind == "insert":
        return pdu[:at] + m.data + pdu[at:]
    if m.kind == "pdu-type":  # unknown or out-of-state PDU types
        return bytes([m.value & 0xFF]) + pdu[1:]
    if m.kind == "pdu-length":  # too short, too long, oversized (up to 2**32-1)
        return pdu[:2] + struct.pack(">I", m.value & 0xFFFFFFFF) + pdu[6:]
    if m.kind == "item-type":
        return pdu[:item] + bytes([m.value & 0xFF]) + pdu[item + 1 :]
    if m.kind == "item-length":
        return pdu[: item + 2] + struct.pack(">H", m.value & 0xFFFF) + pdu[item + 4 :]
    if m.kind == "bogus-item":  # an extra item of any type and content
        body = pdu[6:] + _item(m.value & 0xFF, m.data)
        return pdu[:1] + b"\x00" + struct.pack(">I", len(body)) + body
    if m.kind == "ae-title":
        return pdu[:10] + m.data[:16].ljust(16, b"\x00") + pdu[26:]
    return m.data  # garbage


pdu_mutations = st.builds(
    PduMutation,
    kind=st.sampled_from(
        [
            "truncate",
            "byte",
            "insert",
            "pdu-type",
            "pdu-length",
            "item-type",
            "item-length",
            "bogus-item",
            "ae-title",
            "garbage",
        ]
    ),  # fmt: skip
    position=st.floats(0.0, 1.0),
    value=st.one_of(st.integers(0, 0xFF), st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF])),
    data=st.binary(min_size=0, max_size=64),
)


def _exchange_raw(port: int, payload: bytes, *, half_close: bool) -> bytes:
    """Send ``payload``; then either close at once (abrupt disconnect) or half-close and
    read until the SCP closes.  The bytes it sent back."""
    with socket.create_connection(("127.0.0.1", port), timeout=REPLY_WAIT) as sock:
        try:
            sock.sendall(payload)
        except OSError:
            return b""  # the SCP closed first: a valid outcome
        if not half_close:
            return b""
        sock.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + REPLY_WAIT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                return received
            received += chunk
        raise AssertionError(f"the SCP neither answered nor closed within {REPLY_WAIT}s")


def _replies(data: bytes) -> list[int]:
    """The PDU types of a byte stream from the SCP."""
    types, at = [], 0
    while at + 6 <= len(data):
        types.append(data[at])
        at += 6 + struct.unpack(">I", data[at + 2 : at + 6])[0]
    return types


@FUZZ
@given(mutation=pdu_mutations, half_close=st.booleans())
def test_malformed_associate_rq_is_refused_and_scp_keeps_serving(
    scp: Scp, mutation: PduMutation, half_close: bool
) -> None:
    reply = _exchange_raw(scp.port, apply_pdu(ASSOCIATE_RQ, mutation), half_close=half_close)
    # PS3.8 9.3.3-9.3.8: accepted (the mutation left a valid request), rejected, aborted,
    # or the transport closed (PS3.8 9.1.1 and the DUL state table, AA-1 ... AA-8)
    assert set(_replies(reply)) <= {A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ABORT}, reply[:64]
    scp.still_serving()


@settings(FUZZ, max_examples=12)
@given(garbage=st.binary(min_size=1, max_size=200), as_pdata=st.booleans())
def test_garbage_after_an_accepted_association_is_aborted(
    scp: Scp, garbage: bytes, as_pdata: bool
) -> None:
    if as_pdata:  # a P-DATA-TF of garbage: PDV items that are not a DIMSE message
        garbage = struct.pack(">BBI", P_DATA_TF, 0, len(garbage)) + garbage
    with socket.create_connection(("127.0.0.1", scp.port), timeout=REPLY_WAIT) as sock:
        sock.sendall(ASSOCIATE_RQ)
        accepted = sock.recv(65536)
        assert accepted[:1] == bytes([A_ASSOCIATE_AC])
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        deadline = time.monotonic() + REPLY_WAIT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
        else:
            raise AssertionError("the SCP kept an association with a garbage peer open")
    assert set(_replies(received)) <= {A_ABORT, A_RELEASE_RP, P_DATA_TF}, received[:64]
    scp.still_serving()


def test_many_abandoned_connections_do_not_exhaust_the_scp(scp: Scp) -> None:
    # more than the 32 associations the SCP allows, each left after half a request
    for _ in range(34):
        _exchange_raw(scp.port, ASSOCIATE_RQ[:40], half_close=False)
    scp.still_serving()


# --- C-STORE of broken data sets (PS3.4 B.2.3) ---------------------------------------------


def _part10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def _body_offset(data: bytes) -> int:
    """Where the data set starts: after the preamble, "DICM" and the File Meta group."""
    group_length = struct.unpack("<I", data[140:144])[0]  # (0002,0000) UL, explicit VR
    return 144 + group_length


@dataclass(frozen=True)
class DatasetMutation:
    kind: str
    position: float
    value: int
    data: bytes


def apply_dataset(data: bytes, m: DatasetMutation) -> bytes:
    """``data`` (a Part 10 file) with its data set - not its File Meta - broken."""
    start = _body_offset(data)
    at = start + int(m.position * (len(data) - start - 1))
    if m.kind == "truncate":
        return data[:at]
    if m.kind == "byte":
        return data[:at] + bytes([m.value & 0xFF]) + data[at + 1 :]
    if m.kind == "insert":
        return data[:at] + m.data + data[at:]
    if m.kind == "length":  # one element's 16-bit length (explicit VR, short form) wrong
        return data[: at + 6] + struct.pack("<H", m.value & 0xFFFF) + data[at + 8 :]
    # undefined length (FFFFFFFF) on an element with garbage after it
    element = struct.pack("<HH", 0x0009, 0x1010) + b"UN\x00\x00" + b"\xff\xff\xff\xff"
    return data[:at] + element + m.data + data[at:]


dataset_mutations = st.builds(
    DatasetMutation,
    kind=st.sampled_from(["truncate", "byte", "insert", "length", "undefined-length"]),
    position=st.floats(0.0, 1.0),
    value=st.integers(0, 0xFFFF),
    data=st.binary(min_size=0, max_size=48),
)


def _send_file(scp: Scp, path: Path) -> int | None:
    """C-STORE of ``path`` sent as it is (pynetdicom reads only its File Meta): the
    status, or None when the association was aborted."""
    chunked = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        assoc = scu().associate(
            "127.0.0.1", scp.port, ae_title=AE_TITLE, evt_handlers=REQUESTOR_HANDLERS
        )
        assert assoc.is_established
        try:
            status = assoc.send_c_store(path)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
    return int(status.Status) if "Status" in status else None


def _stored_whole(scp: Scp, sent: bytes) -> None:
    """An accepted data set is stored complete: it reads back to the last element."""
    before_meta = dcmread(io.BytesIO(sent))
    stored = scp.source.store.get(str(before_meta.SOPInstanceUID))
    assert stored is not None
    back = dcmread(stored.path)
    for element in back.iterall():
        _ = element.value
    assert back.get("PixelData") == before_meta.get("PixelData")
    scp.source.store.remove(sop_instance_uids=[stored.sop_instance_uid])


def _element_ends(data: bytes) -> set[int]:
    """Where each top-level element of a Part 10 file ends (PS3.5 7.1): a file cut
    anywhere else is incomplete."""
    stream = io.BytesIO(data)
    stream.seek(_body_offset(data))
    ends = {_body_offset(data)}
    for raw in data_element_generator(stream, False, True):  # explicit VR little endian
        ends.add(raw.value_tell + raw.length)
    return ends


def _check_store(scp: Scp, data: bytes, tmp_path: Path) -> int | None:
    before = scp.snapshot()
    path = tmp_path / f"{generate_uid()}.dcm"
    path.write_bytes(data)
    status = _send_file(scp, path)
    if status == 0x0000:
        _stored_whole(scp, data)
    else:
        assert scp.snapshot() == before, f"stored something, answered {status}"
    assert scp.snapshot() == before
    scp.still_serving()
    return status


@settings(FUZZ, max_examples=20)
@given(mutation=dataset_mutations)
def test_c_store_of_a_broken_data_set_stores_nothing(
    scp: Scp, mutation: DatasetMutation, tmp_path_factory: pytest.TempPathFactory
) -> None:
    ds = make_instance(generate_uid(), generate_uid())
    data = _part10(ds)
    sent = apply_dataset(data, mutation)
    status = _check_store(scp, sent, tmp_path_factory.mktemp("c-store"))
    if mutation.kind == "truncate" and len(sent) not in _element_ends(data):
        assert status != 0x0000, "a data set cut inside an element was stored"


@pytest.mark.parametrize(
    "change",
    [
        "sop-class",  # the request says CT, the data set is MR
        "sop-instance",  # the request names another instance
        "no-study",
        "no-series",
        "bad-study-uid",
    ],
)
def test_c_store_of_a_data_set_unlike_its_request_fails(
    scp: Scp, change: str, tmp_path: Path
) -> None:
    ds = make_instance(generate_uid(), generate_uid())
    meta_class, meta_instance = ds.SOPClassUID, ds.SOPInstanceUID
    if change == "sop-class":
        ds.SOPClassUID = MRImageStorage
    elif change == "sop-instance":
        ds.SOPInstanceUID = generate_uid()
    elif change == "no-study":
        del ds.StudyInstanceUID
    elif change == "no-series":
        del ds.SeriesInstanceUID
    else:
        ds.StudyInstanceUID = "1.2.abc"
    ds.file_meta.MediaStorageSOPClassUID = meta_class
    ds.file_meta.MediaStorageSOPInstanceUID = meta_instance
    ds.preamble = bytes(128)
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=False)  # the File Meta says what the request says
    status = _check_store(scp, out.getvalue(), tmp_path)
    assert status not in (None, 0x0000)
    # PS3.4 B.2.3: A900 "Data Set does not match SOP Class", C000 "Cannot understand"
    assert status in (0xA900, 0xC000), hex(status)
