"""GetAssociations (ITI TF-2 3.18.4.1.2.3.7.7): every Association whose sourceObject or
targetObject is one of the given uuids."""

from __future__ import annotations

from sqlalchemy import Select, or_, select

from ebxml.query import GetAssociationsQuery
from registry.queries.result import association_columns
from registry.tables import AssociationRow


def build(params: GetAssociationsQuery) -> Select:
    a = AssociationRow
    return select(*association_columns()).where(
        or_(a.source_uuid.in_(params.uuid), a.target_uuid.in_(params.uuid))
    )


__all__ = ["build"]
