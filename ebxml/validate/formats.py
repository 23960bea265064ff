"""Value formats of XDS metadata attributes (ITI TF-3 4.2.3.1.7, Table 4.2.3.1.7-2).

Each check takes the value as submitted and returns ``None`` when it is well formed or a
short reason when it is not; the ``is_*`` / ``validate_*`` predicates answer the same
question as a bool for callers (the registry's query code) that only need yes or no.
``FORMAT_CHECKS`` maps each ``Format`` to its check so attribute tables name a format,
never a function.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache

from ebxml import hl7
from ebxml.model import Code
from ebxml.vocabulary import UUID_PREFIX

Check = Callable[[str], str | None]

# ITI TF-3 Table 4.2.3.1.7-2 (OID): dotted decimal, no leading zeros in an arc.  The
# table asks for this form only; the ASN.1 rule that the first arc be 0-2 is not checked,
# as peers in the field (the NIST toolkit's own sourceIds, "129.6.58.92...") rely on it.
_OID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")
# ITI TF-3 4.2.3.2.26: uniqueIds that are OIDs are at most 64 characters
OID_MAX_LENGTH = 64
# ITI TF-3 4.2.3.2.26: DocumentEntry.uniqueId may be "OID^extension", extension <= 16 chars
DOCUMENT_UNIQUE_ID_EXTENSION_MAX = 16
DOCUMENT_UNIQUE_ID_MAX = 128
# RFC 4122 3: urn:uuid: followed by the 8-4-4-4-12 hex form
_UUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
# ITI TF-3 4.2.3.2.9: SHA-1 as 40 hex digits, either case
_SHA1 = re.compile(r"[0-9a-fA-F]{40}")
# ITI TF-3 4.2.3.2.21: size is an integer number of octets
_SIZE = re.compile(r"[0-9]+")
# RFC 2045 5.1: token := 1*<any CHAR except SPACE, CTLs, or tspecials>
_TOKEN = r"[!#$%&'*+.^_`{|}~0-9A-Za-z-]+"
_MIME_TYPE = re.compile(
    rf"(?P<type>{_TOKEN})/(?P<subtype>{_TOKEN})"
    rf"(\s*;\s*{_TOKEN}=({_TOKEN}|\"([^\"\\]|\\.)*\"))*"
)
# RFC 5646 2.1 (shape only; the subtags are not looked up in the IANA registry)
_ALNUM = "[A-Za-z0-9]"
_LANGTAG = r"[A-Za-z]{2,3}(-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8}"  # language (+extlang)
_LANGUAGE_TAG = re.compile(
    rf"(({_LANGTAG})"
    r"(-[A-Za-z]{4})?"  # script
    r"(-([A-Za-z]{2}|[0-9]{3}))?"  # region
    rf"(-({_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"  # variant
    rf"(-[0-9A-WY-Za-wy-z](-{_ALNUM}{{2,8}})+)*"  # extension
    rf"(-[xX](-{_ALNUM}{{1,8}})+)?"  # private use
    rf"|[xX](-{_ALNUM}{{1,8}})+"  # private use tag
    rf"|[iI](-{_ALNUM}{{2,8}})+)"  # grandfathered irregular (i-klingon, ...)
)
# ITI TF-3 Table 4.2.3.1.7-2 (DTM): YYYY[MM[DD[hh[mm[ss]]]]], UTC, no offset, no fraction
_DTM_LENGTHS = frozenset({4, 6, 8, 10, 12, 14})
# ITI TF-3 4.2.3.2.24 sourcePatientInfo: "PID-<n>|<value>"
_PID_FIELD = re.compile(r"PID-[1-9][0-9]*\|.*", re.DOTALL)
ISO = "ISO"


class Format(StrEnum):
    OID = "OID"
    UUID = "UUID"
    UNIQUE_ID = "OID (uniqueId)"
    DOCUMENT_UNIQUE_ID = "DocumentEntry uniqueId"
    DTM = "DTM"
    SHA1 = "SHA-1"
    SIZE = "size"
    MIME_TYPE = "mimeType"
    CX = "CX"
    SOURCE_CX = "CX (sourcePatientId)"
    CXI = "CXi"
    XCN = "XCN"
    XON = "XON"
    XTN = "XTN"
    INTENDED_RECIPIENT = "XON|XCN|XTN"
    LANGUAGE_CODE = "languageCode"
    SOURCE_PATIENT_INFO = "sourcePatientInfo"
    TEXT = "String"


# --- identifiers ---------------------------------------------------------------------


def check_oid(value: str) -> str | None:
    if not _OID.fullmatch(value):
        return "not an OID (dotted decimal, no leading zeros)"
    return None


def check_unique_id(value: str) -> str | None:
    """SubmissionSet/Folder uniqueId, sourceId, repositoryUniqueId: OID, <= 64 chars."""
    if len(value) > OID_MAX_LENGTH:
        return f"longer than {OID_MAX_LENGTH} characters"
    return check_oid(value)


def check_document_unique_id(value: str) -> str | None:
    """ITI TF-3 4.2.3.2.26: "OID" or "OID^extension"."""
    root, caret, extension = value.partition("^")
    if caret and not 0 < len(extension) <= DOCUMENT_UNIQUE_ID_EXTENSION_MAX:
        return f"extension must be 1 to {DOCUMENT_UNIQUE_ID_EXTENSION_MAX} characters"
    if len(value) > DOCUMENT_UNIQUE_ID_MAX:
        return f"longer than {DOCUMENT_UNIQUE_ID_MAX} characters"
    return check_unique_id(root)


def check_uuid(value: str) -> str | None:
    """ITI TF-3 4.2.3.1.7: entryUUID is a UUID in its urn form."""
    if not value.startswith(UUID_PREFIX) or not _UUID.fullmatch(value[len(UUID_PREFIX) :]):
        return "not a urn:uuid: UUID"
    return None


# --- times, hashes, sizes, types -----------------------------------------------------


def check_dtm(value: str) -> str | None:
    """ITI TF-3 Table 4.2.3.1.7-2: DTM in UTC with a precision from year to second."""
    if len(value) not in _DTM_LENGTHS or not value.isascii() or not value.isdigit():
        return "not YYYY[MM[DD[hh[mm[ss]]]]] (UTC, no offset, no fractions)"
    year = int(value[0:4])
    month = int(value[4:6] or 1)
    if not 1 <= month <= 12:
        return "month out of range"
    day = int(value[6:8] or 1)
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return "day out of range"
    limits = ((8, 10, 23, "hour"), (10, 12, 59, "minute"), (12, 14, 59, "second"))
    for start, stop, highest, name in limits:
        if value[start:stop] and int(value[start:stop]) > highest:
            return f"{name} out of range"
    return None


def check_sha1(value: str) -> str | None:
    return None if _SHA1.fullmatch(value) else "not 40 hexadecimal digits"


def check_size(value: str) -> str | None:
    return None if _SIZE.fullmatch(value) else "not a non-negative integer"


def check_mime_type(value: str) -> str | None:
    return None if _MIME_TYPE.fullmatch(value) else "not an RFC 2045 type/subtype"


def check_language_code(value: str) -> str | None:
    return None if _LANGUAGE_TAG.fullmatch(value) else "not an RFC 5646 language tag"


def check_text(value: str) -> str | None:
    return None if value.strip() else "empty"


# --- HL7 v2 data types (ITI TF-3 Table 4.2.3.1.7-2) ----------------------------------


def _check_iso_authority(authority: hl7.HD, where: str) -> str | None:
    if authority.universal_id_type != ISO:
        return f"{where} universal id type must be ISO"
    if check_oid(authority.universal_id):
        return f"{where} universal id must be an OID"
    return None


def _positions(others: hl7.Others) -> str:
    return ", ".join(str(position) for position, _ in others)


def check_cx(value: str) -> str | None:
    """Patient id: ``id^^^&OID&ISO`` - components 1 and 4 only, 4 is an ISO OID, no
    namespace id (ITI TF-3 Table 4.2.3.1.7-2)."""
    cx = hl7.parse_cx(value)
    if not cx.id_number:
        return "CX.1 (id) is empty"
    extra = [
        position
        for position, present in (
            (2, cx.check_digit),
            (3, cx.check_digit_scheme),
            (5, cx.identifier_type_code),
            (6, cx.assigning_facility),
        )
        if present
    ]
    extra += [position for position, _ in cx.others]
    if extra:
        return f"only CX.1 and CX.4 may be present (found {', '.join(map(str, extra))})"
    if cx.assigning_authority.namespace_id:
        return "CX.4 must not carry a namespace id"
    return _check_iso_authority(cx.assigning_authority, "CX.4")


def check_source_cx(value: str) -> str | None:
    """sourcePatientId (ITI TF-3 4.2.3.2.23): an id and its assigning authority."""
    cx = hl7.parse_cx(value)
    if not cx.id_number:
        return "CX.1 (id) is empty"
    if not cx.assigning_authority:
        return "CX.4 (assigning authority) is empty"
    return None


def check_cxi(value: str) -> str | None:
    """referenceIdList (ITI TF-3 4.2.3.2.28): CX.1 and CX.5 required; CX.4 and CX.6
    optional; no other components."""
    cx = hl7.parse_cx(value)
    if not cx.id_number:
        return "CXi.1 (id) is empty"
    if not cx.identifier_type_code:
        return "CXi.5 (identifier type code) is empty"
    extra = [p for p, present in ((2, cx.check_digit), (3, cx.check_digit_scheme)) if present]
    extra += [position for position, _ in cx.others]
    if extra:
        return f"only CXi.1, .4, .5 and .6 may be present (found {', '.join(map(str, extra))})"
    return None


def check_xcn(value: str) -> str | None:
    """authorPerson, legalAuthenticator: an id (XCN.1) or a family name (XCN.2); an
    assigning authority (XCN.9), when given, is an ISO OID."""
    xcn = hl7.parse_xcn(value)
    if not (xcn.id_number or xcn.family_name):
        return "neither XCN.1 (id) nor XCN.2 (family name) is present"
    if xcn.assigning_authority:
        return _check_iso_authority(xcn.assigning_authority, "XCN.9")
    return None


def check_xon(value: str) -> str | None:
    """authorInstitution: XON.1 required; XON.10 optional, and when it is not an OID
    XON.6 names its ISO assigning authority; no other components."""
    xon = hl7.parse_xon(value)
    if not xon.organization_name:
        return "XON.1 (organization name) is empty"
    if xon.others:
        return f"only XON.1, .6 and .10 may be present (found {_positions(xon.others)})"
    if xon.organization_identifier and check_oid(xon.organization_identifier):
        return _check_iso_authority(xon.assigning_authority, "XON.6")
    return None


_ADDRESS_EQUIPMENT = frozenset({"Internet", "X.400"})


def check_xtn(value: str) -> str | None:
    """authorTelecommunication: XTN.3 (equipment type) required; an e-mail address
    (XTN.4) for Internet/X.400, a number (XTN.7 or XTN.12) otherwise."""
    xtn = hl7.parse_xtn(value)
    if not xtn.equipment_type:
        return "XTN.3 (telecommunication equipment type) is empty"
    if xtn.equipment_type in _ADDRESS_EQUIPMENT:
        return None if xtn.communication_address else "XTN.4 (address) is empty"
    unformatted = dict(xtn.others).get(12, "")
    return None if xtn.local_number or unformatted else "neither XTN.7 nor XTN.12 is present"


def check_intended_recipient(value: str) -> str | None:
    """ITI TF-3 4.2.3.3.5: ``XON|XCN|XTN``, at least one part present."""
    parts = value.split(hl7.FIELD)
    if len(parts) > 3 or not any(parts):
        return "not XON|XCN|XTN with at least one part"
    for part, check in zip(parts, (check_xon, check_xcn, check_xtn), strict=False):
        if part and (reason := check(part)):
            return reason
    return None


def check_source_patient_info(value: str) -> str | None:
    return None if _PID_FIELD.fullmatch(value) else "not PID-<n>|<value>"


def code_problem(code: Code) -> str | None:
    """ITI TF-3 4.2.3.1.2: code, codingScheme and display name are all required."""
    missing = [
        name
        for name, text in (
            ("code", code.code),
            ("codingScheme", code.scheme),
            ("display name", code.display),
        )
        if not text.strip()
    ]
    return f"{', '.join(missing)} empty" if missing else None


# The HL7 V2 data types are parsed component by component, and the same values come
# back in every DocumentEntry of a submission and in every submission for a patient
# (its id, the authors, their institution): their findings are kept, for values no
# longer than a slot value should be (rim.xsd LongName, 256 characters) so that the
# memory they hold stays small, whatever is sent.
REMEMBERED_CHECKS = 4096
_REMEMBERED_MAX_LENGTH = 256


def _remembered(check: Check) -> Check:
    kept = lru_cache(maxsize=REMEMBERED_CHECKS)(check)

    def remembered(value: str) -> str | None:
        return kept(value) if len(value) <= _REMEMBERED_MAX_LENGTH else check(value)

    remembered.__doc__ = check.__doc__
    remembered.cache_info = kept.cache_info  # type: ignore[attr-defined]
    return remembered


FORMAT_CHECKS: dict[Format, Check] = {
    Format.OID: check_oid,
    Format.UUID: check_uuid,
    Format.UNIQUE_ID: check_unique_id,
    Format.DOCUMENT_UNIQUE_ID: check_document_unique_id,
    Format.DTM: check_dtm,
    Format.SHA1: check_sha1,
    Format.SIZE: check_size,
    Format.MIME_TYPE: check_mime_type,
    Format.CX: _remembered(check_cx),
    Format.SOURCE_CX: _remembered(check_source_cx),
    Format.CXI: _remembered(check_cxi),
    Format.XCN: _remembered(check_xcn),
    Format.XON: _remembered(check_xon),
    Format.XTN: _remembered(check_xtn),
    Format.INTENDED_RECIPIENT: _remembered(check_intended_recipient),
    Format.LANGUAGE_CODE: check_language_code,
    Format.SOURCE_PATIENT_INFO: check_source_patient_info,
    Format.TEXT: check_text,
}


def check(fmt: Format, value: str) -> str | None:
    return FORMAT_CHECKS[fmt](value)


# --- predicates ----------------------------------------------------------------------


def is_oid(value: str) -> bool:
    return check_oid(value) is None


def is_unique_id_oid(value: str) -> bool:
    return check_unique_id(value) is None


def is_uuid_urn(value: str) -> bool:
    return check_uuid(value) is None


def validate_dtm_utc(value: str) -> bool:
    """True when ``value`` is an XDS DTM (UTC, YYYY to YYYYMMDDhhmmss, in range)."""
    return check_dtm(value) is None


def is_sha1(value: str) -> bool:
    return check_sha1(value) is None


def is_mime_type(value: str) -> bool:
    return check_mime_type(value) is None


def is_patient_id(value: str) -> bool:
    return check_cx(value) is None


__all__ = [
    "FORMAT_CHECKS",
    "OID_MAX_LENGTH",
    "Check",
    "Format",
    "check",
    "check_cx",
    "check_cxi",
    "check_document_unique_id",
    "check_dtm",
    "check_intended_recipient",
    "check_language_code",
    "check_mime_type",
    "check_oid",
    "check_sha1",
    "check_size",
    "check_source_cx",
    "check_source_patient_info",
    "check_unique_id",
    "check_uuid",
    "check_xcn",
    "check_xon",
    "check_xtn",
    "code_problem",
    "is_mime_type",
    "is_oid",
    "is_patient_id",
    "is_sha1",
    "is_unique_id_oid",
    "is_uuid_urn",
    "validate_dtm_utc",
]
