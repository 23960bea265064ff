"""GetAll (ITI TF-2 3.18.4.1.2.3.7.4): everything the registry holds for one patient.

The patient's SubmissionSets, DocumentEntries and Folders, each kind filtered by its own
status list (``$XDSSubmissionSetStatus``, ``$XDSDocumentEntryStatus``,
``$XDSFolderStatus``), the entries also by formatCode, confidentialityCode and
objectType; and the Associations among the objects returned: those whose source is one
of them and whose target is one of them, or is an Association among them (the
SubmissionSet's HasMember of a Folder -> DocumentEntry HasMember).  One UNION ALL
statement.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, CompoundSelect, or_, select, union_all

from ebxml.query import GetAllQuery
from registry.queries.match import code_in, document_entry_code_groups, patient_is, status_in
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


def _entry_conditions(params: GetAllQuery) -> list[ColumnElement[bool]]:
    conditions = [
        patient_is(DE.patient_id, params.patient_id),
        status_in(DE.status, params.document_entry_status),
        DE.object_type.in_(params.entry_type),
    ]
    if params.format_code:
        conditions.append(code_in(DE.format_code, DE.format_code_scheme, params.format_code))
    conditions.extend(
        document_entry_code_groups(CODE_KIND_CONFIDENTIALITY, params.confidentiality_code)
    )
    return conditions


def build(params: GetAllQuery) -> CompoundSelect:
    submission_sets = (
        patient_is(SS.patient_id, params.patient_id),
        status_in(SS.status, params.submission_set_status),
    )
    entries = _entry_conditions(params)
    folders = (
        patient_is(FolderRow.patient_id, params.patient_id),
        status_in(FolderRow.status, params.folder_status),
    )
    returned = union_all(
        select(SS.entry_uuid).where(*submission_sets),
        select(DE.entry_uuid).where(*entries),
        select(FolderRow.entry_uuid).where(*folders),
    )
    inner = AssociationRow.__table__.alias("inner_association")
    between = select(inner.c.entry_uuid).where(
        inner.c.source_uuid.in_(returned), inner.c.target_uuid.in_(returned)
    )
    a = AssociationRow
    return union_all(
        select(*object_columns(SS)).where(*submission_sets),
        select(*object_columns(DE)).where(*entries),
        select(*object_columns(FolderRow)).where(*folders),
        select(*association_columns()).where(
            a.source_uuid.in_(returned),
            or_(a.target_uuid.in_(returned), a.target_uuid.in_(between)),
        ),
    )


__all__ = ["build"]
