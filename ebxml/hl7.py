"""HL7 v2 data types used by XDS metadata: HD, CX, CXi, XCN, XON, XTN.

ITI TF-3 4.2.3.1.7 (Table 4.2.3.1.7-2) fixes how these are encoded in slot values: HL7 v2
encoding with the default delimiters (component ``^``, subcomponent ``&``, repetition
``~``, escape ``\\``) and the HL7 escape sequences (HL7 v2.5 2.7.4) for delimiters inside
a value.  Parsers here are lenient: they split and unescape and never judge; the rules
on which components may be present live in ``ebxml.validate.formats``.  Components
xdsi has no field for are kept, by position, in ``others`` so a value round-trips.

Nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

COMPONENT = "^"
SUBCOMPONENT = "&"
REPETITION = "~"
FIELD = "|"
ESCAPE = "\\"

# HL7 v2.5 2.7.4: delimiter -> escape sequence ("\E\" first so it is not re-escaped)
_ESCAPES = (
    (ESCAPE, "\\E\\"),
    (FIELD, "\\F\\"),
    (COMPONENT, "\\S\\"),
    (SUBCOMPONENT, "\\T\\"),
    (REPETITION, "\\R\\"),
)
_UNESCAPES = {"F": FIELD, "S": COMPONENT, "T": SUBCOMPONENT, "R": REPETITION, "E": ESCAPE}
_ESCAPE_SEQUENCE = re.compile(r"\\([FSTRE])\\")

Others = tuple[tuple[int, str], ...]  # (1-based component position, encoded component)


def escape(text: str) -> str:
    """Escape the HL7 delimiters in a plain value."""
    for char, sequence in _ESCAPES:
        text = text.replace(char, sequence)
    return text


def unescape(text: str) -> str:
    """Replace the HL7 delimiter escape sequences by the characters they stand for."""
    return _ESCAPE_SEQUENCE.sub(lambda m: _UNESCAPES[m.group(1)], text)


def split(text: str, separator: str = COMPONENT) -> list[str]:
    """Split on an unescaped separator, leaving the pieces encoded (escapes are never
    raw delimiters, so a plain split is exact)."""
    return text.split(separator)


def join(parts: list[str], separator: str = COMPONENT) -> str:
    """Join encoded pieces, dropping trailing empty ones (HL7 v2.5 2.5.3)."""
    while parts and parts[-1] == "":
        parts = parts[:-1]
    return separator.join(parts)


def _component(parts: list[str], position: int) -> str:
    return parts[position - 1] if len(parts) >= position else ""


def _others(parts: list[str], named: frozenset[int]) -> Others:
    return tuple((i, p) for i, p in enumerate(parts, start=1) if i not in named and p != "")


def _place(size: int, named: dict[int, str], others: Others) -> list[str]:
    parts = [""] * max([size, *(i for i, _ in others)])
    for position, value in (*named.items(), *others):
        parts[position - 1] = value
    return parts


@dataclass(frozen=True, slots=True)
class HD:
    """Hierarchic designator: namespace id, universal id, universal id type."""

    namespace_id: str = ""
    universal_id: str = ""
    universal_id_type: str = ""

    def encode(self, separator: str = SUBCOMPONENT) -> str:
        return join(
            [escape(self.namespace_id), escape(self.universal_id), escape(self.universal_id_type)],
            separator,
        )

    def __bool__(self) -> bool:
        return bool(self.namespace_id or self.universal_id or self.universal_id_type)


def parse_hd(text: str, separator: str = SUBCOMPONENT) -> HD:
    """An HD; inside a CX/XCN/XON component its parts are subcomponents (``&``)."""
    parts = split(text, separator)
    return HD(*(unescape(_component(parts, i)) for i in (1, 2, 3)))


@dataclass(frozen=True, slots=True)
class CX:
    """Extended composite id (CX); also the CXi of referenceIdList (ITI TF-3 4.2.3.2.28)."""

    id_number: str
    check_digit: str = ""
    check_digit_scheme: str = ""
    assigning_authority: HD = HD()
    identifier_type_code: str = ""
    assigning_facility: HD = HD()
    others: Others = ()

    def encode(self) -> str:
        named = {
            1: escape(self.id_number),
            2: escape(self.check_digit),
            3: escape(self.check_digit_scheme),
            4: self.assigning_authority.encode(),
            5: escape(self.identifier_type_code),
            6: self.assigning_facility.encode(),
        }
        return join(_place(6, named, self.others))


_CX_NAMED = frozenset(range(1, 7))


def parse_cx(text: str) -> CX:
    parts = split(text)
    return CX(
        id_number=unescape(_component(parts, 1)),
        check_digit=unescape(_component(parts, 2)),
        check_digit_scheme=unescape(_component(parts, 3)),
        assigning_authority=parse_hd(_component(parts, 4)),
        identifier_type_code=unescape(_component(parts, 5)),
        assigning_facility=parse_hd(_component(parts, 6)),
        others=_others(parts, _CX_NAMED),
    )


def patient_id(id_number: str, authority_oid: str) -> str:
    """The XDS patient id form ``id^^^&OID&ISO`` (ITI TF-3 Table 4.2.3.1.7-2)."""
    return CX(id_number, assigning_authority=HD("", authority_oid, "ISO")).encode()


parse_cxi = parse_cx


@dataclass(frozen=True, slots=True)
class XCN:
    """Extended composite id number and name for persons (authorPerson,
    legalAuthenticator)."""

    id_number: str = ""
    family_name: str = ""  # XCN.2, its first subcomponent (surname)
    given_name: str = ""
    further_given_names: str = ""
    suffix: str = ""
    prefix: str = ""
    degree: str = ""
    assigning_authority: HD = HD()  # XCN.9
    others: Others = ()

    def encode(self) -> str:
        named = {
            1: escape(self.id_number),
            2: escape(self.family_name),
            3: escape(self.given_name),
            4: escape(self.further_given_names),
            5: escape(self.suffix),
            6: escape(self.prefix),
            7: escape(self.degree),
            9: self.assigning_authority.encode(),
        }
        return join(_place(9, named, self.others))


_XCN_NAMED = frozenset({1, 2, 3, 4, 5, 6, 7, 9})


def parse_xcn(text: str) -> XCN:
    parts = split(text)
    family = split(_component(parts, 2), SUBCOMPONENT)
    others = _others(parts, _XCN_NAMED)
    if len(family) > 1:  # FN has more subcomponents: keep XCN.2 as sent for encode()
        others = ((2, _component(parts, 2)), *others)
    return XCN(
        id_number=unescape(_component(parts, 1)),
        family_name=unescape(family[0]),
        given_name=unescape(_component(parts, 3)),
        further_given_names=unescape(_component(parts, 4)),
        suffix=unescape(_component(parts, 5)),
        prefix=unescape(_component(parts, 6)),
        degree=unescape(_component(parts, 7)),
        assigning_authority=parse_hd(_component(parts, 9)),
        others=others,
    )


@dataclass(frozen=True, slots=True)
class XON:
    """Extended composite name and id for organisations (authorInstitution)."""

    organization_name: str = ""  # XON.1
    assigning_authority: HD = HD()  # XON.6
    organization_identifier: str = ""  # XON.10
    others: Others = ()

    def encode(self) -> str:
        named = {
            1: escape(self.organization_name),
            6: self.assigning_authority.encode(),
            10: escape(self.organization_identifier),
        }
        return join(_place(10, named, self.others))


_XON_NAMED = frozenset({1, 6, 10})


def parse_xon(text: str) -> XON:
    parts = split(text)
    return XON(
        organization_name=unescape(_component(parts, 1)),
        assigning_authority=parse_hd(_component(parts, 6)),
        organization_identifier=unescape(_component(parts, 10)),
        others=_others(parts, _XON_NAMED),
    )


@dataclass(frozen=True, slots=True)
class XTN:
    """Extended telecommunication number (authorTelecommunication, intendedRecipient)."""

    use_code: str = ""  # XTN.2
    equipment_type: str = ""  # XTN.3
    communication_address: str = ""  # XTN.4 (e-mail)
    country_code: str = ""  # XTN.5
    area_code: str = ""  # XTN.6
    local_number: str = ""  # XTN.7
    extension: str = ""  # XTN.8
    others: Others = ()

    def encode(self) -> str:
        named = {
            2: escape(self.use_code),
            3: escape(self.equipment_type),
            4: escape(self.communication_address),
            5: escape(self.country_code),
            6: escape(self.area_code),
            7: escape(self.local_number),
            8: escape(self.extension),
        }
        return join(_place(8, named, self.others))


_XTN_NAMED = frozenset(range(2, 9))


def parse_xtn(text: str) -> XTN:
    parts = split(text)
    return XTN(
        *(unescape(_component(parts, i)) for i in range(2, 9)),
        others=_others(parts, _XTN_NAMED),
    )


__all__ = [
    "CX",
    "HD",
    "XCN",
    "XON",
    "XTN",
    "escape",
    "join",
    "parse_cx",
    "parse_cxi",
    "parse_hd",
    "parse_xcn",
    "parse_xon",
    "parse_xtn",
    "patient_id",
    "split",
    "unescape",
]
