"""Valid ITI-42 submissions, built from the model, for the registry tests.

Each builder returns a Submission that passes metadata validation; tests make one
change to it and expect one error code.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy.orm import Session

from ebxml.model import Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet
from ebxml.vocabulary import (
    SUBMISSION_SET_STATUS_ORIGINAL,
    UUID_PREFIX,
    AssociationType,
)
from registry.patients import register_patient

PATIENT = "PAT-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
OTHER_PATIENT = "PAT-2^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
REPOSITORY = "1.3.6.1.4.1.21367.13.40.1"
HASH = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
OTHER_HASH = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"


def new_uuid() -> str:
    return f"{UUID_PREFIX}{uuid.uuid4()}"


def new_oid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def document_entry(patient: str = PATIENT, **changes: object) -> DocumentEntry:
    entry = DocumentEntry(
        entry_uuid=new_uuid(),
        unique_id=new_oid(),
        patient_id=patient,
        mime_type="application/dicom",
        class_code=Code("IMG", "1.3.6.1.4.1.19376.1.2.6.1", "Imaging"),
        type_code=Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
        format_code=Code(
            "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection"
        ),
        healthcare_facility_type_code=Code(
            "RADDX", "2.16.840.1.113883.5.11", "Radiology diagnostics"
        ),
        practice_setting_code=Code("R-3027B", "SRT", "Radiology"),
        confidentiality_codes=(Code("N", "2.16.840.1.113883.5.25", "Normal"),),
        event_codes=(
            Code("CT", "1.2.840.10008.2.16.4", "Computed Tomography"),
            Code("T-D3000", "SRT", "Chest"),
        ),
        authors=(Author(person="^Welby^Marcus^^^Dr"),),
        creation_time="20240105120000",
        service_start_time="202401051100",
        service_stop_time="202401051130",
        hash=HASH,
        language_code="en-US",
        title="CT chest",
        size=1024,
        repository_unique_id=REPOSITORY,
        source_patient_id="LOCAL-1^^^&1.2.3&ISO",
        reference_ids=("1.2.3.4.5^^^^urn:ihe:iti:xds:2016:studyInstanceUID",),
    )
    return replace(entry, **changes)


def submission_set(patient: str = PATIENT, **changes: object) -> SubmissionSet:
    ss = SubmissionSet(
        entry_uuid=new_uuid(),
        unique_id=new_oid(),
        source_id="1.3.6.1.4.1.21367.13.80.1",
        patient_id=patient,
        submission_time="20240105121500",
        content_type_code=Code("Imaging", "1.3.6.1.4.1.21367.100.1", "Imaging"),
        authors=(Author(person="^Blanca^Jane"),),
    )
    return replace(ss, **changes)


def folder(patient: str = PATIENT, **changes: object) -> Folder:
    f = Folder(
        entry_uuid=new_uuid(),
        unique_id=new_oid(),
        patient_id=patient,
        title="Referrals",
        code_list=(Code("Referrals", "1.3.6.1.4.1.21367.100.1", "Referrals"),),
    )
    return replace(f, **changes)


def has_member(source: str, target: str, status: str | None = None) -> Association:
    return Association(new_uuid(), AssociationType.HAS_MEMBER, source, target, status)


def submit(
    *entries: DocumentEntry,
    ss: SubmissionSet | None = None,
    folders: tuple[Folder, ...] = (),
    extra: tuple[Association, ...] = (),
    patient: str = PATIENT,
) -> Submission:
    """A submission of ``entries`` (one new one if none), each a member of the set;
    each folder holds every entry."""
    entries = entries or (document_entry(patient),)
    ss = ss or submission_set(patient)
    associations = [
        has_member(ss.entry_uuid, d.entry_uuid, SUBMISSION_SET_STATUS_ORIGINAL) for d in entries
    ]
    for f in folders:
        associations.append(has_member(ss.entry_uuid, f.entry_uuid))
        for d in entries:
            membership = has_member(f.entry_uuid, d.entry_uuid)
            associations.extend([membership, has_member(ss.entry_uuid, membership.entry_uuid)])
    associations.extend(extra)
    return Submission(
        submission_set=ss,
        document_entries=entries,
        folders=folders,
        associations=tuple(associations),
    )


def relationship(kind: str, replacement: DocumentEntry, original: str) -> Association:
    return Association(new_uuid(), kind, replacement.entry_uuid, original)


def known_patients(session: Session, *patients: str) -> None:
    for patient in patients or (PATIENT, OTHER_PATIENT):
        register_patient(session, patient)
    session.commit()
