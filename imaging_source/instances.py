"""The Imaging Document Source's local DICOM store: instance files plus an index table.

Each instance is one DICOM Part 10 file (PS3.10 7) under the storage folder at
``<study>/<series>/<sop>-<sha1[:12]>.dcm``.  A file is written to a temp file under
``.incoming/``, fsynced and renamed into place before its index row is committed, so a
row always names a complete file; a replaced instance gets a new file name and the old
file is removed after the commit.  The index row holds what C-FIND (PS3.4 C.6.2 Study
Root), the KOS manifest and RAD-69 need without opening the file.

``sop_instance_uid`` is unique in the database: processes sharing the index cannot both
insert one instance; the loser updates what the winner stored.  The table has its own
MetaData and Alembic version table (``alembic_version_imaging_source``), so it may share
a database with the registry and the repository.  Nothing is created at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from alembic.config import Config
from pydicom import config, dcmread
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.multival import MultiValue
from pydicom.uid import ExplicitVRLittleEndian
from pydicom.values import convert_value
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from imaging_source.completeness import (
    MEDIA_STORAGE_SOP_CLASS_UID,
    MEDIA_STORAGE_SOP_INSTANCE_UID,
    TRANSFER_SYNTAX_UID,
    IncompleteDataSet,
    check_complete,
    scan_part10,
)
from storage import migrations as storage_migrations
from storage.engine import make_engine as storage_engine

CHUNK_SIZE = 64 * 1024
INCOMING_DIR = ".incoming"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_imaging_source"
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# PS3.5 9.1: a UID is dot-separated numeric components, at most 64 characters
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_STREAM_BATCH = 500
_LOOKUP_BATCH = 500  # UIDs per IN (...) list: well under SQLite's bound-parameter limit
_PREAMBLE = 128  # PS3.10 7.1: 128-byte preamble, then "DICM"
_PREFIX = b"DICM"
_PREFIX_END = _PREAMBLE + len(_PREFIX)
_META_GROUP = b"\x02\x00"  # (0002,xxxx) little endian: File Meta Information


# --- the index table --------------------------------------------------------------------
class ImagingSourceBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class ImagingInstance(ImagingSourceBase):
    __tablename__ = "imaging_instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True)
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    study_instance_uid: Mapped[str] = mapped_column(String(64))
    series_instance_uid: Mapped[str] = mapped_column(String(64), index=True)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    patient_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    issuer_of_patient_id: Mapped[str] = mapped_column(String(64), default="")
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    study_date: Mapped[str] = mapped_column(String(8), default="", index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    accession_number: Mapped[str] = mapped_column(String(16), default="", index=True)
    study_id: Mapped[str] = mapped_column(String(16), default="")
    study_description: Mapped[str] = mapped_column(String(64), default="")
    referring_physician_name: Mapped[str] = mapped_column(String(324), default="")
    modality: Mapped[str] = mapped_column(String(16), default="", index=True)
    series_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    series_description: Mapped[str] = mapped_column(String(64), default="")
    body_part_examined: Mapped[str] = mapped_column(String(16), default="")
    instance_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    file_path: Mapped[str] = mapped_column(String(1024))  # relative to the storage folder
    size: Mapped[int] = mapped_column(BigInteger)
    sha1: Mapped[str] = mapped_column(String(40))
    # indexed: a publisher in another process looks for what arrived lately
    received: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    __table_args__ = (Index(None, "study_instance_uid", "series_instance_uid"),)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the index (``storage.engine``: SQLite in WAL for several processes,
    pooled connections checked before use)."""
    return storage_engine(url, **kwargs)


