"""GetDocuments (ITI TF-2 3.18.4.1.2.3.7.5): DocumentEntries by entryUUID or uniqueId."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select

from ebxml.query import GetDocumentsAndAssociationsQuery, GetDocumentsQuery
from registry.queries.result import object_columns
from registry.tables import DocumentEntryRow

DE = DocumentEntryRow


def documents_condition(
    params: GetDocumentsQuery | GetDocumentsAndAssociationsQuery,
) -> ColumnElement[bool]:
    """The entries named by entryUUID, or by uniqueId (every version of it)."""
    if params.entry_uuid:
        return DE.entry_uuid.in_(params.entry_uuid)
    return DE.unique_id.in_(params.unique_id)


def build(params: GetDocumentsQuery) -> Select:
    return select(*object_columns(DE)).where(documents_condition(params))


__all__ = ["build", "documents_condition"]
