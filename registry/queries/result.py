"""The one row shape every stored query selects, whatever object kinds it returns.

``kind`` orders the response (SubmissionSets, then DocumentEntries, Folders,
Associations), ``row_id`` orders within a kind (registration order); ``xml`` and
``status`` make the LeafClass ``StoredObject``; ``patient_id`` lets the dispatcher see
a result that spans several patients (Associations have none).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from sqlalchemy import Integer, String, cast, literal, null

from registry.tables import AssociationRow, DocumentEntryRow, FolderRow, SubmissionSetRow

RESULT_COLUMNS = ("kind", "row_id", "entry_uuid", "xml", "status", "patient_id", "home")


class ResultKind(IntEnum):
    SUBMISSION_SET = 0
    DOCUMENT_ENTRY = 1
    FOLDER = 2
    ASSOCIATION = 3


_KIND_OF = {
    SubmissionSetRow: ResultKind.SUBMISSION_SET,
    DocumentEntryRow: ResultKind.DOCUMENT_ENTRY,
    FolderRow: ResultKind.FOLDER,
}


def object_columns(row: type[SubmissionSetRow | DocumentEntryRow | FolderRow]) -> list[Any]:
    """The result columns of a SubmissionSet, DocumentEntry or Folder table."""
    return [
        literal(int(_KIND_OF[row]), Integer).label("kind"),
        row.id.label("row_id"),
        row.entry_uuid.label("entry_uuid"),
        row.xml.label("xml"),
        row.status.label("status"),
        row.patient_id.label("patient_id"),
        row.home.label("home"),
    ]


def association_columns() -> list[Any]:
    """The result columns of the association table (no patient)."""
    a = AssociationRow
    return [
        literal(int(ResultKind.ASSOCIATION), Integer).label("kind"),
        a.id.label("row_id"),
        a.entry_uuid.label("entry_uuid"),
        a.xml.label("xml"),
        a.status.label("status"),
        cast(null(), String).label("patient_id"),
        a.home.label("home"),
    ]


__all__ = ["RESULT_COLUMNS", "ResultKind", "association_columns", "object_columns"]
