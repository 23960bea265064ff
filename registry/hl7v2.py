"""HL7 v2 messages: parse, address, escape, and build the few messages xdsi sends.

Pure: bytes in, values out; no I/O.  The encoding rules are HL7 v2.3.1 chapter 2
(2.7 "Message construction rules", 2.9 "Use of escape sequences in text fields"); the
acknowledgement follows HL7 v2.3.1 2.13.1 / v2.5 2.14.1 as ITI TF-2x C.2.3 profiles it.

A parsed ``Message`` keeps every field as its raw (still escaped) text, so nothing is
lost; ``Message.get`` and ``Message.repetitions`` split and unescape on demand.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

# --- HL7 tables used on the wire --------------------------------------------------------


class AckCode(StrEnum):
    """HL7 Table 0008, original acknowledgement mode (MSA-1)."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"


class ErrorCondition(StrEnum):
    """HL7 Table 0357 message error condition codes (v2.3.1 ERR-1.4, v2.5 ERR-3)."""

    SEGMENT_SEQUENCE_ERROR = "100"
    REQUIRED_FIELD_MISSING = "101"
    DATA_TYPE_ERROR = "102"
    TABLE_VALUE_NOT_FOUND = "103"
    UNSUPPORTED_MESSAGE_TYPE = "200"
    UNSUPPORTED_EVENT_CODE = "201"
    UNSUPPORTED_PROCESSING_ID = "202"
    UNSUPPORTED_VERSION_ID = "203"
    UNKNOWN_KEY_IDENTIFIER = "204"
    DUPLICATE_KEY_IDENTIFIER = "205"
    APPLICATION_RECORD_LOCKED = "206"
    APPLICATION_INTERNAL_ERROR = "207"


ERROR_CONDITION_TEXT: dict[ErrorCondition, str] = {
    ErrorCondition.SEGMENT_SEQUENCE_ERROR: "Segment sequence error",
    ErrorCondition.REQUIRED_FIELD_MISSING: "Required field missing",
    ErrorCondition.DATA_TYPE_ERROR: "Data type error",
    ErrorCondition.TABLE_VALUE_NOT_FOUND: "Table value not found",
    ErrorCondition.UNSUPPORTED_MESSAGE_TYPE: "Unsupported message type",
    ErrorCondition.UNSUPPORTED_EVENT_CODE: "Unsupported event code",
    ErrorCondition.UNSUPPORTED_PROCESSING_ID: "Unsupported processing id",
    ErrorCondition.UNSUPPORTED_VERSION_ID: "Unsupported version id",
    ErrorCondition.UNKNOWN_KEY_IDENTIFIER: "Unknown key identifier",
    ErrorCondition.DUPLICATE_KEY_IDENTIFIER: "Duplicate key identifier",
    ErrorCondition.APPLICATION_RECORD_LOCKED: "Application record locked",
    ErrorCondition.APPLICATION_INTERNAL_ERROR: "Application internal error",
}

# HL7 coding system name of Table 0357 (v2.5 ERR-3.3, v2.3.1 ERR-1.4.3)
ERROR_CONDITION_TABLE = "HL70357"

# HL7 Table 0211 (MSH-18 character set) -> Python codec.  HL7 v2.5 2.15.9.18: when MSH-18
# is empty the character set is ASCII; xdsi is tolerant and reads UTF-8, then Latin-1.
CHARACTER_SETS: dict[str, str] = {
    "ASCII": "ascii",
    "ISO IR6": "ascii",
    "8859/1": "iso8859-1",
    "ISO IR100": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "ISO IR14": "iso2022_jp",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
    "CNS 11643-1992": "big5",
    "BIG-5": "big5",
}

SEGMENT_TERMINATOR = "\r"
_SEGMENT_SPLIT = re.compile(r"\r\n|\r|\n")


class Hl7ParseError(ValueError):
    """The bytes are not an HL7 v2 message this parser can address (no usable MSH)."""


