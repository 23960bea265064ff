"""Which metadata attributes a submission must, may or must not carry, per transaction.

The table is ITI TF-3 Table 4.3.1-3 "Sending Actor Metadata Attribute Optionality" for
the columns xdsi receives (Table 4.3.1-1 names them):

* ``XDS DS``  - XDS Document Source, ITI-41 (and RAD-68, an ITI-41 carrying a KOS);
* ``XDS DR``  - XDS Document Repository, ITI-42 (ITI-57 updates carry the same full
  metadata, ITI TF-2 3.57.4.1.3);
* ``XDR MS``  - XDR Metadata-Limited Document Source, ITI-41 with limitedMetadata;
* ``XDS OD``  - XDS On-Demand Document Source, ITI-61.

Codes (Table 4.3.1-2): R required, R2 required if known, O optional, X prohibited.  The
receiver can only enforce R (at least one value) and X (none); R2 and O never fail.  The
attributes a Document Repository adds (hash, size, repositoryUniqueId) are therefore O
for the Document Source and R for the Repository.  Attributes the receiver sets itself
are listed in ``SET_BY_RECEIVER``: a value submitted for them is not an error.

``ATTRIBUTES`` says, for each (object type, attribute), how to read its values from the
model and which format they have; ``formats.py`` checks the format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ebxml.model import Code, DocumentEntry, Folder, SubmissionSet
from ebxml.validate.formats import Format
from ebxml.vocabulary import Transaction


class ObjectKind(StrEnum):
    DOCUMENT_ENTRY = "DocumentEntry"
    SUBMISSION_SET = "SubmissionSet"
    FOLDER = "Folder"


class Optionality(StrEnum):
    """ITI TF-3 Table 4.3.1-2."""

    R = "R"
    R2 = "R2"
    O = "O"  # noqa: E741 - the letter is the standard's
    X = "X"


class Column(StrEnum):
    """ITI TF-3 Table 4.3.1-1 short names (the ones xdsi receives)."""

    XDS_DS = "XDS DS"
    XDS_DR = "XDS DR"
    XDR_MS = "XDR MS"
    XDS_OD = "XDS OD"


COLUMNS = (Column.XDS_DS, Column.XDS_DR, Column.XDR_MS, Column.XDS_OD)

# Transaction -> the column of the actor that sends it
TRANSACTION_COLUMN: dict[Transaction, Column] = {
    Transaction.ITI41: Column.XDS_DS,
    Transaction.RAD68: Column.XDS_DS,
    Transaction.ITI42: Column.XDS_DR,
    Transaction.ITI57: Column.XDS_DR,
    Transaction.ITI61: Column.XDS_OD,
}
# Transactions in which a metadata-limited (XDR) object may be sent, ITI TF-3 4.3.1
LIMITED_METADATA_TRANSACTIONS = frozenset({Transaction.ITI41, Transaction.RAD68})

R, R2, O, X = Optionality.R, Optionality.R2, Optionality.O, Optionality.X  # noqa: E741

# ITI TF-3 Table 4.3.1-3, rows in the table's order; columns as in COLUMNS
#            attribute                       XDS DS XDS DR XDR MS XDS OD
_DOCUMENT_ENTRY_ROWS = (
    ("author", R2, R2, R2, R2),
    ("availabilityStatus", O, O, O, O),
    ("classCode", R, R, R2, R),
    ("comments", O, O, O, O),
    ("confidentialityCode", R, R, R2, R),
    ("creationTime", R, R, R2, X),
    ("entryUUID", R, R, R, R),
    ("eventCodeList", O, O, O, O),
    ("formatCode", R, R, R2, R),
    ("hash", O, R, O, X),
    ("healthcareFacilityTypeCode", R, R, R2, R),
    ("homeCommunityId", O, O, O, O),
    ("languageCode", R, R, R2, R),
    ("legalAuthenticator", O, O, O, X),
    ("limitedMetadata", X, X, R, X),
    ("mimeType", R, R, R, R),
    ("objectType", R, R, R, R),
    ("patientId", R, R, R2, R),
    ("practiceSettingCode", R, R, R2, R),
    ("referenceIdList", O, O, O, O),
    ("repositoryUniqueId", O, R, O, R),
    ("serviceStartTime", R2, R2, R2, R2),
    ("serviceStopTime", R2, R2, R2, R2),
    ("size", O, R, O, X),
    ("sourcePatientId", R, R, R2, R),
    ("sourcePatientInfo", O, O, O, O),
    ("title", O, O, O, O),
    ("typeCode", R, R, R2, R),
    ("uniqueId", R, R, R, R),
    ("URI", O, O, O, O),
)
_SUBMISSION_SET_ROWS = (
    ("author", R2, R2, R2, R2),
    ("availabilityStatus", O, O, O, O),
    ("comments", O, O, O, O),
    ("contentTypeCode", R, R, R2, R),
    ("entryUUID", R, R, R, R),
    ("homeCommunityId", O, O, O, O),
    ("intendedRecipient", O, O, R2, O),
    ("limitedMetadata", X, X, R, X),
    ("patientId", R, R, R2, R),
    ("sourceId", R, R, R, R),
    ("submissionTime", R, R, R, R),
    ("title", O, O, O, O),
    ("uniqueId", R, R, R, R),
)
_FOLDER_ROWS = (
    ("availabilityStatus", O, O, O, O),
    ("codeList", R, R, R2, R),
    ("comments", O, O, O, O),
    ("entryUUID", R, R, R, R),
    ("homeCommunityId", O, O, O, O),
    ("lastUpdateTime", O, O, O, O),
    ("limitedMetadata", X, X, R, X),
    ("patientId", R, R, R2, R),
    ("title", R, R, R2, R),
    ("uniqueId", R, R, R, R),
)


def _table(
    rows: dict[
        ObjectKind, tuple[tuple[str, Optionality, Optionality, Optionality, Optionality], ...]
    ],
) -> dict[tuple[ObjectKind, str], dict[Column, Optionality]]:
    return {
        (kind, row[0]): dict(zip(COLUMNS, row[1:], strict=True))
        for kind, kind_rows in rows.items()
        for row in kind_rows
    }


OPTIONALITY: dict[tuple[ObjectKind, str], dict[Column, Optionality]] = _table(
    {
        ObjectKind.DOCUMENT_ENTRY: _DOCUMENT_ENTRY_ROWS,
        ObjectKind.SUBMISSION_SET: _SUBMISSION_SET_ROWS,
        ObjectKind.FOLDER: _FOLDER_ROWS,
    }
)

# Attributes the receiving actor sets; what a sender puts there is replaced, not refused.
SET_BY_RECEIVER: dict[tuple[ObjectKind, str], str] = {
    (ObjectKind.DOCUMENT_ENTRY, "availabilityStatus"): "Document Registry",
    (ObjectKind.SUBMISSION_SET, "availabilityStatus"): "Document Registry",
    (ObjectKind.FOLDER, "availabilityStatus"): "Document Registry",
    (ObjectKind.FOLDER, "lastUpdateTime"): "Document Registry",  # ITI TF-3 4.2.3.4
    (ObjectKind.DOCUMENT_ENTRY, "hash"): "Document Repository",  # ITI TF-2 3.41.4.1.3
    (ObjectKind.DOCUMENT_ENTRY, "size"): "Document Repository",
    (ObjectKind.DOCUMENT_ENTRY, "repositoryUniqueId"): "Document Repository",
}


@dataclass(frozen=True, slots=True)
class Cardinality:
    min: int
    max: int | None  # None: unbounded

    def allows(self, count: int) -> bool:
        return count >= self.min and (self.max is None or count <= self.max)


MetadataObject = DocumentEntry | SubmissionSet | Folder
Value = str | Code


def _one(value: str | Code | None) -> tuple[Value, ...]:
    return () if value is None else (value,)


def _flag(value: bool) -> tuple[Value, ...]:
    return ("true",) if value else ()


@dataclass(frozen=True, slots=True)
class Attribute:
    """How to read one attribute from the model: ``values`` returns its values (strings
    or Codes), ``format`` names the check for the strings (Codes are checked as codes),
    ``repeatable`` whether ITI TF-3 allows more than one value."""

    values: Callable[[MetadataObject], tuple[Value, ...]]
    format: Format | None = None
    repeatable: bool = False


def _size(entry: DocumentEntry) -> tuple[Value, ...]:
    if entry.size_text is not None:
        return (entry.size_text,)
    return _one(None if entry.size is None else str(entry.size))


def _author_parts(name: str) -> Callable[[MetadataObject], tuple[Value, ...]]:
    def values(obj: MetadataObject) -> tuple[Value, ...]:
        authors = getattr(obj, "authors", ())
        if name == "person":
            return tuple(a.person for a in authors if a.person is not None)
        return tuple(v for a in authors for v in getattr(a, name))

    return values


# Attributes present on all three object types
_COMMON: dict[str, Attribute] = {
    "entryUUID": Attribute(lambda o: (o.entry_uuid,), Format.UUID),
    "availabilityStatus": Attribute(lambda o: _one(o.availability_status)),
    "comments": Attribute(lambda o: _one(o.comments)),
    "homeCommunityId": Attribute(lambda o: _one(o.home)),
    "limitedMetadata": Attribute(lambda o: _flag(o.limited_metadata)),
    "title": Attribute(lambda o: _one(o.title)),
}
_AUTHOR: dict[str, Attribute] = {
    "author": Attribute(lambda o: tuple("author" for _ in o.authors), repeatable=True),
    "authorPerson": Attribute(_author_parts("person"), Format.XCN, repeatable=True),
    "authorInstitution": Attribute(_author_parts("institutions"), Format.XON, repeatable=True),
    "authorTelecommunication": Attribute(
        _author_parts("telecommunications"), Format.XTN, repeatable=True
    ),
}

ATTRIBUTES: dict[ObjectKind, dict[str, Attribute]] = {
    ObjectKind.DOCUMENT_ENTRY: {
        **_COMMON,
        **_AUTHOR,
        "classCode": Attribute(lambda d: _one(d.class_code)),
        "confidentialityCode": Attribute(lambda d: d.confidentiality_codes, repeatable=True),
        "creationTime": Attribute(lambda d: _one(d.creation_time), Format.DTM),
        "eventCodeList": Attribute(lambda d: d.event_codes, repeatable=True),
        "formatCode": Attribute(lambda d: _one(d.format_code)),
        "hash": Attribute(lambda d: _one(d.hash), Format.SHA1),
        "healthcareFacilityTypeCode": Attribute(lambda d: _one(d.healthcare_facility_type_code)),
        "languageCode": Attribute(lambda d: _one(d.language_code), Format.LANGUAGE_CODE),
        "legalAuthenticator": Attribute(lambda d: _one(d.legal_authenticator), Format.XCN),
        "mimeType": Attribute(lambda d: _one(d.mime_type), Format.MIME_TYPE),
        "objectType": Attribute(lambda d: _one(d.object_type)),
        "patientId": Attribute(lambda d: _one(d.patient_id), Format.CX),
        "practiceSettingCode": Attribute(lambda d: _one(d.practice_setting_code)),
        "referenceIdList": Attribute(lambda d: d.reference_ids, Format.CXI, repeatable=True),
        "repositoryUniqueId": Attribute(lambda d: _one(d.repository_unique_id), Format.UNIQUE_ID),
        "serviceStartTime": Attribute(lambda d: _one(d.service_start_time), Format.DTM),
        "serviceStopTime": Attribute(lambda d: _one(d.service_stop_time), Format.DTM),
        "size": Attribute(_size, Format.SIZE),
        "sourcePatientId": Attribute(lambda d: _one(d.source_patient_id), Format.SOURCE_CX),
        "sourcePatientInfo": Attribute(
            lambda d: d.source_patient_info, Format.SOURCE_PATIENT_INFO, repeatable=True
        ),
        "typeCode": Attribute(lambda d: _one(d.type_code)),
        "uniqueId": Attribute(lambda d: _one(d.unique_id), Format.DOCUMENT_UNIQUE_ID),
        "URI": Attribute(lambda d: _one(d.uri), Format.TEXT),
    },
    ObjectKind.SUBMISSION_SET: {
        **_COMMON,
        **_AUTHOR,
        "contentTypeCode": Attribute(lambda s: _one(s.content_type_code)),
        "intendedRecipient": Attribute(
            lambda s: s.intended_recipients, Format.INTENDED_RECIPIENT, repeatable=True
        ),
        "patientId": Attribute(lambda s: _one(s.patient_id), Format.CX),
        "sourceId": Attribute(lambda s: _one(s.source_id), Format.UNIQUE_ID),
        "submissionTime": Attribute(lambda s: _one(s.submission_time), Format.DTM),
        "uniqueId": Attribute(lambda s: _one(s.unique_id), Format.UNIQUE_ID),
    },
    ObjectKind.FOLDER: {
        **_COMMON,
        "codeList": Attribute(lambda f: f.code_list, repeatable=True),
        "lastUpdateTime": Attribute(lambda f: _one(f.last_update_time), Format.DTM),
        "patientId": Attribute(lambda f: _one(f.patient_id), Format.CX),
        "uniqueId": Attribute(lambda f: _one(f.unique_id), Format.UNIQUE_ID),
    },
}

KIND_OF: dict[type, ObjectKind] = {
    DocumentEntry: ObjectKind.DOCUMENT_ENTRY,
    SubmissionSet: ObjectKind.SUBMISSION_SET,
    Folder: ObjectKind.FOLDER,
}


def column_for(transaction: Transaction, *, limited_metadata: bool = False) -> Column:
    """The Table 4.3.1-3 column a receiver of ``transaction`` checks an object against;
    a metadata-limited object in ITI-41 is checked as XDR MS sent it."""
    if limited_metadata and transaction in LIMITED_METADATA_TRANSACTIONS:
        return Column.XDR_MS
    return TRANSACTION_COLUMN[transaction]


def optionality(kind: ObjectKind, attribute: str, column: Column) -> Optionality:
    """The Table 4.3.1-3 cell; attributes the table does not list are optional."""
    return OPTIONALITY.get((kind, attribute), {}).get(column, Optionality.O)


def cardinality(kind: ObjectKind, attribute: str, column: Column) -> Cardinality:
    """Minimum and maximum number of values of ``attribute`` in ``column``."""
    cell = optionality(kind, attribute, column)
    if cell is Optionality.X:
        return Cardinality(0, 0)
    spec = ATTRIBUTES[kind].get(attribute)
    highest = None if spec is None or spec.repeatable else 1
    return Cardinality(1 if cell is Optionality.R else 0, highest)


def attribute_values(obj: MetadataObject, attribute: str) -> tuple[Value, ...]:
    return ATTRIBUTES[KIND_OF[type(obj)]][attribute].values(obj)


__all__ = [
    "ATTRIBUTES",
    "COLUMNS",
    "KIND_OF",
    "LIMITED_METADATA_TRANSACTIONS",
    "OPTIONALITY",
    "SET_BY_RECEIVER",
    "TRANSACTION_COLUMN",
    "Attribute",
    "Cardinality",
    "Column",
    "MetadataObject",
    "ObjectKind",
    "Optionality",
    "Value",
    "attribute_values",
    "cardinality",
    "column_for",
    "optionality",
]
