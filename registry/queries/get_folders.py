"""GetFolders (ITI TF-2 3.18.4.1.2.3.7.6) and GetFoldersForDocument (3.18.4.1.2.3.7.12)."""

from __future__ import annotations

from sqlalchemy import Select, select

from ebxml.query import GetFoldersForDocumentQuery, GetFoldersQuery
from ebxml.vocabulary import AssociationType
from registry.queries.result import object_columns
from registry.tables import AssociationRow, DocumentEntryRow, FolderRow

# the identifying parameter given -> the column it names; exactly one is given
_IDENTIFIERS = (
    ("entry_uuid", FolderRow.entry_uuid),
    ("unique_id", FolderRow.unique_id),
    ("logical_id", FolderRow.logical_id),
)


def build(params: GetFoldersQuery) -> Select:
    """Folders by entryUUID, by uniqueId or (Metadata Update) by logicalID."""
    field, column = next((f, c) for f, c in _IDENTIFIERS if getattr(params, f))
    return select(*object_columns(FolderRow)).where(column.in_(getattr(params, field)))


def build_for_document(params: GetFoldersForDocumentQuery) -> Select:
    """The Folders that HasMember the DocumentEntry named by entryUUID or uniqueId."""
    de = DocumentEntryRow
    entries = select(de.entry_uuid).where(
        de.entry_uuid == params.entry_uuid
        if params.entry_uuid is not None
        else de.unique_id == params.unique_id
    )
    a = AssociationRow
    folders = select(a.source_uuid).where(
        a.association_type == AssociationType.HAS_MEMBER, a.target_uuid.in_(entries)
    )
    return select(*object_columns(FolderRow)).where(FolderRow.entry_uuid.in_(folders))


__all__ = ["build", "build_for_document"]
