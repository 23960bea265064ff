"""FindFolders (ITI TF-2 3.18.4.1.2.3.7.3): a patient's Folders by status,
lastUpdateTime and codeList; FindFoldersForMultiplePatients (ITI-51, ITI TF-2
3.51.4.1.2) the same for a list of patients, or all."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select

from ebxml.query import FindFoldersForMultiplePatientsQuery, FindFoldersQuery
from registry.queries.match import folder_code_groups, patient_is, status_in, time_range
from registry.queries.result import object_columns
from registry.tables import FolderRow


def folder_conditions(
    params: FindFoldersQuery | FindFoldersForMultiplePatientsQuery,
) -> list[ColumnElement[bool]]:
    """Every FindFolders condition but the patient's."""
    return [
        status_in(FolderRow.status, params.status),
        *time_range(
            FolderRow.last_update_time_key,
            params.last_update_time_from,
            params.last_update_time_to,
        ),
        *folder_code_groups(params.code_list),
    ]


def build(params: FindFoldersQuery) -> Select:
    return select(*object_columns(FolderRow)).where(
        patient_is(FolderRow.patient_id, params.patient_id), *folder_conditions(params)
    )


def build_for_multiple_patients(params: FindFoldersForMultiplePatientsQuery) -> Select:
    conditions = folder_conditions(params)
    if params.patient_id:
        conditions.append(FolderRow.patient_id.in_(params.patient_id))
    return select(*object_columns(FolderRow)).where(*conditions)


__all__ = ["build", "build_for_multiple_patients", "folder_conditions"]
