"""The DICOM Upper Layer PDUs an association requestor sends and reads (PS3.8 9.3), as
bytes: encoding and decoding only, no I/O.

Used by :mod:`imaging_source.sub_association` for the C-MOVE sub-associations xdsi
requests.  Only what a Storage SCU needs is here: A-ASSOCIATE-RQ with presentation
contexts and the User Information of PS3.7 D.3.3 (maximum length, implementation class
UID and version name); A-ASSOCIATE-AC/RJ read back; P-DATA-TF framed and read;
A-RELEASE-RQ/RP and A-ABORT.  Every length is big-endian (PS3.8 9.3.1).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

# PS3.8 9.3.1: PDU types
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07
PDU_TYPES = frozenset(range(A_ASSOCIATE_RQ, A_ABORT + 1))
PDU_HEADER = struct.Struct(">BxI")  # type, reserved, length of what follows

PROTOCOL_VERSION = 0x0001  # PS3.8 9.3.2: bit 0 set
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"  # PS3.7 A.2.1
# PS3.8 9.3.2.x item types
_APPLICATION_CONTEXT = 0x10
_PRESENTATION_CONTEXT_RQ = 0x20
_PRESENTATION_CONTEXT_AC = 0x21
_ABSTRACT_SYNTAX = 0x30
_TRANSFER_SYNTAX = 0x40
_USER_INFORMATION = 0x50
_MAXIMUM_LENGTH = 0x51  # PS3.8 D.1
_IMPLEMENTATION_CLASS_UID = 0x52  # PS3.7 D.3.3.2
_IMPLEMENTATION_VERSION_NAME = 0x55
_ITEM_HEADER = struct.Struct(">BxH")
# PS3.8 9.3.3.2 presentation context result: 0 acceptance
ACCEPTANCE = 0
# PS3.8 9.3.5.1 Message Control Header: bit 0 command, bit 1 last fragment
_COMMAND = 0x01
_LAST = 0x02
PDV_HEADER = struct.Struct(">IBB")  # item length, presentation context ID, control
_REJECT = struct.Struct(">xBBB")
_ABORT = struct.Struct(">xxBB")


class UpperLayerError(ValueError):
    """A PDU that PS3.8 9.3 does not allow here (the association is then aborted)."""


@dataclass(frozen=True, slots=True)
class ProposedContext:
    """A presentation context of an A-ASSOCIATE-RQ (PS3.8 9.3.2.2): its ID (odd,
    1-255), abstract syntax and transfer syntaxes."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AssociateAccept:
    """An A-ASSOCIATE-AC as read: the accepted contexts' transfer syntax by ID, and the
    acceptor's Maximum Length Received (0: no limit, PS3.8 D.1)."""

    accepted: dict[int, str] = field(default_factory=dict)
    maximum_length: int = 0


def _uid(value: str) -> bytes:
    return value.encode("ascii")


def _item(item_type: int, body: bytes) -> bytes:
    return _ITEM_HEADER.pack(item_type, len(body)) + body


def _ae_title(title: str) -> bytes:
    """PS3.8 9.3.2: 16 characters, space padded."""
    encoded = title.encode("ascii")
    if not 0 < len(encoded) <= 16:
        raise UpperLayerError(f"an AE title has 1-16 characters: {title!r}")
    return encoded.ljust(16)


def associate_rq(
    called: str,
    calling: str,
    contexts: Sequence[ProposedContext],
    *,
    maximum_length: int,
    implementation_class_uid: str,
    implementation_version_name: str | None = None,
) -> bytes:
    """An A-ASSOCIATE-RQ PDU (PS3.8 9.3.2)."""
    items = [_item(_APPLICATION_CONTEXT, _uid(APPLICATION_CONTEXT_NAME))]
    for context in contexts:
        sub_items = _item(_ABSTRACT_SYNTAX, _uid(context.abstract_syntax)) + b"".join(
            _item(_TRANSFER_SYNTAX, _uid(syntax)) for syntax in context.transfer_syntaxes
        )
        head = struct.pack(">B3x", context.context_id)
        items.append(_item(_PRESENTATION_CONTEXT_RQ, head + sub_items))
    user = _item(_MAXIMUM_LENGTH, struct.pack(">I", maximum_length))
    user += _item(_IMPLEMENTATION_CLASS_UID, _uid(implementation_class_uid))
    if implementation_version_name:
        user += _item(_IMPLEMENTATION_VERSION_NAME, _uid(implementation_version_name))
    items.append(_item(_USER_INFORMATION, user))
    body = (
        struct.pack(">H2x", PROTOCOL_VERSION)
        + _ae_title(called)
        + _ae_title(calling)
        + bytes(32)
        + b"".join(items)
    )
    return PDU_HEADER.pack(A_ASSOCIATE_RQ, len(body)) + body


def _items(data: bytes | memoryview, start: int) -> Iterator[tuple[int, memoryview]]:
    view = memoryview(data)
    offset = start
    while offset < len(view):
        if offset + _ITEM_HEADER.size > len(view):
            raise UpperLayerError("an item header runs past the end of its PDU")
        item_type, length = _ITEM_HEADER.unpack_from(view, offset)
        offset += _ITEM_HEADER.size
        if offset + length > len(view):
            raise UpperLayerError(f"item 0x{item_type:02X} runs past the end of its PDU")
        yield item_type, view[offset : offset + length]
        offset += length


