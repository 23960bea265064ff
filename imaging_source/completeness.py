"""Is a Part 10 file complete?  A walk over its data elements' headers (PS3.5 7.1),
seeking over their values, that fails where a value or an item would end past the end
of the file, or where an undefined length (PS3.5 7.5) is never closed by its delimiter.

pydicom reads a value cut short without complaint and a header read stops before the
pixel data, so a C-STORE or STOW-RS whose data set was truncated would otherwise be
stored as if it were whole.  The walk reads only element and item headers: a multi-GiB
instance costs a few thousand seeks, not its size in memory.

``scan_part10`` is the same walk keeping the values of the top-level elements it is
asked for as it passes them: the header read and the completeness check of an
instance taken in (C-STORE, STOW-RS, a backing PACS's WADO-RS) in one pass, without
building a pydicom Dataset.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian

__all__ = ["IncompleteDataSet", "ScannedPart10", "check_complete", "scan_part10"]

# PS3.5 7.1.2: VRs with a 2-byte reserved field and a 4-byte length in explicit VR
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
)
# PS3.5 Table 6.2-1: the VRs there are.  How an element of any other is encoded - a
# 16-bit length, or reserved bytes and a 32-bit one - and so where the data set goes
# on, is not known: such a data set cannot be read to its end, nor its values decoded
_VRS = frozenset(
    b"AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI "
    b"UL UN UR US UT UV".split()
)
# The VRs with a 16-bit length in explicit VR (PS3.5 7.1.2)
_SHORT_VRS = _VRS - _LONG_VRS
# PS3.5 Table 6.2-1: the binary VRs of fixed-size values, and the size; a value whose
# length is not a multiple of it cannot be decoded either
_VALUE_SIZE = {
    b"AT": 4, b"FD": 8, b"FL": 4, b"SL": 4, b"SS": 2, b"SV": 8, b"UL": 4, b"US": 2, b"UV": 8,
}  # fmt: skip
_UNDEFINED = 0xFFFFFFFF
# PS3.5 7.5: Item, Item Delimitation Item, Sequence Delimitation Item
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_PREAMBLE_AND_PREFIX = 132  # PS3.10 7.1
_META_GROUP = 0x0002
# A kept value longer than this is not one :func:`scan_part10` is asked for (the longest
# text VR, UT, may be longer; the attributes indexed are short strings and numbers)
_MAX_CAPTURED = 64 * 1024


class IncompleteDataSet(ValueError):
    """The data set cannot be read to its end: the file ends inside a data element, an
    item, or an undefined-length value, or an element has a VR that PS3.5 does not
    define, or a binary value a length that is no whole number of its values."""


class _NotCaptured(Exception):
    """An element asked for that a raw read does not keep (too long, undefined length)."""


def _where(what: int | str) -> str:
    """An element's tag as the messages name it (formatted only for a message)."""
    if isinstance(what, str):
        return what
    return f"element ({what >> 16:04X},{what & 0xFFFF:04X})"


