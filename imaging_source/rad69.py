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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    DocumentRequest,
    RetrievedDocument,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
)
from ebxml.vocabulary import ResponseStatus
from imaging_source.instances import StoredInstance
from imaging_source.pacs import InstanceRef, InstanceSource
from imaging_source.transcode import TranscodeError, Transcoder

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


def _belongs(instance: StoredInstance, wanted: _Wanted) -> bool:
    # RAD TF-3 4.69.4.1.3: the instance must be of the study and series it is requested in
    return (
        instance.study_instance_uid == wanted.study_instance_uid
        and instance.series_instance_uid == wanted.series_instance_uid
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
    errors: list[RegistryError] = []
    wanted: list[_Wanted] = []
    for item in _requested(request):
        error = next((e for check in REQUEST_CHECKS if (e := check(item.request, identity))), None)
        if error is not None:
            errors.append(error)
        else:
            wanted.append(item)

    located = source.locate([item.ref for item in wanted]) if wanted else {}
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
        documents.append(
            RetrievedDocument(
                repository_unique_id=identity.repository_unique_id,
                document_unique_id=uid,
                mime_type=DICOM_MIME_TYPE,
                path=delivery.path,
                size=delivery.size,
                home_community_id=item.request.home_community_id,
            )
        )
    if not wanted and not errors:
        errors.append(
            RegistryError(ErrorCode.XDSRepositoryError, "no DocumentRequest in the request")
        )
    return RetrieveDocumentSetResponse(
        status=response_status(len(documents), len(errors)),
        documents=tuple(documents),
        errors=tuple(errors),
    )


__all__ = [
    "DICOM_MIME_TYPE",
    "ImagingSourceIdentity",
    "REQUEST_CHECKS",
    "response_status",
    "retrieve_imaging_document_set",
]
