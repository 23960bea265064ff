"""RAD-68 Provide and Register Imaging Document Set - MTOM/XOP: the Imaging Document
Source publishes a study's manifest (RAD TF-3 4.68), which is ITI-41 carrying a KOS.

:func:`publish_study` builds the manifest and its metadata, finds the study's current
manifest (ITI-18 FindDocumentsByReferenceId on the Study Instance UID, RAD TF-3
4.68.4.1.2.3) so a changed study is published as an RPLC of it (RAD68-006), and sends
the set through a :class:`DocumentRepositoryClient`: :class:`InProcessRepositoryClient`
for xdsi's own repository, :class:`SoapRepositoryClient` for any repository by URL.
The journal of published manifests (``imaging_source.published``) can stand in for
the ITI-18 and keeps an unchanged study from being published twice.

A study whose instances are all gone cannot have a manifest (a KOS references at least
one instance), so its current one is deprecated instead: :func:`deprecate_manifest`
sends an ITI-57 Update Document Set with one UpdateAvailabilityStatus, Approved ->
Deprecated (ITI TF-2 3.57.4.1.3.3.2), through a :class:`RegistryUpdateClient`:
:class:`InProcessRegistryUpdateClient` for xdsi's own registry,
:class:`SoapRegistryUpdateClient` for any registry by URL.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
from pydicom.dataset import Dataset
from sqlalchemy.orm import Session, sessionmaker

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    AdhocQueryRequest,
    AdhocQueryResponse,
    DocumentContent,
    ProvideAndRegisterRequest,
    RegistryResponse,
)
from ebxml.model import DocumentEntry, Submission, SubmissionSet
from ebxml.serialize import provide_and_register_request, submit_objects_request
from ebxml.tags import QUERY, RS
from ebxml.vocabulary import (
    Action,
    AvailabilityStatus,
    QueryParameter,
    ResponseStatus,
    ReturnType,
    StoredQuery,
)
from ebxml.wire import (
    adhoc_query_request,
    adhoc_query_response,
    parse_adhoc_query_response,
    parse_registry_response,
)
from imaging_source.kos import (
    InstanceDescription,
    ManifestConfig,
    build_manifest,
    describe,
    manifest_bytes,
    new_uid,
)
from imaging_source.kos_metadata import (
    KOS_FORMAT,
    ManifestMetadataConfig,
    ReportDocument,
    manifest_submission,
    new_entry_uuid,
    study_reference_id,
)
from imaging_source.published import PublishedManifest, PublishedManifests, instance_digest
from registry.update import availability_update
from soap.client import SoapClient
from soap.faults import SoapFault
from soap.message import OutgoingAttachment

log = logging.getLogger(__name__)

# Failures of an exchange before a response could be read (as repository.registry_client)
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.TransportError, OSError)


class StudyHasNoInstances(ValueError):
    """A manifest references at least one instance; a study with none left has its
    manifest deprecated instead (:func:`deprecate_manifest`)."""


class RegistryQueryFailed(Exception):
    """The registry gave no usable answer to the ITI-18 for a study's manifest."""


# --- the repository seam ---------------------------------------------------------------------


@runtime_checkable
class DocumentRepositoryClient(Protocol):
    def provide_and_register(self, request: ProvideAndRegisterRequest) -> RegistryResponse:
        """ITI-41 / RAD-68; documents are spooled files named by their entry id."""
        ...


class _Repository(Protocol):
    """What :class:`InProcessRepositoryClient` needs of ``repository.service.DocumentRepository``."""

    def provide_and_register(
        self, request: ProvideAndRegisterRequest, unreferenced_cids: Sequence[str] = ()
    ) -> RegistryResponse: ...


class InProcessRepositoryClient:
    """xdsi's own Document Repository in this process: a direct call."""

    def __init__(self, repository: _Repository) -> None:
        self.repository = repository

    def provide_and_register(self, request: ProvideAndRegisterRequest) -> RegistryResponse:
        return self.repository.provide_and_register(request)


