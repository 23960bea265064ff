"""ITI-62 Remove Metadata on the registry endpoint (RMD profile).

Action ``urn:ihe:iti:2010:DeleteDocumentSet``, answered with
``urn:ihe:iti:2010:DeleteDocumentSetResponse``; simple SOAP both ways (ITI TF-2 V.3).
The body is an lcm:RemoveObjectsRequest, the answer an rs:RegistryResponse.  The
removal runs in one write transaction (``DocumentRegistry.transact``); a removal that
succeeded is published as a ``RegistryEventKind.REMOVED`` event.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.remove import (
    LCM_REMOVE_OBJECTS_REQUEST,
    RemoveObjectsRequest,
    parse_remove_objects_request,
)
from ebxml.serialize import registry_response
from ebxml.vocabulary import RESPONSE_ACTION, Action
from registry.remove import RemoveConfig, Removed, remove_metadata
from registry.service import DocumentRegistry, RegistryEvent, RegistryEventKind
from soap.message import Operation, SoapRequest, SoapResponse

log = logging.getLogger(__name__)


def remove_objects(
    registry: DocumentRegistry, request: RemoveObjectsRequest, config: RemoveConfig | None = None
) -> RegistryResponse:
    """ITI-62 (ITI TF-2 3.62.4.1.3) in one transaction; runs in a worker thread."""
    settings = config or RemoveConfig()

    def work(session: Session) -> Removed:
        # a refused removal changed nothing, so committing it is harmless
        return remove_metadata(session, request, settings)

    try:
        outcome = registry.transact(work)
    except SQLAlchemyError:
        log.exception("removing registry objects failed")
        error = RegistryError(ErrorCode.XDSRegistryError, "the registry could not remove them")
        return RegistryResponse.from_errors([error])
    if outcome.removed:
        patient = outcome.patient_ids[0] if len(outcome.patient_ids) == 1 else None
        registry.publish(RegistryEvent(RegistryEventKind.REMOVED, outcome.removed, patient))
    return outcome.response


def remove_metadata_operation(
    registry: DocumentRegistry, config: RemoveConfig | None = None
) -> Operation:
    """The ITI-62 Operation for the ``/xds/registry`` Service."""

    async def handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != LCM_REMOVE_OBJECTS_REQUEST:
            error = RegistryError(
                ErrorCode.XDSRegistryError,
                f"expected lcm:RemoveObjectsRequest in the SOAP Body, got {request.body.tag}",
            )
            return SoapResponse(registry_response(RegistryResponse.from_errors([error])))
        parsed = parse_remove_objects_request(request.body)
        if not parsed.ok:
            return SoapResponse(registry_response(RegistryResponse.from_errors(parsed.errors)))
        response = await run_in_threadpool(remove_objects, registry, parsed.value, config)
        return SoapResponse(registry_response(response))

    return Operation(Action.ITI62, RESPONSE_ACTION[Action.ITI62], handler)


__all__ = ["remove_metadata_operation", "remove_objects"]
