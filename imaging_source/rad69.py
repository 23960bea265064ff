"""RAD-69 Retrieve Imaging Document Set at the Imaging Document Source (RAD TF-3 4.69).

The request names studies, their series and, per series, xdsb:DocumentRequests whose
DocumentUniqueId is a SOP Instance UID; the TransferSyntaxUIDList says how the consumer
wants the pixel data.  The answer follows ITI-43 (RAD TF-3 4.69.4.2: the
RetrieveDocumentSetResponse of ITI TF-2 3.43.4.2): every DocumentRequest is answered on
its own, with the instance (mimeType application/dicom) or one RegistryError:

- repositoryUniqueId not the Imaging Document Source's own: XDSUnknownRepositoryId;
- homeCommunityId not this community's: XDSUnknownCommunity;
- an instance not known, or known under another study or series than the request
  names: XDSDocumentUniqueIdError, location the SOP Instance UID, no DocumentResponse;
- an instance that cannot be given in any requested transfer syntax: XDSRepositoryError
  (RAD TF-3 4.69.4.1.3).

Everything is decided before the response is sent; the instances then stream from disk.
From a backing PACS that can say which instances it holds before they are fetched
(:class:`~imaging_source.pacs.StreamingSource`), the status and every RegistryError are
decided from that answer and the cache, and the instances still to come are handed on
as each lands in the cache (:func:`retrieve_imaging_document_set_streamed`).  Should
one of them then not come as promised - the PACS fails or no longer has it, its part is
not a DICOM instance, it cannot be given in a requested transfer syntax -
:class:`IncompleteRetrieve` is raised: the response already sent cannot be corrected,
so it must be cut short, never completed without that instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentRequest,
    RetrievedDocument,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
)
from ebxml.vocabulary import ResponseStatus
from imaging_source.instances import InstanceFile, StoredInstance
from imaging_source.pacs import InstanceRef, InstanceSource, PacsError, StreamingSource
from imaging_source.transcode import Delivery, TranscodeError, Transcoder

DICOM_MIME_TYPE = "application/dicom"  # RAD TF-3 4.69.4.2.3


@dataclass(frozen=True, slots=True)
class ImagingSourceIdentity:
    """Who answers RAD-69: the Imaging Document Source's repositoryUniqueId (RAD TF-3
    4.68.4.1.2.3, distinct from the Document Repository's) and homeCommunityId."""

    repository_unique_id: str
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True)
class _Wanted:
    """One DocumentRequest with the study and series it was asked under."""

    study_instance_uid: str
    series_instance_uid: str
    request: DocumentRequest

    @property
    def ref(self) -> InstanceRef:
        return InstanceRef(
            self.study_instance_uid, self.series_instance_uid, self.request.document_unique_id
        )


Check = Callable[[DocumentRequest, ImagingSourceIdentity], RegistryError | None]


def _check_community(
    request: DocumentRequest, identity: ImagingSourceIdentity
) -> RegistryError | None:
    # ITI TF-2 3.43.4.1.3: a homeCommunityId, when sent and when one is configured,
    # must be this community's
    home = identity.home_community_id
    if home is None or request.home_community_id in (None, home):
        return None
    return RegistryError(
        ErrorCode.XDSUnknownCommunity,
        f"homeCommunityId {request.home_community_id} is not this community ({home})",
        request.document_unique_id,
    )


def _check_repository(
    request: DocumentRequest, identity: ImagingSourceIdentity
) -> RegistryError | None:
    # RAD TF-3 4.69.4.1.3 with ITI TF-2 3.43.4.1.3: XDSUnknownRepositoryId
    if request.repository_unique_id == identity.repository_unique_id:
        return None
    return RegistryError(
        ErrorCode.XDSUnknownRepositoryId,
        f"repositoryUniqueId {request.repository_unique_id} is not this Imaging Document "
        f"Source ({identity.repository_unique_id})",
        request.document_unique_id,
    )


# Checks before an instance is looked up, in order; the first failure answers.
REQUEST_CHECKS: tuple[Check, ...] = (_check_community, _check_repository)


def _unknown_instance(wanted: _Wanted) -> RegistryError:
    uid = wanted.request.document_unique_id
    return RegistryError(
        ErrorCode.XDSDocumentUniqueIdError,
        f"SOP Instance {uid} is not in series {wanted.series_instance_uid} of study "
        f"{wanted.study_instance_uid}",
        uid,
    )


