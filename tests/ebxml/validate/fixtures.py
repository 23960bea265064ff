"""One valid message of each kind, as model objects, for the validation tests.

Each test takes one of these, makes one change and expects one finding.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from ebxml.hl7 import patient_id
from ebxml.messages import DocumentContent, ProvideAndRegisterRequest
from ebxml.model import Association, Author, Code, DocumentEntry, Folder, Submission, SubmissionSet
from ebxml.vocabulary import SUBMISSION_SET_STATUS_ORIGINAL, AssociationType

PATIENT = patient_id("PID-1", "1.3.6.1.4.1.21367.2005.3.7")
OTHER_PATIENT = patient_id("PID-2", "1.3.6.1.4.1.21367.2005.3.7")
REPOSITORY = "1.3.6.1.4.1.21367.2010.1.2.1125"

SS_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000001"
DE_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000002"
FOLDER_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000003"
SS_DE_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000004"
SS_FOLDER_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000005"
FOLDER_DE_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000006"
SS_FOLDER_DE_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000007"
EXISTING_DE_ID = "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-0000000000aa"

SYMBOLIC_IDS = {"SubmissionSet01": SS_ID, "Document01": DE_ID, "Folder01": FOLDER_ID}

CONTENT = b"<ClinicalDocument/>"
CONTENT_SHA1 = hashlib.sha1(CONTENT).hexdigest()


def code(value: str, scheme: str = "1.3.6.1.4.1.21367.100.1", display: str = "Display") -> Code:
    return Code(value, scheme, display)


AUTHOR = Author(
    person="^Welby^Marcus^^^Dr",
    institutions=("Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.45",),
    roles=("Attending",),
    specialties=("Orthopedic",),
    telecommunications=("^^Internet^marcus@example.org",),
)


def document_entry(**changes: object) -> DocumentEntry:
    """A stable DocumentEntry complete enough for ITI-42 (XDS DR column)."""
    entry = DocumentEntry(
        entry_uuid=DE_ID,
        unique_id="1.3.6.1.4.1.21367.2005.3.99.1.1010",
        patient_id=PATIENT,
        mime_type="text/xml",
        title="Discharge summary",
        class_code=code("DEMO-Consult"),
        type_code=code("34108-1", "2.16.840.1.113883.6.1", "Outpatient Note"),
        format_code=code("urn:ihe:pcc:xphr:2007", "1.3.6.1.4.1.19376.1.2.3", "XPHR"),
        healthcare_facility_type_code=code("Outpatient"),
        practice_setting_code=code("General Medicine"),
        confidentiality_codes=(code("N", "2.16.840.1.113883.5.25", "Normal"),),
        event_codes=(code("T-D8200", "SNM3", "Arm"),),
        authors=(AUTHOR,),
        creation_time="20240229101500",
        service_start_time="200412230800",
        service_stop_time="200412230801",
        hash=CONTENT_SHA1,
        size=len(CONTENT),
        repository_unique_id=REPOSITORY,
        language_code="en-US",
        legal_authenticator="^Welby^Marcus^^^Dr",
        source_patient_id="jd12323^^^wsh",
        source_patient_info=("PID-3|pid1^^^domain", "PID-5|Doe^John^^^"),
        reference_ids=("1.2.3.4^^^^urn:ihe:iti:xds:2016:studyInstanceUID",),
    )
    return replace(entry, **changes)


def submission_set(**changes: object) -> SubmissionSet:
    ss = SubmissionSet(
        entry_uuid=SS_ID,
        unique_id="1.3.6.1.4.1.21367.2005.3.99.1.2010",
        source_id="1.3.6.1.4.1.21367.2005.3.99.2",
        patient_id=PATIENT,
        submission_time="20240301120000",
        content_type_code=code("Initial evaluation"),
        authors=(AUTHOR,),
        intended_recipients=("Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.45|^Welby^Marcus",),
        title="Submission",
    )
    return replace(ss, **changes)


def folder(**changes: object) -> Folder:
    f = Folder(
        entry_uuid=FOLDER_ID,
        unique_id="1.3.6.1.4.1.21367.2005.3.99.1.3010",
        patient_id=PATIENT,
        code_list=(code("Referrals"),),
        title="Referral folder",
    )
    return replace(f, **changes)


def has_member(entry_uuid: str, source: str, target: str, status: str | None = None) -> Association:
    return Association(entry_uuid, AssociationType.HAS_MEMBER, source, target, status)


def associations() -> tuple[Association, ...]:
    return (
        has_member(SS_DE_ID, SS_ID, DE_ID, SUBMISSION_SET_STATUS_ORIGINAL),
        has_member(SS_FOLDER_ID, SS_ID, FOLDER_ID),
        has_member(FOLDER_DE_ID, FOLDER_ID, DE_ID),
        has_member(SS_FOLDER_DE_ID, SS_ID, FOLDER_DE_ID),
    )


def register_submission(**changes: object) -> Submission:
    """A valid ITI-42 Register Document Set-b: SubmissionSet, DocumentEntry, Folder."""
    submission = Submission(
        submission_set=submission_set(),
        document_entries=(document_entry(),),
        folders=(folder(),),
        associations=associations(),
        symbolic_ids=dict(SYMBOLIC_IDS),
    )
    return replace(submission, **changes)


def provide_submission(**changes: object) -> Submission:
    """A valid ITI-41 submission: as ITI-42 but without what the repository adds."""
    entry = document_entry(hash=None, size=None, repository_unique_id=None)
    return register_submission(document_entries=(entry,), **changes)


def with_entry(submission: Submission, **changes: object) -> Submission:
    """``submission`` with its (first) DocumentEntry changed."""
    first, *rest = submission.document_entries
    return replace(submission, document_entries=(replace(first, **changes), *rest))


def with_association(submission: Submission, *added: Association) -> Submission:
    return replace(submission, associations=(*submission.associations, *added))


def without_association(submission: Submission, entry_uuid: str) -> Submission:
    kept = tuple(a for a in submission.associations if a.entry_uuid != entry_uuid)
    return replace(submission, associations=kept)


def document(document_id: str = "Document01", **changes: object) -> DocumentContent:
    content = DocumentContent(
        id=document_id,
        path=Path("spool/part-1"),
        size=len(CONTENT),
        sha1=CONTENT_SHA1,
        content_type="text/xml",
        content_id="part-1@example.org",
    )
    return replace(content, **changes)


def provide_request(
    submission: Submission | None = None, *documents: DocumentContent
) -> ProvideAndRegisterRequest:
    """A valid ITI-41 request: the submission and one document for its entry."""
    return ProvideAndRegisterRequest(submission or provide_submission(), documents or (document(),))
