"""GetDocuments (ITI TF-2 3.18.4.1.2.3.7.5): DocumentEntries by entryUUID, uniqueId or
(Metadata Update) logicalID."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select

from ebxml.query import GetDocumentsAndAssociationsQuery, GetDocumentsQuery
from registry.queries.result import object_columns
from registry.tables import DocumentEntryRow

DE = DocumentEntryRow


# the identifying parameter given -> the column it names; exactly one is given
_IDENTIFIERS = (
    ("entry_uuid", DE.entry_uuid),
    ("unique_id", DE.unique_id),
    ("logical_id", DE.logical_id),
)


def documents_condition(
    params: GetDocumentsQuery | GetDocumentsAndAssociationsQuery,
) -> ColumnElement[bool]:
    """The entries named by entryUUID, by uniqueId or by logicalID (every version of
    the two last; ``$MetadataLevel`` 1 keeps only the latest)."""
    field, column = next((f, c) for f, c in _IDENTIFIERS if getattr(params, f, ()))
    return column.in_(getattr(params, field))


def build(params: GetDocumentsQuery) -> Select:
    return select(*object_columns(DE)).where(documents_condition(params))


__all__ = ["build", "documents_condition"]
