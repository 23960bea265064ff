"""imaging_source/publish.py over the wire: RAD-68 as MTOM/XOP to /xds/repository and
the ITI-18 for the previous manifest as simple SOAP to /xds/registry, both served by
xdsi's own endpoints in-process (httpx.ASGITransport); ITI-43 over SOAP returns the KOS."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import httpx
import pytest
from kos_fixtures import CONFIG as MANIFEST_CONFIG
from kos_fixtures import study_images
from lxml import etree
from publish_fixtures import (  # noqa: F401 (fixtures)
    AFFINITY_PATIENT,
    REPOSITORY_UNIQUE_ID,
    database_url_fixture,
    postgres_url_fixture,
    registry_fixture,
    repository_fixture,
    sqlite_template_fixture,
)
from pydicom import dcmread
from starlette.applications import Starlette

from ebxml.errors import ErrorCode
from ebxml.messages import DocumentRequest, RetrieveDocumentSetRequest
from ebxml.parse import parse_submit_objects_request
from ebxml.retrieve import parse_retrieve_document_set_response, retrieve_document_set_request
from ebxml.tags import LCM
from ebxml.vocabulary import Action, AvailabilityStatus
from imaging_source.kos_metadata import ManifestMetadataConfig
from imaging_source.publish import (
    PublishConfig,
    SoapRegistryUpdateClient,
    SoapRepositoryClient,
    StoredQueryManifestLocator,
    deprecate_manifest,
    publish_study,
    soap_query,
)
from registry.service import DocumentRegistry
from registry.soap_service import registry_service
from registry.soap_update import update_operation
from repository.service import DocumentRepository, repository_service
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits

REPOSITORY_URL = "http://xdsi.test/xds/repository"
REGISTRY_URL = "http://xdsi.test/xds/registry"


@pytest.fixture
def transport(repository: DocumentRepository, registry: DocumentRegistry) -> httpx.ASGITransport:
    update = {Action.ITI57: update_operation(registry)}
    services = [
        repository_service(repository),
        registry_service(registry, extra_operations=update),
    ]
    return httpx.ASGITransport(app=Starlette(routes=build_soap_routes(services, Limits())))


@pytest.fixture
def config(tmp_path: Path) -> PublishConfig:
    return PublishConfig(
        MANIFEST_CONFIG, ManifestMetadataConfig(source_id="1.3.6.1.4.1.21367.13.71.1"), tmp_path
    )


def publish_over_soap(images, transport, config):  # noqa: ANN001, ANN201
    return publish_study(
        images[0].StudyInstanceUID,
        images,
        AFFINITY_PATIENT,
        repository=SoapRepositoryClient(REPOSITORY_URL, transport=transport),
        config=config,
        locator=StoredQueryManifestLocator(soap_query(REGISTRY_URL, transport=transport)),
    )


def test_rad68_over_mtom_then_iti43_returns_the_kos(
    transport: httpx.ASGITransport, config: PublishConfig, tmp_path: Path
) -> None:
    result = publish_over_soap(study_images(), transport, config)
    assert result.ok, result.response.errors
    # the answer's parts land in the test's own directory
    client = SoapClient(REPOSITORY_URL, transport=transport, limits=Limits(spool_dir=tmp_path))
    request = RetrieveDocumentSetRequest(
        (DocumentRequest(REPOSITORY_UNIQUE_ID, result.manifest_unique_id),)
    )
    response = client.call_sync(Action.ITI43, retrieve_document_set_request(request), mtom=True)
    retrieved = parse_retrieve_document_set_response(response.body, response.attachments)
    (document,) = retrieved.documents
    assert document.mime_type == "application/dicom"
    kos = dcmread(BytesIO(document.path.read_bytes()))
    assert kos.SOPInstanceUID == result.manifest_unique_id


def test_republishing_over_soap_finds_and_replaces_the_previous_manifest(
    transport: httpx.ASGITransport, config: PublishConfig
) -> None:
    images = study_images()
    first = publish_over_soap(images, transport, config)
    second = publish_over_soap(images[:-1], transport, config)
    assert second.ok, second.response.errors
    assert second.replaced_entry_uuid == first.manifest_entry_uuid


def test_unreachable_repository_is_a_repository_error(config: PublishConfig) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    images = study_images()
    result = publish_study(
        images[0].StudyInstanceUID,
        images,
        AFFINITY_PATIENT,
        repository=SoapRepositoryClient(REPOSITORY_URL, transport=httpx.MockTransport(refuse)),
        config=config,
    )
    assert not result.ok
    assert [e.code for e in result.response.errors] == [ErrorCode.XDSRepositoryError]


def test_iti57_over_simple_soap_deprecates_the_manifest(
    transport: httpx.ASGITransport, config: PublishConfig
) -> None:
    images = study_images()
    published = publish_over_soap(images, transport, config)
    locator = StoredQueryManifestLocator(soap_query(REGISTRY_URL, transport=transport))
    result = deprecate_manifest(
        images[0].StudyInstanceUID,
        AFFINITY_PATIENT,
        registry=SoapRegistryUpdateClient(REGISTRY_URL, transport=transport),
        config=config,
        locator=locator,
    )
    assert result.ok, result.response.errors
    assert result.deprecated_entry_uuid == published.manifest_entry_uuid
    assert locator.current_manifest(AFFINITY_PATIENT, images[0].StudyInstanceUID) is None


def test_iti57_submission_set_is_the_manifests_patients(config: PublishConfig) -> None:
    """ITI TF-2 3.57.4.1.3.2: the SubmissionSet is for the patient of what it changes."""
    sent = []

    def registry(request: httpx.Request) -> httpx.Response:
        sent.append(request.content)
        raise httpx.ConnectError("connection refused", request=request)

    class Known:
        def current_manifest(self, patient_id: str, study_uid: str) -> str:
            return "urn:uuid:7d1e5f2c-4a8b-4c3d-9e0f-1a2b3c4d5e6f"

    result = deprecate_manifest(
        "1.2.3.4",
        AFFINITY_PATIENT,
        registry=SoapRegistryUpdateClient(REGISTRY_URL, transport=httpx.MockTransport(registry)),
        config=config,
        locator=Known(),
    )
    assert [e.code for e in result.response.errors] == [ErrorCode.XDSRegistryError]
    (body,) = sent
    envelope = etree.fromstring(body)
    (request,) = envelope.iter(LCM.SubmitObjectsRequest)
    submission = parse_submit_objects_request(request).value
    assert submission.submission_set.patient_id == AFFINITY_PATIENT
    (association,) = submission.associations
    assert association.target == "urn:uuid:7d1e5f2c-4a8b-4c3d-9e0f-1a2b3c4d5e6f"
    assert (association.original_status, association.new_status) == (
        AvailabilityStatus.APPROVED,
        AvailabilityStatus.DEPRECATED,
    )
