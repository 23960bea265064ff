"""The one row shape every stored query selects, whatever object kinds it returns.

``kind`` orders the response (SubmissionSets, then DocumentEntries, Folders,
Associations), ``row_id`` orders within a kind (registration order); ``xml`` and
``status`` make the LeafClass ``StoredObject``; ``patient_id`` lets the dispatcher see
a result that spans several patients (Associations have none); ``level_1_hidden`` is
true for what a ``$MetadataLevel`` 1 answer leaves out.

ITI TF-2 3.18.4.1.2.3.5.1 ($MetadataLevel): a Document Consumer asking for level 1
does not understand Metadata Update (ITI-57), so a level-1 answer holds none of what
only Metadata Update makes: versions of a DocumentEntry or Folder older than the
latest one (same logicalId, lower version), Deprecated Folders, Deprecated
Associations and UpdateAvailabilityStatus Associations.  A level-2 answer holds all.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
)

from ebxml.vocabulary import AssociationType, AvailabilityStatus
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow, SubmissionSetRow

RESULT_COLUMNS = (
    "kind",
    "row_id",
    "entry_uuid",
    "xml",
    "status",
    "patient_id",
    "home",
    "level_1_hidden",
)


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


def superseded(row: type[DocumentEntryRow | FolderRow]) -> ColumnElement[bool]:
    """A later version of the object exists: same logicalId, higher version (the
    rim:VersionInfo/@versionName a registry counts up from 1 under Metadata Update,
    ITI-57).  Versions compare as whole numbers do - longer is higher, then digit by
    digit - without a cast, so a submitted versionName that is not a number (ebRIM's
    default is "1.1") cannot make the query fail.  Probes the (logical_id, version)
    unique index."""
    # a Core alias of the table: the same SQL as an ORM alias, built in a fraction
    # of the time (this runs for every query)
    newer = row.__table__.alias().c  # type: ignore[attr-defined]
    longer = func.length(newer.version) > func.length(row.version)
    same_length_higher = and_(
        func.length(newer.version) == func.length(row.version), newer.version > row.version
    )
    return exists(
        select(newer.id).where(newer.logical_id == row.logical_id, or_(longer, same_length_higher))
    )


# what a level-1 answer leaves out, per object table
_LEVEL_1_HIDDEN: dict[type, Callable[[], ColumnElement[bool]]] = {
    SubmissionSetRow: false,
    DocumentEntryRow: lambda: superseded(DocumentEntryRow),
    FolderRow: lambda: or_(
        FolderRow.status == AvailabilityStatus.DEPRECATED, superseded(FolderRow)
    ),
}


def association_level_1_hidden() -> ColumnElement[bool]:
    """A Deprecated or UpdateAvailabilityStatus Association (Metadata Update only)."""
    a = AssociationRow
    return or_(
        a.status == AvailabilityStatus.DEPRECATED,
        a.association_type == AssociationType.UPDATE_AVAILABILITY_STATUS,
    )


# The result columns are the same expressions for every query: built once per table
# (SQL expressions are immutable, so statements share them), not on each request.
@cache
def object_columns(row: type[SubmissionSetRow | DocumentEntryRow | FolderRow]) -> tuple[Any, ...]:
    """The result columns of a SubmissionSet, DocumentEntry or Folder table."""
    return (
        literal(int(_KIND_OF[row]), Integer).label("kind"),
        row.id.label("row_id"),
        row.entry_uuid.label("entry_uuid"),
        row.xml.label("xml"),
        row.status.label("status"),
        row.patient_id.label("patient_id"),
        row.home.label("home"),
        _LEVEL_1_HIDDEN[row]().label("level_1_hidden"),
    )


@cache
def association_columns() -> tuple[Any, ...]:
    """The result columns of the association table (no patient)."""
    a = AssociationRow
    return (
        literal(int(ResultKind.ASSOCIATION), Integer).label("kind"),
        a.id.label("row_id"),
        a.entry_uuid.label("entry_uuid"),
        a.xml.label("xml"),
        a.status.label("status"),
        cast(null(), String).label("patient_id"),
        a.home.label("home"),
        association_level_1_hidden().label("level_1_hidden"),
    )


__all__ = [
    "RESULT_COLUMNS",
    "ResultKind",
    "association_columns",
    "association_level_1_hidden",
    "object_columns",
    "superseded",
]
