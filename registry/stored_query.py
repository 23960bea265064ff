"""ITI-18 Registry Stored Query on the Document Registry: validate, dispatch, limit.

``execute_stored_query`` checks the request (ITI TF-2 3.18.4.1.2.3 through
``ebxml.query``), builds the query's one statement (``registry.queries.QUERIES``),
runs it with a bound on the rows it reads, and answers an ``AdhocQueryResponse`` of
``StoredObject`` values (LeafClass, the canonical xml as stored) or ``ObjectRef`` values.
Expected failures are answered as RegistryErrors in the response, never raised.

The same function answers ITI-51 Multi-Patient Stored Query (``transaction``): its
queries are not ITI-18's, and their results may span patients.

``returnComposedObjects`` (ebRS 3.0 query:ResponseOption): a LeafClass object is always
returned with its composed objects - Classifications, ExternalIdentifiers, Slots, Name
and Description inside it - because the stored xml is the whole object, and an XDS
object without them would lose its metadata; ``false`` gets the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Dialect,
    Integer,
    LargeBinary,
    Select,
    String,
    column,
    not_,
    select,
)
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, StoredObject
from ebxml.model import ObjectRef
from ebxml.query import QUERY_DEFINITIONS, StoredQueryParams, parse_stored_query
from ebxml.vocabulary import ResponseStatus, ReturnType, Transaction
from registry.queries import QUERIES, QueryImplementation
from registry.queries.match import PATIENT_PARAM
from storage.driver import DriverStatement, fetch_all
from storage.engine import BINARY_RESULTS

PATIENT_ID = 2  # position of patient_id in a row of query_statement
DEFAULT_MAX_RESULTS = 10_000
DEFAULT_MAX_OBJECT_REFS = 100_000
# by-patient statements kept built (``prepared_statement``): one per query, returnType,
# limit and parameters other than the patient
STATEMENT_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class StoredQueryConfig:
    """``home_community_id``: the registry's homeCommunityId, if it has one; requests may
    name it or nothing (ITI TF-2 3.18.4.1.2.3.8), and returned objects carry it.
    ``max_results`` / ``max_object_refs``: past this many objects a query answers
    XDSTooManyResults with no objects (LeafClass / ObjectRef)."""

    home_community_id: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS
    max_object_refs: int = DEFAULT_MAX_OBJECT_REFS


# The columns of the subquery "result" (``registry.queries.result.RESULT_COLUMNS``)
# that a response reads, in this order: execute_stored_query unpacks the rows by
# position (PATIENT_ID).  Expressions are immutable: built once, shared by statements.
_REF_COLUMNS = (
    column("entry_uuid", String),
    column("status", String),
    column("patient_id", String),
    column("home", String),
)
_LEAF_COLUMNS = (*_REF_COLUMNS, column("xml", LargeBinary))
_NOT_LEVEL_1_HIDDEN = not_(column("level_1_hidden", Boolean))
_RESPONSE_ORDER = (column("kind", Integer), column("row_id", Integer), _REF_COLUMNS[0])


def query_statement(
    implementation: QueryImplementation, params: StoredQueryParams, *, object_refs: bool
) -> Select:
    """The one statement a stored query runs, in response order, without its limit:
    the query's own statement, the ``$MetadataLevel`` filter, the columns the response
    needs (no xml for ObjectRef)."""
    # the result's columns named, not taken from the subquery's column collection:
    # building that collection (a proxy per column) cost as much as the query itself
    statement = select(*(_REF_COLUMNS if object_refs else _LEAF_COLUMNS)).select_from(
        implementation.build(params).subquery("result")
    )
    # ITI TF-2 3.18.4.1.2.3.5.1: level 1 leaves out what only Metadata Update makes
    if params.metadata_level == 1:
        statement = statement.where(_NOT_LEVEL_1_HIDDEN)
    return statement.order_by(*_RESPONSE_ORDER)


def _runnable(
    implementation: QueryImplementation, params: StoredQueryParams, object_refs: bool, limit: int
) -> Select:
    statement = query_statement(implementation, params, object_refs=object_refs)
    # the stored xml fetched as bytes, not hex text, where the driver can
    return statement.limit(limit).execution_options(**{BINARY_RESULTS: True})


# A statement built anew costs SQLAlchemy its construction, its cache key and the
# extraction of its values before the compiled form is found (about 1 ms of CPU a
# query on a 2-vCPU machine); one executed again costs none of it.
_patient_statement = lru_cache(maxsize=STATEMENT_CACHE_SIZE)(_runnable)


def prepared_statement(
    implementation: QueryImplementation, params: StoredQueryParams, *, object_refs: bool, limit: int
) -> tuple[Select, dict[str, Any]]:
    """The statement of a stored query, reading at most ``limit`` rows, and the values
    to run it with.  A by-patient query's statement is built once for all patients (the
    patient's id is the value of :data:`PATIENT_PARAM`) and kept
    (:data:`STATEMENT_CACHE_SIZE`); any other is built for its parameters alone."""
    if implementation.by_patient:
        patient_id: str = params.patient_id  # type: ignore[union-attr]
        anyone = replace(params, patient_id="")  # type: ignore[type-var]
        statement = _patient_statement(implementation, anyone, object_refs, limit)
        return statement, {PATIENT_PARAM: patient_id}
    return _runnable(implementation, params, object_refs, limit), {}


def _compiled(
    implementation: QueryImplementation,
    params: StoredQueryParams,
    object_refs: bool,
    limit: int,
    dialect: Dialect,
) -> DriverStatement:
    # built here, not taken from ``_patient_statement``: the rendered form is what is
    # kept, one cache on the query path rather than two of the same statements
    statement = _runnable(implementation, params, object_refs, limit)
    return DriverStatement.compile(statement, dialect, PATIENT_PARAM, binary=not object_refs)


# the by-patient statements rendered for the driver, one per dialect (storage.driver):
# SQLAlchemy's execution of even a compiled statement costs half again the driver's call
_driver_statement = lru_cache(maxsize=STATEMENT_CACHE_SIZE)(_compiled)


def driver_statement(
    implementation: QueryImplementation,
    params: StoredQueryParams,
    dialect: Dialect,
    *,
    object_refs: bool,
    limit: int,
) -> DriverStatement:
    """A by-patient query's statement (:func:`prepared_statement`) rendered once for
    ``dialect``'s driver; run it with the patient's id (``storage.driver.fetch_all``)."""
    assert implementation.by_patient, implementation
    anyone = replace(params, patient_id="")  # type: ignore[type-var]
    return _driver_statement(implementation, anyone, object_refs, limit, dialect)


def _failure(errors: Sequence[RegistryError]) -> AdhocQueryResponse:
    return AdhocQueryResponse(ResponseStatus.FAILURE, errors=tuple(errors))


def execute_stored_query(
    session: Session | Connection,
    request: AdhocQueryRequest,
    config: StoredQueryConfig,
    transaction: Transaction = Transaction.ITI18,
) -> AdhocQueryResponse:
    """Answer one ITI-18 (or ITI-51) request from the registry's tables, on ``session``'s
    connection (a Core statement, no ORM state)."""
    parsed = parse_stored_query(request, transaction)
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
    connection = session.connection() if isinstance(session, Session) else session
    rows: Sequence[Any]
    if implementation.by_patient:
        on_driver = driver_statement(
            implementation,
            parsed.params,
            connection.dialect,
            object_refs=object_refs,
            limit=limit + 1,
        )
        rows = fetch_all(connection, on_driver, parsed.params.patient_id)  # type: ignore[union-attr]
    else:
        statement, values = prepared_statement(
            implementation, parsed.params, object_refs=object_refs, limit=limit + 1
        )
        rows = connection.execute(statement, values).all()

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
    # ITI TF-2 3.18.4.1.3: the objects returned by one query belong to one patient;
    # ITI-51 exists to return several (ITI TF-2 3.51)
    patients = sorted({r[PATIENT_ID] for r in rows} - {None})
    if len(patients) > 1 and not QUERY_DEFINITIONS[request.query_id].multi_patient:
        return _failure(
            [
                RegistryError(
                    ErrorCode.XDSResultNotSinglePatient,
                    f"the result spans several patients: {', '.join(patients)}",
                    location=request.query_id,
                )
            ]
        )

    # rows unpacked by position (``query_statement``'s columns): a Row's attribute
    # access costs several times more, and an answer holds up to max_results rows
    home = config.home_community_id
    if object_refs:
        return AdhocQueryResponse(
            ResponseStatus.SUCCESS,
            object_refs=tuple(ObjectRef(uuid, home or row_home) for uuid, _, _, row_home in rows),
        )
    return AdhocQueryResponse(
        ResponseStatus.SUCCESS,
        objects=tuple(
            StoredObject(uuid, xml, status, home or row_home)
            for uuid, status, _, row_home, xml in rows
        ),
    )


__all__ = [
    "DEFAULT_MAX_OBJECT_REFS",
    "DEFAULT_MAX_RESULTS",
    "StoredQueryConfig",
    "driver_statement",
    "execute_stored_query",
    "prepared_statement",
    "query_statement",
]