def alembic_config(engine: Engine) -> Config:
    return storage_migrations.alembic_config(MIGRATIONS_DIR, VERSION_TABLE, engine)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the index table to ``revision``."""
    storage_migrations.upgrade(MIGRATIONS_DIR, VERSION_TABLE, engine, revision)


# --- what the index knows ---------------------------------------------------------------
class InvalidInstance(ValueError):
    """The content is not a DICOM instance the store can keep (PS3.4 B.2.3 "Cannot
    understand")."""


class InstanceMismatch(InvalidInstance):
    """The data set is not the SOP Class or SOP Instance its C-STORE request names
    (PS3.4 B.2.3: A900 "Data Set does not match SOP Class")."""


class UnknownInstance(KeyError):
    """No instance with this SOP Instance UID is stored."""


class InstanceChange(StrEnum):
    ADDED = "added"
    REPLACED = "replaced"  # same SOP Instance UID, different content
    UNCHANGED = "unchanged"  # identical content received again


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """One indexed instance; ``path`` is absolute.  ``change`` is set by ``add`` only."""

    sop_instance_uid: str
    sop_class_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    patient_id: str
    issuer_of_patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    study_date: str
    study_time: str
    accession_number: str
    study_id: str
    study_description: str
    referring_physician_name: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    instance_number: int | None
    path: Path
    size: int
    sha1: str
    received: datetime
    change: InstanceChange | None = None


@dataclass(frozen=True, slots=True)
class StoredSeries:
    series_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    body_part_examined: str
    instances: tuple[StoredInstance, ...]


# StoredInstance fields read from the index row as they are
_ROW_FIELDS = tuple(f.name for f in fields(StoredInstance) if f.name not in ("path", "change"))
# ... and the columns a lookup reads them from, then the file's path: plain rows, not
# ORM objects - making 500 entities took 15 ms of a RAD-69's 40 ms before its first
# byte, three times the query itself
_INSTANCE_COLUMNS = (
    *(ImagingInstance.__table__.c[name] for name in _ROW_FIELDS),
    ImagingInstance.__table__.c.file_path,
)


class InstanceFile(Protocol):
    """What serving an instance's file needs of it (RAD-69, transcoding): a
    :class:`StoredInstance` has it, and :meth:`InstanceStore.locate_files` reads only it."""

    @property
    def sop_instance_uid(self) -> str: ...
    @property
    def study_instance_uid(self) -> str: ...
    @property
    def series_instance_uid(self) -> str: ...
    @property
    def transfer_syntax_uid(self) -> str: ...
    @property
    def sha1(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def size(self) -> int: ...


class LocatedFile(NamedTuple):
    """An :class:`InstanceFile` as :meth:`InstanceStore.locate_files` reads it."""

    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    transfer_syntax_uid: str
    sha1: str
    path: Path
    size: int


# ... the columns it is read from, the file's path relative to the store's root
_FILE_COLUMNS = tuple(
    ImagingInstance.__table__.c[name] for name in (*LocatedFile._fields[:5], "file_path", "size")
)

# DICOM keyword -> index column, for the attributes copied from each instance.
# PS3.4 C.6.2.1.2 (Study Root): the unique and required keys of each level are among them.
INDEXED_ATTRIBUTES: dict[str, str] = {
    "SOPInstanceUID": "sop_instance_uid",
    "SOPClassUID": "sop_class_uid",
    "StudyInstanceUID": "study_instance_uid",
    "SeriesInstanceUID": "series_instance_uid",
    "PatientID": "patient_id",
    "IssuerOfPatientID": "issuer_of_patient_id",
    "PatientName": "patient_name",
    "PatientBirthDate": "patient_birth_date",
    "PatientSex": "patient_sex",
    "StudyDate": "study_date",
    "StudyTime": "study_time",
    "AccessionNumber": "accession_number",
    "StudyID": "study_id",
    "StudyDescription": "study_description",
    "ReferringPhysicianName": "referring_physician_name",
    "Modality": "modality",
    "SeriesNumber": "series_number",
    "SeriesDescription": "series_description",
    "BodyPartExamined": "body_part_examined",
    "InstanceNumber": "instance_number",
}
_SPECIFIC_CHARACTER_SET = 0x00080005
_REQUIRED = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
_INTEGER_COLUMNS = frozenset({"series_number", "instance_number"})


class QueryLevel(StrEnum):
    """Query/Retrieve Level (0008,0052) of the Study Root model (PS3.4 C.6.2)."""

    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


_LEVEL_RANK = {QueryLevel.STUDY: 0, QueryLevel.SERIES: 1, QueryLevel.IMAGE: 2}
# PS3.4 C.6.2.1.2: the level an attribute belongs to (patient attributes: STUDY, study root)
ATTRIBUTE_LEVEL: dict[str, QueryLevel] = {
    **{
        keyword: QueryLevel.STUDY
        for keyword in (
            "StudyInstanceUID",
            "PatientID",
            "IssuerOfPatientID",
            "PatientName",
            "PatientBirthDate",
            "PatientSex",
            "StudyDate",
            "StudyTime",
            "AccessionNumber",
            "StudyID",
            "StudyDescription",
            "ReferringPhysicianName",
        )
    },
    **{
        keyword: QueryLevel.SERIES
        for keyword in (
            "SeriesInstanceUID",
            "Modality",
            "SeriesNumber",
            "SeriesDescription",
            "BodyPartExamined",
        )
    },
    **{
        keyword: QueryLevel.IMAGE for keyword in ("SOPInstanceUID", "SOPClassUID", "InstanceNumber")
    },
}
_UNIQUE_KEY = {
    QueryLevel.STUDY: "StudyInstanceUID",
    QueryLevel.SERIES: "SeriesInstanceUID",
    QueryLevel.IMAGE: "SOPInstanceUID",
}
# PS3.4 C.2.2.2.2: the list-of-UID matching applies to these
_UID_KEYS = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"})
# PS3.4 C.2.2.2.5: range matching applies to DA and TM
_RANGE_KEYS = frozenset({"StudyDate", "StudyTime", "PatientBirthDate"})


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):  # several values: backslash-joined
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _integer(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# (tag, column) of each indexed attribute
_INDEXED_TAGS = tuple((tag_for_keyword(k), column) for k, column in INDEXED_ATTRIBUTES.items())


# What a one-pass read of a file keeps (``completeness.scan_part10``)
_SCANNED_TAGS = frozenset([_SPECIFIC_CHARACTER_SET, *(tag for tag, _ in _INDEXED_TAGS)])

Element = DataElement | RawDataElement
# The File Meta Information elements :func:`_identified` reads, by keyword
_META_KEYWORDS = {
    "MediaStorageSOPClassUID": MEDIA_STORAGE_SOP_CLASS_UID,
    "MediaStorageSOPInstanceUID": MEDIA_STORAGE_SOP_INSTANCE_UID,
    "TransferSyntaxUID": TRANSFER_SYNTAX_UID,
}


# String VRs (PS3.5 6.2) whose raw value pydicom's converter for the VR reads alone;
# other VRs (UN, an ambiguous one) go through its hooks, which may pick another VR
_STRING_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI"}
)


def _value(elem: Element | None, encodings: list[str]) -> Any:
    """The value of ``elem`` as pydicom reads it; a raw string element converted by the
    VR's converter directly (half the time of a DataElement made through the hooks)."""
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        vr = elem.VR or dictionary_VR(elem.tag)  # implicit VR: the dictionary's (PS3.5 7.1.3)
        if vr in _STRING_VRS:
            return convert_value(vr, elem, encodings)
        return convert_raw_data_element(elem, encoding=encodings).value
    return elem.value


def _encodings(get_item: Callable[[int], Element | None]) -> list[str]:
    """The Python codecs of a data set's Specific Character Set (PS3.5 6.1.2.3)."""
    charset = _value(get_item(_SPECIFIC_CHARACTER_SET), [default_encoding])
    return convert_encodings(charset) if charset else [default_encoding]


# String VRs pydicom decodes in the default repertoire (``convert_string``, ``convert_UI``;
# DA, DT and TM while ``config.datetime_conversion`` is off), and those it decodes in
# the data set's character set (``convert_text``)
_DEFAULT_REPERTOIRE_VRS = frozenset({"AS", "CS", "UI"})
_DATE_TIME_VRS = frozenset({"DA", "DT", "TM"})
_CHARSET_VRS = frozenset({"LO", "SH", "UC"})
_ESC = 0x1B  # an ISO 2022 escape sequence (PS3.5 6.1.2.5.3): pydicom decodes those


def _raw_text(elem: RawDataElement, encodings: list[str]) -> str | None:
    """What :func:`_text` makes of the value pydicom converts ``elem`` to, decoded here
    without building that value (a fifth of the time): the value split at its
    backslashes (PS3.5 6.4) and stripped of padding as pydicom strips it.  None for
    what only pydicom decodes: other VRs, code extensions, bytes not of the encoding."""
    raw = elem.value
    vr = elem.VR or dictionary_VR(elem.tag)  # implicit VR: the dictionary's (PS3.5 7.1.3)
    if not isinstance(raw, bytes):
        return None
    if vr in _DEFAULT_REPERTOIRE_VRS or (vr in _DATE_TIME_VRS and not config.datetime_conversion):
        text = raw.decode(default_encoding).rstrip(" \0")  # multi_string's padding
        return text if "\\" in text else text.strip()
    if vr in _CHARSET_VRS and _ESC not in raw:
        try:
            text = raw.decode(encodings[0])  # decode_bytes without escape sequences
        except (UnicodeError, LookupError):
            return None
        if "\\" not in text:
            return text.rstrip("\0 ").strip()
        return "\\".join(item.rstrip("\0 ") for item in text.split("\\"))
    return None


def _column_values(get_item: Callable[[int], Element | None]) -> dict[str, Any]:
    """Column values of a data set's header (``get_item``: its element of a tag, raw or
    not, None when absent), strings cut to their column's length.  A raw element is
    decoded here with the data set's character set (PS3.5 6.1.2.3) looked up once;
    ``Dataset.get`` looks it up again for every element it converts."""
    encodings = _encodings(get_item)
    lengths = _column_lengths()
    values: dict[str, Any] = {}
    for tag, column_name in _INDEXED_TAGS:
        elem = get_item(tag)
        if column_name in _INTEGER_COLUMNS:
            values[column_name] = _integer(_value(elem, encodings))
            continue
        text = _raw_text(elem, encodings) if isinstance(elem, RawDataElement) else None
        if text is None:
            text = _text(_value(elem, encodings))
        values[column_name] = text[: lengths[column_name]]
    return values


@cache
def _column_lengths() -> dict[str, int]:
    columns = ImagingInstance.__table__.c
    return {
        name: columns[name].type.length
        for name in INDEXED_ATTRIBUTES.values()
        if name not in _INTEGER_COLUMNS
    }


def check_uid(value: str, what: str) -> str:
    if len(value) > 64 or not _UID.fullmatch(value):
        raise InvalidInstance(f"{what} is not a UID (PS3.5 9.1): {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class ReceivedFile:
    """A file written under the store's ``INCOMING_DIR``, hashed as it was written."""

    path: Path
    sha1: str
    size: int


@dataclass(frozen=True, slots=True)
class PlacedInstance:
    """A cached copy moved into place; ``values`` its index row still to insert (None
    when it is indexed already)."""

    instance: StoredInstance
    values: dict[str, Any] | None


def is_intact(instance: InstanceFile) -> bool:
    """The instance's file is there with the size its row records (a cached copy cut
    short by a crash is not, see :meth:`InstanceStore.add_cached`)."""
    try:
        return instance.path.stat().st_size == instance.size
    except OSError:
        return False


def _is_part10(path: Path) -> bool:
    """PS3.10 7.1: a 128-byte preamble, then "DICM"."""
    with open(path, "rb") as stream:
        return stream.read(_PREFIX_END)[_PREAMBLE:] == _PREFIX


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_hashing(stream: BinaryIO, target: Path) -> tuple[str, int]:
    """Copy into ``target`` as a Part 10 file: content that starts with the File Meta
    Information but lacks the preamble and "DICM" prefix (as some STOW-RS clients send
    it) gets them (PS3.10 7.1)."""
    digest = hashlib.sha1()
    size = 0
    head = stream.read(_PREFIX_END)
    if head[_PREAMBLE:_PREFIX_END] != _PREFIX and head[:2] == _META_GROUP:
        head = bytes(_PREAMBLE) + _PREFIX + head
    with open(target, "wb") as out:
        chunk = head
        while chunk:
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
            chunk = stream.read(CHUNK_SIZE)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), size


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha1()
    size = 0
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _write_dataset(ds: Dataset, target: Path) -> None:
    if not getattr(ds, "file_meta", None):
        ds.file_meta = FileMetaDataset()
    if "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    # PS3.10 7.1: preamble, "DICM" and the File Meta Information are written
    try:
        dcmwrite(target, ds, enforce_file_format=True)
    except OSError:
        raise
    except Exception as exc:  # pydicom refuses a data set it cannot encode
        raise InvalidInstance(f"cannot write the data set: {exc}") from exc
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def _read_header(path: Path) -> Dataset:
    try:
        return dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # pydicom raises many kinds for bad input
        raise InvalidInstance(f"not a DICOM Part 10 file: {exc}") from exc


def _check_expected(values: Mapping[str, Any], expected: tuple[str, str] | None) -> None:
    if expected is None:
        return
    sop_class, sop_instance = (uid.strip() for uid in expected)
    if sop_class and sop_class != values["sop_class_uid"]:
        raise InstanceMismatch(
            f"the request names SOP Class {sop_class}, the data set is {values['sop_class_uid']}"
        )
    if sop_instance and sop_instance != values["sop_instance_uid"]:
        raise InstanceMismatch(
            f"the request names SOP Instance {sop_instance}, "
            f"the data set is {values['sop_instance_uid']}"
        )


def _scanned_values(path: Path) -> dict[str, Any] | None:
    """:meth:`InstanceStore._identify` and ``check_complete`` of a Part 10 file in one
    pass over its element headers, the indexed values decoded from their raw bytes
    (``completeness.scan_part10``): a third of the time pydicom's header read and the
    walk took apart.  None when that pass cannot tell: the file is then read the slower
    way, which says what is wrong with it."""
    scanned = scan_part10(path, _SCANNED_TAGS)
    if scanned is None:
        return None
    try:
        values = _column_values(scanned.elements.get)
        meta = {
            keyword: _value(scanned.meta.get(tag), [default_encoding])
            for keyword, tag in _META_KEYWORDS.items()
        }
    except Exception:  # noqa: BLE001 - a value pydicom cannot decode: the slower read says why
        return None
    return _identified(values, meta.get)


def _identified(values: dict[str, Any], meta: Callable[[str], Any]) -> dict[str, Any]:
    """``values`` checked and completed from the File Meta Information (``meta``: its
    value of a keyword): InvalidInstance when an identifying UID is missing or bad."""
    # PS3.10 7.1: the File Meta Information names the instance when the body does not
    if not values["sop_instance_uid"]:
        values["sop_instance_uid"] = _text(meta("MediaStorageSOPInstanceUID"))
    if not values["sop_class_uid"]:
        values["sop_class_uid"] = _text(meta("MediaStorageSOPClassUID"))
    for keyword in _REQUIRED:
        column_name = INDEXED_ATTRIBUTES[keyword]
        if not values[column_name]:
            raise InvalidInstance(f"{keyword} missing")
        check_uid(values[column_name], keyword)
    values["transfer_syntax_uid"] = check_uid(
        _text(meta("TransferSyntaxUID")) or ExplicitVRLittleEndian, "TransferSyntaxUID"
    )
    return values


class InstanceStore:
    """DICOM instances under ``root`` indexed in the database behind ``engine``."""

    def __init__(self, root: Path | str, engine: Engine) -> None:
        self.root = Path(root)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # --- writing --------------------------------------------------------------------
    def add(
        self,
        source: Path | str | Dataset | BinaryIO,
        *,
        expected: tuple[str, str] | None = None,
    ) -> StoredInstance:
        """Store one instance from a Part 10 file, a readable binary stream of one, or a
        dataset.  InvalidInstance when it is not DICOM, lacks its identifying UIDs or
        ends inside a data element; InstanceMismatch when ``expected`` (SOP Class UID,
        SOP Instance UID, as a C-STORE request names them) is not what it holds.
        Nothing of a refused instance is kept."""
        incoming = self.root / INCOMING_DIR
        incoming.mkdir(parents=True, exist_ok=True)
        temp = incoming / uuid.uuid4().hex
        try:
            if isinstance(source, Dataset):
                _write_dataset(source, temp)
                sha1, size = _hash_file(temp)
            elif isinstance(source, str | Path):
                with open(source, "rb") as stream:
                    sha1, size = _copy_hashing(stream, temp)
            else:
                sha1, size = _copy_hashing(source, temp)
            values = _scanned_values(temp)
            if values is None:
                values = self._checked(temp, expected)
            else:
                _check_expected(values, expected)
            relative = Path(
                values["study_instance_uid"],
                values["series_instance_uid"],
                f"{values['sop_instance_uid']}-{sha1[:12]}.dcm",
            )
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(temp, target)
            _fsync_dir(target.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        values.update(file_path=relative.as_posix(), size=size, sha1=sha1, received=utcnow())
        return self._index(values)

    def _checked(self, path: Path, expected: tuple[str, str] | None = None) -> dict[str, Any]:
        """Index values of a Part 10 file read by pydicom, then walked to its end
        (``check_complete``: the header read stops before the pixel data); what
        :func:`_scanned_values` gives in one pass when it can."""
        header = _read_header(path)  # values are decoded as they are asked for
        try:
            values = self._identify(header)
        except InvalidInstance:
            raise
        except Exception as exc:  # pydicom: an unknown VR, a length no value fits, ...
            raise InvalidInstance(f"a value cannot be decoded: {exc}") from exc
        _check_expected(values, expected)
        try:
            check_complete(path, values["transfer_syntax_uid"])
        except IncompleteDataSet as exc:
            raise InvalidInstance(f"incomplete data set: {exc}") from exc
        return values

    def _identify(self, header: Dataset) -> dict[str, Any]:
        meta = getattr(header, "file_meta", None) or FileMetaDataset()
        return _identified(_column_values(header.get_item), meta.get)

    def add_cached(
        self, files: Sequence[ReceivedFile]
    ) -> tuple[list[StoredInstance], list[InvalidInstance]]:
        """Take in copies of a backing PACS's instances, spooled under ``INCOMING_DIR``:
        each file is moved into place (not copied) and all are indexed in one
        transaction; returns what was stored and what was refused.

        A cached copy can be fetched again, so it is not fsynced.  After a crash a file
        may be shorter than its row says (ext4 ``data=ordered`` writes a file's blocks
        before its size, so never longer or with stale blocks); a reader checks the
        size (:func:`is_intact`) and fetches such an instance again."""
        refused: list[InvalidInstance] = []
        placed: list[PlacedInstance] = []
        for file in files:
            try:
                placed.append(self.place_cached(file))
            except InvalidInstance as exc:
                refused.append(exc)
        return self.index_cached(placed), refused

    def place_cached(self, file: ReceivedFile) -> PlacedInstance:
        """The first half of :meth:`add_cached` for one file: checked as ``add`` checks
        an instance (InvalidInstance when refused) and moved into place, readable at
        once but not in the cache until :meth:`index_cached` takes it (a file no row
        names is never read as an instance; a later copy of it replaces it)."""
        if not _is_part10(file.path):  # no preamble: add() gives it one, and indexes it
            return PlacedInstance(self.add(file.path), None)
        values = self._place(file)
        return PlacedInstance(self._from_values(values, InstanceChange.ADDED), values)

    def index_cached(self, placed: Sequence[PlacedInstance]) -> list[StoredInstance]:
        """The second half of :meth:`add_cached`: the placed copies indexed in one
        transaction; returns them as stored."""
        stored = [p.instance for p in placed if p.values is None]
        pending = [p.values for p in placed if p.values is not None]
        if not pending:
            return stored
        added = self._insert_new(pending)
        if added is not None:
            return stored + added
        stale: list[str] = []
        with self._sessions.begin() as session:
            for values in pending:
                instance, old = self._index_row(session, values)
                stored.append(instance)
                stale += [old] if old is not None else []
        for relative in stale:
            self._unlink(relative)
        return stored

    def _insert_new(self, placed: list[dict[str, Any]]) -> list[StoredInstance] | None:
        """Rows for instances none of which is indexed yet, in one plain transaction
        (no savepoint per row: with SQLite each would be a commit of its own); None
        when some are indexed already, or another process inserted one meanwhile."""
        uids = [values["sop_instance_uid"] for values in placed]
        if len(set(uids)) != len(uids):
            return None
        try:
            with self._sessions.begin() as session:
                for start in range(0, len(uids), _LOOKUP_BATCH):
                    batch = uids[start : start + _LOOKUP_BATCH]
                    column = ImagingInstance.sop_instance_uid
                    if session.scalar(select(func.count()).where(column.in_(batch))):
                        return None
                # one executemany, not a unit of work of ORM objects
                session.connection().execute(insert(ImagingInstance.__table__), placed)
                return [self._from_values(values, InstanceChange.ADDED) for values in placed]
        except IntegrityError:
            return None

    def _place(self, file: ReceivedFile) -> dict[str, Any]:
        """Index values of a spooled file, moved to its place in the store."""
        values = _scanned_values(file.path) or self._checked(file.path)
        relative = Path(
            values["study_instance_uid"],
            values["series_instance_uid"],
            f"{values['sop_instance_uid']}-{file.sha1[:12]}.dcm",
        )
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file.path, target)
        values.update(
            file_path=relative.as_posix(), size=file.size, sha1=file.sha1, received=utcnow()
        )
        return values

    def _index(self, values: dict[str, Any]) -> StoredInstance:
        with self._sessions.begin() as session:
            stored, stale = self._index_row(session, values)
        if stale is not None:
            self._unlink(stale)
        return stored

    def _index_row(
        self, session: Session, values: dict[str, Any]
    ) -> tuple[StoredInstance, str | None]:
        """Insert or update one row in ``session``; the stored instance and the file
        path it no longer uses (to remove after the commit)."""
        uid = values["sop_instance_uid"]
        stale: str | None = None
        row = session.scalars(
            select(ImagingInstance).where(ImagingInstance.sop_instance_uid == uid)
        ).one_or_none()
        if row is None:
            try:
                with session.begin_nested():
                    row = ImagingInstance(**values)
                    session.add(row)
                change = InstanceChange.ADDED
            except IntegrityError:  # another process stored it first: update theirs
                row = session.scalars(
                    select(ImagingInstance).where(ImagingInstance.sop_instance_uid == uid)
                ).one()
                change = None
        else:
            change = None
        if change is None:
            change = (
                InstanceChange.UNCHANGED if row.sha1 == values["sha1"] else InstanceChange.REPLACED
            )
            if row.file_path != values["file_path"]:
                stale = row.file_path
            for name, value in values.items():
                if change is InstanceChange.REPLACED or name == "file_path":
                    setattr(row, name, value)
        return self._stored(row, change), stale

    def remove(
        self,
        *,
        sop_instance_uids: Iterable[str] = (),
        series_instance_uid: str | None = None,
        study_instance_uid: str | None = None,
    ) -> list[StoredInstance]:
        """Remove the named instances (index rows first, then files); returns them."""
        conditions: list[ColumnElement[bool]] = []
        uids = list(sop_instance_uids)
        if uids:
            conditions.append(ImagingInstance.sop_instance_uid.in_(uids))
        if series_instance_uid:
            conditions.append(ImagingInstance.series_instance_uid == series_instance_uid)
        if study_instance_uid:
            conditions.append(ImagingInstance.study_instance_uid == study_instance_uid)
        if not conditions:
            return []
        with self._sessions.begin() as session:
            rows = session.scalars(select(ImagingInstance).where(or_(*conditions))).all()
            removed = [self._stored(row) for row in rows]
            if rows:
                session.execute(
                    delete(ImagingInstance).where(ImagingInstance.id.in_([r.id for r in rows]))
                )
        for instance in removed:
            self._unlink(instance.path.relative_to(self.root).as_posix())
        return removed

    def _unlink(self, relative: str) -> None:
        path = self.root / relative
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        for parent in (path.parent, path.parent.parent):  # empty series, study folders
            if parent == self.root:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()

    def sweep_incoming(self) -> int:
        """Remove temp files an interrupted ``add`` left; returns how many."""
        incoming = self.root / INCOMING_DIR
        if not incoming.is_dir():
            return 0
        count = sum(1 for _ in incoming.iterdir())
        shutil.rmtree(incoming, ignore_errors=True)
        return count

    # --- reading --------------------------------------------------------------------
    def _instance(
        self, values: dict[str, Any], file_path: str, change: InstanceChange | None = None
    ) -> StoredInstance:
        """The instance of an index row's ``_ROW_FIELDS`` values and file path."""
        received = values["received"]
        if received.tzinfo is None:  # SQLite returns naive datetimes
            values["received"] = received.replace(tzinfo=UTC)
        return StoredInstance(**values, path=self.root / file_path, change=change)

    def _stored(self, row: ImagingInstance, change: InstanceChange | None = None) -> StoredInstance:
        values = {name: getattr(row, name) for name in _ROW_FIELDS}
        return self._instance(values, row.file_path, change)

    def _read(self, row: Sequence[Any]) -> StoredInstance:
        """The instance of a row of :data:`_INSTANCE_COLUMNS`."""
        # zip ends with _ROW_FIELDS: the file path, last, is not one of them
        return self._instance(dict(zip(_ROW_FIELDS, row, strict=False)), row[-1])

    def _from_values(self, values: Mapping[str, Any], change: InstanceChange) -> StoredInstance:
        """The instance an index row of ``values`` (as ``_place`` makes them) stands for."""
        fields_ = {name: values[name] for name in _ROW_FIELDS}
        return self._instance(fields_, values["file_path"], change)

    def get(self, sop_instance_uid: str) -> StoredInstance | None:
        with self._sessions() as session:
            row = session.execute(
                select(*_INSTANCE_COLUMNS).where(
                    ImagingInstance.sop_instance_uid == sop_instance_uid
                )
            ).one_or_none()
            return None if row is None else self._read(row)

    def _rows_of(self, columns: Sequence[Any], sop_instance_uids: Iterable[str]) -> Iterator[Any]:
        """``columns`` of the indexed instances among ``sop_instance_uids``: one query per
        :data:`_LOOKUP_BATCH` UIDs, not one per instance (a RAD-69 or a C-MOVE of a study
        names hundreds)."""
        uids = list(dict.fromkeys(sop_instance_uids))
        with self._sessions() as session:
            for start in range(0, len(uids), _LOOKUP_BATCH):
                batch = uids[start : start + _LOOKUP_BATCH]
                yield from session.execute(
                    select(*columns).where(ImagingInstance.sop_instance_uid.in_(batch))
                )

    def get_many(self, sop_instance_uids: Iterable[str]) -> dict[str, StoredInstance]:
        """The stored instances among ``sop_instance_uids``, keyed by SOP Instance UID."""
        found: dict[str, StoredInstance] = {}
        for row in self._rows_of(_INSTANCE_COLUMNS, sop_instance_uids):
            instance = self._read(row)
            found[instance.sop_instance_uid] = instance
        return found

    def locate_files(self, sop_instance_uids: Iterable[str]) -> dict[str, LocatedFile]:
        """As :meth:`get_many`, only what serving the files needs: a RAD-69 of a study
        names hundreds of instances, and the whole StoredInstance of each (its 25
        columns, a reception time parsed, a frozen dataclass made) cost as much again as
        the query before the answer's first byte."""
        root = self.root
        return {
            uid: LocatedFile(uid, study, series, syntax, sha1, root / file_path, size)
            for uid, study, series, syntax, sha1, file_path, size in self._rows_of(
                _FILE_COLUMNS, sop_instance_uids
            )
        }

    def open(self, sop_instance_uid: str) -> BinaryIO:
        """The instance's Part 10 file, opened for reading (UnknownInstance if absent)."""
        instance = self.get(sop_instance_uid)
        if instance is None:
            raise UnknownInstance(sop_instance_uid)
        return open(instance.path, "rb")

    def dataset(self, sop_instance_uid: str, *, stop_before_pixels: bool = False) -> Dataset:
        with self.open(sop_instance_uid) as stream:
            return dcmread(stream, stop_before_pixels=stop_before_pixels)

    def instances(
        self, study_instance_uid: str, series_instance_uid: str | None = None
    ) -> Iterator[StoredInstance]:
        """A study's (or one series') instances by series and instance number, streamed."""
        stmt = select(*_INSTANCE_COLUMNS).where(
            ImagingInstance.study_instance_uid == study_instance_uid
        )
        if series_instance_uid is not None:
            stmt = stmt.where(ImagingInstance.series_instance_uid == series_instance_uid)
        stmt = stmt.order_by(
            ImagingInstance.series_number,
            ImagingInstance.series_instance_uid,
            ImagingInstance.instance_number,
            ImagingInstance.sop_instance_uid,
        )
        with self._sessions() as session:
            for row in session.execute(stmt.execution_options(yield_per=_STREAM_BATCH)):
                yield self._read(row)

    def study(self, study_instance_uid: str) -> list[StoredSeries]:
        """The study as its series, each with its instances; empty when unknown."""
        series: dict[str, list[StoredInstance]] = {}
        for instance in self.instances(study_instance_uid):
            series.setdefault(instance.series_instance_uid, []).append(instance)
        return [
            StoredSeries(
                series_instance_uid=uid,
                modality=members[0].modality,
                series_number=members[0].series_number,
                series_description=members[0].series_description,
                body_part_examined=members[0].body_part_examined,
                instances=tuple(members),
            )
            for uid, members in series.items()
        ]

    def studies(self) -> Iterator[str]:
        stmt = select(ImagingInstance.study_instance_uid).distinct()
        with self._sessions() as session:
            yield from session.scalars(stmt.execution_options(yield_per=_STREAM_BATCH))

    def last_received(self, since: datetime | None = None) -> dict[str, datetime]:
        """Per study, when its newest instance arrived (to tell when it is stable); with
        ``since``, only the studies that received an instance at or after it."""
        stmt = select(
            ImagingInstance.study_instance_uid, func.max(ImagingInstance.received)
        ).group_by(ImagingInstance.study_instance_uid)
        if since is not None:
            stmt = stmt.where(ImagingInstance.received >= since)
        with self._sessions() as session:
            return {
                uid: at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite drops the zone
                for uid, at in session.execute(stmt)
            }

    def total_size(self) -> int:
        with self._sessions() as session:
            return int(session.scalar(select(func.coalesce(func.sum(ImagingInstance.size), 0))))

    def find(
        self, level: QueryLevel | str, keys: Mapping[str, str | None]
    ) -> Iterator[dict[str, Any]]:
        """C-FIND matching (PS3.4 C.2.2.2) over the index at ``level``.

        ``keys`` maps DICOM keywords to matching values ("" or None: universal).  Keys
        of the level and the levels above are matched; others are ignored.  Each match
        is a dict of every indexed attribute of the level and above, plus the counts
        PS3.4 C.6.1.1.4 defines (NumberOfStudyRelated*, NumberOfSeriesRelatedInstances)
        and ModalitiesInStudy at STUDY level.
        """
        level = QueryLevel(level)
        rank = _LEVEL_RANK[level]
        visible = [k for k, lvl in ATTRIBUTE_LEVEL.items() if _LEVEL_RANK[lvl] <= rank]
        conditions = [
            condition
            for keyword in visible
            if (condition := _condition(keyword, keys.get(keyword))) is not None
        ]
        if level is QueryLevel.STUDY and (modalities := keys.get("ModalitiesInStudy")):
            # PS3.4 C.6.2.1.2: a study matches when any of its series has a listed modality
            wanted = [m for m in modalities.split("\\") if m]
            inner = select(ImagingInstance.study_instance_uid).where(
                ImagingInstance.modality.in_(wanted)
            )
            conditions.append(ImagingInstance.study_instance_uid.in_(inner))
        return self._matches(level, visible, conditions)

    def _matches(
        self, level: QueryLevel, visible: list[str], conditions: list[ColumnElement[bool]]
    ) -> Iterator[dict[str, Any]]:
        stmt = _find_statement(level, visible, conditions)
        with self._sessions() as session:
            for row in session.execute(stmt.execution_options(yield_per=_STREAM_BATCH)):
                match = dict(row._mapping)
                if level is QueryLevel.STUDY:
                    match["ModalitiesInStudy"] = "\\".join(
                        session.scalars(
                            select(ImagingInstance.modality)
                            .where(ImagingInstance.study_instance_uid == match["StudyInstanceUID"])
                            .where(ImagingInstance.modality != "")
                            .distinct()
                            .order_by(ImagingInstance.modality)
                        )
                    )
                yield match


def _column(keyword: str) -> Any:
    return getattr(ImagingInstance, INDEXED_ATTRIBUTES[keyword])


def _find_statement(
    level: QueryLevel, visible: list[str], conditions: list[ColumnElement[bool]]
) -> Select[Any]:
    unique = _unique_column = _column(_UNIQUE_KEY[level])
    if level is QueryLevel.IMAGE:
        columns = [_column(k).label(k) for k in visible]
        return (
            select(*columns)
            .where(and_(True, *conditions))
            .order_by(ImagingInstance.series_instance_uid, ImagingInstance.instance_number, unique)
        )
    # one row per study or series: its attributes are the same on each of its instances
    columns = [
        (_column(k) if k == _UNIQUE_KEY[level] else func.min(_column(k))).label(k) for k in visible
    ]
    if level is QueryLevel.STUDY:
        columns += [
            func.count(func.distinct(ImagingInstance.series_instance_uid)).label(
                "NumberOfStudyRelatedSeries"
            ),
            func.count().label("NumberOfStudyRelatedInstances"),
        ]
    else:
        columns.append(func.count().label("NumberOfSeriesRelatedInstances"))
    return (
        select(*columns)
        .where(and_(True, *conditions))
        .group_by(_unique_column)
        .order_by(_unique_column)
    )


def _like(value: str) -> str:
    escaped = value.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return escaped.replace("*", "%").replace("?", "_")


def _condition(keyword: str, value: str | None) -> ColumnElement[bool] | None:
    """One key's matching rule, PS3.4 C.2.2.2; None for universal matching."""
    if value is None or value == "" or value == "*":
        return None  # C.2.2.2.3 universal matching
    column = _column(keyword)
    if keyword in _UID_KEYS:  # C.2.2.2.2 list of UID matching
        return column.in_([uid for uid in value.split("\\") if uid])
    if keyword in _RANGE_KEYS and "-" in value:  # C.2.2.2.5 range matching
        low, _, high = value.partition("-")
        bounds = [column != ""]
        if low:
            bounds.append(column >= low)
        if high:
            bounds.append(column <= high + ("\uffff" if keyword == "StudyTime" else ""))
        return and_(*bounds)
    if keyword in ("SeriesNumber", "InstanceNumber"):
        number = _integer(value)
        return column == number if number is not None else None
    if "*" in value or "?" in value:  # C.2.2.2.4 wild card matching
        return column.like(_like(value), escape="!")
    return column == value  # C.2.2.2.1 single value matching


__all__ = [
    "ATTRIBUTE_LEVEL",
    "INCOMING_DIR",
    "INDEXED_ATTRIBUTES",
    "ImagingInstance",
    "ImagingSourceBase",
    "InstanceChange",
    "InstanceFile",
    "InstanceStore",
    "InstanceMismatch",
    "InvalidInstance",
    "LocatedFile",
    "PlacedInstance",
    "QueryLevel",
    "ReceivedFile",
    "StoredInstance",
    "StoredSeries",
    "UnknownInstance",
    "VERSION_TABLE",
    "alembic_config",
    "check_uid",
    "is_intact",
    "make_engine",
    "upgrade",
]
