"""XDS error codes (ITI TF-3 Table 4.2.4.1-2) and the RegistryError value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ebxml.vocabulary import ErrorSeverity


class ErrorCode(StrEnum):
    """ITI TF-3 Table 4.2.4.1-2, spelled exactly as the table spells them, plus the
    ebRS exception names the ITI transactions reuse (ITI TF-2 3.42.4.1.3.5, 3.62)."""

    DOCUMENT_QUEUED = "DocumentQueued"
    INVALID_DOCUMENT_CONTENT = "InvalidDocumentContent"
    PARTIAL_APPEND_CONTENT_NOT_PROCESSED = "PartialAppendContentNotProcessed"
    PARTIAL_FOLDER_CONTENT_NOT_PROCESSED = "PartialFolderContentNotProcessed"
    PARTIAL_REPLACE_CONTENT_NOT_PROCESSED = "PartialReplaceContentNotProcessed"
    PARTIAL_TRANSFORM_NOT_PROCESSED = "PartialTransformNotProcessed"
    PARTIAL_TRANSFORM_REPLACE_NOT_PROCESSED = "PartialTransformReplaceNotProcessed"
    XDSDocumentUniqueIdError = "XDSDocumentUniqueIdError"
    XDSDuplicateUniqueIdInRegistry = "XDSDuplicateUniqueIdInRegistry"
    XDSExtraMetadataNotSaved = "XDSExtraMetadataNotSaved"
    XDSMissingDocument = "XDSMissingDocument"
    XDSMissingDocumentMetadata = "XDSMissingDocumentMetadata"
    XDSMissingHomeCommunityId = "XDSMissingHomeCommunityId"
    XDSNonIdenticalHash = "XDSNonIdenticalHash"
    XDSNonIdenticalSize = "XDSNonIdenticalSize"
    XDSPatientIdDoesNotMatch = "XDSPatientIdDoesNotMatch"
    XDSRegistryBusy = "XDSRegistryBusy"
    XDSRegistryDeprecatedDocumentError = "XDSRegistryDeprecatedDocumentError"
    XDSRegistryDuplicateUniqueIdInMessage = "XDSRegistryDuplicateUniqueIdInMessage"
    XDSRegistryError = "XDSRegistryError"
    XDSRegistryMetadataError = "XDSRegistryMetadataError"
    XDSRegistryNotAvailable = "XDSRegistryNotAvailable"
    XDSRegistryOutOfResources = "XDSRegistryOutOfResources"
    XDSRepositoryBusy = "XDSRepositoryBusy"
    XDSRepositoryDuplicateUniqueIdInMessage = "XDSRepositoryDuplicateUniqueIdInMessage"
    XDSRepositoryError = "XDSRepositoryError"
    XDSRepositoryMetadataError = "XDSRepositoryMetadataError"
    XDSRepositoryOutOfResources = "XDSRepositoryOutOfResources"
    XDSResultNotSinglePatient = "XDSResultNotSinglePatient"
    XDSStoredQueryMissingParam = "XDSStoredQueryMissingParam"
    XDSStoredQueryParamNumber = "XDSStoredQueryParamNumber"
    XDSTooManyResults = "XDSTooManyResults"
    XDSUnavailableCommunity = "XDSUnavailableCommunity"
    XDSUnknownCommunity = "XDSUnknownCommunity"
    XDSUnknownPatientId = "XDSUnknownPatientId"
    XDSUnknownRepositoryId = "XDSUnknownRepositoryId"
    XDSUnknownStoredQuery = "XDSUnknownStoredQuery"
    XDSMetadataUpdateError = "XDSMetadataUpdateError"
    XDSMetadataVersionError = "XDSMetadataVersionError"
    XDSMetadataUpdateOperationError = "XDSMetadataUpdateOperationError"
    XDSPatientIDReconciliationError = "XDSPatientIDReconciliationError"
    UnresolvedReferenceException = "UnresolvedReferenceException"
    ReferencesExistException = "ReferencesExistException"


@dataclass(frozen=True, slots=True)
class RegistryError:
    """One rs:RegistryError (ebRS 3.0; ITI TF-3 4.2.4)."""

    code: ErrorCode
    context: str
    location: str = ""
    severity: ErrorSeverity = ErrorSeverity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity == ErrorSeverity.ERROR

    @classmethod
    def warning(cls, code: ErrorCode, context: str, location: str = "") -> RegistryError:
        return cls(code, context, location, ErrorSeverity.WARNING)


class TransactionAborted(Exception):
    """Raised inside an actor to abort a transaction; carries the errors to answer."""

    def __init__(self, errors: list[RegistryError] | RegistryError) -> None:
        self.errors = [errors] if isinstance(errors, RegistryError) else list(errors)
        super().__init__("; ".join(f"{e.code}: {e.context}" for e in self.errors))


__all__ = ["ErrorCode", "RegistryError", "TransactionAborted"]
