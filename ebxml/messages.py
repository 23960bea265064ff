"""Transaction messages as typed values: what parse produces and serialize consumes.

ITI-41/42 (lcm:SubmitObjectsRequest, rs:RegistryResponse), ITI-18 (query:AdhocQueryRequest
/ AdhocQueryResponse), ITI-43 and RAD-69 (RetrieveDocumentSetRequest/Response).
Document content is never held here: it is a reference to a spooled file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ebxml.errors import RegistryError
from ebxml.model import ObjectRef, RegistryObject, Submission
from ebxml.vocabulary import ResponseStatus, ReturnType


@dataclass(frozen=True, slots=True)
class RegistryResponse:
    """rs:RegistryResponse. Status follows ITI TF-3 4.2.4.2 unless given."""

    status: ResponseStatus
    errors: tuple[RegistryError, ...] = ()

    @classmethod
    def from_errors(
        cls, errors: list[RegistryError] | tuple[RegistryError, ...]
    ) -> RegistryResponse:
        status = (
            ResponseStatus.FAILURE if any(e.is_error for e in errors) else ResponseStatus.SUCCESS
        )
        return cls(status, tuple(errors))

    @property
    def ok(self) -> bool:
        return self.status != ResponseStatus.FAILURE


@dataclass(frozen=True, slots=True)
class DocumentContent:
    """One xdsb:Document of an ITI-41 request, resolved to a spooled file by soap/."""

    id: str  # Document/@id as sent (symbolic or uuid) = the ExtrinsicObject id
    path: Path | None  # None: no content found (-> XDSMissingDocument)
    size: int = 0
    sha1: str = ""  # hex, lower case
    content_type: str | None = None
    content_id: str | None = None  # the XOP cid, if it came as an attachment


@dataclass(frozen=True, slots=True)
class ProvideAndRegisterRequest:
    """xdsb:ProvideAndRegisterDocumentSetRequest (ITI TF-2 3.41.4.1.2)."""

    submission: Submission
    documents: tuple[DocumentContent, ...] = ()
    # Content-IDs of attachments no xdsb:Document referenced (-> XDSMissingDocumentMetadata)
    unreferenced_attachments: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AdhocQueryRequest:
    """query:AdhocQueryRequest with its slots still as sent (ITI TF-2 3.18.4.1.2).

    ``parameters`` maps a parameter name to the list of its Slot/ValueList/Value strings,
    in order, one list entry per repeated Slot element (so AND-semantics survive).
    """

    query_id: str
    parameters: dict[str, list[list[str]]]
    return_type: ReturnType = ReturnType.LEAF_CLASS
    return_composed_objects: bool = False
    home: str | None = None
    request_id: str | None = None


class StoredObject(NamedTuple):
    """A registry object as the registry keeps it: its canonical LeafClass XML (one
    rim:ExtrinsicObject / RegistryPackage / Association element, as bytes) and its
    current availability status, which the serializer writes over the stored one.
    A named tuple: a query answer makes one per object, and a frozen dataclass costs
    several times more to make."""

    entry_uuid: str
    xml: bytes
    availability_status: str
    home: str | None = None  # homeCommunityId to write as @home, when configured


@dataclass(frozen=True, slots=True)
class AdhocQueryResponse:
    """query:AdhocQueryResponse.  With LeafClass, ``objects`` are model objects or
    StoredObjects (emitted in order); with ObjectRef, ``object_refs``."""

    status: ResponseStatus
    objects: tuple[RegistryObject | StoredObject, ...] = ()
    object_refs: tuple[ObjectRef, ...] = ()
    errors: tuple[RegistryError, ...] = ()


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """One xdsb:DocumentRequest (ITI TF-2 3.43.4.1.2)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    series_instance_uid: str
    documents: tuple[DocumentRequest, ...]


@dataclass(frozen=True, slots=True)
class StudyRequest:
    """xdsi:StudyRequest (RAD TF-3 4.69.4.1.2)."""

    study_instance_uid: str
    series: tuple[SeriesRequest, ...]


@dataclass(frozen=True, slots=True)
class RetrieveDocumentSetRequest:
    documents: tuple[DocumentRequest, ...]


@dataclass(frozen=True, slots=True)
class RetrieveImagingDocumentSetRequest:
    studies: tuple[StudyRequest, ...]
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RetrievedDocument:
    """One xdsb:DocumentResponse; content streams from ``path`` at serialise time."""

    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    path: Path
    size: int
    home_community_id: str | None = None
    new_repository_unique_id: str | None = None
    new_document_unique_id: str | None = None


@dataclass(frozen=True, slots=True)
class RetrieveDocumentSetResponse:
    status: ResponseStatus
    documents: tuple[RetrievedDocument, ...] = ()
    errors: tuple[RegistryError, ...] = ()


__all__ = [
    "AdhocQueryRequest",
    "AdhocQueryResponse",
    "DocumentContent",
    "DocumentRequest",
    "ProvideAndRegisterRequest",
    "RegistryResponse",
    "RetrieveDocumentSetRequest",
    "RetrieveDocumentSetResponse",
    "RetrieveImagingDocumentSetRequest",
    "RetrievedDocument",
    "SeriesRequest",
    "StoredObject",
    "StudyRequest",
]