def _untranscodable(uid: str, exc: TranscodeError) -> RegistryError:
    return RegistryError(ErrorCode.XDSRepositoryError, str(exc), uid)


def response_status(found: int, failed: int) -> ResponseStatus:
    """ITI TF-2 3.43.4.2.3: Success when all, PartialSuccess when some, else Failure."""
    if failed == 0 and found > 0:
        return ResponseStatus.SUCCESS
    if found > 0:
        return ResponseStatus.PARTIAL_SUCCESS
    return ResponseStatus.FAILURE


def _requested(request: RetrieveImagingDocumentSetRequest) -> Iterator[_Wanted]:
    for study in request.studies:
        for series in study.series:
            for document in series.documents:
                yield _Wanted(study.study_instance_uid, series.series_instance_uid, document)


def _belongs(instance: InstanceFile, wanted: _Wanted) -> bool:
    # RAD TF-3 4.69.4.1.3: the instance must be of the study and series it is requested in
    return (
        instance.study_instance_uid == wanted.study_instance_uid
        and instance.series_instance_uid == wanted.series_instance_uid
    )


class IncompleteRetrieve(Exception):
    """An instance promised in a streamed RAD-69 response did not come as promised."""


@dataclass(frozen=True, slots=True)
class StreamedDocumentSet:
    """A RAD-69 answer whose last documents are still on their way from the PACS.

    ``response`` holds the status and errors of the whole answer and the documents on
    disk now; ``pending`` the documents to come, in the order their DocumentResponses
    follow those of ``response``; ``deliveries`` yields, batch by batch as they land,
    (index into ``pending``, the file to send), and raises IncompleteRetrieve when one
    cannot be given (then the answer already sent must be cut short)."""

    response: RetrieveDocumentSetResponse
    pending: tuple[RetrievedDocument, ...]
    deliveries: Callable[[], Iterator[list[tuple[int, Delivery]]]]
    # ends the fetch from the PACS (always call it: ``deliveries`` may never be taken)
    close: Callable[[], None]


# A pending document's content is not on disk yet: its part is the delivery that comes
NOT_YET_LOCAL = Path()


def _screened(
    request: RetrieveImagingDocumentSetRequest, identity: ImagingSourceIdentity
) -> tuple[list[_Wanted], list[RegistryError]]:
    """The DocumentRequests to look up, and the errors of those refused at once."""
    errors: list[RegistryError] = []
    wanted: list[_Wanted] = []
    for item in _requested(request):
        error = next((e for check in REQUEST_CHECKS if (e := check(item.request, identity))), None)
        if error is not None:
            errors.append(error)
        else:
            wanted.append(item)
    return wanted, errors


def _document(
    item: _Wanted, identity: ImagingSourceIdentity, path: Path, size: int
) -> RetrievedDocument:
    return RetrievedDocument(
        repository_unique_id=identity.repository_unique_id,
        document_unique_id=item.request.document_unique_id,
        mime_type=DICOM_MIME_TYPE,
        path=path,
        size=size,
        home_community_id=item.request.home_community_id,
    )


def _answered(
    wanted: Iterable[_Wanted],
    located: Mapping[str, InstanceFile],
    request: RetrieveImagingDocumentSetRequest,
    transcoder: Transcoder,
    identity: ImagingSourceIdentity,
    errors: list[RegistryError],
) -> list[RetrievedDocument]:
    """The documents of the located instances; errors for the others, into ``errors``."""
    documents: list[RetrievedDocument] = []
    for item in wanted:
        uid = item.request.document_unique_id
        instance = located.get(uid)
        if instance is None or not _belongs(instance, item):
            errors.append(_unknown_instance(item))
            continue
        try:
            delivery = transcoder.deliver(instance, request.transfer_syntaxes)
        except TranscodeError as exc:
            errors.append(_untranscodable(uid, exc))
            continue
        documents.append(_document(item, identity, delivery.path, delivery.size))
    return documents


def _no_request(wanted: Sequence[_Wanted], errors: list[RegistryError]) -> None:
    if not wanted and not errors:
        errors.append(
            RegistryError(ErrorCode.XDSRepositoryError, "no DocumentRequest in the request")
        )


