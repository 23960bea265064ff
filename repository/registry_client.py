"""How the repository reaches its registry: ITI-42 Register Document Set-b, and the
ITI-18 GetDocuments that start-up recovery asks before it removes a pending document.

One seam, chosen once at start-up: :class:`InProcessRegistryClient` calls the
registry actor of this process; :class:`SoapRegistryClient` sends simple SOAP to a
remote one (ITI TF-2 3.42.5, 3.18.5, Appendix V).  Both are synchronous - the actor
code runs in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import httpx
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, RegistryResponse
from ebxml.model import DocumentEntry, Submission
from ebxml.serialize import submit_objects_request
from ebxml.tags import QUERY
from ebxml.vocabulary import Action, QueryParameter, ResponseStatus, ReturnType, StoredQuery
from ebxml.wire import (
    adhoc_query_request,
    adhoc_query_response,
    parse_adhoc_query_response,
    parse_registry_response,
)
from registry.stored_query import StoredQueryConfig, execute_stored_query
from soap.client import SoapClient
from soap.faults import SoapFault

log = logging.getLogger(__name__)


# GetDocuments uniqueIds per ITI-18 request: a short message, a small result
GET_DOCUMENTS_BATCH = 100


class RegistryNotAvailable(Exception):
    """The registry gave no usable answer (not reachable, a fault, a failed query):
    whether it holds a document is unknown."""


@runtime_checkable
class RegistryClient(Protocol):
    def register(self, submission: Submission) -> RegistryResponse: ...

    def registered_documents(
        self, unique_ids: Sequence[str], repository_unique_id: str
    ) -> set[str]:
        """Those of ``unique_ids`` the registry lists, in any availabilityStatus, as
        held by ``repository_unique_id``; raises :class:`RegistryNotAvailable` when
        the registry cannot tell."""
        ...

    def close(self) -> None:
        """Release what the client keeps open (its connections)."""
        ...


# --- ITI-18 GetDocuments by uniqueId ----------------------------------------------------

Query = Callable[[AdhocQueryRequest], AdhocQueryResponse]


def _quoted_list(values: Sequence[str]) -> str:
    """ITI TF-2 3.18.4.1.2.3.5: a multi-valued parameter is ('a','b'), quotes doubled."""
    return "(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def get_documents_request(unique_ids: Sequence[str]) -> AdhocQueryRequest:
    """ITI TF-2 3.18.4.1.2.3.7.5 GetDocuments on $XDSDocumentEntryUniqueId, LeafClass
    (the repositoryUniqueId slot is in the DocumentEntry).  GetDocuments takes no status:
    every version, Approved or Deprecated, is returned; no $MetadataLevel (1)."""
    return AdhocQueryRequest(
        query_id=StoredQuery.GET_DOCUMENTS,
        parameters={QueryParameter.DOC_ENTRY_UNIQUE_ID: [[_quoted_list(unique_ids)]]},
        return_type=ReturnType.LEAF_CLASS,
    )


def _not_single_patient(response: AdhocQueryResponse) -> bool:
    return any(e.code == ErrorCode.XDSResultNotSinglePatient for e in response.errors)


def _registered_batch(
    query: Query, unique_ids: Sequence[str], repository_unique_id: str
) -> set[str]:
    response = query(get_documents_request(unique_ids))
    if response.status != ResponseStatus.SUCCESS:
        # ITI TF-2 3.18.4.1.3: one query answers for one patient; the documents of
        # several crashed submissions may not - ask for each half on its own
        if len(unique_ids) > 1 and _not_single_patient(response):
            half = len(unique_ids) // 2
            return _registered_batch(
                query, unique_ids[:half], repository_unique_id
            ) | _registered_batch(query, unique_ids[half:], repository_unique_id)
        reasons = "; ".join(f"{e.code}: {e.context}" for e in response.errors)
        raise RegistryNotAvailable(f"GetDocuments answered {response.status}: {reasons}")
    wanted = set(unique_ids)
    return {
        entry.unique_id
        for entry in response.objects
        if isinstance(entry, DocumentEntry)
        and entry.unique_id in wanted
        and entry.repository_unique_id == repository_unique_id
    }


def registered_documents(
    query: Query,
    unique_ids: Sequence[str],
    repository_unique_id: str,
    *,
    batch: int = GET_DOCUMENTS_BATCH,
) -> set[str]:
    """Those of ``unique_ids`` that GetDocuments through ``query`` finds with
    ``repository_unique_id``, asked ``batch`` at a time."""
    ids = list(dict.fromkeys(unique_ids))
    found: set[str] = set()
    for start in range(0, len(ids), batch):
        found |= _registered_batch(query, ids[start : start + batch], repository_unique_id)
    return found


# --- in this process ----------------------------------------------------------------------


class _Registry(Protocol):
    """What :class:`InProcessRegistryClient` needs of ``registry.service.DocumentRegistry``."""

    sessions: sessionmaker[Session]

    def register(self, submission: Submission) -> RegistryResponse: ...


class InProcessRegistryClient:
    """The registry in this process: a direct call, same contract as over the wire."""

    def __init__(self, registry: _Registry) -> None:
        self.registry = registry

    def register(self, submission: Submission) -> RegistryResponse:
        return self.registry.register(submission)

    def close(self) -> None:
        """Nothing to release: the registry is this process's."""

    def _stored_query(self, request: AdhocQueryRequest) -> AdhocQueryResponse:
        """ITI-18 through the registry's own stored-query path, read as a consumer
        reads its answer (the stored LeafClass XML back into model objects)."""
        try:
            with self.registry.sessions() as session:
                response = execute_stored_query(session, request, StoredQueryConfig())
        except SQLAlchemyError as exc:
            raise RegistryNotAvailable(f"registry database: {exc}") from exc
        return parse_adhoc_query_response(adhoc_query_response(response, request.return_type))

    def registered_documents(
        self, unique_ids: Sequence[str], repository_unique_id: str
    ) -> set[str]:
        return registered_documents(self._stored_query, unique_ids, repository_unique_id)


