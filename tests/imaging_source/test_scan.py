"""One pass over a Part 10 file (``completeness.scan_part10``): what it reads equals
pydicom's header read and the completeness walk, and what it cannot tell it leaves to
them."""

from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dicom_studies import make_instance, make_study, write_files
from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
    generate_uid,
)

from imaging_source.completeness import (
    IncompleteDataSet,
    _meta_end,
    _NotCaptured,
    _Walk,
    scan_part10,
)
from imaging_source.instances import (
    _INDEXED_TAGS,
    INDEXED_ATTRIBUTES,
    InstanceStore,
    InvalidInstance,
    _column_values,
    _encodings,
    _raw_text,
    _scanned_values,
    _value,
    make_engine,
    upgrade,
)

INDEXED_TAGS = frozenset(tag_for_keyword(k) for k in INDEXED_ATTRIBUTES)


@pytest.fixture
def store(tmp_path: Path) -> InstanceStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'index.db'}")
    upgrade(engine)
    return InstanceStore(tmp_path / "store", engine)


def _written(ds: Dataset, directory: Path) -> Path:
    [path] = write_files([ds], directory)
    if "OtherPatientIDsSequence" in ds:  # the pass must walk into items, not over them
        path.write_bytes(_undefined_length(path.read_bytes(), b"\x10\x00\x02\x10SQ"))
    return path


def _undefined_length(data: bytes, head: bytes) -> bytes:
    """The explicit VR little endian sequence starting ``head`` (tag, VR), of one item,
    given undefined lengths and their delimitation items (PS3.5 7.5.1, 7.5.2)."""
    at = data.index(head)
    length = int.from_bytes(data[at + 8 : at + 12], "little")
    item_length = int.from_bytes(data[at + 16 : at + 20], "little")
    assert item_length + 8 == length, "a sequence of one item"
    content = data[at + 20 : at + 20 + item_length]
    undefined = b"\xff\xff\xff\xff"
    return (
        data[: at + 8] + undefined + data[at + 12 : at + 16] + undefined + content
        + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"  # Item Delimitation Item
        + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"  # Sequence Delimitation Item
        + data[at + 12 + length :]
    )  # fmt: skip


def _variants() -> list[Dataset]:
    """The test study (ISO_IR 192 names, an RLE-compressed CT with encapsulated pixel
    data, MR, secondary capture), and one CT in each other uncompressed encoding, one
    with a code extension, one with sequences before and after indexed elements."""
    study = make_study()
    implicit = make_instance(generate_uid(), generate_uid())
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    big = make_instance(generate_uid(), generate_uid())
    big.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    japanese = make_instance(generate_uid(), generate_uid())
    japanese.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    japanese.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    japanese.StudyDescription = "胸部CT"
    nested = make_instance(generate_uid(), generate_uid())
    item = Dataset()
    item.PatientID = "NOT-THIS-ONE"  # an indexed attribute inside an item is not read
    item.StudyInstanceUID = generate_uid()
    nested.OtherPatientIDsSequence = Sequence([item])
    nested.ReferencedStudySequence = Sequence([Dataset(), item])
    no_name = make_instance(generate_uid(), generate_uid())
    del no_name.PatientName, no_name.SeriesNumber
    return [*study, implicit, big, japanese, nested, no_name]


def _element_values(get_item: Callable[[int], Any]) -> dict[str, Any]:
    """Each indexed attribute's value as ``instances._value`` decodes it (pydicom's
    converter for the VR, in the data set's character set), by column."""
    encodings = _encodings(get_item)
    return {column: _value(get_item(tag), encodings) for tag, column in _INDEXED_TAGS}


@pytest.mark.parametrize("index", range(len(_variants())))
def test_the_one_pass_reads_what_pydicom_and_the_walk_read(
    index: int, store: InstanceStore, tmp_path: Path
) -> None:
    path = _written(_variants()[index], tmp_path)
    fast = _scanned_values(path)
    assert fast is not None, "this file is one the pass reads"
    assert fast == store._checked(path)  # pydicom's header read, then the walk
    # and each value decoded as pydicom's own Dataset gives it
    scanned = scan_part10(path, frozenset([0x00080005, *INDEXED_TAGS]))
    assert scanned is not None
    header = dcmread(path, stop_before_pixels=True)
    assert _element_values(scanned.elements.get) == {
        column: header.get(keyword) for keyword, column in INDEXED_ATTRIBUTES.items()
    }


