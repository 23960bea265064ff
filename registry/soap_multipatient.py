"""ITI-51 Multi-Patient Stored Query on the registry endpoint (Multi-Patient Query option).

Action ``urn:ihe:iti:2009:MultiPatientStoredQuery``, answered with
``urn:ihe:iti:2009:MultiPatientStoredQueryResponse``; simple SOAP both ways (ITI TF-2
V.3).  The body is a query:AdhocQueryRequest naming FindDocumentsForMultiplePatients or
FindFoldersForMultiplePatients (ITI TF-2 3.51.4.1.2); any other query id is
XDSUnknownStoredQuery.  The answer is a query:AdhocQueryResponse whose objects may
belong to several patients, so XDSResultNotSinglePatient does not apply.

ITI-51 is an option of the Document Registry: it exists only where a deployment has
decided which consumers may see several patients at once.  Off by default
(``MultiPatientQueryConfig.enabled``); a registry without it does not offer the
transaction at all, so a request for it gets the WS-Addressing ``ActionNotSupported``
fault like any other Action the endpoint does not serve (WS-Addressing 1.0 SOAP
Binding 6.4.4), rather than an ITI-51 response.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse
from ebxml.tags import QUERY
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus, ReturnType, Transaction
from ebxml.wire import adhoc_query_response, parse_adhoc_query_request
from registry.service import DocumentRegistry
from registry.stored_query import StoredQueryConfig, execute_stored_query
from soap.message import Operation, SoapRequest, SoapResponse


@dataclass(frozen=True, slots=True)
class MultiPatientQueryConfig:
    """``enabled``: offer ITI-51 on the registry endpoint.  ``stored_query``: its result
    limits and homeCommunityId, as for ITI-18."""

    enabled: bool = False
    stored_query: StoredQueryConfig = StoredQueryConfig()


def multi_patient_query(
    registry: DocumentRegistry, request: AdhocQueryRequest, config: StoredQueryConfig
) -> AdhocQueryResponse:
    """ITI-51 (ITI TF-2 3.51) in one read session; runs in a worker thread."""
    with registry.sessions() as session:
        return execute_stored_query(session, request, config, Transaction.ITI51)


def multi_patient_operation(
    registry: DocumentRegistry, config: MultiPatientQueryConfig | None = None
) -> Operation | None:
    """The ITI-51 Operation for the ``/xds/registry`` Service, or None when the
    Multi-Patient Query option is off."""
    settings = config or MultiPatientQueryConfig()
    if not settings.enabled:
        return None

    async def handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != QUERY.AdhocQueryRequest:
            error = RegistryError(
                ErrorCode.XDSRegistryError,
                f"expected query:AdhocQueryRequest in the SOAP Body, got {request.body.tag}",
            )
            failure = AdhocQueryResponse(ResponseStatus.FAILURE, errors=(error,))
            return SoapResponse(adhoc_query_response(failure, ReturnType.LEAF_CLASS))
        query = parse_adhoc_query_request(request.body)
        response = await run_in_threadpool(
            multi_patient_query, registry, query, settings.stored_query
        )
        return SoapResponse(adhoc_query_response(response, query.return_type))

    return Operation(Action.ITI51, RESPONSE_ACTION[Action.ITI51], handler)


__all__ = ["MultiPatientQueryConfig", "multi_patient_operation", "multi_patient_query"]
