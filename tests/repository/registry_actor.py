"""A real Document Registry for the repository tests: its database beside the
repository's (as ``xdsi serve`` shares one), known patients, and ITI-41 requests whose
metadata the registry's own validation accepts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

from sqlalchemy import Engine

from ebxml.messages import DocumentContent, ProvideAndRegisterRequest
from ebxml.model import Association, Author, Code, DocumentEntry, Submission, SubmissionSet
from ebxml.vocabulary import SUBMISSION_SET_STATUS_ORIGINAL, UUID_PREFIX, AssociationType
from registry import db as registry_db
from registry.patients import register_patient
from registry.service import DocumentRegistry

PATIENT = "REPO-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
OTHER_PATIENT = "REPO-2^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def new_uuid() -> str:
    return f"{UUID_PREFIX}{uuid.uuid4()}"


def new_oid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def open_registry(repository_engine: Engine) -> Iterator[DocumentRegistry]:
    """A migrated registry on the repository's database, both test patients known."""
    url = repository_engine.url.render_as_string(hide_password=False)
    engine = registry_db.make_engine(url)
    try:
        registry_db.upgrade(engine)
        registry = DocumentRegistry(engine)
        with registry.write_sessions.begin() as session:
            for patient in (PATIENT, OTHER_PATIENT):
                register_patient(session, patient)
        yield registry
    finally:
        engine.dispose()


def registrable_entry(patient: str = PATIENT, unique_id: str | None = None) -> DocumentEntry:
    """A DocumentEntry with every attribute ITI-42 requires but those the repository
    sets (hash, size, repositoryUniqueId)."""
    return DocumentEntry(
        entry_uuid=new_uuid(),
        unique_id=unique_id or new_oid(),
        patient_id=patient,
        mime_type="text/plain",
        class_code=Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
        type_code=Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study"),
        format_code=Code(
            "urn:ihe:iti:xds:2017:mimeTypeSufficient", "1.3.6.1.4.1.19376.1.2.3", "Mime type"
        ),
        healthcare_facility_type_code=Code(
            "RADDX", "2.16.840.1.113883.5.11", "Radiology diagnostics"
        ),
        practice_setting_code=Code("R-3027B", "SRT", "Radiology"),
        confidentiality_codes=(Code("N", "2.16.840.1.113883.5.25", "Normal"),),
        authors=(Author(person="^Welby^Marcus^^^Dr"),),
        creation_time="20240105120000",
        language_code="en-US",
        source_patient_id="LOCAL-1^^^&1.2.3&ISO",
    )


def stored_entry(entry: DocumentEntry, repository_unique_id: str) -> DocumentEntry:
    """``entry`` as a repository registers it: hash, size and repositoryUniqueId set."""
    return replace(entry, hash=EMPTY_SHA1, size=0, repository_unique_id=repository_unique_id)


def submission_of(
    *entries: DocumentEntry, patient: str = PATIENT, extra: tuple[Association, ...] = ()
) -> Submission:
    """One SubmissionSet for ``patient`` with each entry its member."""
    submission_set = SubmissionSet(
        entry_uuid=new_uuid(),
        unique_id=new_oid(),
        source_id="1.3.6.1.4.1.21367.13.80.1",
        patient_id=patient,
        submission_time="20240105121500",
        content_type_code=Code("Imaging", "1.3.6.1.4.1.21367.100.1", "Imaging"),
        authors=(Author(person="^Blanca^Jane"),),
    )
    members = tuple(
        Association(
            new_uuid(),
            AssociationType.HAS_MEMBER,
            submission_set.entry_uuid,
            entry.entry_uuid,
            SUBMISSION_SET_STATUS_ORIGINAL,
        )
        for entry in entries
    )
    return Submission(
        submission_set=submission_set, document_entries=entries, associations=members + extra
    )


def registrable_request(
    *pairs: tuple[DocumentEntry, DocumentContent], patient: str = PATIENT
) -> ProvideAndRegisterRequest:
    """An ITI-41 request for ``pairs``, its Documents named by symbolic id."""
    symbolic = {f"Document{n:02d}": entry.entry_uuid for n, (entry, _) in enumerate(pairs, 1)}
    documents = tuple(
        DocumentContent(
            name, content.path, content.size, content.sha1, content.content_type, name + "@test"
        )
        for name, (_, content) in zip(symbolic, pairs, strict=True)
    )
    submission = submission_of(*(entry for entry, _ in pairs), patient=patient)
    return ProvideAndRegisterRequest(replace(submission, symbolic_ids=symbolic), documents)