def _padded_variants() -> list[Dataset]:
    """Values as senders pad and misencode them: leading and trailing spaces, trailing
    NULs, several values (PS3.5 6.4), Latin-1, UTF-8, bytes that are not UTF-8."""
    variants = []
    for charset, description in [
        (None, "  padded\\ several \\values  "),
        ("ISO_IR 100", "Thorax \xe9t\xe9  "),
        ("ISO_IR 192", " Thorax \u00e9t\u00e9\\\u80f8\u90e8 "),
    ]:
        ds = make_instance(generate_uid(), generate_uid())
        if charset:
            ds.SpecificCharacterSet = charset
        ds.StudyDescription = description
        ds.SeriesDescription = "\\".join(["one ", " two"])
        ds.Modality = "CT\\PT "
        ds.BodyPartExamined = " CHEST"
        ds.StudyDate = "20261201 "
        ds.StudyTime = " 101010.5"
        ds.AccessionNumber = "A-1\0"
        ds.PatientSex = ""
        variants.append(ds)
    broken = make_instance(generate_uid(), generate_uid())
    broken.SpecificCharacterSet = "ISO_IR 192"
    broken.StudyDescription = b"not UTF-8: \xff\xfe"
    variants.append(broken)
    return variants


ALL_VARIANTS = [*_variants(), *_padded_variants()]