def parse_associate_ac(body: bytes) -> AssociateAccept:
    """The variable part of an A-ASSOCIATE-AC (PS3.8 9.3.3): what follows its 6-byte
    PDU header."""
    if len(body) < 68:
        raise UpperLayerError("an A-ASSOCIATE-AC is shorter than its fixed fields")
    accepted: dict[int, str] = {}
    maximum_length = 0
    for item_type, item in _items(body, 68):
        if item_type == _PRESENTATION_CONTEXT_AC:
            if len(item) < 4:
                raise UpperLayerError("a presentation context item is too short")
            context_id, result = item[0], item[2]
            syntaxes = [bytes(v) for t, v in _items(item, 4) if t == _TRANSFER_SYNTAX]
            if result == ACCEPTANCE:
                if len(syntaxes) != 1:  # PS3.8 9.3.3.2: exactly one when accepted
                    raise UpperLayerError("an accepted context names no one transfer syntax")
                accepted[context_id] = syntaxes[0].rstrip(b"\0 ").decode("ascii")
        elif item_type == _USER_INFORMATION:
            for sub_type, sub in _items(item, 0):
                if sub_type == _MAXIMUM_LENGTH and len(sub) == 4:
                    (maximum_length,) = struct.unpack(">I", sub)
    return AssociateAccept(accepted, maximum_length)


def parse_associate_rj(body: bytes) -> tuple[int, int, int]:
    """(result, source, reason) of an A-ASSOCIATE-RJ (PS3.8 9.3.4)."""
    if len(body) < _REJECT.size:
        raise UpperLayerError("an A-ASSOCIATE-RJ is too short")
    result, source, reason = _REJECT.unpack_from(body)
    return int(result), int(source), int(reason)


def parse_abort(body: bytes) -> tuple[int, int]:
    """(source, reason) of an A-ABORT (PS3.8 9.3.8)."""
    if len(body) < _ABORT.size:
        return 0, 0
    source, reason = _ABORT.unpack_from(body)
    return int(source), int(reason)


def release_rq() -> bytes:
    """PS3.8 9.3.6."""
    return PDU_HEADER.pack(A_RELEASE_RQ, 4) + bytes(4)


def abort(source: int = 0, reason: int = 0) -> bytes:
    """PS3.8 9.3.8: source 0 is the service user (the reason is then 0), 2 the provider."""
    return PDU_HEADER.pack(A_ABORT, 4) + _ABORT.pack(source, reason)


def fragment_length(maximum_length: int, preferred: int) -> int:
    """The largest message fragment one P-DATA-TF of a single PDV may carry when the
    receiver takes ``maximum_length`` (0: no limit) - PS3.8 D.1 bounds the PDU's
    variable field, the PDV's item length and control header included."""
    if maximum_length == 0:
        return preferred
    if maximum_length <= PDV_HEADER.size:
        raise UpperLayerError(f"a maximum length of {maximum_length} carries no data")
    return min(preferred, maximum_length - PDV_HEADER.size)


def p_data(
    context_id: int,
    message: bytes | memoryview | bytearray,
    *,
    command: bool,
    fragment: int,
    last: bool = True,
) -> list[bytes | memoryview]:
    """A message (command or data set) as P-DATA-TF PDUs of one PDV each, at most
    ``fragment`` bytes of it per PDU (PS3.8 9.3.5, E.2): headers and slices of
    ``message`` to be written in order (nothing copied).  ``last=False``: ``message`` is
    a piece of one that goes on, none of its fragments marked the last."""
    view = memoryview(message)
    control = _COMMAND if command else 0
    buffers: list[bytes | memoryview] = []
    total = len(view)
    offset = 0
    while True:
        piece = view[offset : offset + fragment]
        offset += len(piece)
        ended = offset >= total
        flag = _LAST if ended and last else 0
        pdv_length = len(piece) + 2
        buffers.append(
            PDU_HEADER.pack(P_DATA_TF, pdv_length + 4)
            + PDV_HEADER.pack(pdv_length, context_id, control | flag)
        )
        buffers.append(piece)
        if ended:
            return buffers


@dataclass(frozen=True, slots=True)
class Fragment:
    """One PDV of a P-DATA-TF (PS3.8 9.3.5.1)."""

    context_id: int
    command: bool
    last: bool
    data: memoryview


def parse_p_data(body: bytes | memoryview) -> list[Fragment]:
    """The PDVs of a P-DATA-TF's variable field."""
    view = memoryview(body)
    fragments = []
    offset = 0
    while offset < len(view):
        if offset + PDV_HEADER.size > len(view):
            raise UpperLayerError("a PDV header runs past the end of its P-DATA-TF")
        length, context_id, control = PDV_HEADER.unpack_from(view, offset)
        if length < 2 or offset + 4 + length > len(view):
            raise UpperLayerError(f"a PDV of length {length} does not fit its P-DATA-TF")
        data = view[offset + PDV_HEADER.size : offset + 4 + length]
        fragments.append(
            Fragment(context_id, bool(control & _COMMAND), bool(control & _LAST), data)
        )
        offset += 4 + length
    return fragments


__all__ = [
    "A_ABORT",
    "A_ASSOCIATE_AC",
    "A_ASSOCIATE_RJ",
    "A_ASSOCIATE_RQ",
    "A_RELEASE_RP",
    "A_RELEASE_RQ",
    "ACCEPTANCE",
    "APPLICATION_CONTEXT_NAME",
    "P_DATA_TF",
    "PDU_HEADER",
    "PDU_TYPES",
    "AssociateAccept",
    "Fragment",
    "ProposedContext",
    "UpperLayerError",
    "abort",
    "associate_rq",
    "fragment_length",
    "p_data",
    "parse_abort",
    "parse_associate_ac",
    "parse_associate_rj",
    "parse_p_data",
    "release_rq",
]
