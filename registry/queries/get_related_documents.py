"""GetRelatedDocuments (ITI TF-2 3.18.4.1.2.3.7.13): the DocumentEntries related to one
DocumentEntry, and the Associations that relate them.

The originating entry is named by entryUUID or uniqueId.  A relationship is an
Association of one of ``$AssociationTypes`` with the originating entry at either end
and a DocumentEntry of one of the ``$XDSDocumentEntryType`` objectTypes at the other
(RPLC, XFRM, APND, XFRM_RPLC, signs point from the new entry to the original,
IsSnapshotOf from the snapshot to the On-Demand entry: ITI TF-3 4.2.2.2), so both
directions are followed, one step.  The answer holds the related entries, the
originating entry itself, and those Associations - or nothing when there is no such
relationship.  At ``$MetadataLevel`` 1, Deprecated Associations relate nothing.
One UNION ALL statement.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, CompoundSelect, Select, and_, not_, or_, select, union_all

from ebxml.query import GetRelatedDocumentsQuery
from registry.queries.result import (
    association_columns,
    association_level_1_hidden,
    object_columns,
)
from registry.tables import AssociationRow, DocumentEntryRow

DE = DocumentEntryRow


def _originating(params: GetRelatedDocumentsQuery) -> Select:
    # a uniqueId names every version of the entry (Metadata Update)
    named = (
        DE.entry_uuid == params.entry_uuid
        if params.entry_uuid is not None
        else DE.unique_id == params.unique_id
    )
    return select(DE.entry_uuid).where(named)


def _relationship(params: GetRelatedDocumentsQuery) -> list[ColumnElement[bool]]:
    a = AssociationRow
    origin = _originating(params)
    related = select(DE.entry_uuid).where(DE.object_type.in_(params.entry_type))
    conditions = [
        a.association_type.in_(params.association_types),
        or_(
            and_(a.source_uuid.in_(origin), a.target_uuid.in_(related)),
            and_(a.target_uuid.in_(origin), a.source_uuid.in_(related)),
        ),
    ]
    if params.metadata_level == 1:
        conditions.append(not_(association_level_1_hidden()))
    return conditions


def build(params: GetRelatedDocumentsQuery) -> CompoundSelect:
    relationship = _relationship(params)
    a = AssociationRow
    ends = union_all(
        select(a.source_uuid).where(*relationship),
        select(a.target_uuid).where(*relationship),
    )
    return union_all(
        select(*object_columns(DE)).where(DE.entry_uuid.in_(ends)),
        select(*association_columns()).where(*relationship),
    )


__all__ = ["build"]
