"""The XDS.b Document Repository actor and its SOAP endpoint ``/xds/repository``.

:class:`DocumentRepository` holds what the actor needs - database, blob store, the
registry seam, its configuration - and runs ITI-41 and ITI-43 synchronously (call it
from a worker thread).  :func:`repository_service` binds it to the SOAP layer: one
Operation per Action (ITI TF-2 Appendix V: both MTOM/XOP), parsing and serialising
with ``ebxml``, the work itself off the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources

from lxml import etree
from sqlalchemy import Engine

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    ProvideAndRegisterRequest,
    RegistryResponse,
    RetrieveDocumentSetRequest,
    RetrieveDocumentSetResponse,
)
from ebxml.parse import parse_provide_and_register
from ebxml.retrieve import parse_retrieve_document_set_request, retrieve_document_set_response
from ebxml.serialize import registry_response
from ebxml.tags import XDSB
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus
from repository.blobs import BlobStore, BlobStoreFull
from repository.db import session_factory
from repository.provide import (
    RecoveryReport,
    Validator,
    ebxml_validator,
    provide_and_register,
    recover,
)
from repository.registry_client import RegistryClient
from repository.retrieve import response_status, retrieve_document_set
from soap.message import Operation, OutgoingAttachment, Service, SoapRequest, SoapResponse
from soap.mtom import new_content_ids

REPOSITORY_PATH = "/xds/repository"
WSDL_RESOURCE = "wsdl/DocumentRepository.wsdl"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RepositoryConfig:
    """The repository's identity (ITI TF-3 4.2.3.2.18 repositoryUniqueId, ITI TF-3
    4.2.3.2.12 homeCommunityId) and how old a pending document must be before start-up
    recovery settles it with the registry (longer than any ITI-41 takes)."""

    repository_unique_id: str
    home_community_id: str | None = None
    pending_grace: timedelta = timedelta(hours=1)


class DocumentRepository:
    """The Document Repository actor; stateless apart from what it is given."""

    def __init__(
        self,
        engine: Engine,
        blobs: BlobStore,
        registry_client: RegistryClient,
        config: RepositoryConfig,
        *,
        validator: Validator | None = None,
    ) -> None:
        self.engine = engine
        self.blobs = blobs
        self.registry_client = registry_client
        self.config = config
        self.sessions = session_factory(engine)
        self._validate = validator

    @property
    def validator(self) -> Validator:
        if self._validate is None:
            self._validate = ebxml_validator(self.config.repository_unique_id)
        return self._validate

    def provide_and_register(
        self, request: ProvideAndRegisterRequest, unreferenced_cids: Sequence[str] = ()
    ) -> RegistryResponse:
        """ITI-41 (ITI TF-2 3.41.4.1.3)."""
        try:
            return provide_and_register(
                request,
                unreferenced_cids,
                sessions=self.sessions,
                blobs=self.blobs,
                registry=self.registry_client,
                repository_unique_id=self.config.repository_unique_id,
                validate=self.validator,
            )
        except BlobStoreFull as exc:
            # what was stored of this submission is already undone (provide.store_documents)
            log.error("blob store full: %s", exc)
            return repository_out_of_resources(exc)

    def retrieve(self, request: RetrieveDocumentSetRequest) -> RetrieveDocumentSetResponse:
        """ITI-43 (ITI TF-2 3.43.4.1.3)."""
        return retrieve_document_set(
            request,
            sessions=self.sessions,
            blobs=self.blobs,
            repository_unique_id=self.config.repository_unique_id,
            home_community_id=self.config.home_community_id,
        )

    def close(self) -> None:
        """Release the registry client's connections (at shutdown)."""
        self.registry_client.close()

    def recover(self) -> RecoveryReport:
        """Start-up pass: settle what crashed ITI-41 transactions left behind, asking
        the registry which pending documents it lists (``repository.provide.recover``)."""
        return recover(
            self.sessions,
            self.blobs,
            self.registry_client,
            self.config.repository_unique_id,
            grace=self.config.pending_grace,
        )


def repository_out_of_resources(exc: BlobStoreFull) -> RegistryResponse:
    """ITI TF-3 Table 4.2.4.1-2 XDSRepositoryOutOfResources: the document store has no
    room for the documents of a submission."""
    error = RegistryError(
        ErrorCode.XDSRepositoryOutOfResources,
        f"documents could not be stored: {exc.strerror or exc}",
    )
    return RegistryResponse.from_errors([error])


