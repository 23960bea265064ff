"""GetFolderAndContents (ITI TF-2 3.18.4.1.2.3.7.11): the Folder, the DocumentEntries it
HasMember (filtered by formatCode, confidentialityCode and objectType), and those
Folder -> DocumentEntry HasMember Associations.  One UNION ALL statement."""

from __future__ import annotations

from sqlalchemy import CompoundSelect, Select, select, union_all

from ebxml.query import GetFolderAndContentsQuery
from ebxml.vocabulary import AssociationType
from registry.queries.match import code_in, document_entry_code_groups
from registry.queries.result import association_columns, object_columns
from registry.tables import CODE_KIND_CONFIDENTIALITY, AssociationRow, DocumentEntryRow, FolderRow

DE = DocumentEntryRow


def _folder_condition(params: GetFolderAndContentsQuery):
    if params.entry_uuid is not None:
        return FolderRow.entry_uuid == params.entry_uuid
    return FolderRow.unique_id == params.unique_id


def _entry_uuids(params: GetFolderAndContentsQuery, folder_uuid) -> Select:
    a = AssociationRow
    members = select(a.target_uuid).where(
        a.source_uuid == folder_uuid, a.association_type == AssociationType.HAS_MEMBER
    )
    conditions = [DE.entry_uuid.in_(members), DE.object_type.in_(params.entry_type)]
    if params.format_code:
        conditions.append(code_in(DE.format_code, DE.format_code_scheme, params.format_code))
    conditions.extend(
        document_entry_code_groups(CODE_KIND_CONFIDENTIALITY, params.confidentiality_code)
    )
    return select(DE.entry_uuid).where(*conditions)


def build(params: GetFolderAndContentsQuery) -> CompoundSelect:
    folder_uuid = select(FolderRow.entry_uuid).where(_folder_condition(params)).scalar_subquery()
    entries = _entry_uuids(params, folder_uuid)
    a = AssociationRow
    return union_all(
        select(*object_columns(DE)).where(DE.entry_uuid.in_(entries)),
        select(*object_columns(FolderRow)).where(_folder_condition(params)),
        select(*association_columns()).where(
            a.source_uuid == folder_uuid,
            a.association_type == AssociationType.HAS_MEMBER,
            a.target_uuid.in_(entries),
        ),
    )


__all__ = ["build"]
