"""Registry contents for the stored-query tests, stored through the real ITI-42 path
(``registry.register.register_document_set``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from ebxml.messages import AdhocQueryResponse
from ebxml.model import Association, DocumentEntry, Folder, Submission, SubmissionSet
from ebxml.vocabulary import (
    SUBMISSION_SET_STATUS_ORIGINAL,
    AssociationType,
)
from registry.patients import register_patient
from registry.register import register_document_set

# Ids unique to this run: the PostgreSQL database is shared with other test modules.
RUN = uuid.uuid4().hex[:8]
P1 = f"p1-{RUN}^^^&1.2.3&ISO"
P2 = f"p2-{RUN}^^^&1.2.3&ISO"


def new_oid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def new_uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


@dataclass
class Submitted:
    submission_set: SubmissionSet
    entries: tuple[DocumentEntry, ...]
    folders: tuple[Folder, ...]
    associations: tuple[Association, ...]


@dataclass
class Store:
    """Builds and registers submissions in one session."""

    session: Session

    def patient(self, patient_id: str) -> str:
        register_patient(self.session, patient_id)
        return patient_id

    def doc(self, **fields: object) -> DocumentEntry:
        return DocumentEntry(entry_uuid=new_uuid(), unique_id=new_oid(), **fields)  # type: ignore[arg-type]

    def folder(self, **fields: object) -> Folder:
        return Folder(entry_uuid=new_uuid(), unique_id=new_oid(), **fields)  # type: ignore[arg-type]

    def submit(
        self,
        patient_id: str,
        *entries: DocumentEntry,
        folders: Sequence[Folder] = (),
        folder_members: Sequence[tuple[Folder, DocumentEntry]] = (),
        associations: Sequence[Association] = (),
        set_fields: dict[str, object] | None = None,
    ) -> Submitted:
        """One SubmissionSet HasMember every entry and folder; each (folder, entry) in
        ``folder_members`` gets a Folder->entry HasMember the SubmissionSet HasMember."""
        ss = SubmissionSet(
            entry_uuid=new_uuid(),
            unique_id=new_oid(),
            source_id="1.2.3.7",
            patient_id=patient_id,
            submission_time="20240101120000",
        )
        ss = replace(ss, **(set_fields or {}))
        entries = tuple(replace(e, patient_id=patient_id) for e in entries)
        folders = tuple(replace(f, patient_id=patient_id) for f in folders)
        has_member = AssociationType.HAS_MEMBER
        links = [
            Association(
                new_uuid(), has_member, ss.entry_uuid, e.entry_uuid, SUBMISSION_SET_STATUS_ORIGINAL
            )
            for e in entries
        ]
        links += [Association(new_uuid(), has_member, ss.entry_uuid, f.entry_uuid) for f in folders]
        for folder, entry in folder_members:
            member = Association(new_uuid(), has_member, folder.entry_uuid, entry.entry_uuid)
            links += [member, Association(new_uuid(), has_member, ss.entry_uuid, member.entry_uuid)]
        links += associations
        submission = Submission(ss, entries, folders, tuple(links))
        response = register_document_set(self.session, submission)
        assert response.ok, response.errors
        return Submitted(ss, entries, folders, tuple(links))


def ids(response: AdhocQueryResponse) -> list[str]:
    """entryUUIDs of a response, LeafClass or ObjectRef, in order."""
    return [o.entry_uuid for o in response.objects] + [r.id for r in response.object_refs]