def not_available(reason: str) -> RegistryResponse:
    """ITI TF-3 Table 4.2.4.1-2: the repository could not reach its registry."""
    return RegistryResponse.from_errors([RegistryError(ErrorCode.XDSRegistryNotAvailable, reason)])


# Failures of the exchange itself, before a RegistryResponse could be read.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)


class SoapRegistryClient:
    """ITI-42 over simple SOAP 1.2 (ITI TF-2 V.3) to ``url``.

    A transport failure (refused, timed out, reset) is answered with
    ``XDSRegistryNotAvailable``; a SOAP fault from the registry with ``XDSRegistryError``.
    ``client_options`` go to ``soap.client.SoapClient`` (timeout, TLS, transport).
    Call from a worker thread: each call runs its own event loop.
    """

    def __init__(self, url: str, **client_options: Any) -> None:
        self.url = url
        self.client = SoapClient(url, **client_options)

    def close(self) -> None:
        """Close the connections kept alive to the registry."""
        self.client.close()

    def register(self, submission: Submission) -> RegistryResponse:
        body = submit_objects_request(submission)
        try:
            response = self.client.call_sync(Action.ITI42, body, mtom=False)
        except TRANSPORT_ERRORS as exc:
            log.warning("registry %s not reachable: %s", self.url, exc)
            return not_available(f"registry {self.url} not reachable: {exc}")
        except SoapFault as fault:
            log.warning("registry %s answered a SOAP fault: %s", self.url, fault.reason)
            return RegistryResponse.from_errors(
                [RegistryError(ErrorCode.XDSRegistryError, f"registry fault: {fault.reason}")]
            )
        return parse_registry_response(response.body)

    def _stored_query(self, request: AdhocQueryRequest) -> AdhocQueryResponse:
        """ITI-18 over simple SOAP (ITI TF-2 3.18.5, V.3)."""
        try:
            response = self.client.call_sync(Action.ITI18, adhoc_query_request(request), mtom=False)
        except TRANSPORT_ERRORS as exc:
            raise RegistryNotAvailable(f"registry {self.url} not reachable: {exc}") from exc
        except SoapFault as fault:
            raise RegistryNotAvailable(
                f"registry {self.url} answered a SOAP fault: {fault.reason}"
            ) from fault
        if response.body.tag != QUERY.AdhocQueryResponse:
            raise RegistryNotAvailable(
                f"registry {self.url} answered {response.body.tag}, not an AdhocQueryResponse"
            )
        return parse_adhoc_query_response(response.body)

    def registered_documents(
        self, unique_ids: Sequence[str], repository_unique_id: str
    ) -> set[str]:
        return registered_documents(self._stored_query, unique_ids, repository_unique_id)


__all__ = [
    "GET_DOCUMENTS_BATCH",
    "TRANSPORT_ERRORS",
    "InProcessRegistryClient",
    "RegistryClient",
    "RegistryNotAvailable",
    "SoapRegistryClient",
    "get_documents_request",
    "not_available",
    "registered_documents",
]
