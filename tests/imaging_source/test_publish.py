"""imaging_source/publish.py: RAD-68 into a real in-process Document Repository and
Registry (SQLite and PostgreSQL), checked as a Document Consumer would: ITI-18 finds the
manifest by formatCode and by the study's reference id, ITI-43 returns the KOS bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path

import pytest
from kos_fixtures import CONFIG as MANIFEST_CONFIG
from kos_fixtures import CT_IMAGE, study_images
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
from pydicom.uid import generate_uid

from ebxml.messages import (
    AdhocQueryRequest,
    DocumentRequest,
    ProvideAndRegisterRequest,
    RegistryResponse,
    RetrieveDocumentSetRequest,
)
from ebxml.model import Code, DocumentEntry
from ebxml.vocabulary import AvailabilityStatus, QueryParameter, ResponseStatus, StoredQuery
from imaging_source.kos_check import check_manifest
from imaging_source.kos_metadata import ManifestMetadataConfig, ReportDocument
from imaging_source.publish import (
    DocumentRepositoryClient,
    InProcessRegistryUpdateClient,
    InProcessRepositoryClient,
    PublishConfig,
    ReportContent,
    StoredQueryManifestLocator,
    StudyHasNoInstances,
    deprecate_manifest,
    in_process_query,
    manifest_query,
    publish_study,
)
from registry.service import DocumentRegistry
from repository.service import DocumentRepository

METADATA = ManifestMetadataConfig(source_id="1.3.6.1.4.1.21367.13.71.1")


@dataclass
class Recording:
    """Passes RAD-68 on to the real repository, keeping a copy of each document's bytes."""

    inner: DocumentRepositoryClient
    sent: dict[str, bytes] = field(default_factory=dict)

    def provide_and_register(self, request: ProvideAndRegisterRequest) -> RegistryResponse:
        for doc in request.documents:
            assert doc.path is not None
            self.sent[doc.id] = doc.path.read_bytes()
        return self.inner.provide_and_register(request)


@pytest.fixture
def client(repository: DocumentRepository) -> Recording:
    return Recording(InProcessRepositoryClient(repository))


@pytest.fixture
def config(tmp_path: Path) -> PublishConfig:
    spool = tmp_path / "spool"
    spool.mkdir()
    return PublishConfig(MANIFEST_CONFIG, METADATA, spool_dir=spool)


def find(registry: DocumentRegistry, query_id: str, **parameters: str) -> list[DocumentEntry]:
    request = AdhocQueryRequest(
        query_id, {getattr(QueryParameter, k): [[v]] for k, v in parameters.items()}
    )
    response = in_process_query(registry)(request)
    assert response.status == ResponseStatus.SUCCESS, response.errors
    return [o for o in response.objects if isinstance(o, DocumentEntry)]


def publish(images, client, config, registry, **kw):  # noqa: ANN001, ANN201
    return publish_study(
        images[0].StudyInstanceUID,
        images,
        AFFINITY_PATIENT,
        repository=client,
        config=config,
        locator=StoredQueryManifestLocator(in_process_query(registry)),
        **kw,
    )