def retrieve_imaging_document_set(
    request: RetrieveImagingDocumentSetRequest,
    *,
    source: InstanceSource,
    transcoder: Transcoder,
    identity: ImagingSourceIdentity,
) -> RetrieveDocumentSetResponse:
    """Answer a RAD-69 request (run it off the event loop: it reads files, may fetch
    from a PACS and may transcode)."""
    wanted, errors = _screened(request, identity)
    located = source.locate_files([item.ref for item in wanted]) if wanted else {}
    documents = _answered(wanted, located, request, transcoder, identity, errors)
    _no_request(wanted, errors)
    return RetrieveDocumentSetResponse(
        status=response_status(len(documents), len(errors)),
        documents=tuple(documents),
        errors=tuple(errors),
    )


def retrieve_imaging_document_set_streamed(
    request: RetrieveImagingDocumentSetRequest,
    *,
    source: StreamingSource,
    transcoder: Transcoder,
    identity: ImagingSourceIdentity,
) -> StreamedDocumentSet:
    """Answer a RAD-69 request whose instances may still have to come from the PACS
    (run it off the event loop, and ``deliveries`` too).  An instance the PACS holds
    counts as found for the status (ITI TF-2 3.43.4.2.3): the RegistryResponse goes
    out before its bytes do."""
    wanted, errors = _screened(request, identity)
    arriving = source.locate_streaming([item.ref for item in wanted]) if wanted else None
    found = arriving.found if arriving is not None else {}
    local = [item for item in wanted if item.request.document_unique_id in found]
    remote = [item for item in wanted if item.request.document_unique_id not in found]
    documents = _answered(local, found, request, transcoder, identity, errors)
    coming = arriving.coming if arriving is not None else {}
    pending_items: list[_Wanted] = []
    for item in remote:
        ref = coming.get(item.request.document_unique_id)
        if ref is None or ref != item.ref:
            errors.append(_unknown_instance(item))
        else:
            pending_items.append(item)
    _no_request(wanted, errors)
    pending = tuple(_document(item, identity, NOT_YET_LOCAL, 0) for item in pending_items)
    close = arriving.close if arriving is not None else _nothing
    if not pending:
        close()

    def deliveries() -> Iterator[list[tuple[int, Delivery]]]:
        if arriving is None or not pending_items:
            return
        yield from _delivered(
            arriving.arrivals, pending_items, transcoder, request.transfer_syntaxes
        )

    return StreamedDocumentSet(
        RetrieveDocumentSetResponse(
            status=response_status(len(documents) + len(pending), len(errors)),
            documents=tuple(documents),
            errors=tuple(errors),
        ),
        pending,
        deliveries,
        close,
    )


def _nothing() -> None:
    return None


def _delivered(
    arrivals: Callable[[], Iterator[list[StoredInstance]]],
    pending: Sequence[_Wanted],
    transcoder: Transcoder,
    syntaxes: Sequence[str],
) -> Iterator[list[tuple[int, Delivery]]]:
    """Each pending document's file as its instance lands; IncompleteRetrieve for one
    that does not come, or comes but cannot be given."""
    waiting: dict[str, list[int]] = {}
    for index, item in enumerate(pending):
        waiting.setdefault(item.request.document_unique_id, []).append(index)
    try:
        for batch in arrivals():
            ready: list[tuple[int, Delivery]] = []
            for instance in batch:
                for index in waiting.pop(instance.sop_instance_uid, ()):
                    ready.append((index, _delivery(instance, pending[index], transcoder, syntaxes)))
            if ready:
                yield ready
    except PacsError as exc:
        raise IncompleteRetrieve(f"the backing PACS failed: {exc}") from exc
    if waiting:
        raise IncompleteRetrieve(
            f"the backing PACS did not give {len(waiting)} instance(s) it listed, e.g. "
            f"{next(iter(waiting))}"
        )


def _delivery(
    instance: StoredInstance, item: _Wanted, transcoder: Transcoder, syntaxes: Sequence[str]
) -> Delivery:
    if not _belongs(instance, item):
        raise IncompleteRetrieve(
            f"SOP Instance {instance.sop_instance_uid} came as part of series "
            f"{instance.series_instance_uid}, not {item.series_instance_uid}"
        )
    try:
        return transcoder.deliver(instance, syntaxes)
    except TranscodeError as exc:
        raise IncompleteRetrieve(str(exc)) from exc


__all__ = [
    "DICOM_MIME_TYPE",
    "ImagingSourceIdentity",
    "IncompleteRetrieve",
    "NOT_YET_LOCAL",
    "REQUEST_CHECKS",
    "StreamedDocumentSet",
    "response_status",
    "retrieve_imaging_document_set",
    "retrieve_imaging_document_set_streamed",
]