class _Walk:
    def __init__(
        self,
        stream: BinaryIO,
        size: int,
        *,
        implicit: bool,
        little: bool,
        capture: frozenset[int] = frozenset(),
    ) -> None:
        self.stream, self.size = stream, size
        self.implicit = implicit
        self.little = little
        order = "<" if little else ">"
        self._tag = struct.Struct(f"{order}HH").unpack
        # tag, VR skipped, 16-bit length: an explicit VR element header (PS3.5 7.1.2)
        self._explicit_header = struct.Struct(f"{order}HH2xH").unpack
        self._short = struct.Struct(f"{order}H").unpack
        self._long = struct.Struct(f"{order}I").unpack
        # top-level elements whose values are kept (``captured``), read as they pass
        self.capture = capture
        self.captured: dict[int, RawDataElement] = {}
        self.depth = 0

    def read(self, n: int, what: int | str) -> bytes:
        """``n`` bytes of ``what`` (an element's tag, or words naming it)."""
        data = self.stream.read(n)
        if len(data) != n:
            raise IncompleteDataSet(f"the file ends inside {_where(what)}")
        return data

    def skip(self, length: int, what: int | str) -> None:
        end = self.stream.tell() + length
        if end > self.size:
            raise IncompleteDataSet(
                f"{_where(what)} ends at byte {end}, past the end ({self.size})"
            )
        self.stream.seek(end)

    def tag(self) -> int:
        group, element = self._tag(self.read(4, "a tag"))
        return group << 16 | element

    def element(self, tag: int) -> None:
        """The rest of a data element whose tag was read: its VR, length and value."""
        vr = b""
        if self.implicit or tag >> 16 == 0xFFFE:
            (length,) = self._long(self.read(4, tag))
        else:
            head = self.read(4, tag)
            vr = head[:2]
            if vr not in _VRS:
                where = _where(tag)
                raise IncompleteDataSet(f"{where}: {vr!r} is not a VR (PS3.5 Table 6.2-1)")
            if vr in _LONG_VRS:
                (length,) = self._long(self.read(4, tag))
            else:
                (length,) = self._short(head[2:])
        if length != _UNDEFINED:
            size = _VALUE_SIZE.get(vr)
            if size is not None and length % size:
                where = _where(tag)
                raise IncompleteDataSet(
                    f"{where}: {length} bytes of {vr.decode()}, values of {size} bytes each"
                )
            if self.depth == 0 and tag in self.capture:
                self._keep(tag, vr, length)
            else:
                self.skip(length, tag)
        elif self.depth == 0 and tag in self.capture:
            raise _NotCaptured(_where(tag))
        elif vr == b"UN":  # PS3.5 6.2.2: its items are implicit VR little endian
            implicit, self.implicit = self.implicit, True
            try:
                self.items(_where(tag))
            finally:
                self.implicit = implicit
        elif vr in (b"SQ", b"") or tag == 0x7FE00010:
            self.items(_where(tag))
        else:
            where = _where(tag)
            raise IncompleteDataSet(f"{where}: undefined length on VR {vr.decode('latin-1')}")

    def _keep(self, tag: int, vr: bytes, length: int) -> None:
        if length > _MAX_CAPTURED:
            raise _NotCaptured(_where(tag))
        at = self.stream.tell()
        value = self.read(length, tag)
        self.captured[tag] = RawDataElement(
            BaseTag(tag),
            None if self.implicit else vr.decode("ascii", "replace"),
            length,
            value,
            at,
            self.implicit,
            self.little,
        )

    def items(self, where: str) -> None:
        """Items up to the Sequence Delimitation Item (PS3.5 7.5.1, A.4)."""
        self.depth += 1
        try:
            self._items(where)
        finally:
            self.depth -= 1

    def _items(self, where: str) -> None:
        item = f"an item of {where}"  # named once a sequence, not once an item
        while True:
            group, element = self._tag(self.read(4, item))
            tag = group << 16 | element
            (length,) = self._long(self.read(4, where))
            if tag == _SEQUENCE_END:
                return
            if tag != _ITEM:
                raise IncompleteDataSet(
                    f"{where}: ({tag >> 16:04X},{tag & 0xFFFF:04X}) in a sequence"
                )
            if length != _UNDEFINED:
                self.skip(length, item)
            else:
                self.dataset(until_item_end=True)

    def dataset(self, *, until_item_end: bool = False) -> None:
        if self.implicit:
            self._dataset(until_item_end)
            return
        # explicit VR: an element with a 16-bit length (most of a header) read here in
        # one read of its 8-byte header (PS3.5 7.1.2); any other, and a file ending
        # inside a header, by :meth:`element` from its start, as :meth:`_dataset` does
        read, seek, size = self.stream.read, self.stream.seek, self.size
        header, sizes, capture = self._explicit_header, _VALUE_SIZE, self.capture
        position = self.stream.tell()
        while True:
            if not until_item_end and position >= size:
                return
            head = read(8)
            vr = head[4:6]
            if len(head) < 8 or vr not in _SHORT_VRS:
                seek(position)
                if self._one(until_item_end):
                    return
                position = self.stream.tell()
                continue
            group, element, length = header(head)
            tag = group << 16 | element
            if group == 0xFFFE:  # items and delimiters have no VR
                seek(position)
                if self._one(until_item_end):
                    return
                position = self.stream.tell()
                continue
            value_size = sizes.get(vr)
            if value_size is not None and length % value_size:
                where = _where(tag)
                raise IncompleteDataSet(
                    f"{where}: {length} bytes of {vr.decode()}, values of {value_size} bytes each"
                )
            position += 8 + length
            if self.depth == 0 and tag in capture:
                self._keep(tag, vr, length)
            elif position > size:
                raise IncompleteDataSet(
                    f"{_where(tag)} ends at byte {position}, past the end ({size})"
                )
            else:
                seek(position)

    def _dataset(self, until_item_end: bool) -> None:
        tell, size = self.stream.tell, self.size
        while True:
            if not until_item_end and tell() >= size:
                return
            if self._one(until_item_end):
                return

    def _one(self, until_item_end: bool) -> bool:
        """One data element, or the end of an item (True when that ends the walk)."""
        tag = self.tag()
        if tag == _ITEM_END:
            self.read(4, "an Item Delimitation Item")
            if until_item_end:
                return True
            raise IncompleteDataSet("an Item Delimitation Item outside an item")
        self.element(tag)
        return False


