"""XDS metadata validation: rules as data, read by small functions (no I/O).

``validate_submission`` checks a Submission as received in a transaction (ITI TF-3 4.1,
4.2, 4.3); ``validate_provide`` the ITI-41 pairing of metadata and documents; the format
predicates are shared with the registry's query code.
"""

from ebxml.validate.cardinality import (
    Cardinality,
    Column,
    ObjectKind,
    Optionality,
    cardinality,
    column_for,
    optionality,
)
from ebxml.validate.formats import (
    Format,
    check,
    is_mime_type,
    is_oid,
    is_patient_id,
    is_sha1,
    is_unique_id_oid,
    is_uuid_urn,
    validate_dtm_utc,
)
from ebxml.validate.provide import validate_provide
from ebxml.validate.rules import Rule
from ebxml.validate.submission import validate_submission

__all__ = [
    "Cardinality",
    "Column",
    "Format",
    "ObjectKind",
    "Optionality",
    "Rule",
    "cardinality",
    "check",
    "column_for",
    "is_mime_type",
    "is_oid",
    "is_patient_id",
    "is_sha1",
    "is_unique_id_oid",
    "is_uuid_urn",
    "optionality",
    "validate_dtm_utc",
    "validate_provide",
    "validate_submission",
]
