"""Synthetic registry metadata for bulk loading: document profiles, the objects a
Document Source would submit for them, and their canonical XML as templates.

An :class:`ObjectTemplate` is the canonical LeafClass XML of ``registry.register`` for
one object with placeholder values, serialised once; rendering writes an object's own
values in (and the uuid5 ids of its Classifications and ExternalIdentifiers, which
``ebxml.serialize`` derives from the entryUUID), and the first render is checked byte
for byte against the serialiser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from ebxml.model import Association, Author, Code, DocumentEntry, RegistryObject, SubmissionSet
from ebxml.serialize import child_id
from ebxml.vocabulary import SUBMISSION_SET_STATUS_ORIGINAL, UUID_PREFIX, AssociationType
from registry.register import canonical_xml

STUDY_INSTANCE_UID = "urn:ihe:iti:xds:2016:studyInstanceUID"  # ITI TF-3 4.2.3.2.28


# --- the metadata ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """One kind of document: its codes, title, mime type and authors."""

    title: str
    mime_type: str
    class_code: Code
    type_code: Code
    format_code: Code
    healthcare_facility_type_code: Code
    practice_setting_code: Code
    confidentiality_codes: tuple[Code, ...]
    event_codes: tuple[Code, ...]
    author: str
    imaging: bool  # a KOS manifest: referenceIdList holds the Study Instance UID


_LOINC = "2.16.840.1.113883.6.1"
_CLASS = "1.3.6.1.4.1.19376.1.2.6.1"
_FACILITY = "2.16.840.1.113883.5.11"
_CONFIDENTIALITY = "2.16.840.1.113883.5.25"
_DCM = "1.2.840.10008.2.16.4"
_KOS = Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection")
_NORMAL = (Code("N", _CONFIDENTIALITY, "Normal"),)
_RADIOLOGY = Code("R-3027B", "SRT", "Radiology")
_RADDX = Code("RADDX", _FACILITY, "Radiology diagnostics")

# An imaging department's registry: manifests (XDS-I.b, RAD TF-3 4.68.4.1.2.3) and
# the reports and notes beside them (ITI XDS-SD)
PROFILES: tuple[Profile, ...] = (
    Profile(
        "CT chest", "application/dicom", Code("IMG", _CLASS, "Imaging"),
        Code("18748-4", _LOINC, "Diagnostic imaging study"), _KOS, _RADDX, _RADIOLOGY,
        _NORMAL, (Code("CT", _DCM, "Computed Tomography"), Code("T-D3000", "SRT", "Chest")),
        "^Welby^Marcus^^^Dr", True,
    ),
    Profile(
        "MR head", "application/dicom", Code("IMG", _CLASS, "Imaging"),
        Code("18748-4", _LOINC, "Diagnostic imaging study"), _KOS, _RADDX, _RADIOLOGY,
        _NORMAL, (Code("MR", _DCM, "Magnetic Resonance"), Code("T-D1100", "SRT", "Head")),
        "^Curie^Irene^^^Dr", True,
    ),
    Profile(
        "Radiology report", "application/pdf", Code("REPORTS", _CLASS, "Reports"),
        Code("18782-3", _LOINC, "Radiology Study observation"),
        Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "ITI XDS-SD PDF"),
        _RADDX, _RADIOLOGY, _NORMAL, (), "^Roentgen^Wilhelm^^^Dr", False,
    ),
    Profile(
        "Consultation note", "text/plain", Code("REPORTS", _CLASS, "Reports"),
        Code("11488-4", _LOINC, "Consultation Note"),
        Code("urn:ihe:iti:xds-sd:text:2008", "1.3.6.1.4.1.19376.1.2.3", "ITI XDS-SD TEXT"),
        Code("HOSP", _FACILITY, "Hospital"), Code("General Medicine", "SRT", "General Medicine"),
        (Code("R", _CONFIDENTIALITY, "Restricted"),), (), "^Osler^William^^^Dr", False,
    ),
)  # fmt: skip
SUBMISSION_CONTENT_TYPE = Code("Imaging", "1.3.6.1.4.1.21367.100.1", "Imaging")
SUBMISSION_AUTHOR = "^Blanca^Jane"


@dataclass(frozen=True, slots=True)
class EntryValues:
    """What differs between two DocumentEntries of one profile."""

    entry_uuid: str
    unique_id: str
    patient_id: str
    creation_time: str
    service_start_time: str
    service_stop_time: str
    hash: str
    size: int
    study_uid: str


def document_entry(profile: Profile, v: EntryValues, repository_unique_id: str) -> DocumentEntry:
    """The DocumentEntry a Document Source would submit for ``profile`` and ``v``."""
    return DocumentEntry(
        entry_uuid=v.entry_uuid,
        unique_id=v.unique_id,
        patient_id=v.patient_id,
        mime_type=profile.mime_type,
        class_code=profile.class_code,
        type_code=profile.type_code,
        format_code=profile.format_code,
        healthcare_facility_type_code=profile.healthcare_facility_type_code,
        practice_setting_code=profile.practice_setting_code,
        confidentiality_codes=profile.confidentiality_codes,
        event_codes=profile.event_codes,
        authors=(Author(person=profile.author),),
        creation_time=v.creation_time,
        service_start_time=v.service_start_time,
        service_stop_time=v.service_stop_time,
        hash=v.hash,
        size=v.size,
        language_code="en-US",
        title=profile.title,
        repository_unique_id=repository_unique_id,
        source_patient_id=v.patient_id,
        reference_ids=(f"{v.study_uid}^^^^{STUDY_INSTANCE_UID}",) if profile.imaging else (),
    )


def submission_set(
    entry_uuid: str, unique_id: str, patient_id: str, submission_time: str, source_id: str
) -> SubmissionSet:
    return SubmissionSet(
        entry_uuid=entry_uuid,
        unique_id=unique_id,
        source_id=source_id,
        patient_id=patient_id,
        submission_time=submission_time,
        content_type_code=SUBMISSION_CONTENT_TYPE,
        authors=(Author(person=SUBMISSION_AUTHOR),),
    )


def has_member(entry_uuid: str, submission_set_uuid: str, entry: str) -> Association:
    return Association(
        entry_uuid, AssociationType.HAS_MEMBER, submission_set_uuid, entry,
        SUBMISSION_SET_STATUS_ORIGINAL,
    )  # fmt: skip


# --- templates -------------------------------------------------------------------------

_ID_ATTRIBUTE = re.compile(rb'\bid="(urn:uuid:[0-9a-f-]+)"')
_SCHEME_ATTRIBUTE = re.compile(
    rb'(?:classificationScheme|classificationNode|identificationScheme)="([^"]+)"'
)
_NESTED_MAX = 32  # nested objects of one scheme a template may hold


class ObjectTemplate:
    """The canonical XML of one object, serialised once with placeholder values.

    :meth:`render` writes an object's values in (escaped as lxml escapes them), and the
    ids of its Classifications and ExternalIdentifiers, which ``ebxml.serialize``
    derives from the entryUUID (:func:`ebxml.serialize.child_id`).  The first render is
    checked byte for byte against ``canonical_xml`` of the same model object."""

    def __init__(
        self, build: Callable[[dict[str, str]], RegistryObject], tokens: dict[str, str]
    ) -> None:
        self._build = build
        self._xml = canonical_xml(build(tokens))
        parent = tokens["entry_uuid"]
        schemes = {s.decode() for s in _SCHEME_ATTRIBUTE.findall(self._xml)} | {""}
        derived = {
            child_id(parent, scheme, index).encode(): (scheme, index)
            for scheme in schemes
            for index in range(_NESTED_MAX)
        }
        self._nested: dict[bytes, tuple[str, int]] = {}
        for found in _ID_ATTRIBUTE.findall(self._xml):
            if found == parent.encode():
                continue
            if found not in derived:
                raise ValueError(f"nested id {found!r} is not derived from the entryUUID")
            self._nested[found] = derived[found]
        # a field the object does not show (a report has no referenceIdList) is left out
        self._placeholders = {
            escape(v).encode(): k for k, v in tokens.items() if escape(v).encode() in self._xml
        }
        tokens_found = [*self._placeholders, *self._nested]
        pattern = re.compile(b"(" + b"|".join(re.escape(t) for t in tokens_found) + b")")
        # literal, token, literal, ..., literal: rendering is one join
        self._pieces = pattern.split(self._xml)
        self._checked = False

    def render(self, values: dict[str, str]) -> bytes:
        out = {token: escape(values[name]).encode() for token, name in self._placeholders.items()}
        parent = values["entry_uuid"]
        for token, (scheme, index) in self._nested.items():
            out[token] = child_id(parent, scheme, index).encode()
        pieces = self._pieces[:]
        pieces[1::2] = [out[token] for token in pieces[1::2]]
        xml = b"".join(pieces)
        if not self._checked:
            if xml != canonical_xml(self._build(values)):
                raise AssertionError("a bulk-load template differs from the canonical XML")
            self._checked = True
        return xml


_ENTRY_TOKENS = {
    "entry_uuid": f"{UUID_PREFIX}00000000-0000-4000-8000-0000000b0001",
    "unique_id": "2.25.9999999999999999999999990001",
    "patient_id": "BULKTOKENPATIENT^^^&1.2.3&ISO",
    "creation_time": "BULKTOKENCREATIONTIME",
    "service_start_time": "BULKTOKENSERVICESTART",
    "service_stop_time": "BULKTOKENSERVICESTOP",
    "hash": "BULKTOKENHASH",
    "size": "909090909090909",
    "study_uid": "2.25.9999999999999999999999990002",
}
_SUBMISSION_SET_TOKENS = {
    "entry_uuid": f"{UUID_PREFIX}00000000-0000-4000-8000-0000000b0002",
    "unique_id": "2.25.9999999999999999999999990003",
    "patient_id": "BULKTOKENPATIENT^^^&1.2.3&ISO",
    "submission_time": "BULKTOKENSUBMISSIONTIME",
}
_ASSOCIATION_TOKENS = {
    "entry_uuid": f"{UUID_PREFIX}00000000-0000-4000-8000-0000000b0003",
    "source": f"{UUID_PREFIX}00000000-0000-4000-8000-0000000b0004",
    "target": f"{UUID_PREFIX}00000000-0000-4000-8000-0000000b0005",
}


def _entry_values(v: dict[str, str]) -> EntryValues:
    return EntryValues(**{**v, "size": int(v["size"])})  # type: ignore[arg-type]


class Templates:
    """A template per profile, the SubmissionSet's and the HasMember association's, for
    one repository and one Document Source (``source_id``)."""

    def __init__(self, repository_unique_id: str, source_id: str) -> None:
        def entry(profile: Profile) -> ObjectTemplate:
            return ObjectTemplate(
                lambda v: document_entry(profile, _entry_values(v), repository_unique_id),
                _ENTRY_TOKENS,
            )

        self.entries = [entry(p) for p in PROFILES]
        self.submission_set = ObjectTemplate(
            lambda v: submission_set(
                v["entry_uuid"], v["unique_id"], v["patient_id"], v["submission_time"],
                source_id,
            ),
            _SUBMISSION_SET_TOKENS,
        )  # fmt: skip
        self.association = ObjectTemplate(
            lambda v: has_member(v["entry_uuid"], v["source"], v["target"]), _ASSOCIATION_TOKENS
        )


__all__ = [
    "PROFILES",
    "STUDY_INSTANCE_UID",
    "SUBMISSION_AUTHOR",
    "SUBMISSION_CONTENT_TYPE",
    "EntryValues",
    "ObjectTemplate",
    "Profile",
    "Templates",
    "document_entry",
    "has_member",
    "submission_set",
]