def _failure(code: ErrorCode, text: str) -> RegistryResponse:
    return RegistryResponse.from_errors([RegistryError(code, text)])


class SoapRepositoryClient:
    """RAD-68 over SOAP 1.2 MTOM/XOP (RAD TF-3 4.68.4.1.2, ITI TF-2 V.3) to ``url``.

    A transport failure or a SOAP fault is answered as a failed RegistryResponse with
    ``XDSRepositoryError``.  ``client_options`` go to ``soap.client.SoapClient``.
    Call from a worker thread or the command line: each call runs its own event loop.
    """

    def __init__(self, url: str, **client_options: Any) -> None:
        self.url = url
        self.client = SoapClient(url, **client_options)

    def provide_and_register(self, request: ProvideAndRegisterRequest) -> RegistryResponse:
        parts = [(doc, doc.content_id or f"{uuid.uuid4().hex}@xdsi") for doc in request.documents]
        body = provide_and_register_request(
            request.submission, [(doc.id, cid) for doc, cid in parts]
        )
        attachments = [
            OutgoingAttachment(
                cid, doc.content_type or "application/octet-stream", doc.path, doc.size
            )
            for doc, cid in parts
            if doc.path is not None
        ]
        try:
            response = self.client.call_sync(Action.ITI41, body, attachments=attachments, mtom=True)
        except TRANSPORT_ERRORS as exc:
            log.warning("repository %s not reachable: %s", self.url, exc)
            return _failure(
                ErrorCode.XDSRepositoryError, f"repository {self.url} not reachable: {exc}"
            )
        except SoapFault as fault:
            log.warning("repository %s answered a SOAP fault: %s", self.url, fault.reason)
            return _failure(ErrorCode.XDSRepositoryError, f"repository fault: {fault.reason}")
        return parse_registry_response(response.body)


# --- the registry update seam (ITI-57) -----------------------------------------------------


@runtime_checkable
class RegistryUpdateClient(Protocol):
    def update(self, submission: Submission) -> RegistryResponse:
        """ITI-57 Update Document Set (ITI TF-2 3.57)."""
        ...


class _UpdatingRegistry(Protocol):
    """What :class:`InProcessRegistryUpdateClient` needs of ``registry.service.DocumentRegistry``."""

    def update(self, submission: Submission) -> RegistryResponse: ...


class InProcessRegistryUpdateClient:
    """xdsi's own Document Registry in this process: a direct call."""

    def __init__(self, registry: _UpdatingRegistry) -> None:
        self.registry = registry

    def update(self, submission: Submission) -> RegistryResponse:
        return self.registry.update(submission)


class SoapRegistryUpdateClient:
    """ITI-57 over simple SOAP 1.2 (ITI TF-2 3.57.5, V.3) to the registry at ``url``.

    A transport failure, a SOAP fault or an answer that is no rs:RegistryResponse is
    answered as a failed RegistryResponse with ``XDSRegistryError``.
    """

    def __init__(self, url: str, **client_options: Any) -> None:
        self.url = url
        self.client = SoapClient(url, **client_options)

    def update(self, submission: Submission) -> RegistryResponse:
        body = submit_objects_request(submission)
        try:
            response = self.client.call_sync(Action.ITI57, body, mtom=False)
        except TRANSPORT_ERRORS as exc:
            log.warning("registry %s not reachable: %s", self.url, exc)
            return _failure(ErrorCode.XDSRegistryError, f"registry {self.url} not reachable: {exc}")
        except SoapFault as fault:
            log.warning("registry %s answered a SOAP fault: %s", self.url, fault.reason)
            return _failure(ErrorCode.XDSRegistryError, f"registry fault: {fault.reason}")
        if response.body.tag != RS.RegistryResponse:
            return _failure(
                ErrorCode.XDSRegistryError, f"registry {self.url} answered {response.body.tag}"
            )
        return parse_registry_response(response.body)


