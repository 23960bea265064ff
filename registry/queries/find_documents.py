"""FindDocuments (ITI TF-2 3.18.4.1.2.3.7.1): a patient's DocumentEntries by status,
codes, times, author and entry type - one indexed statement on ``document_entry``."""

from __future__ import annotations

from sqlalchemy import Select, select

from ebxml.query import FindDocumentsQuery
from registry.queries.match import (
    code_in,
    document_entry_author_like,
    document_entry_code_groups,
    status_in,
    time_range,
)
from registry.queries.result import object_columns
from registry.tables import CODE_KIND_CONFIDENTIALITY, CODE_KIND_EVENT, DocumentEntryRow

DE = DocumentEntryRow

# single-valued codes: params field -> (code column, codingScheme column)
_CODES = {
    "class_code": (DE.class_code, DE.class_code_scheme),
    "type_code": (DE.type_code, DE.type_code_scheme),
    "practice_setting_code": (DE.practice_setting_code, DE.practice_setting_code_scheme),
    "healthcare_facility_type_code": (
        DE.healthcare_facility_type_code,
        DE.healthcare_facility_type_code_scheme,
    ),
    "format_code": (DE.format_code, DE.format_code_scheme),
}

# multi-valued codes: params field -> document_entry_code.kind
_CODE_LISTS = {
    "event_code_list": CODE_KIND_EVENT,
    "confidentiality_code": CODE_KIND_CONFIDENTIALITY,
}

# time ranges: (from field, to field) -> sortable key column
_TIMES = {
    ("creation_time_from", "creation_time_to"): DE.creation_time_key,
    ("service_start_time_from", "service_start_time_to"): DE.service_start_time_key,
    ("service_stop_time_from", "service_stop_time_to"): DE.service_stop_time_key,
}


def build(params: FindDocumentsQuery) -> Select:
    # Merges re-point patient_id to the surviving id (registry.patients), so the
    # surviving id finds what was merged into it and a subsumed id finds nothing.
    conditions = [
        DE.patient_id == params.patient_id,
        status_in(DE.status, params.status),
        DE.object_type.in_(params.entry_type),
    ]
    for field, (code_column, scheme_column) in _CODES.items():
        if codes := getattr(params, field):
            conditions.append(code_in(code_column, scheme_column, codes))
    for field, kind in _CODE_LISTS.items():
        conditions.extend(document_entry_code_groups(kind, getattr(params, field)))
    for (time_from, time_to), key_column in _TIMES.items():
        conditions.extend(
            time_range(key_column, getattr(params, time_from), getattr(params, time_to))
        )
    if params.author_person:
        conditions.append(document_entry_author_like(params.author_person))
    return select(*object_columns(DE)).where(*conditions)


__all__ = ["build"]
