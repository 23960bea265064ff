"""DIMSE command sets as bytes (PS3.7 6.3, 9.3.1, E): the C-STORE-RQ of a sub-operation
encoded, a response's command set read.  Pure: no I/O.

A command set is group 0000 in Implicit VR Little Endian, whatever the presentation
context's transfer syntax (PS3.7 6.3.1), its elements in ascending tag order, led by
Command Group Length (0000,0000), UL, the length of the rest.
"""

from __future__ import annotations

import struct

_ELEMENT = struct.Struct("<HHI")  # group, element, value length (Implicit VR, PS3.5 7.1.3)
_US = struct.Struct("<H")
_UL = struct.Struct("<I")

# PS3.7 E.1 tags (group 0000) and values
COMMAND_GROUP_LENGTH = 0x0000
AFFECTED_SOP_CLASS_UID = 0x0002
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
PRIORITY = 0x0700
COMMAND_DATA_SET_TYPE = 0x0800
STATUS = 0x0900
ERROR_COMMENT = 0x0902
AFFECTED_SOP_INSTANCE_UID = 0x1000
MOVE_ORIGINATOR_AE_TITLE = 0x1030
MOVE_ORIGINATOR_MESSAGE_ID = 0x1031
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
DATA_SET_PRESENT = 0x0001  # PS3.7 E.1: anything but 0x0101 says a data set follows
MEDIUM = 0x0000  # Priority (PS3.7 9.1.1.1.8)


class CommandError(ValueError):
    """A command set that cannot be read (PS3.7 6.3)."""


def _element(element: int, value: bytes) -> bytes:
    return _ELEMENT.pack(0x0000, element, len(value)) + value


def _uid(value: str) -> bytes:
    encoded = value.encode("ascii")
    return encoded + b"\0" if len(encoded) % 2 else encoded  # PS3.5 6.2: UI pads with NUL


def _ae(value: str) -> bytes:
    encoded = value.encode("ascii")
    return encoded + b" " if len(encoded) % 2 else encoded


def c_store_rq(
    message_id: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    *,
    priority: int = MEDIUM,
    move_originator_ae_title: str | None = None,
    move_originator_message_id: int | None = None,
) -> bytes:
    """The command set of a C-STORE-RQ (PS3.7 9.3.1.1) announcing a data set; the Move
    Originator elements are those of a C-MOVE's sub-operation (PS3.7 9.1.1.1)."""
    elements = [
        _element(AFFECTED_SOP_CLASS_UID, _uid(sop_class_uid)),
        _element(COMMAND_FIELD, _US.pack(C_STORE_RQ)),
        _element(MESSAGE_ID, _US.pack(message_id)),
        _element(PRIORITY, _US.pack(priority)),
        _element(COMMAND_DATA_SET_TYPE, _US.pack(DATA_SET_PRESENT)),
        _element(AFFECTED_SOP_INSTANCE_UID, _uid(sop_instance_uid)),
    ]
    if move_originator_ae_title:
        elements.append(_element(MOVE_ORIGINATOR_AE_TITLE, _ae(move_originator_ae_title)))
    if move_originator_message_id is not None:
        elements.append(_element(MOVE_ORIGINATOR_MESSAGE_ID, _US.pack(move_originator_message_id)))
    rest = b"".join(elements)
    return _element(COMMAND_GROUP_LENGTH, _UL.pack(len(rest))) + rest


def read_command(data: bytes | memoryview) -> dict[int, bytes]:
    """A command set's values by element number (group 0000 only)."""
    view = memoryview(data)
    values: dict[int, bytes] = {}
    offset = 0
    while offset < len(view):
        if offset + _ELEMENT.size > len(view):
            raise CommandError("a command element's header runs past the command set")
        group, element, length = _ELEMENT.unpack_from(view, offset)
        offset += _ELEMENT.size
        if group != 0x0000 or offset + length > len(view):
            raise CommandError(f"({group:04X},{element:04X}) does not belong to a command set")
        values[element] = bytes(view[offset : offset + length])
        offset += length
    return values


def us(values: dict[int, bytes], element: int) -> int | None:
    """An US value of a read command set, or None when absent or malformed."""
    value = values.get(element)
    if value is None or len(value) != _US.size:
        return None
    return int(_US.unpack(value)[0])


def text(values: dict[int, bytes], element: int) -> str | None:
    value = values.get(element)
    if value is None:
        return None
    return value.rstrip(b"\0 ").decode("ascii", "replace")


__all__ = [
    "C_STORE_RQ",
    "C_STORE_RSP",
    "COMMAND_DATA_SET_TYPE",
    "COMMAND_FIELD",
    "ERROR_COMMENT",
    "MESSAGE_ID_BEING_RESPONDED_TO",
    "STATUS",
    "CommandError",
    "c_store_rq",
    "read_command",
    "text",
    "us",
]
