"""Is a Part 10 file complete?  A walk over its data elements' headers (PS3.5 7.1),
seeking over their values, that fails where a value or an item would end past the end
of the file, or where an undefined length (PS3.5 7.5) is never closed by its delimiter.

pydicom reads a value cut short without complaint and a header read stops before the
pixel data, so a C-STORE or STOW-RS whose data set was truncated would otherwise be
stored as if it were whole.  The walk reads only element and item headers: a multi-GiB
instance costs a few thousand seeks, not its size in memory.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

__all__ = ["IncompleteDataSet", "check_complete"]

# PS3.5 7.1.2: VRs with a 2-byte reserved field and a 4-byte length in explicit VR
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
_UNDEFINED = 0xFFFFFFFF
# PS3.5 7.5: Item, Item Delimitation Item, Sequence Delimitation Item
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PREAMBLE_AND_PREFIX = 132  # PS3.10 7.1
_META_GROUP = 0x0002


class IncompleteDataSet(ValueError):
    """The file ends inside a data element, an item, or an undefined-length value."""


class _Walk:
    def __init__(self, stream: BinaryIO, size: int, *, implicit: bool, little: bool) -> None:
        self.stream, self.size = stream, size
        self.implicit = implicit
        self.order = "<" if little else ">"

    def read(self, n: int, what: str) -> bytes:
        data = self.stream.read(n)
        if len(data) != n:
            raise IncompleteDataSet(f"the file ends inside {what}")
        return data

    def skip(self, length: int, what: str) -> None:
        end = self.stream.tell() + length
        if end > self.size:
            raise IncompleteDataSet(f"{what} ends at byte {end}, past the end ({self.size})")
        self.stream.seek(end)

    def tag(self) -> int:
        group, element = struct.unpack(f"{self.order}HH", self.read(4, "a tag"))
        return group << 16 | element

    def element(self, tag: int) -> None:
        """The rest of a data element whose tag was read: its VR, length and value."""
        where = f"element ({tag >> 16:04X},{tag & 0xFFFF:04X})"
        vr = b""
        if self.implicit or tag >> 16 == 0xFFFE:
            (length,) = struct.unpack(f"{self.order}I", self.read(4, where))
        else:
            vr = self.read(2, where)
            if vr in _LONG_VRS:
                self.read(2, where)
                (length,) = struct.unpack(f"{self.order}I", self.read(4, where))
            else:
                (length,) = struct.unpack(f"{self.order}H", self.read(2, where))
        if length != _UNDEFINED:
            self.skip(length, where)
        elif vr == b"UN":  # PS3.5 6.2.2: its items are implicit VR little endian
            implicit, self.implicit = self.implicit, True
            try:
                self.items(where)
            finally:
                self.implicit = implicit
        elif vr in (b"SQ", b"") or tag == 0x7FE00010:
            self.items(where)
        else:
            raise IncompleteDataSet(f"{where}: undefined length on VR {vr.decode('latin-1')}")

    def items(self, where: str) -> None:
        """Items up to the Sequence Delimitation Item (PS3.5 7.5.1, A.4)."""
        while True:
            tag = self._item_tag(where)
            (length,) = struct.unpack(f"{self.order}I", self.read(4, where))
            if tag == _SEQUENCE_END:
                return
            if tag != _ITEM:
                raise IncompleteDataSet(
                    f"{where}: ({tag >> 16:04X},{tag & 0xFFFF:04X}) in a sequence"
                )
            if length != _UNDEFINED:
                self.skip(length, f"an item of {where}")
            else:
                self.dataset(until_item_end=True)

    def _item_tag(self, where: str) -> int:
        group, element = struct.unpack(f"{self.order}HH", self.read(4, f"an item of {where}"))
        return group << 16 | element

    def dataset(self, *, until_item_end: bool = False) -> None:
        while True:
            if not until_item_end and self.stream.tell() >= self.size:
                return
            tag = self.tag()
            if tag == _ITEM_END:
                self.read(4, "an Item Delimitation Item")
                if until_item_end:
                    return
                raise IncompleteDataSet("an Item Delimitation Item outside an item")
            self.element(tag)


def _meta_end(stream: BinaryIO, size: int) -> int:
    """Where the File Meta Information (explicit VR little endian, group 0002) ends."""
    stream.seek(_PREAMBLE_AND_PREFIX)
    walk = _Walk(stream, size, implicit=False, little=True)
    while stream.tell() < size:
        at = stream.tell()
        tag = walk.tag()
        if tag >> 16 != _META_GROUP:
            return at
        walk.element(tag)
    return stream.tell()


def check_complete(path: Path, transfer_syntax_uid: str) -> None:
    """Raise IncompleteDataSet unless every element of the Part 10 file at ``path`` ends
    within it.  A deflated data set (PS3.5 A.5) is left to the inflater."""
    syntax = UID(transfer_syntax_uid or ExplicitVRLittleEndian)
    if syntax == DeflatedExplicitVRLittleEndian:
        return
    size = path.stat().st_size
    with path.open("rb") as stream:
        start = _meta_end(stream, size)
        stream.seek(start)
        implicit = syntax.is_implicit_VR if syntax.is_transfer_syntax else False
        little = syntax.is_little_endian if syntax.is_transfer_syntax else True
        _Walk(stream, size, implicit=implicit, little=little).dataset()