class UnknownCharacterSet(Hl7ParseError):
    """MSH-18 names a character set outside HL7 Table 0211 as xdsi knows it."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown character set in MSH-18: {name!r}")


# --- encoding characters and escapes ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters a message declares in MSH-1 and MSH-2 (HL7 v2.3.1 2.7)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent

    @classmethod
    def from_msh(cls, field: str, msh2: str) -> Encoding:
        """Validate MSH-1/MSH-2: distinct, non-alphanumeric, no segment terminator."""
        if len(msh2) < 4:
            raise Hl7ParseError(f"MSH-2 needs 4 encoding characters, got {msh2!r}")
        chars = field + msh2[:4]
        if len(set(chars)) != 5 or any(c.isalnum() or c in "\r\n " for c in chars):
            raise Hl7ParseError(f"unusable encoding characters {chars!r}")
        return cls(field, msh2[0], msh2[1], msh2[2], msh2[3])

    def _table(self) -> dict[str, str]:
        # HL7 v2.3.1 2.9: \F\ \S\ \T\ \R\ \E\ stand for the delimiters themselves
        return {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": self.escape,
        }

    def escape_text(self, text: str) -> str:
        """Escape delimiters in ``text`` so it travels as one leaf value."""
        names = {v: k for k, v in self._table().items()}
        return "".join(f"{self.escape}{names[c]}{self.escape}" if c in names else c for c in text)

    def unescape(self, text: str) -> str:
        r"""Resolve escape sequences (HL7 v2.3.1 2.9).

        Delimiter escapes become the delimiter; ``\Xhh..\`` becomes the bytes it
        spells (read as Latin-1); highlighting (``\H\``, ``\N\``), formatting
        (``\.br\``...) and character-set switches (``\Cxxyy\``, ``\Mxxyyzz\``) carry
        no value for xdsi and are dropped.  An unterminated sequence is kept as text.
        """
        esc = self.escape
        if esc not in text:
            return text
        table = self._table()
        out: list[str] = []
        i = 0
        while i < len(text):
            c = text[i]
            end = text.find(esc, i + 1) if c == esc else -1
            if end < 0:
                out.append(c)
                i += 1
                continue
            body = text[i + 1 : end]
            if body in table:
                out.append(table[body])
            elif body[:1] == "X" and _is_hex(body[1:]):
                out.append(bytes.fromhex(body[1:]).decode("latin-1"))
            elif body[:1] in {"H", "N", ".", "C", "M", "Z"}:
                pass
            else:
                out.append(text[i : end + 1])
            i = end + 1
        return "".join(out)


def _is_hex(s: str) -> bool:
    return len(s) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in s)


DEFAULT_ENCODING = Encoding()


# --- the message ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment; ``fields[n]`` is SEG-n as raw text, ``fields[0]`` the segment id.

    For MSH the numbering follows the standard: ``fields[1]`` is the field separator
    (MSH-1) and ``fields[2]`` the encoding characters (MSH-2).
    """

    fields: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.fields[0]

    def raw(self, number: int) -> str:
        return self.fields[number] if 0 <= number < len(self.fields) else ""


@dataclass(frozen=True, slots=True)
class Message:
    """A parsed HL7 v2 message."""

    encoding: Encoding
    segments: tuple[Segment, ...]
    character_set: str = ""

    def segment(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.name == name)

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    def repetitions(self, segment: str, field: int) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """SEG-n split into repetitions -> components -> subcomponents, unescaped."""
        seg = self.segment(segment)
        if seg is None:
            return ()
        return split_field(seg.raw(field), self.encoding, is_msh2=(segment, field) == ("MSH", 2))

    def get(
        self,
        segment: str,
        field: int,
        component: int = 1,
        subcomponent: int = 1,
        repetition: int = 1,
    ) -> str:
        """One leaf value, unescaped; numbering is 1-based as in ``PID-3.4.2``."""
        if (segment, field) in {("MSH", 1), ("MSH", 2)}:
            seg = self.segment("MSH")
            return seg.raw(field) if seg and component == 1 and repetition == 1 else ""
        reps = self.repetitions(segment, field)
        try:
            return reps[repetition - 1][component - 1][subcomponent - 1]
        except IndexError:
            return ""

    @property
    def message_type(self) -> str:
        return self.get("MSH", 9, 1)

    @property
    def trigger_event(self) -> str:
        return self.get("MSH", 9, 2)

    @property
    def control_id(self) -> str:
        return self.get("MSH", 10)

    @property
    def processing_id(self) -> str:
        return self.get("MSH", 11)

    @property
    def version(self) -> str:
        return self.get("MSH", 12)


