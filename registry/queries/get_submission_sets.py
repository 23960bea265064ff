"""GetSubmissionSets (ITI TF-2 3.18.4.1.2.3.7.9): the SubmissionSets that HasMember
one of the given objects, and those HasMember Associations."""

from __future__ import annotations

from sqlalchemy import CompoundSelect, select, union_all

from ebxml.query import GetSubmissionSetsQuery
from ebxml.vocabulary import AssociationType
from registry.queries.result import association_columns, object_columns
from registry.tables import AssociationRow, SubmissionSetRow

SS = SubmissionSetRow


def build(params: GetSubmissionSetsQuery) -> CompoundSelect:
    a = AssociationRow
    membership = (
        a.association_type == AssociationType.HAS_MEMBER,
        a.target_uuid.in_(params.uuid),
        a.source_uuid.in_(select(SS.entry_uuid)),
    )
    return union_all(
        select(*object_columns(SS)).where(
            SS.entry_uuid.in_(select(a.source_uuid).where(*membership))
        ),
        select(*association_columns()).where(*membership),
    )


__all__ = ["build"]