def _meta_end(stream: BinaryIO, size: int, walk: _Walk | None = None) -> int:
    """Where the File Meta Information (explicit VR little endian, group 0002) ends;
    ``walk`` (explicit VR little endian) reads it, keeping what it captures."""
    stream.seek(_PREAMBLE_AND_PREFIX)
    walk = walk or _Walk(stream, size, implicit=False, little=True)
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


# The File Meta Information elements :func:`scan_part10` keeps (PS3.10 7.1)
MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
TRANSFER_SYNTAX_UID = 0x00020010
_META_CAPTURE = frozenset(
    {MEDIA_STORAGE_SOP_CLASS_UID, MEDIA_STORAGE_SOP_INSTANCE_UID, TRANSFER_SYNTAX_UID}
)


@dataclass(frozen=True, slots=True)
class ScannedPart10:
    """What one pass over a complete Part 10 file kept: File Meta Information elements
    and the top-level data set elements asked for, raw (PS3.5 7.1), and the transfer
    syntax the data set is encoded in."""

    meta: dict[int, RawDataElement]
    elements: dict[int, RawDataElement]
    transfer_syntax_uid: str


def scan_part10(path: Path, tags: frozenset[int]) -> ScannedPart10 | None:
    """The completeness walk of :func:`check_complete` and a header read in one pass:
    the top-level elements ``tags`` kept raw as they pass, nothing decoded.  None when
    the file is not one this pass reads as pydicom would - no "DICM" prefix, no
    Transfer Syntax UID, a transfer syntax pydicom does not know or a deflated one -
    or is incomplete (IncompleteDataSet): the caller then reads it the slower way,
    which reports what is wrong with it."""
    with path.open("rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if stream.read(_PREAMBLE_AND_PREFIX)[-4:] != b"DICM":
            return None
        meta = _Walk(stream, size, implicit=False, little=True, capture=_META_CAPTURE)
        try:
            start = _meta_end(stream, size, meta)
        except (IncompleteDataSet, _NotCaptured, struct.error):
            return None
        raw = meta.captured.get(TRANSFER_SYNTAX_UID)
        syntax = UID(raw.value.decode("ascii", "replace").strip(" \0")) if raw else None
        if syntax is None or not syntax.is_transfer_syntax or syntax.is_deflated:
            return None
        stream.seek(start)
        walk = _Walk(
            stream,
            size,
            implicit=syntax.is_implicit_VR,
            little=syntax.is_little_endian,
            capture=tags,
        )
        try:
            walk.dataset()
        except (IncompleteDataSet, _NotCaptured, struct.error):
            return None
    return ScannedPart10(meta.captured, walk.captured, str(syntax))