def split_field(
    raw: str, encoding: Encoding = DEFAULT_ENCODING, *, is_msh2: bool = False
) -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Split one raw field; escapes are resolved only after splitting (HL7 2.9)."""
    if is_msh2 or raw == "":
        return (((raw,),),) if raw else ()
    return tuple(
        tuple(
            tuple(encoding.unescape(sub) for sub in comp.split(encoding.subcomponent))
            for comp in rep.split(encoding.component)
        )
        for rep in raw.split(encoding.repetition)
    )


def _find_character_set(data: bytes) -> str:
    """MSH-18 read from the raw bytes (the header itself is ASCII in every Table 0211 set)."""
    head = data.split(b"\r", 1)[0].split(b"\n", 1)[0]
    text = head.decode("latin-1")
    if len(text) < 4:
        return ""
    parts = text.split(text[3])
    # parts[0] = "MSH", parts[1] = MSH-2, parts[n-1] = MSH-n
    raw = parts[17] if len(parts) > 17 else ""
    # MSH-18 may repeat (v2.5); the first repetition is the message's default set
    for delimiter in parts[1][:2]:
        raw = raw.split(delimiter)[0]
    return raw.strip()


def decode(data: bytes) -> tuple[str, str]:
    """Decode per MSH-18; returns (text, character set name as declared)."""
    charset = _find_character_set(data.lstrip())
    if not charset:
        try:
            return data.decode("utf-8"), ""
        except UnicodeDecodeError:
            return data.decode("latin-1"), ""
    codec = CHARACTER_SETS.get(charset.upper())
    if codec is None:
        raise UnknownCharacterSet(charset)
    return data.decode(codec, errors="replace"), charset


def parse_message(data: bytes | str) -> Message:
    """Parse one HL7 v2 message (segments separated by CR; LF and CRLF tolerated)."""
    if isinstance(data, bytes):
        text, charset = decode(data)
    else:
        text, charset = data, ""
    lines = [line for line in _SEGMENT_SPLIT.split(text.strip("\x00 \t\r\n")) if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise Hl7ParseError("message does not start with an MSH segment")
    head = lines[0]
    field_sep = head[3]
    msh2 = head[4:].split(field_sep, 1)[0]
    encoding = Encoding.from_msh(field_sep, msh2)
    segments: list[Segment] = []
    for line in lines:
        parts = line.split(field_sep)
        if parts[0] == "MSH":
            # MSH-1 is the separator itself, so MSH-n sits at parts[n - 1]
            parts = ["MSH", field_sep, *parts[1:]]
        if not re.fullmatch(r"[A-Z][A-Z0-9]{2}", parts[0]):
            raise Hl7ParseError(f"bad segment id {parts[0][:10]!r}")
        segments.append(Segment(tuple(parts)))
    return Message(encoding, tuple(segments), charset)


# --- building messages ------------------------------------------------------------------


def join_field(
    reps: Iterable[Sequence[str | Sequence[str]]], encoding: Encoding = DEFAULT_ENCODING
) -> str:
    """Inverse of ``split_field``: escape leaves, join subcomponents/components/repetitions."""

    def comp(c: str | Sequence[str]) -> str:
        subs = [c] if isinstance(c, str) else list(c)
        return encoding.subcomponent.join(encoding.escape_text(s) for s in subs)

    return encoding.repetition.join(
        encoding.component.join(comp(c) for c in rep).rstrip(encoding.component) for rep in reps
    )


def encode_segment(fields: Sequence[str], encoding: Encoding = DEFAULT_ENCODING) -> str:
    """Join already-encoded fields; ``fields[0]`` is the segment id; trailing empties dropped."""
    items = list(fields)
    while len(items) > 1 and items[-1] == "":
        items.pop()
    if items[0] == "MSH":
        return "MSH" + encoding.field + encoding.field.join(items[2:])
    return encoding.field.join(items)


def encode_message(segments: Iterable[Sequence[str]], encoding: Encoding = DEFAULT_ENCODING) -> str:
    """Segments joined and each terminated by CR (HL7 v2.3.1 2.7)."""
    return "".join(encode_segment(s, encoding) + SEGMENT_TERMINATOR for s in segments)


def msh_fields(
    encoding: Encoding,
    *,
    sending_application: str,
    sending_facility: str,
    receiving_application: str,
    receiving_facility: str,
    timestamp: str,
    message_type: str,
    control_id: str,
    processing_id: str,
    version: str,
    character_set: str = "",
) -> list[str]:
    """The MSH of a message xdsi sends, field by field (already encoded)."""
    fields = [""] * 19
    fields[0], fields[1], fields[2] = "MSH", encoding.field, encoding.msh2
    fields[3] = sending_application
    fields[4] = sending_facility
    fields[5] = receiving_application
    fields[6] = receiving_facility
    fields[7] = timestamp
    fields[9] = message_type
    fields[10] = encoding.escape_text(control_id)
    fields[11] = processing_id
    fields[12] = version
    fields[18] = character_set
    return fields


@dataclass(frozen=True, slots=True)
class AckError:
    """One error reported in an ACK: where (segment, field) and which Table 0357 code."""

    condition: ErrorCondition
    text: str = ""
    segment: str = ""
    sequence: int = 1
    field: int = 0

    @property
    def description(self) -> str:
        return self.text or ERROR_CONDITION_TEXT[self.condition]


# Versions whose ERR segment is the v2.3.1 single ELD field (ERR-1); later ones use
# ERR-2 (location), ERR-3 (HL7 error code) and ERR-4 (severity) (HL7 v2.5 2.15.5).
ELD_ERR_VERSIONS = frozenset({"2.1", "2.2", "2.3", "2.3.1", "2.4"})
# MSH-9 of the ACK: 2.3 has no message-structure component; 2.3.1 onward adds "ACK".
ACK_STRUCTURE_FROM = ("2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8")


def err_segment(error: AckError, version: str, encoding: Encoding) -> list[str]:
    e = encoding
    code = e.component.join(
        [error.condition.value, e.escape_text(error.description), ERROR_CONDITION_TABLE]
    )
    if version in ELD_ERR_VERSIONS:
        # v2.3.1 2.16.5: ERR-1 ELD = segment ^ sequence ^ field ^ code (CE, as subcomponents)
        eld = e.component.join(
            [
                error.segment,
                str(error.sequence) if error.segment else "",
                str(error.field) if error.field else "",
                code.replace(e.component, e.subcomponent),
            ]
        )
        return ["ERR", eld]
    location = (
        e.component.join(
            [error.segment, str(error.sequence), str(error.field) if error.field else ""]
        )
        if error.segment
        else ""
    ).rstrip(e.component)
    return ["ERR", "", location, code, "E"]


def build_ack(
    request: Message | None,
    code: AckCode,
    *,
    control_id: str,
    timestamp: str,
    errors: Sequence[AckError] = (),
    text: str = "",
    sending_application: str = "",
    sending_facility: str = "",
    default_version: str = "2.3.1",
) -> str:
    """An original-mode ACK to ``request`` (HL7 v2.3.1 2.13.1; ITI TF-2x C.2.3).

    MSH-3/4 and MSH-5/6 are the request's receiver and sender swapped (the configured
    ``sending_*`` fill in when the request named no receiver); MSA-2 echoes MSH-10.
    ``request`` is None when not even an MSH could be read: then the ACK is generic.
    """
    enc = request.encoding if request else DEFAULT_ENCODING
    raw = (lambda n: request.msh.raw(n)) if request else (lambda n: "")
    version = raw(12).split(enc.component)[0] if request else ""
    # a version xdsi does not speak (MSH-12 rejected) is answered in the default one
    if version not in ELD_ERR_VERSIONS and version not in ACK_STRUCTURE_FROM:
        version = default_version
    trigger = request.trigger_event if request else ""
    message_type = "ACK"
    if trigger:
        message_type += enc.component + enc.escape_text(trigger)
        if version in ACK_STRUCTURE_FROM:
            message_type += enc.component + "ACK"
    processing = raw(11) or "P"
    charset = request.character_set or raw(18) if request else ""
    msh = msh_fields(
        enc,
        sending_application=raw(5) or sending_application,
        sending_facility=raw(6) or sending_facility,
        receiving_application=raw(3),
        receiving_facility=raw(4),
        timestamp=timestamp,
        message_type=message_type,
        control_id=control_id,
        processing_id=processing,
        version=version,
        character_set=charset if charset.upper() in CHARACTER_SETS else "",
    )
    msa = ["MSA", code.value, raw(10), enc.escape_text(text)]
    segments = [msh, msa, *(err_segment(e, version, enc) for e in errors)]
    return encode_message(segments, enc)


def encode_for(message_text: str, character_set: str) -> bytes:
    """Encode outgoing text in the character set its MSH-18 names (ASCII when empty)."""
    codec = CHARACTER_SETS.get(character_set.upper(), "ascii") if character_set else "ascii"
    return message_text.encode(codec, errors="replace" if codec == "ascii" else "strict")


def build_adt_a01(
    patient_id: str,
    *,
    control_id: str | None = None,
    timestamp: str | None = None,
    name: str = "",
    birth_date: str = "",
    sex: str = "",
    sending_application: str = "XDSI",
    sending_facility: str = "XDSI",
    receiving_application: str = "",
    receiving_facility: str = "",
    processing_id: str = "P",
) -> bytes:
    """An ITI-8 Admit/Register message (ITI TF-2 3.8.4.1.2) for one patient.

    ``patient_id`` is the XDS form ``ID^^^&OID&ISO`` and goes into PID-3 as is;
    ``name`` is an XPN already encoded with the default delimiters (``FAMILY^GIVEN``).
    ``control_id`` and ``timestamp`` default to a fresh id and the current UTC time.
    """
    enc = DEFAULT_ENCODING
    # MSH-10 is ST(20) in HL7 v2.3.1
    control_id = control_id or uuid.uuid4().hex[:20]
    timestamp = timestamp or datetime.now(UTC).strftime("%Y%m%d%H%M%S%z")
    msh = msh_fields(
        enc,
        sending_application=sending_application,
        sending_facility=sending_facility,
        receiving_application=receiving_application,
        receiving_facility=receiving_facility,
        timestamp=timestamp,
        message_type="ADT^A01^ADT_A01",
        control_id=control_id,
        processing_id=processing_id,
        version="2.3.1",
        character_set="UNICODE UTF-8",
    )
    pid = ["PID", "", "", patient_id, "", name, "", birth_date, sex]
    # PV1 is required in A01; PV1-2 patient class "I" (HL7 Table 0004) matches an admission
    segments = [msh, ["EVN", "A01", timestamp], pid, ["PV1", "", "I"]]
    return encode_message(segments, enc).encode("utf-8")


__all__ = [
    "ACK_STRUCTURE_FROM",
    "CHARACTER_SETS",
    "DEFAULT_ENCODING",
    "ERROR_CONDITION_TABLE",
    "ERROR_CONDITION_TEXT",
    "AckCode",
    "AckError",
    "Encoding",
    "ErrorCondition",
    "Hl7ParseError",
    "Message",
    "Segment",
    "UnknownCharacterSet",
    "build_ack",
    "build_adt_a01",
    "decode",
    "encode_for",
    "encode_message",
    "encode_segment",
    "err_segment",
    "join_field",
    "msh_fields",
    "parse_message",
    "split_field",
]
