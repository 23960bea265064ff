"""FindDocuments (ITI TF-2 3.18.4.1.2.3.7.1): a patient's DocumentEntries by status,
codes, times, author and entry type - one indexed statement on ``document_entry``.

FindDocumentsForMultiplePatients (ITI-51, ITI TF-2 3.51.4.1.2) is the same statement
with a list of patients, or none."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, select

from ebxml.query import FindDocumentsForMultiplePatientsQuery, FindDocumentsQuery
from registry.queries.match import (
    code_in,
    document_entry_author_like,
    document_entry_code_groups,
    patient_is,
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


def entry_conditions(
    params: FindDocumentsQuery | FindDocumentsForMultiplePatientsQuery,
) -> list[ColumnElement[bool]]:
    """Every FindDocuments condition but the patient's."""
    conditions = [status_in(DE.status, params.status), DE.object_type.in_(params.entry_type)]
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
    return conditions


def build(params: FindDocumentsQuery) -> Select:
    # Merges re-point patient_id to the surviving id (registry.patients), so the
    # surviving id finds what was merged into it and a subsumed id finds nothing.
    return select(*object_columns(DE)).where(
        patient_is(DE.patient_id, params.patient_id), *entry_conditions(params)
    )


def build_for_multiple_patients(params: FindDocumentsForMultiplePatientsQuery) -> Select:
    """ITI TF-2 3.51.4.1.2: the entries of any listed patient, of every patient without
    a list."""
    conditions = entry_conditions(params)
    if params.patient_id:
        conditions.append(DE.patient_id.in_(params.patient_id))
    return select(*object_columns(DE)).where(*conditions)


__all__ = ["build", "build_for_multiple_patients", "entry_conditions"]