def test_published_manifest_is_found_by_format_code(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    result = publish(study_images(), client, config, registry)
    assert result.ok, result.response.errors
    found = find(
        registry,
        StoredQuery.FIND_DOCUMENTS,
        DOC_ENTRY_PATIENT_ID=f"'{AFFINITY_PATIENT}'",
        DOC_ENTRY_STATUS=f"('{AvailabilityStatus.APPROVED}')",
        DOC_ENTRY_FORMAT_CODE="('1.2.840.10008.5.1.4.1.1.88.59^^1.2.840.10008.2.6.1')",
    )
    assert result.manifest_unique_id in {e.unique_id for e in found}
    entry = next(e for e in found if e.unique_id == result.manifest_unique_id)
    assert entry.mime_type == "application/dicom"
    assert entry.repository_unique_id == REPOSITORY_UNIQUE_ID


def test_published_manifest_is_found_by_study_reference_id(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    images = study_images()
    result = publish(images, client, config, registry)
    query = manifest_query(AFFINITY_PATIENT, images[0].StudyInstanceUID)
    response = in_process_query(registry)(query)
    assert [e.unique_id for e in response.objects] == [result.manifest_unique_id]


def test_iti43_returns_the_kos_byte_identical(
    client: Recording, config: PublishConfig, repository: DocumentRepository
) -> None:
    result = publish(study_images(), client, config, repository.registry_client.registry)
    response = repository.retrieve(
        RetrieveDocumentSetRequest(
            (DocumentRequest(REPOSITORY_UNIQUE_ID, result.manifest_unique_id),)
        )
    )
    (document,) = response.documents
    stored = document.path.read_bytes()
    assert stored == client.sent[result.manifest_entry_uuid]
    assert document.mime_type == "application/dicom"
    kos = dcmread(BytesIO(stored))
    assert kos.SOPInstanceUID == result.manifest_unique_id
    assert check_manifest(kos, retrieve_location_uid=MANIFEST_CONFIG.retrieve_location_uid) == []


def test_republishing_a_changed_study_replaces_its_manifest(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    """RAD TF-3 4.68.4.1.3 (RAD68-006): the new manifest is an RPLC of the previous."""
    images = study_images(series=(("CT", CT_IMAGE, 2),))
    first = publish(images, client, config, registry)
    added = images[0].copy()
    added.SOPInstanceUID = generate_uid()
    second = publish([*images, added], client, config, registry)
    assert second.ok, second.response.errors
    assert second.replaced_entry_uuid == first.manifest_entry_uuid
    entries = find(
        registry,
        StoredQuery.GET_DOCUMENTS,
        DOC_ENTRY_UNIQUE_ID=f"('{first.manifest_unique_id}','{second.manifest_unique_id}')",
    )
    status = {e.unique_id: e.availability_status for e in entries}
    assert status == {
        first.manifest_unique_id: AvailabilityStatus.DEPRECATED,
        second.manifest_unique_id: AvailabilityStatus.APPROVED,
    }


def test_first_publication_replaces_nothing(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    assert publish(study_images(), client, config, registry).replaced_entry_uuid is None


def test_report_is_published_with_the_manifest(
    client: Recording, config: PublishConfig, registry: DocumentRegistry, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 findings\n")
    report = ReportContent(
        ReportDocument(
            "1.3.6.1.4.1.21367.13.71.1.9001",
            "application/pdf",
            Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "PDF"),
        ),
        pdf,
    )
    images = study_images()
    result = publish(images, client, config, registry, report=report)
    assert result.ok, result.response.errors
    entries = find(
        registry,
        StoredQuery.GET_DOCUMENTS,
        DOC_ENTRY_UNIQUE_ID=f"('{result.manifest_unique_id}','1.3.6.1.4.1.21367.13.71.1.9001')",
    )
    assert {e.mime_type for e in entries} == {"application/dicom", "application/pdf"}


def test_only_the_studys_instances_are_published(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    images = study_images()
    result = publish(images + study_images(), client, config, registry)
    kos = dcmread(BytesIO(client.sent[result.manifest_entry_uuid]))
    assert len(kos.ContentSequence) == len(images)


def test_a_study_without_instances_has_no_manifest_to_publish(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    with pytest.raises(StudyHasNoInstances, match="deprecate"):
        publish_study("1.2.3.4", [], AFFINITY_PATIENT, repository=client, config=config)


def test_deprecating_makes_the_studys_manifest_deprecated(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    """ITI TF-2 3.57.4.1.3.3.2: Approved -> Deprecated by UpdateAvailabilityStatus."""
    images = study_images()
    published = publish(images, client, config, registry)
    result = deprecate_manifest(
        images[0].StudyInstanceUID,
        AFFINITY_PATIENT,
        registry=InProcessRegistryUpdateClient(registry),
        config=config,
        locator=StoredQueryManifestLocator(in_process_query(registry)),
    )
    assert result.ok, result.response.errors
    assert result.deprecated_entry_uuid == published.manifest_entry_uuid
    (entry,) = find(
        registry,
        StoredQuery.GET_DOCUMENTS,
        DOC_ENTRY_UNIQUE_ID=f"('{published.manifest_unique_id}')",
    )
    assert entry.availability_status == AvailabilityStatus.DEPRECATED


def test_deprecated_manifest_is_no_longer_found_for_the_study(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    images = study_images()
    publish(images, client, config, registry)
    locator = StoredQueryManifestLocator(in_process_query(registry))
    study = images[0].StudyInstanceUID
    update = InProcessRegistryUpdateClient(registry)
    deprecate_manifest(study, AFFINITY_PATIENT, registry=update, config=config, locator=locator)
    assert locator.current_manifest(AFFINITY_PATIENT, study) is None


def test_a_study_without_a_manifest_needs_no_update(
    config: PublishConfig, registry: DocumentRegistry
) -> None:
    class Refusing:
        def update(self, submission):  # noqa: ANN001, ANN202
            raise AssertionError("no ITI-57 expected")

    result = deprecate_manifest(
        "1.2.3.4",
        AFFINITY_PATIENT,
        registry=Refusing(),
        config=config,
        locator=StoredQueryManifestLocator(in_process_query(registry)),
    )
    assert result.ok and result.deprecated_entry_uuid is None


def test_a_republished_study_after_deprecation_replaces_nothing(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    images = study_images()
    publish(images, client, config, registry)
    locator = StoredQueryManifestLocator(in_process_query(registry))
    update = InProcessRegistryUpdateClient(registry)
    study = images[0].StudyInstanceUID
    deprecate_manifest(study, AFFINITY_PATIENT, registry=update, config=config, locator=locator)
    again = publish(images, client, config, registry)
    assert again.ok, again.response.errors
    assert again.replaced_entry_uuid is None


def test_the_spool_is_emptied_after_publishing(
    client: Recording, config: PublishConfig, registry: DocumentRegistry
) -> None:
    publish(study_images(), client, config, registry)
    assert config.spool_dir is not None and list(config.spool_dir.iterdir()) == []


def test_unknown_patient_fails_with_the_registry_error(
    client: Recording, config: PublishConfig
) -> None:
    images = study_images()
    result = publish_study(
        images[0].StudyInstanceUID,
        images,
        "NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO",
        repository=client,
        config=config,
    )
    assert not result.ok
    assert "XDSUnknownPatientId" in {e.code for e in result.response.errors}