@pytest.mark.parametrize("index", range(len(ALL_VARIANTS)))
def test_column_values_decoded_from_raw_bytes_are_pydicoms(index: int, tmp_path: Path) -> None:
    path = _written(ALL_VARIANTS[index], tmp_path)
    raw = dcmread(path, stop_before_pixels=True)
    converted = dcmread(path, stop_before_pixels=True)
    for keyword in ("SpecificCharacterSet", *INDEXED_ATTRIBUTES):
        converted.get(keyword)  # each element converted by pydicom, in place
    assert not any(isinstance(converted.get_item(t), RawDataElement) for t in INDEXED_TAGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns of the undecodable bytes
        expected = _column_values(converted.get_item)
        assert _column_values(raw.get_item) == expected
    # and the raw bytes were decoded here, not by pydicom, where they can be
    uid = raw.get_item(tag_for_keyword("SOPInstanceUID"))
    assert isinstance(uid, RawDataElement) and _raw_text(uid, ["iso8859"]) is not None


def test_an_indexed_attribute_inside_an_item_is_not_taken_for_the_data_sets(
    store: InstanceStore, tmp_path: Path
) -> None:
    ds = _variants()[-2]
    values = _scanned_values(_written(ds, tmp_path))
    assert values is not None and values["patient_id"] == ds.PatientID == "PAT-1"


def test_a_file_cut_inside_an_element_is_left_to_the_slower_read_which_refuses_it(
    store: InstanceStore, tmp_path: Path
) -> None:
    ds = make_study()[0]
    path = _written(ds, tmp_path / "in")
    data = path.read_bytes()
    # inside a value of the File Meta Information (its SOP Class UID comes first), of
    # the data set, and of the pixel data: never on an element's end, whatever the
    # random UIDs' lengths put where
    meta_value = data.index(ds.SOPClassUID.encode()) + 2
    data_set_value = data.index(ds.PatientID.encode()) + 1
    for cut in (meta_value, data_set_value, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        assert scan_part10(path, INDEXED_TAGS) is None
        with pytest.raises(InvalidInstance):
            store.add(path)
    assert list(store.studies()) == []


HIGH_BIT = b"\x28\x00\x02\x01US\x02\x00"  # (0028,0102), explicit VR little endian
STUDY_UID = b"\x20\x00\x0d\x00UI"  # (0020,000D)


@pytest.mark.parametrize(
    ("original", "changed", "refusal"),
    [
        # a VR PS3.5 does not define: the data set still parses with a 16-bit length,
        # but no reader can decode the value ("Unknown Value Representation")
        (HIGH_BIT, b"\x28\x00\x02\x01FS\x02\x00", "not a VR"),
        # two bytes read as a VR of 4- or 8-byte values: no whole number of values
        *((HIGH_BIT, b"\x28\x00\x02\x01" + vr + b"\x02\x00", "bytes each") for vr in
          (b"FL", b"FD", b"SL", b"UL", b"AT")),
        # an indexed value: the one pass refuses the VR and leaves the file to pydicom's
        # read, which decodes the indexed values as they are asked for - its error is
        # the instance's refusal
        (STUDY_UID, b"\x20\x00\x0d\x00VI", "cannot be decoded"),
    ],
)  # fmt: skip
def test_a_data_set_no_reader_can_decode_to_its_end_is_refused(
    store: InstanceStore, tmp_path: Path, original: bytes, changed: bytes, refusal: str
) -> None:
    path = _written(make_study()[0], tmp_path / "in")
    data = path.read_bytes()
    assert data.count(original) == 1
    path.write_bytes(data.replace(original, changed))
    assert scan_part10(path, INDEXED_TAGS) is None
    with pytest.raises(InvalidInstance, match=refusal):
        store.add(path)
    assert list(store.studies()) == []


def test_what_the_pass_does_not_read_is_left_to_pydicom(tmp_path: Path) -> None:
    deflated = make_instance(generate_uid(), generate_uid())
    deflated.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    assert scan_part10(_written(deflated, tmp_path / "deflated"), INDEXED_TAGS) is None
    long_value = make_instance(generate_uid(), generate_uid())
    long_value.StudyDescription = "x" * 70_000  # longer than a kept value may be
    assert scan_part10(_written(long_value, tmp_path / "long"), INDEXED_TAGS) is None
    no_prefix = tmp_path / "no-prefix.dcm"
    no_prefix.write_bytes(_written(make_study()[0], tmp_path / "p").read_bytes()[132:])
    assert scan_part10(no_prefix, INDEXED_TAGS) is None


def test_a_file_the_pass_cannot_read_is_stored_as_before(
    store: InstanceStore, tmp_path: Path
) -> None:
    ds = make_instance(generate_uid(), generate_uid())
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    instance = store.add(_written(ds, tmp_path))
    stored = store.get(ds.SOPInstanceUID)
    assert stored is not None and stored.sop_instance_uid == instance.sop_instance_uid
    assert stored.transfer_syntax_uid == DeflatedExplicitVRLittleEndian


def _walked(data: bytes, start: int, *, fast: bool) -> tuple[str, dict[int, bytes]]:
    """How a walk of the data set at ``start`` in ``data`` ends (its error, or "whole")
    and what it kept: by the explicit VR loop of ``_Walk.dataset``, or element by element."""
    stream = io.BytesIO(data)
    stream.seek(start)
    walk = _Walk(stream, len(data), implicit=False, little=True, capture=INDEXED_TAGS)
    try:
        walk.dataset() if fast else walk._dataset(False)
        outcome = "whole"
    except (IncompleteDataSet, _NotCaptured, struct.error) as exc:
        outcome = f"{type(exc).__name__}: {exc}"
    return outcome, {tag: raw.value for tag, raw in walk.captured.items()}


def test_the_explicit_vr_loop_walks_as_element_by_element_does(tmp_path: Path) -> None:
    ds = _variants()[-2]  # sequences of defined and undefined length among the elements
    data = _written(ds, tmp_path).read_bytes()
    pixels = data.index(b"\xe0\x7f\x10\x00")
    start = _meta_end(io.BytesIO(data), len(data))
    cuts = [*range(start, pixels + 40), len(data) - 1, len(data)]
    broken = [
        data.replace(b"\x28\x00\x02\x01US", b"\x28\x00\x02\x01FL", 1),  # 2 bytes of 4-byte values
        data.replace(b"\x28\x00\x02\x01US", b"\x28\x00\x02\x01ZZ", 1),  # not a VR
        data.replace(b"\x28\x00\x02\x01US\x02\x00", b"\x28\x00\x02\x01US\xff\x7f", 1),
    ]
    cases = [data[:cut] for cut in cuts if cut > 0] + broken
    outcomes = set()
    for case in cases:
        assert _walked(case, start, fast=True) == _walked(case, start, fast=False)
        outcomes.add(_walked(case, start, fast=True)[0].split(":")[0])
    assert {"whole", "IncompleteDataSet"} <= outcomes
