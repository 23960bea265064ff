"""ITI-57 Update Document Set on the registry endpoint (XDS Metadata Update option).

Action ``urn:ihe:iti:2010:UpdateDocumentSet``, answered with
``urn:ihe:iti:2010:UpdateDocumentSetResponse``; simple SOAP both ways (ITI TF-2 V.3,
3.57.5).  The body is an lcm:SubmitObjectsRequest (ITI TF-2 3.57.4.1.2), the answer an
rs:RegistryResponse.  The update runs through ``DocumentRegistry.update``: validated
against the XDS DR column of ITI TF-3 Table 4.3.1-3, then checked and applied in one
write transaction (``registry.update``).
"""

from __future__ import annotations

from lxml import etree
from starlette.concurrency import run_in_threadpool

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.parse import parse_submit_objects_request
from ebxml.serialize import registry_response
from ebxml.tags import LCM
from ebxml.vocabulary import RESPONSE_ACTION, Action
from registry.service import DocumentRegistry
from soap.message import Operation, SoapRequest, SoapResponse


def update_document_set(registry: DocumentRegistry, body: etree._Element) -> RegistryResponse:
    """ITI-57 (ITI TF-2 3.57.4.1.3) for a SOAP body; runs in a worker thread."""
    parsed = parse_submit_objects_request(body)
    if not parsed.ok:
        return RegistryResponse.from_errors(parsed.errors)
    response = registry.update(parsed.value)
    if not parsed.errors:
        return response
    return RegistryResponse.from_errors((*parsed.errors, *response.errors))


def update_operation(registry: DocumentRegistry) -> Operation:
    """The ITI-57 Operation for the ``/xds/registry`` Service."""

    async def handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != LCM.SubmitObjectsRequest:
            error = RegistryError(
                ErrorCode.XDSRegistryMetadataError,
                f"expected lcm:SubmitObjectsRequest in the SOAP Body, got {request.body.tag}",
            )
            return SoapResponse(registry_response(RegistryResponse.from_errors([error])))
        response = await run_in_threadpool(update_document_set, registry, request.body)
        return SoapResponse(registry_response(response))

    return Operation(Action.ITI57, RESPONSE_ACTION[Action.ITI57], handler)


__all__ = ["update_document_set", "update_operation"]
