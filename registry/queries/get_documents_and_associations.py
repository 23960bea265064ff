"""GetDocumentsAndAssociations (ITI TF-2 3.18.4.1.2.3.7.8): DocumentEntries by
entryUUID or uniqueId, and every Association with one of them as source or target."""

from __future__ import annotations

from sqlalchemy import CompoundSelect, or_, select, union_all

from ebxml.query import GetDocumentsAndAssociationsQuery
from registry.queries.get_documents import documents_condition
from registry.queries.result import association_columns, object_columns
from registry.tables import AssociationRow, DocumentEntryRow

DE = DocumentEntryRow


def build(params: GetDocumentsAndAssociationsQuery) -> CompoundSelect:
    entries = select(DE.entry_uuid).where(documents_condition(params))
    a = AssociationRow
    return union_all(
        select(*object_columns(DE)).where(documents_condition(params)),
        select(*association_columns()).where(
            or_(a.source_uuid.in_(entries), a.target_uuid.in_(entries))
        ),
    )


__all__ = ["build"]
