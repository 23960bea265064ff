"""The Upper Layer PDUs and DIMSE command sets xdsi's sub-association writes, read back
by pynetdicom's decoders, and what it reads from hand-built PDUs (PS3.8 9.3, PS3.7 E)."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import A_ABORT_RQ, A_ASSOCIATE_RQ, A_RELEASE_RQ, P_DATA_TF

from imaging_source import dimse_command, upper_layer
from imaging_source.upper_layer import ProposedContext, UpperLayerError

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
RLE = "1.2.840.10008.1.2.5"


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BxH", item_type, len(body)) + body


def _associate_ac(*contexts: tuple[int, int, str], maximum_length: int | None = 16384) -> bytes:
    """The variable part of an A-ASSOCIATE-AC (PS3.8 9.3.3), built from the standard."""
    body = struct.pack(">H2x", 1) + b"MOVEDEST".ljust(16) + b"XDSI".ljust(16) + bytes(32)
    body += _item(0x10, b"1.2.840.10008.3.1.1.1")
    for context_id, result, syntax in contexts:
        body += _item(0x21, bytes([context_id, 0, result, 0]) + _item(0x40, syntax.encode()))
    user = b"" if maximum_length is None else _item(0x51, struct.pack(">I", maximum_length))
    return body + _item(0x50, user + _item(0x52, b"1.2.3"))


def test_associate_rq_reads_back_in_pynetdicom() -> None:
    contexts = [ProposedContext(1, CT, (EXPLICIT, IMPLICIT)), ProposedContext(3, CT, (RLE,))]
    encoded = upper_layer.associate_rq(
        "MOVEDEST", "XDSI", contexts, maximum_length=16382,
        implementation_class_uid="1.2.826.0.1.3680043.9.3811.3.0.4",
        implementation_version_name="XDSI_1",
    )  # fmt: skip
    pdu = A_ASSOCIATE_RQ()
    pdu.decode(encoded)
    assert (pdu.called_ae_title, pdu.calling_ae_title) == ("MOVEDEST", "XDSI")
    assert pdu.application_context_name == "1.2.840.10008.3.1.1.1"
    read = [(c.context_id, c.abstract_syntax, c.transfer_syntax) for c in pdu.presentation_context]
    assert read == [(1, CT, [EXPLICIT, IMPLICIT]), (3, CT, [RLE])]
    user = {type(item).__name__: item for item in pdu.user_information.user_data}
    assert user["MaximumLengthSubItem"].maximum_length_received == 16382
    assert user["ImplementationClassUIDSubItem"].implementation_class_uid == (
        "1.2.826.0.1.3680043.9.3811.3.0.4"
    )
    assert user["ImplementationVersionNameSubItem"].implementation_version_name == "XDSI_1"
    assert len(encoded) == 6 + struct.unpack(">I", encoded[2:6])[0]


def test_an_ae_title_longer_than_16_characters_is_refused() -> None:
    with pytest.raises(UpperLayerError):
        upper_layer.associate_rq(
            "A" * 17, "XDSI", [], maximum_length=0, implementation_class_uid="1.2"
        )


def test_associate_ac_gives_the_accepted_contexts_and_maximum_length() -> None:
    accept = upper_layer.parse_associate_ac(
        _associate_ac((1, 0, EXPLICIT), (3, 4, IMPLICIT), (5, 0, RLE + "\0"))
    )
    assert accept.accepted == {1: EXPLICIT, 5: RLE}  # 4: transfer syntaxes not supported
    assert accept.maximum_length == 16384
    assert upper_layer.parse_associate_ac(_associate_ac(maximum_length=None)).maximum_length == 0


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\x01" + bytes(10),  # shorter than the fixed fields
        _associate_ac((1, 0, EXPLICIT))[:-3],  # the last item cut
        _associate_ac() + _item(0x21, bytes([1, 0, 0, 0])),  # accepted, no transfer syntax
        _associate_ac() + _item(0x21, b"\x01"),  # a context item too short
    ],
)
def test_a_malformed_associate_ac_is_an_upper_layer_error(body: bytes) -> None:
    with pytest.raises(UpperLayerError):
        upper_layer.parse_associate_ac(body)


def test_reject_and_abort_fields() -> None:
    assert upper_layer.parse_associate_rj(bytes([0, 1, 1, 3])) == (1, 1, 3)
    with pytest.raises(UpperLayerError):
        upper_layer.parse_associate_rj(b"\x00")
    pdu = A_ABORT_RQ()
    pdu.decode(upper_layer.abort(2, 2))
    assert (pdu.source, pdu.reason_diagnostic) == (2, 2)
    assert upper_layer.parse_abort(upper_layer.abort(2, 6)[6:]) == (2, 6)
    release = A_RELEASE_RQ()
    release.decode(upper_layer.release_rq())
    assert release.pdu_length == 4


@pytest.mark.parametrize(("size", "fragment"), [(0, 100), (1, 100), (100, 100), (1001, 100)])
def test_p_data_fragments_read_back_in_order(size: int, fragment: int) -> None:
    message = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    stream = b"".join(upper_layer.p_data(7, message, command=False, fragment=fragment))
    pieces, offset = [], 0
    while offset < len(stream):
        length = struct.unpack(">I", stream[offset + 2 : offset + 6])[0]
        pdu = P_DATA_TF()
        pdu.decode(stream[offset : offset + 6 + length])
        assert length <= fragment + 6  # PS3.8 D.1: the PDV's header counts
        (pdv,) = pdu.presentation_data_value_items
        pieces.append((pdv.presentation_context_id, pdv.presentation_data_value))
        offset += 6 + length
    assert all(context == 7 for context, _ in pieces)
    controls = [value[0] for _, value in pieces]
    assert controls == [0] * (len(pieces) - 1) + [2]  # data set, the last one marked
    assert b"".join(value[1:] for _, value in pieces) == message
    assert len(pieces) == max(1, -(-size // fragment))


def test_a_message_sent_in_pieces_is_marked_last_only_at_its_end() -> None:
    pieces = [b"a" * 10, b"b" * 10, b"c" * 3]
    buffers = [
        buffer
        for n, piece in enumerate(pieces)
        for buffer in upper_layer.p_data(
            1, piece, command=False, fragment=4, last=n == len(pieces) - 1
        )
    ]
    fragments = [
        fragment
        for header, data in zip(buffers[::2], buffers[1::2], strict=True)
        for fragment in upper_layer.parse_p_data(bytes(header[6:]) + bytes(data))
    ]
    assert [f.last for f in fragments] == [False] * (len(fragments) - 1) + [True]
    assert b"".join(bytes(f.data) for f in fragments) == b"".join(pieces)


def test_p_data_read_back_and_malformed() -> None:
    stream = b"".join(upper_layer.p_data(3, b"abcd", command=True, fragment=16))
    (fragment,) = upper_layer.parse_p_data(stream[6:])
    assert (fragment.context_id, fragment.command, fragment.last) == (3, True, True)
    assert bytes(fragment.data) == b"abcd"
    with pytest.raises(UpperLayerError):
        upper_layer.parse_p_data(stream[6:-1])  # the PDV longer than its PDU
    with pytest.raises(UpperLayerError):
        upper_layer.parse_p_data(b"\x00\x00\x00\x01\x03")  # a PDV without its header


def test_fragment_length_keeps_within_the_receivers_maximum() -> None:
    assert upper_layer.fragment_length(16384, 1 << 20) == 16378
    assert upper_layer.fragment_length(0, 1 << 20) == 1 << 20  # no limit
    with pytest.raises(UpperLayerError):
        upper_layer.fragment_length(6, 1 << 20)


def test_c_store_rq_is_the_command_set_pynetdicom_encodes() -> None:
    primitive = C_STORE()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = CT
    primitive.AffectedSOPInstanceUID = "1.2.3.45"
    primitive.Priority = 2
    primitive.MoveOriginatorApplicationEntityTitle = "TESTSCU"
    primitive.MoveOriginatorMessageID = 3
    primitive.DataSet = BytesIO(b"\0\0")
    message = C_STORE_RQ()
    message.primitive_to_message(primitive)
    theirs = b"".join(
        value[1:]
        for p_data in message.encode_msg(1, 0)
        for _, value in p_data.presentation_data_value_list
        if value[0] & 1
    )
    ours = dimse_command.c_store_rq(
        7, CT, "1.2.3.45", priority=2, move_originator_ae_title="TESTSCU",
        move_originator_message_id=3,
    )  # fmt: skip
    assert ours == theirs
    read = dimse_command.read_command(ours)
    assert dimse_command.us(read, dimse_command.COMMAND_FIELD) == dimse_command.C_STORE_RQ
    assert dimse_command.text(read, 0x1000) == "1.2.3.45"


def test_a_command_set_that_does_not_parse_is_a_command_error() -> None:
    with pytest.raises(dimse_command.CommandError):
        dimse_command.read_command(b"\x00\x00\x00\x09\x02\x00\x00\x00")  # value cut
    with pytest.raises(dimse_command.CommandError):
        dimse_command.read_command(b"\x08\x00\x16\x00\x00\x00\x00\x00")  # group 0008
    assert dimse_command.us({0x0900: b"\x01"}, 0x0900) is None  # not two bytes
