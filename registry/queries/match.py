"""SQL conditions for stored-query matching (ITI TF-2 3.18.4.1.2.3).

Each function returns SQLAlchemy Core boolean clauses for one kind of parameter; the
query modules put them together into one statement.  Nothing here executes SQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, bindparam, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from ebxml.model import Code
from registry.tables import (
    DocumentEntryAuthorRow,
    DocumentEntryCodeRow,
    DocumentEntryRow,
    FolderCodeRow,
    FolderRow,
    SubmissionSetAuthorRow,
    SubmissionSetRow,
    dtm_key,
)

Column = InstrumentedAttribute

# The bind parameter that names the patient in the statement of a by-patient query
# (FindDocuments, FindSubmissionSets, FindFolders, GetAll): built once, such a statement
# serves every patient, each query run with its own id (``registry.stored_query``).
PATIENT_PARAM = "patient_id"


def patient_is(patient_column: Column[str], patient_id: str) -> ColumnElement[bool]:
    """The object belongs to ``patient_id``, bound by name (:data:`PATIENT_PARAM`)."""
    return patient_column == bindparam(PATIENT_PARAM, patient_id)


def code_in(
    code_column: Column[str | None], scheme_column: Column[str | None], codes: Sequence[Code]
) -> ColumnElement[bool]:
    """The object's code is one of ``codes``; a code matches on code and codingScheme
    together (ITI TF-2 3.18.4.1.2.3.5: code^^scheme)."""
    return or_(*(and_(code_column == c.code, scheme_column == c.scheme) for c in codes))


def document_entry_code_groups(
    kind: str, groups: Sequence[Sequence[Code]]
) -> list[ColumnElement[bool]]:
    """A multi-valued DocumentEntry code (eventCodeList, confidentialityCode): the entry
    has one code of every group (ITI TF-2 3.18.4.1.2.3.5: each Slot is ORed, the Slots
    ANDed)."""
    code = DocumentEntryCodeRow
    return [
        exists(
            select(code.id).where(
                code.document_entry_id == DocumentEntryRow.id,
                code.kind == kind,
                code_in(code.code, code.scheme, group),
            )
        )
        for group in groups
    ]


def folder_code_groups(groups: Sequence[Sequence[Code]]) -> list[ColumnElement[bool]]:
    """Folder.codeList: the Folder has one code of every group (ITI TF-2
    3.18.4.1.2.3.7.3, each Slot ORed, the Slots ANDed)."""
    code = FolderCodeRow
    return [
        exists(
            select(code.id).where(
                code.folder_id == FolderRow.id, code_in(code.code, code.scheme, group)
            )
        )
        for group in groups
    ]


def time_range(
    key_column: Column[str | None], time_from: str | None, time_to: str | None
) -> list[ColumnElement[bool]]:
    """``time_from <= value < time_to`` (ITI TF-2 3.18.4.1.2.3.7.1: ...From is inclusive,
    ...To exclusive), compared on the zero-padded sortable keys of ``tables.dtm_key``
    so DTMs of different precision compare as the times they start.  An object without
    the attribute is not filtered out by a range on it: the range constrains the values
    that exist, it does not require the attribute."""
    bounds: list[ColumnElement[bool]] = []
    if time_from is not None:
        bounds.append(key_column >= dtm_key(time_from))
    if time_to is not None:
        bounds.append(key_column < dtm_key(time_to))
    if not bounds:
        return []
    return [or_(key_column.is_(None), and_(*bounds))]


def status_in(status_column: Column[str], statuses: Sequence[str]) -> ColumnElement[bool]:
    """availabilityStatus is one of ``statuses`` (ORed, ITI TF-2 3.18.4.1.2.3.5)."""
    return status_column.in_(list(statuses))


def like_any(column: Column[str], patterns: Sequence[str]) -> ColumnElement[bool]:
    """``column`` matches one of the SQL LIKE ``patterns`` (``%`` any run, ``_`` one
    character; ITI TF-2 3.18.4.1.2.3.7.1 authorPerson).  Matched without regard to case,
    the same on every database."""
    return or_(*(column.ilike(p) for p in patterns))


def document_entry_author_like(patterns: Sequence[str]) -> ColumnElement[bool]:
    """One author of the DocumentEntry has an authorPerson matching a pattern."""
    author = DocumentEntryAuthorRow
    return exists(
        select(author.id).where(
            author.document_entry_id == DocumentEntryRow.id,
            like_any(author.author_person, patterns),
        )
    )


def submission_set_author_like(patterns: Sequence[str]) -> ColumnElement[bool]:
    """One author of the SubmissionSet has an authorPerson matching a pattern."""
    author = SubmissionSetAuthorRow
    return exists(
        select(author.id).where(
            author.submission_set_id == SubmissionSetRow.id,
            like_any(author.author_person, patterns),
        )
    )


__all__ = [
    "PATIENT_PARAM",
    "code_in",
    "document_entry_author_like",
    "document_entry_code_groups",
    "folder_code_groups",
    "submission_set_author_like",
    "like_any",
    "patient_is",
    "status_in",
    "time_range",
]
