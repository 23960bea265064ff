"""ITI-86 Remove Documents at the Document Repository (RMD profile).

RMD 3.86.4.1.3: the Document Repository removes each requested document it holds and
answers each it cannot with a RegistryError naming it:

- ``XDSUnknownRepositoryId``: the RepositoryUniqueId is not this repository's;
- ``XDSDocumentUniqueIdError``: this repository holds no such document;
- ``XDSUnknownCommunity``: a HomeCommunityId that is not this community's.

The status is Success when every document was removed, PartialSuccess when some were,
Failure when none was (ITI TF-3 4.2.4.2).

Index rows go first, in one database transaction; then each blob no index row uses
any more is deleted (content addressing lets two uniqueIds share one blob), under the
blob's lock that ITI-41 takes too (``repository.blob_references``), so a submission
of the same content in flight in any process keeps it.  A document still
``pending`` belongs to an ITI-41 in flight and is not removable.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import DocumentRequest, RegistryResponse
from ebxml.remove import RemoveDocumentsRequest
from repository.blob_references import delete_unreferenced
from repository.blobs import BlobStore
from repository.retrieve import REQUEST_CHECKS, response_status
from repository.tables import DocumentState, RepositoryDocument


def _unknown_document(request: DocumentRequest) -> RegistryError:
    return RegistryError(
        ErrorCode.XDSDocumentUniqueIdError,
        f"document {request.document_unique_id} is not in repository "
        f"{request.repository_unique_id}",
        request.document_unique_id,
    )


def _first_failure(
    request: DocumentRequest, repository_unique_id: str, home_community_id: str | None
) -> RegistryError | None:
    for check in REQUEST_CHECKS:
        if (error := check(request, repository_unique_id, home_community_id)) is not None:
            return error
    return None


def _remove_rows(session: Session, unique_ids: set[str]) -> dict[str, str]:
    """Delete the committed index rows of ``unique_ids``; uniqueId -> SHA-1 of each."""
    rows = dict(
        session.execute(
            select(RepositoryDocument.document_unique_id, RepositoryDocument.sha1).where(
                RepositoryDocument.document_unique_id.in_(unique_ids),
                RepositoryDocument.state == DocumentState.COMMITTED,
            )
        ).all()
    )
    if rows:
        session.execute(
            delete(RepositoryDocument).where(
                RepositoryDocument.document_unique_id.in_(rows),
                RepositoryDocument.state == DocumentState.COMMITTED,
            )
        )
    return rows


def delete_unused_blobs(
    sessions: sessionmaker[Session], blobs: BlobStore, sha1s: Iterable[str]
) -> int:
    """Delete each blob of ``sha1s`` that no index row references; the count deleted."""
    return delete_unreferenced(sessions, blobs, sha1s)


def remove_documents(
    request: RemoveDocumentsRequest,
    *,
    sessions: sessionmaker[Session],
    blobs: BlobStore,
    repository_unique_id: str,
    home_community_id: str | None = None,
) -> RegistryResponse:
    """Answer an ITI-86 request (RMD 3.86.4.1.3)."""
    errors: list[RegistryError] = []
    wanted: list[DocumentRequest] = []
    for document in request.documents:
        failure = _first_failure(document, repository_unique_id, home_community_id)
        if failure is None:
            wanted.append(document)
        else:
            errors.append(failure)

    removed: dict[str, str] = {}
    if wanted:
        with sessions.begin() as session:
            removed = _remove_rows(session, {d.document_unique_id for d in wanted})
        delete_unused_blobs(sessions, blobs, removed.values())
    errors += [_unknown_document(d) for d in wanted if d.document_unique_id not in removed]
    if not request.documents:
        errors.append(RegistryError(ErrorCode.XDSRepositoryError, "no DocumentRequest"))
    return RegistryResponse(response_status(len(removed), len(errors)), tuple(errors))


__all__ = ["delete_unused_blobs", "remove_documents"]
