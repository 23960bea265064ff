"""FindFolders (ITI TF-2 3.18.4.1.2.3.7.3): a patient's Folders by status,
lastUpdateTime and codeList."""

from __future__ import annotations

from sqlalchemy import Select, select

from ebxml.query import FindFoldersQuery
from registry.queries.match import folder_code_groups, status_in, time_range
from registry.queries.result import object_columns
from registry.tables import FolderRow


def build(params: FindFoldersQuery) -> Select:
    conditions = [
        FolderRow.patient_id == params.patient_id,
        status_in(FolderRow.status, params.status),
        *time_range(
            FolderRow.last_update_time_key,
            params.last_update_time_from,
            params.last_update_time_to,
        ),
        *folder_code_groups(params.code_list),
    ]
    return select(*object_columns(FolderRow)).where(*conditions)


__all__ = ["build"]
