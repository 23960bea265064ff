"""FindSubmissionSets (ITI TF-2 3.18.4.1.2.3.7.2): a patient's SubmissionSets by status,
sourceId, submissionTime, authorPerson and contentTypeCode."""

from __future__ import annotations

from sqlalchemy import Select, select

from ebxml.query import FindSubmissionSetsQuery
from registry.queries.match import (
    code_in,
    patient_is,
    status_in,
    submission_set_author_like,
    time_range,
)
from registry.queries.result import object_columns
from registry.tables import SubmissionSetRow

SS = SubmissionSetRow


def build(params: FindSubmissionSetsQuery) -> Select:
    conditions = [patient_is(SS.patient_id, params.patient_id), status_in(SS.status, params.status)]
    if params.source_id:
        conditions.append(SS.source_id.in_(params.source_id))
    conditions.extend(
        time_range(SS.submission_time_key, params.submission_time_from, params.submission_time_to)
    )
    if params.author_person is not None:
        conditions.append(submission_set_author_like([params.author_person]))
    if params.content_type:
        conditions.append(
            code_in(SS.content_type_code, SS.content_type_code_scheme, params.content_type)
        )
    return select(*object_columns(SS)).where(*conditions)


__all__ = ["build"]