# --- SOAP binding ---------------------------------------------------------------------


def _with_findings(
    response: RegistryResponse, findings: Sequence[RegistryError]
) -> RegistryResponse:
    if not findings:
        return response
    errors = (*findings, *response.errors)
    status = ResponseStatus.FAILURE if any(e.is_error for e in errors) else response.status
    return RegistryResponse(status, errors)


def repository_wsdl() -> str:
    return resources.files("repository").joinpath(WSDL_RESOURCE).read_text(encoding="utf-8")


def repository_busy(action: str) -> etree._Element:
    """The answer to a request refused while the endpoint is at its concurrency bound:
    ITI TF-3 Table 4.2.4.1-2 XDSRepositoryBusy, "too much activity", in the request's
    own response message (ITI-43 a RetrieveDocumentSetResponse, the others a
    RegistryResponse)."""
    error = RegistryError(ErrorCode.XDSRepositoryBusy, "too much activity, try again later")
    return _refusal(action, error)


def repository_spool_full(action: str) -> etree._Element:
    """The answer to a request whose MIME parts found no room in the request spool
    (``soap.mtom.SpoolFull``): ITI TF-3 Table 4.2.4.1-2 XDSRepositoryOutOfResources, as
    for a full document store, in the request's own response message."""
    error = RegistryError(
        ErrorCode.XDSRepositoryOutOfResources,
        "no room to receive the documents, try again later",
    )
    return _refusal(action, error)


def _refusal(action: str, error: RegistryError) -> etree._Element:
    if action == Action.ITI43:
        failure = RetrieveDocumentSetResponse(ResponseStatus.FAILURE, errors=(error,))
        return retrieve_document_set_response(failure, [])
    return registry_response(RegistryResponse.from_errors([error]))


def repository_service(
    repository: DocumentRepository,
    *,
    path: str = REPOSITORY_PATH,
    extra_operations: Mapping[str, Operation] | None = None,
) -> Service:
    """``/xds/repository``: ITI-41 and ITI-43, both MTOM/XOP (ITI TF-2 V.3)."""

    # blocking handlers: each exchange runs in one worker thread (soap Operation.blocking)
    def provide_handler(request: SoapRequest) -> SoapResponse:
        parsed = parse_provide_and_register(request.body, request.attachments)
        if not parsed.ok:
            return SoapResponse(registry_response(RegistryResponse.from_errors(parsed.errors)))
        response = repository.provide_and_register(
            parsed.value, parsed.value.unreferenced_attachments
        )
        return SoapResponse(registry_response(_with_findings(response, parsed.errors)))

    def retrieve_handler(request: SoapRequest) -> SoapResponse:
        parsed = parse_retrieve_document_set_request(request.body)
        if parsed.value.documents:
            response = repository.retrieve(parsed.value)
        else:
            response = RetrieveDocumentSetResponse(ResponseStatus.FAILURE)
        errors = (*parsed.errors, *response.errors)
        response = RetrieveDocumentSetResponse(
            response_status(len(response.documents), len(errors)), response.documents, errors
        )
        cids = new_content_ids("document", len(response.documents))
        attachments = [
            OutgoingAttachment(cid, doc.mime_type, doc.path, doc.size)
            for cid, doc in zip(cids, response.documents, strict=True)
        ]
        return SoapResponse(retrieve_document_set_response(response, cids), attachments)

    operations = {
        Action.ITI41: Operation(
            Action.ITI41,
            RESPONSE_ACTION[Action.ITI41],
            provide_handler,
            mtom=True,
            # ITI TF-2 V.8.2: a Document sent inline as base64 is spooled like an attachment
            binary_elements=frozenset({XDSB.Document}),
            blocking=True,
        ),
        Action.ITI43: Operation(
            Action.ITI43, RESPONSE_ACTION[Action.ITI43], retrieve_handler, mtom=True, blocking=True
        ),
        # options the composition root turns on: ITI-86
        **(extra_operations or {}),
    }
    return Service(
        path,
        operations,
        repository_wsdl(),
        busy=repository_busy,
        out_of_resources=repository_spool_full,
    )


__all__ = [
    "REPOSITORY_PATH",
    "DocumentRepository",
    "RepositoryConfig",
    "repository_busy",
    "repository_out_of_resources",
    "repository_service",
    "repository_spool_full",
    "repository_wsdl",
]
