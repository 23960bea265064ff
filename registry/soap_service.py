"""The Document Registry's SOAP endpoint ``/xds/registry``: ITI-42 and ITI-18.

Both are simple SOAP 1.2 both ways (ITI TF-2 V.3).  Each handler parses the body with
``ebxml``, runs the registry's database work in a worker thread and serialises the
answer; expected failures travel as RegistryErrors, never as faults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, RegistryResponse
from ebxml.parse import parse_submit_objects_request
from ebxml.serialize import registry_response
from ebxml.tags import LCM, QUERY
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus, Transaction
from ebxml.wire import (
    adhoc_query_response,
    adhoc_query_response_parts,
    parse_adhoc_query_request,
)
from registry.service import DocumentRegistry
from registry.stored_query import StoredQueryConfig, execute_stored_query
from soap.message import Operation, Service, SoapRequest, SoapResponse
from soap.splice import XmlSplice

REGISTRY_PATH = "/xds/registry"
WSDL_RESOURCE = "wsdl/DocumentRegistry.wsdl"


@dataclass(frozen=True, slots=True)
class RegistryEndpointConfig:
    """What the endpoint adds to the actor: the ITI-18 limits and homeCommunityId."""

    stored_query: StoredQueryConfig = StoredQueryConfig()


def registry_wsdl() -> str:
    return resources.files("registry").joinpath(WSDL_RESOURCE).read_text(encoding="utf-8")


def _wrong_body(expected: str, got: str) -> RegistryError:
    return RegistryError(
        ErrorCode.XDSRegistryMetadataError, f"expected {expected} in the SOAP Body, got {got}"
    )


def registry_busy(action: str) -> etree._Element:
    """The answer to a request refused while the endpoint is at its concurrency bound:
    ITI TF-3 Table 4.2.4.1-2 XDSRegistryBusy, "too much activity", in the request's
    own response message (ITI-18 an AdhocQueryResponse, the others a RegistryResponse)."""
    error = RegistryError(ErrorCode.XDSRegistryBusy, "too much activity, try again later")
    if action == Action.ITI18:
        failure = AdhocQueryResponse(ResponseStatus.FAILURE, errors=(error,))
        return adhoc_query_response(failure, "LeafClass")
    return registry_response(RegistryResponse.from_errors([error]))


def register(registry: DocumentRegistry, body: object) -> RegistryResponse:
    """ITI-42 (ITI TF-2 3.42.4.1.3) for a parsed SOAP body; runs in a worker thread."""
    parsed = parse_submit_objects_request(body)  # type: ignore[arg-type]
    if not parsed.ok:
        return RegistryResponse.from_errors(parsed.errors)
    response = registry.register(parsed.value, transaction=Transaction.ITI42)
    if not parsed.errors:
        return response
    return RegistryResponse.from_errors((*parsed.errors, *response.errors))


def stored_query(
    registry: DocumentRegistry, request: AdhocQueryRequest, config: StoredQueryConfig
) -> AdhocQueryResponse:
    """ITI-18 (ITI TF-2 3.18.4.1.3), one statement in its own read session; runs in a
    worker thread."""
    with registry.query_connections() as connection:
        return execute_stored_query(connection, request, config)


def answer_query(
    registry: DocumentRegistry, request: AdhocQueryRequest, config: StoredQueryConfig
) -> SoapResponse:
    """ITI-18's answer, body and all, in the worker thread that ran the query: the
    stored metadata goes out as stored, not parsed and serialised again."""
    response = stored_query(registry, request, config)
    body, object_list, stored = adhoc_query_response_parts(response, request.return_type)
    if not stored or object_list is None:
        return SoapResponse(body)
    return SoapResponse(body, splices=(XmlSplice(object_list, stored),))


def registry_service(
    registry: DocumentRegistry,
    config: RegistryEndpointConfig | None = None,
    *,
    path: str = REGISTRY_PATH,
    extra_operations: Mapping[str, Operation] | None = None,
) -> Service:
    """``/xds/registry``: ITI-42 and ITI-18, simple SOAP (ITI TF-2 V.3)."""
    settings = config or RegistryEndpointConfig()

    # blocking handlers: each exchange runs in one worker thread (soap Operation.blocking)
    def register_handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != LCM.SubmitObjectsRequest:
            failure = RegistryResponse.from_errors(
                [_wrong_body("lcm:SubmitObjectsRequest", request.body.tag)]
            )
            return SoapResponse(registry_response(failure))
        return SoapResponse(registry_response(register(registry, request.body)))

    def query_handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != QUERY.AdhocQueryRequest:
            error = _wrong_body("query:AdhocQueryRequest", request.body.tag)
            failure = AdhocQueryResponse(ResponseStatus.FAILURE, errors=(error,))
            return SoapResponse(adhoc_query_response(failure, "LeafClass"))
        query = parse_adhoc_query_request(request.body)
        return answer_query(registry, query, settings.stored_query)

    operations = {
        Action.ITI42: Operation(
            Action.ITI42, RESPONSE_ACTION[Action.ITI42], register_handler, blocking=True
        ),
        Action.ITI18: Operation(
            Action.ITI18, RESPONSE_ACTION[Action.ITI18], query_handler, blocking=True
        ),
        # options the composition root turns on: ITI-44, ITI-51, ITI-57, ITI-61, ITI-62
        **(extra_operations or {}),
    }
    return Service(path, operations, registry_wsdl(), busy=registry_busy)


__all__ = [
    "REGISTRY_PATH",
    "answer_query",
    "RegistryEndpointConfig",
    "register",
    "registry_busy",
    "registry_service",
    "registry_wsdl",
    "stored_query",
]
