"""ITI-61 Register On-Demand Document Entry on the registry endpoint (ITI TF-2 3.61).

Action ``urn:ihe:iti:2010:RegisterOnDemandDocumentEntry``, answered with
``urn:ihe:iti:2010:RegisterOnDemandDocumentEntryResponse``; simple SOAP both ways
(ITI TF-2 V.3).  The body is an lcm:SubmitObjectsRequest holding On-Demand
DocumentEntries (objectType ``DOC_ENTRY_ON_DEMAND``), and optionally Folders and
Associations (ITI TF-2 3.61.4.1.2); the answer an rs:RegistryResponse.

The submission takes the registry's one register path with ``Transaction.ITI61``: the
metadata is checked against the XDS OD column of ITI TF-3 Table 4.3.1-3 and only
On-Demand entries are accepted (``ebxml.validate``); stored state is checked as for
ITI-42 (ITI TF-2 3.61.4.1.3), an On-Demand entry being replaced only by another one
(``registry.lifecycle``).
"""

from __future__ import annotations

from lxml import etree
from starlette.concurrency import run_in_threadpool

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.parse import parse_submit_objects_request
from ebxml.serialize import registry_response
from ebxml.tags import LCM
from ebxml.vocabulary import RESPONSE_ACTION, Action, Transaction
from registry.service import DocumentRegistry
from soap.message import Operation, SoapRequest, SoapResponse


def register_on_demand(registry: DocumentRegistry, body: etree._Element) -> RegistryResponse:
    """ITI-61 (ITI TF-2 3.61.4.1.3) for a parsed SOAP body; runs in a worker thread."""
    parsed = parse_submit_objects_request(body)
    if not parsed.ok:
        return RegistryResponse.from_errors(parsed.errors)
    response = registry.register(parsed.value, transaction=Transaction.ITI61)
    if not parsed.errors:
        return response
    return RegistryResponse.from_errors((*parsed.errors, *response.errors))


def on_demand_operation(registry: DocumentRegistry) -> Operation:
    """The ITI-61 Operation for the ``/xds/registry`` Service."""

    async def handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != LCM.SubmitObjectsRequest:
            error = RegistryError(
                ErrorCode.XDSRegistryMetadataError,
                f"expected lcm:SubmitObjectsRequest in the SOAP Body, got {request.body.tag}",
            )
            return SoapResponse(registry_response(RegistryResponse.from_errors([error])))
        response = await run_in_threadpool(register_on_demand, registry, request.body)
        return SoapResponse(registry_response(response))

    return Operation(Action.ITI61, RESPONSE_ACTION[Action.ITI61], handler)


__all__ = ["on_demand_operation", "register_on_demand"]
