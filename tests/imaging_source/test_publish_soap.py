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
from ebxml.retrieve import parse_retrieve_document_set_response, retrieve_document_set_request
from ebxml.vocabulary import Action
from imaging_source.kos_metadata import ManifestMetadataConfig
from imaging_source.publish import (
    PublishConfig,
    SoapRepositoryClient,
    StoredQueryManifestLocator,
    publish_study,
    soap_query,
)
from registry.service import DocumentRegistry
from registry.soap_service import registry_service
from repository.service import DocumentRepository, repository_service
from soap.app import build_soap_routes
from soap.client import SoapClient
from soap.limits import Limits

REPOSITORY_URL = "http://xdsi.test/xds/repository"
REGISTRY_URL = "http://xdsi.test/xds/registry"


@pytest.fixture
def transport(repository: DocumentRepository, registry: DocumentRegistry) -> httpx.ASGITransport:
    services = [repository_service(repository), registry_service(registry)]
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
    transport: httpx.ASGITransport, config: PublishConfig
) -> None:
    result = publish_over_soap(study_images(), transport, config)
    assert result.ok, result.response.errors
    client = SoapClient(REPOSITORY_URL, transport=transport)
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