# --- finding a study's current manifest (ITI-18) --------------------------------------------

Query = Callable[[AdhocQueryRequest], AdhocQueryResponse]


def _quoted(value: str) -> str:
    """ITI TF-2 3.18.4.1.2.3.5: a string value is quoted, quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def manifest_query(patient_id: str, study_uid: str) -> AdhocQueryRequest:
    """ITI TF-2 3.18.4.1.2.3.7.14 FindDocumentsByReferenceId: the patient's Approved
    KOS manifests whose referenceIdList holds the study (RAD TF-3 4.68.4.1.2.3)."""
    study_ref = study_reference_id(study_uid)
    format_code = f"{KOS_FORMAT.code}^^{KOS_FORMAT.scheme}"
    return AdhocQueryRequest(
        query_id=StoredQuery.FIND_DOCUMENTS_BY_REFERENCE_ID,
        parameters={
            QueryParameter.DOC_ENTRY_PATIENT_ID: [[_quoted(patient_id)]],
            QueryParameter.DOC_ENTRY_STATUS: [[f"({_quoted(AvailabilityStatus.APPROVED)})"]],
            QueryParameter.DOC_ENTRY_FORMAT_CODE: [[f"({_quoted(format_code)})"]],
            QueryParameter.DOC_ENTRY_REFERENCE_ID_LIST: [[f"({_quoted(study_ref)})"]],
        },
        return_type=ReturnType.LEAF_CLASS,
    )


class ManifestLocator(Protocol):
    def current_manifest(self, patient_id: str, study_uid: str) -> str | None:
        """The entryUUID of the study's Approved manifest, or None."""
        ...


class StoredQueryManifestLocator:
    """Asks a registry through ``query`` (an ITI-18 exchange); the newest manifest by
    creationTime wins if a study has several."""

    def __init__(self, query: Query) -> None:
        self.query = query

    def current_manifest(self, patient_id: str, study_uid: str) -> str | None:
        response = self.query(manifest_query(patient_id, study_uid))
        if response.status != ResponseStatus.SUCCESS:
            reasons = "; ".join(f"{e.code}: {e.context}" for e in response.errors)
            raise RegistryQueryFailed(f"FindDocumentsByReferenceId answered {reasons}")
        manifests = [e for e in response.objects if isinstance(e, DocumentEntry)]
        if not manifests:
            return None
        return max(manifests, key=lambda e: e.creation_time or "").entry_uuid


class _Registry(Protocol):
    sessions: sessionmaker[Session]


def in_process_query(registry: _Registry) -> Query:
    """ITI-18 against the registry actor of this process, read as a consumer reads it."""
    from registry.stored_query import StoredQueryConfig, execute_stored_query

    def query(request: AdhocQueryRequest) -> AdhocQueryResponse:
        with registry.sessions() as session:
            response = execute_stored_query(session, request, StoredQueryConfig())
        return parse_adhoc_query_response(adhoc_query_response(response, request.return_type))

    return query


def soap_query(url: str, **client_options: Any) -> Query:
    """ITI-18 over simple SOAP (ITI TF-2 3.18.5) to the registry at ``url``."""
    client = SoapClient(url, **client_options)

    def query(request: AdhocQueryRequest) -> AdhocQueryResponse:
        try:
            response = client.call_sync(Action.ITI18, adhoc_query_request(request), mtom=False)
        except (*TRANSPORT_ERRORS, SoapFault) as exc:
            raise RegistryQueryFailed(f"registry {url}: {exc}") from exc
        if response.body.tag != QUERY.AdhocQueryResponse:
            raise RegistryQueryFailed(f"registry {url} answered {response.body.tag}")
        return parse_adhoc_query_response(response.body)

    return query


# --- publishing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishConfig:
    """How the Imaging Document Source publishes: the manifest's retrieve information,
    the affinity domain's metadata, where to spool the KOS while it is sent."""

    manifest: ManifestConfig
    metadata: ManifestMetadataConfig
    spool_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class ReportContent:
    """A diagnostic report to submit with the manifest: its metadata and its file."""

    document: ReportDocument
    path: Path


