"""ITI-18 Registry Stored Query on the Document Registry: validate, dispatch, limit.

``execute_stored_query`` checks the request (ITI TF-2 3.18.4.1.2.3 through
``ebxml.query``), builds the query's one statement (``registry.queries.QUERIES``),
runs it with a bound on the rows it reads, and answers an ``AdhocQueryResponse`` of
``StoredObject`` values (LeafClass, the canonical xml as stored) or ``ObjectRef`` values.
Expected failures are answered as RegistryErrors in the response, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, StoredObject
from ebxml.model import ObjectRef
from ebxml.query import parse_stored_query
from ebxml.vocabulary import ResponseStatus, ReturnType
from registry.queries import QUERIES

DEFAULT_MAX_RESULTS = 10_000
DEFAULT_MAX_OBJECT_REFS = 100_000


@dataclass(frozen=True, slots=True)
class StoredQueryConfig:
    """``home_community_id``: the registry's homeCommunityId, if it has one; requests may
    name it or nothing (ITI TF-2 3.18.4.1.2.3.8), and returned objects carry it.
    ``max_results`` / ``max_object_refs``: past this many objects a query answers
    XDSTooManyResults with no objects (LeafClass / ObjectRef)."""

    home_community_id: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS
    max_object_refs: int = DEFAULT_MAX_OBJECT_REFS


def _failure(errors: Sequence[RegistryError]) -> AdhocQueryResponse:
    return AdhocQueryResponse(ResponseStatus.FAILURE, errors=tuple(errors))


def execute_stored_query(
    session: Session, request: AdhocQueryRequest, config: StoredQueryConfig
) -> AdhocQueryResponse:
    """Answer one ITI-18 request from the registry's tables, in ``session``."""
    parsed = parse_stored_query(request)
    if parsed.params is None:
        return _failure(parsed.errors)
    implementation = QUERIES.get(request.query_id)
    if implementation is None:
        return _failure(
            [
                RegistryError(
                    ErrorCode.XDSUnknownStoredQuery,
                    f"stored query {request.query_id} is not supported by this registry",
                    location=request.query_id,
                )
            ]
        )
    # ITI TF-2 3.18.4.1.3: a Document Registry accepts a homeCommunityId (AdhocQuery/@home
    # or $homeCommunityId) on a stored query and answers from its own content; routing by
    # community is the Initiating Gateway's job (XCA), not the registry's.

    object_refs = request.return_type == ReturnType.OBJECT_REF
    limit = config.max_object_refs if object_refs else config.max_results
    result = implementation.build(parsed.params).subquery("result")
    columns = [result.c.entry_uuid, result.c.status, result.c.patient_id, result.c.home]
    if not object_refs:
        columns.append(result.c.xml)
    rows = session.execute(
        select(*columns)
        .order_by(result.c.kind, result.c.row_id, result.c.entry_uuid)
        .limit(limit + 1)
    ).all()

    if len(rows) > limit:
        return _failure(
            [
                RegistryError(
                    ErrorCode.XDSTooManyResults,
                    f"the query matches more than {limit} objects; narrow it",
                    location=request.query_id,
                )
            ]
        )
    # ITI TF-2 3.18.4.1.3: the objects returned by one query belong to one patient
    patients = sorted({r.patient_id for r in rows if r.patient_id is not None})
    if len(patients) > 1:
        return _failure(
            [
                RegistryError(
                    ErrorCode.XDSResultNotSinglePatient,
                    f"the result spans several patients: {', '.join(patients)}",
                    location=request.query_id,
                )
            ]
        )

    if object_refs:
        return AdhocQueryResponse(
            ResponseStatus.SUCCESS,
            object_refs=tuple(
                ObjectRef(r.entry_uuid, config.home_community_id or r.home) for r in rows
            ),
        )
    return AdhocQueryResponse(
        ResponseStatus.SUCCESS,
        objects=tuple(
            StoredObject(r.entry_uuid, r.xml, r.status, config.home_community_id or r.home)
            for r in rows
        ),
    )


__all__ = [
    "DEFAULT_MAX_OBJECT_REFS",
    "DEFAULT_MAX_RESULTS",
    "StoredQueryConfig",
    "execute_stored_query",
]
