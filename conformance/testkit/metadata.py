"""Metadata files made ready to send, the way the toolkit prepares them.

- ``$name$`` symbols (from UseId / UseReport / UseXPath) are replaced in every text and
  attribute value; values are substituted after parsing, so no escaping is needed.
- uniqueIds: each DocumentEntry, SubmissionSet and Folder gets a fresh uniqueId in place
  of the value in the file (unless ``NoAssignUids``), logged as ``AssignedUids``.
- patient id: every patientId ExternalIdentifier is set to the test's patient (unless
  ``NoPatientId``), logged as ``AssignedPatientId``.
- ``AssignUuids``: every symbolic id (ITI TF-3 4.2.3.1.2) becomes a UUID, references
  included, logged as ``AssignedUuids``.
The logs are keyed by the object's id as written in the file (``Document01``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lxml import etree

from ebxml.vocabulary import (
    NS_RIM,
    UUID_PREFIX,
    DocumentEntryIdentifier,
    FolderIdentifier,
    SubmissionSetIdentifier,
)

UNIQUE_ID_SCHEMES = frozenset(
    {
        DocumentEntryIdentifier.UNIQUE_ID,
        SubmissionSetIdentifier.UNIQUE_ID,
        FolderIdentifier.UNIQUE_ID,
    }
)
PATIENT_ID_SCHEMES = frozenset(
    {
        DocumentEntryIdentifier.PATIENT_ID,
        SubmissionSetIdentifier.PATIENT_ID,
        FolderIdentifier.PATIENT_ID,
    }
)
# attributes that hold the id of another object (ebRIM 3.0 rim.xsd)
REFERENCE_ATTRIBUTES = ("id", "registryObject", "classifiedObject", "sourceObject", "targetObject")
_EXTERNAL_IDENTIFIER = f"{{{NS_RIM}}}ExternalIdentifier"


@dataclass(slots=True)
class Prepared:
    element: etree._Element
    assigned_uids: dict[str, str] = field(default_factory=dict)
    assigned_uuids: dict[str, str] = field(default_factory=dict)
    assigned_patient_ids: dict[str, str] = field(default_factory=dict)


def substitute(root: etree._Element, symbols: Mapping[str, str]) -> etree._Element:
    """Replace each symbol (``$patient_id$``...) in every text and attribute value."""
    if not symbols:
        return root
    ordered = sorted(symbols.items(), key=lambda kv: -len(kv[0]))

    def fill(text: str) -> str:
        for symbol, value in ordered:
            text = text.replace(symbol, value)
        return text

    for elem in root.iter():
        if not isinstance(elem.tag, str):
            continue
        if elem.text:
            elem.text = fill(elem.text)
        if elem.tail:
            elem.tail = fill(elem.tail)
        for key, value in elem.attrib.items():
            elem.set(key, fill(value))
    return root


def _owner(identifier: etree._Element) -> str:
    owner = identifier.get("registryObject")
    if owner:
        return owner
    parent = identifier.getparent()
    return parent.get("id", "") if parent is not None else ""


def prepare_submission(
    root: etree._Element,
    *,
    assign_uuids: bool,
    assign_uids: bool,
    patient_id: str | None,
    new_uid: Callable[[], str],
    new_uuid: Callable[[], str] | None = None,
) -> Prepared:
    """Apply the toolkit's uniqueId, patient id and UUID assignment to a
    SubmitObjectsRequest (ebRIM 3.0), in place."""
    prepared = Prepared(root)
    for identifier in root.iter(_EXTERNAL_IDENTIFIER):
        scheme = identifier.get("identificationScheme", "")
        owner = _owner(identifier)
        if scheme in UNIQUE_ID_SCHEMES and assign_uids:
            identifier.set("value", new_uid())
        if scheme in UNIQUE_ID_SCHEMES:
            prepared.assigned_uids[owner] = identifier.get("value", "")
        if scheme in PATIENT_ID_SCHEMES and patient_id is not None:
            identifier.set("value", patient_id)
        if scheme in PATIENT_ID_SCHEMES:
            prepared.assigned_patient_ids[owner] = identifier.get("value", "")
    if assign_uuids:
        make = new_uuid or (lambda: f"{UUID_PREFIX}{uuid.uuid4()}")
        mapping: dict[str, str] = {}
        for elem in root.iter():
            sent = elem.get("id") if isinstance(elem.tag, str) else None
            if sent and not sent.startswith(UUID_PREFIX) and sent not in mapping:
                mapping[sent] = make()
        for elem in root.iter():
            if not isinstance(elem.tag, str):
                continue
            for attribute in REFERENCE_ATTRIBUTES:
                value = elem.get(attribute)
                if value in mapping:
                    elem.set(attribute, mapping[value])
        prepared.assigned_uuids.update(mapping)
    return prepared


__all__ = [
    "PATIENT_ID_SCHEMES",
    "UNIQUE_ID_SCHEMES",
    "Prepared",
    "prepare_submission",
    "substitute",
]
