"""GetSubmissionSetAndContents (ITI TF-2 3.18.4.1.2.3.7.10).

Returns the SubmissionSet, the DocumentEntries and Folders it HasMember (entries
filtered by formatCode, confidentialityCode and objectType), and the HasMember
Associations among them: SubmissionSet -> entry, SubmissionSet -> Folder, and the
Folder -> entry Associations the SubmissionSet HasMember, with the SubmissionSet's
HasMember of each.  One statement: a UNION ALL of one select per object kind.
"""

from __future__ import annotations

from sqlalchemy import CompoundSelect, Select, and_, or_, select, union_all

from ebxml.query import GetSubmissionSetAndContentsQuery
from ebxml.vocabulary import AssociationType
from registry.queries.match import code_in, document_entry_code_groups
from registry.queries.result import association_columns, object_columns
from registry.tables import (
    CODE_KIND_CONFIDENTIALITY,
    AssociationRow,
    DocumentEntryRow,
    FolderRow,
    SubmissionSetRow,
)

DE = DocumentEntryRow
SS = SubmissionSetRow


def _submission_set_condition(params: GetSubmissionSetAndContentsQuery):
    if params.entry_uuid is not None:
        return SS.entry_uuid == params.entry_uuid
    return SS.unique_id == params.unique_id


def _member_uuids(submission_set_uuid) -> Select:
    """targetObject of the SubmissionSet's HasMember Associations."""
    a = AssociationRow
    return select(a.target_uuid).where(
        a.source_uuid == submission_set_uuid, a.association_type == AssociationType.HAS_MEMBER
    )


def _entry_uuids(params: GetSubmissionSetAndContentsQuery, submission_set_uuid) -> Select:
    conditions = [
        DE.entry_uuid.in_(_member_uuids(submission_set_uuid)),
        DE.object_type.in_(params.entry_type),
    ]
    if params.format_code:
        conditions.append(code_in(DE.format_code, DE.format_code_scheme, params.format_code))
    conditions.extend(
        document_entry_code_groups(CODE_KIND_CONFIDENTIALITY, params.confidentiality_code)
    )
    return select(DE.entry_uuid).where(*conditions)


def build(params: GetSubmissionSetAndContentsQuery) -> CompoundSelect:
    ss_uuid = select(SS.entry_uuid).where(_submission_set_condition(params)).scalar_subquery()
    entries = _entry_uuids(params, ss_uuid)
    folders = select(FolderRow.entry_uuid).where(FolderRow.entry_uuid.in_(_member_uuids(ss_uuid)))

    member = AssociationRow.__table__.alias("member")  # Folder -> entry, a member of the SS
    folder_links = select(member.c.entry_uuid).where(
        member.c.entry_uuid.in_(_member_uuids(ss_uuid)),
        member.c.association_type == AssociationType.HAS_MEMBER,
        member.c.source_uuid.in_(folders),
        member.c.target_uuid.in_(entries),
    )
    a = AssociationRow
    associations = select(*association_columns()).where(
        a.association_type == AssociationType.HAS_MEMBER,
        or_(
            and_(
                a.source_uuid == ss_uuid,
                or_(
                    a.target_uuid.in_(entries),
                    a.target_uuid.in_(folders),
                    a.target_uuid.in_(folder_links),
                ),
            ),
            a.entry_uuid.in_(folder_links),
        ),
    )
    return union_all(
        select(*object_columns(SS)).where(_submission_set_condition(params)),
        select(*object_columns(DE)).where(DE.entry_uuid.in_(entries)),
        select(*object_columns(FolderRow)).where(FolderRow.entry_uuid.in_(folders)),
        associations,
    )


__all__ = ["build"]