@dataclass(frozen=True, slots=True)
class PublishResult:
    manifest_unique_id: str  # the KOS SOP Instance UID (RAD TF-3 4.68.4.1.2.3)
    manifest_entry_uuid: str
    replaced_entry_uuid: str | None  # the previous manifest this one replaces (RPLC)
    response: RegistryResponse
    unchanged: bool = False  # the journal's manifest already covers these instances

    @property
    def ok(self) -> bool:
        return self.response.status == ResponseStatus.SUCCESS


def _content(entry_id: str, path: Path, mime_type: str) -> DocumentContent:
    digest = hashlib.sha1()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(65536):
            digest.update(chunk)
            size += len(chunk)
    return DocumentContent(
        entry_id, path, size, digest.hexdigest(), mime_type, f"{uuid.uuid4().hex}@xdsi"
    )


def _descriptions(
    instances: Iterable[InstanceDescription | Dataset],
) -> list[InstanceDescription]:
    return [i if isinstance(i, InstanceDescription) else describe(i) for i in instances]


def _unchanged(
    journal: PublishedManifests | None, study_uid: str, patient_id: str, digest: str
) -> PublishResult | None:
    record = journal.get(study_uid) if journal else None
    if (
        record is None
        or record.deprecated is not None
        or record.patient_id != patient_id
        or record.instance_digest != digest
    ):
        return None
    return PublishResult(
        record.manifest_unique_id,
        record.entry_uuid,
        None,
        RegistryResponse(ResponseStatus.SUCCESS),
        unchanged=True,
    )


def publish_study(
    study_uid: str,
    instances: Iterable[InstanceDescription | Dataset],
    patient_id: str,
    *,
    repository: DocumentRepositoryClient,
    config: PublishConfig,
    locator: ManifestLocator | None = None,
    journal: PublishedManifests | None = None,
    report: ReportContent | None = None,
    force: bool = False,
    now: datetime | None = None,
) -> PublishResult:
    """RAD-68 for ``study_uid``: a new manifest of ``instances`` (the study's instances
    as datasets or descriptions) for the affinity-domain ``patient_id`` (CX).

    The study's current manifest - found by ``locator`` (ITI-18), else remembered in
    ``journal`` - is replaced by the new one (RPLC, RAD68-006).  With a ``journal``, a
    study whose instances have not changed since its last publication is not sent
    again (``unchanged``) unless ``force``; a successful publication is recorded.
    """
    described = [i for i in _descriptions(instances) if i.study_instance_uid == study_uid]
    if not described:
        raise StudyHasNoInstances(
            f"study {study_uid} has no instances: deprecate its manifest instead"
        )
    digest = instance_digest(i.sop_instance_uid for i in described)
    if not force and (same := _unchanged(journal, study_uid, patient_id, digest)):
        return same
    moment = now or datetime.now(UTC)
    finder: ManifestLocator | None = locator if locator is not None else journal
    previous = finder.current_manifest(patient_id, study_uid) if finder is not None else None
    kos = build_manifest(described, config.manifest, now=moment)
    package = manifest_submission(
        str(kos.SOPInstanceUID),
        described,
        patient_id,
        config.metadata,
        submission_set_uid=new_uid(config.manifest.uid_root),
        report=report.document if report else None,
        replaces=previous,
        now=moment,
    )
    with tempfile.TemporaryDirectory(dir=config.spool_dir, prefix="rad68-") as spool:
        kos_path = Path(spool) / "manifest.dcm"
        kos_path.write_bytes(manifest_bytes(kos))
        documents = [_content(package.manifest.entry_uuid, kos_path, package.manifest.mime_type)]
        if report and package.report:
            documents.append(
                _content(package.report.entry_uuid, report.path, report.document.mime_type)
            )
        response = repository.provide_and_register(
            ProvideAndRegisterRequest(package.submission, tuple(documents))
        )
    result = PublishResult(str(kos.SOPInstanceUID), package.manifest.entry_uuid, previous, response)
    if not result.ok:
        log.warning(
            "RAD-68 for study %s: %s",
            study_uid,
            "; ".join(f"{e.code}: {e.context}" for e in response.errors),
        )
    elif journal is not None:
        journal.record(
            PublishedManifest(
                study_uid,
                patient_id,
                result.manifest_unique_id,
                result.manifest_entry_uuid,
                digest,
                len(described),
                moment,
            )
        )
    return result


