"""ITI-43 Retrieve Document Set at the Document Repository (ITI TF-2 3.43.4.1.3).

Every DocumentRequest is answered on its own: the document, or one RegistryError
naming why not.  The response carries paths, not bytes: soap/ streams each document
from the blob store after the body, so everything is checked before the first byte.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentRequest,
    RetrievedDocument,
    RetrieveDocumentSetRequest,
    RetrieveDocumentSetResponse,
)
from ebxml.vocabulary import ResponseStatus
from repository.blobs import BlobStore
from repository.tables import DocumentState, RepositoryDocument

Check = Callable[[DocumentRequest, str, str | None], RegistryError | None]


def _check_community(
    request: DocumentRequest, _repository: str, home: str | None
) -> RegistryError | None:
    # ITI TF-2 3.43.4.1.3: a homeCommunityId, if sent, must be this community's.  A
    # repository configured without one accepts any (it is not part of XCA).
    if home is None or request.home_community_id in (None, home):
        return None
    return RegistryError(
        ErrorCode.XDSUnknownCommunity,
        f"homeCommunityId {request.home_community_id} is not this community ({home})",
        request.home_community_id,
    )


def _check_repository(
    request: DocumentRequest, repository: str, _home: str | None
) -> RegistryError | None:
    # ITI TF-2 3.43.4.1.3: XDSUnknownRepositoryId, codeContext naming the id sent
    if request.repository_unique_id == repository:
        return None
    return RegistryError(
        ErrorCode.XDSUnknownRepositoryId,
        f"repositoryUniqueId {request.repository_unique_id} is not this repository ({repository})",
        request.document_unique_id,
    )


# Checks before the document is looked up, in order; the first failure answers.
REQUEST_CHECKS: tuple[Check, ...] = (_check_community, _check_repository)


def _unknown_document(request: DocumentRequest) -> RegistryError:
    return RegistryError(
        ErrorCode.XDSDocumentUniqueIdError,
        f"document {request.document_unique_id} is not in repository {request.repository_unique_id}",
        request.document_unique_id,
    )


def response_status(found: int, failed: int) -> ResponseStatus:
    """ITI TF-2 3.43.4.2.3 (and ITI TF-3 4.2.4.2): all, some or none returned."""
    if failed == 0 and found > 0:
        return ResponseStatus.SUCCESS
    if found > 0:
        return ResponseStatus.PARTIAL_SUCCESS
    return ResponseStatus.FAILURE


def retrieve_document_set(
    request: RetrieveDocumentSetRequest,
    *,
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    repository_unique_id: str,
    home_community_id: str | None = None,
) -> RetrieveDocumentSetResponse:
    """Answer an ITI-43 request from the index and the blob store."""
    errors: list[RegistryError] = []
    wanted: list[DocumentRequest] = []
    for document in request.documents:
        error = next(
            (
                e
                for check in REQUEST_CHECKS
                if (e := check(document, repository_unique_id, home_community_id))
            ),
            None,
        )
        if error is not None:
            errors.append(error)
        else:
            wanted.append(document)

    rows: dict[str, RepositoryDocument] = {}
    if wanted:
        with sessions() as session:
            ids = {d.document_unique_id for d in wanted}
            rows = {
                row.document_unique_id: row
                for row in session.scalars(
                    select(RepositoryDocument)
                    .where(RepositoryDocument.document_unique_id.in_(ids))
                    # a committed row wins over pending rows of concurrent submissions
                    .order_by(RepositoryDocument.state == DocumentState.COMMITTED)
                )
            }

    documents: list[RetrievedDocument] = []
    for document in wanted:
        row = rows.get(document.document_unique_id)
        # a row whose blob is not (yet, or any more) there is not retrievable
        if row is None or not blobs.exists(row.sha1):
            errors.append(_unknown_document(document))
            continue
        documents.append(
            RetrievedDocument(
                repository_unique_id=repository_unique_id,
                document_unique_id=row.document_unique_id,
                mime_type=row.mime_type,
                path=blobs.path(row.sha1),
                size=row.size,
                home_community_id=document.home_community_id,
            )
        )
    if not request.documents:
        errors.append(
            RegistryError(ErrorCode.XDSRepositoryError, "no DocumentRequest in the request")
        )
    return RetrieveDocumentSetResponse(
        status=response_status(len(documents), len(errors)),
        documents=tuple(documents),
        errors=tuple(errors),
    )


__all__ = ["REQUEST_CHECKS", "response_status", "retrieve_document_set"]
