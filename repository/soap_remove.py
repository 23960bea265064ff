"""ITI-86 Remove Documents on the repository endpoint (RMD profile).

Action ``urn:ihe:iti:2017:RemoveDocuments``, answered with
``urn:ihe:iti:2017:RemoveDocumentsResponse``; the request carries no documents, so it
is simple SOAP both ways (ITI TF-2 V.3).  The body is an rmd:RemoveDocumentsRequest,
the answer an rs:RegistryResponse.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import RegistryResponse
from ebxml.remove import (
    RMD_REMOVE_DOCUMENTS_REQUEST,
    RemoveDocumentsRequest,
    parse_remove_documents_request,
)
from ebxml.serialize import registry_response
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus
from repository.remove import remove_documents
from repository.service import DocumentRepository
from soap.message import Operation, SoapRequest, SoapResponse


def remove(repository: DocumentRepository, request: RemoveDocumentsRequest) -> RegistryResponse:
    """ITI-86 for one parsed request; runs in a worker thread."""
    return remove_documents(
        request,
        sessions=repository.sessions,
        blobs=repository.blobs,
        repository_unique_id=repository.config.repository_unique_id,
        home_community_id=repository.config.home_community_id,
    )


def _with_findings(
    response: RegistryResponse, findings: tuple[RegistryError, ...]
) -> RegistryResponse:
    if not findings:
        return response
    # a DocumentRequest the parser left out is one not removed (RMD 3.86.4.1.3)
    status = response.status
    if status == ResponseStatus.SUCCESS:
        status = ResponseStatus.PARTIAL_SUCCESS
    return RegistryResponse(status, (*findings, *response.errors))


def remove_documents_operation(repository: DocumentRepository) -> Operation:
    """The ITI-86 Operation for the ``/xds/repository`` Service."""

    async def handler(request: SoapRequest) -> SoapResponse:
        if request.body.tag != RMD_REMOVE_DOCUMENTS_REQUEST:
            error = RegistryError(
                ErrorCode.XDSRepositoryError,
                f"expected rmd:RemoveDocumentsRequest in the SOAP Body, got {request.body.tag}",
            )
            return SoapResponse(registry_response(RegistryResponse.from_errors([error])))
        parsed = parse_remove_documents_request(request.body)
        if not parsed.value.documents:
            return SoapResponse(registry_response(RegistryResponse.from_errors(parsed.errors)))
        response = await run_in_threadpool(remove, repository, parsed.value)
        return SoapResponse(registry_response(_with_findings(response, parsed.errors)))

    return Operation(Action.ITI86, RESPONSE_ACTION[Action.ITI86], handler)


__all__ = ["remove", "remove_documents_operation"]