# --- deprecating (ITI-57) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeprecationResult:
    study_uid: str
    deprecated_entry_uuid: str | None  # None: the study had no current manifest
    response: RegistryResponse

    @property
    def ok(self) -> bool:
        return self.response.status == ResponseStatus.SUCCESS


def _dtm(moment: datetime) -> str:
    """ITI TF-3 4.2.3.3.6 submissionTime: UTC, DTM."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def deprecation_submission_set(
    patient_id: str, config: PublishConfig, *, now: datetime
) -> SubmissionSet:
    """The ITI-57 SubmissionSet, built as the manifest's RAD-68 one is (kos_metadata):
    the source, content type, authors and title of the affinity domain, for the
    manifest's patient (ITI TF-2 3.57.4.1.3.2: the patient of what it changes)."""
    metadata = config.metadata
    return SubmissionSet(
        entry_uuid=new_entry_uuid(),
        unique_id=new_uid(config.manifest.uid_root),
        source_id=metadata.source_id,
        patient_id=patient_id,
        submission_time=_dtm(now),
        content_type_code=metadata.content_type_code,
        authors=metadata.authors,
        title=metadata.title,
    )


def deprecate_manifest(
    study_uid: str,
    patient_id: str,
    *,
    registry: RegistryUpdateClient,
    config: PublishConfig,
    locator: ManifestLocator | None = None,
    journal: PublishedManifests | None = None,
    now: datetime | None = None,
) -> DeprecationResult:
    """The study's instances are all gone: its current manifest - found by ``locator``
    (ITI-18), else the ``journal``'s - becomes Deprecated by an ITI-57 Update Document
    Set with one UpdateAvailabilityStatus Association, Approved -> Deprecated (ITI TF-2
    3.57.4.1.3.3.2), for ``patient_id``, the manifest's patient.  A study without a
    current manifest needs nothing.  The journal records the deprecation."""
    moment = now or datetime.now(UTC)
    finder: ManifestLocator | None = locator if locator is not None else journal
    target = finder.current_manifest(patient_id, study_uid) if finder is not None else None
    if target is None:
        response = RegistryResponse(ResponseStatus.SUCCESS)
    else:
        submission_set = deprecation_submission_set(patient_id, config, now=moment)
        response = registry.update(
            availability_update(
                submission_set,
                target,
                AvailabilityStatus.APPROVED,
                AvailabilityStatus.DEPRECATED,
            )
        )
    result = DeprecationResult(study_uid, target, response)
    if not result.ok:
        log.warning(
            "ITI-57 deprecating the manifest of study %s: %s",
            study_uid,
            "; ".join(f"{e.code}: {e.context}" for e in response.errors),
        )
    elif journal is not None:
        journal.record_deprecation(study_uid, moment)
    return result


__all__ = [
    "DeprecationResult",
    "DocumentRepositoryClient",
    "InProcessRegistryUpdateClient",
    "InProcessRepositoryClient",
    "ManifestLocator",
    "PublishConfig",
    "PublishResult",
    "RegistryQueryFailed",
    "RegistryUpdateClient",
    "ReportContent",
    "SoapRegistryUpdateClient",
    "SoapRepositoryClient",
    "StoredQueryManifestLocator",
    "StudyHasNoInstances",
    "deprecate_manifest",
    "deprecation_submission_set",
    "in_process_query",
    "manifest_query",
    "publish_study",
    "soap_query",
]
