"""imaging_source/published.py: the journal of published manifests on SQLite and
PostgreSQL, the automatic-publication schedule, and publish_study using the journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
from pydicom.uid import generate_uid
from sqlalchemy import Engine, create_engine, inspect

from imaging_source.kos_metadata import ManifestMetadataConfig
from imaging_source.publish import InProcessRepositoryClient, PublishConfig, publish_study
from imaging_source.published import (
    PublishedManifest,
    PublishedManifests,
    instance_digest,
    studies_due,
    upgrade,
)
from repository.service import DocumentRepository

T0 = datetime(2024, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def journal_engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url)
    upgrade(engine)  # already at head: a no-op that must not fail
    yield engine
    engine.dispose()


@pytest.fixture
def journal(journal_engine: Engine) -> PublishedManifests:
    return PublishedManifests(journal_engine)


def record(
    study_uid: str, patient: str = AFFINITY_PATIENT, digest: str = "d1"
) -> PublishedManifest:
    return PublishedManifest(
        study_uid, patient, generate_uid(), f"urn:uuid:{generate_uid()[-8:]}", digest, 3, T0
    )


def test_migration_creates_the_kos_table_with_its_own_version_table(journal_engine: Engine) -> None:
    tables = set(inspect(journal_engine).get_table_names())
    assert {"kos_published_manifest", "alembic_version_kos"} <= tables


def test_recorded_manifest_reads_back(journal: PublishedManifests) -> None:
    manifest = record(generate_uid())
    journal.record(manifest)
    assert journal.get(manifest.study_instance_uid) == manifest


def test_recording_again_replaces_the_study_row(journal: PublishedManifests) -> None:
    study = generate_uid()
    journal.record(record(study, digest="d1"))
    newer = record(study, digest="d2")
    journal.record(newer)
    assert journal.get(study) == newer


def test_current_manifest_only_for_the_same_patient(journal: PublishedManifests) -> None:
    manifest = record(generate_uid())
    journal.record(manifest)
    assert (
        journal.current_manifest(AFFINITY_PATIENT, manifest.study_instance_uid)
        == manifest.entry_uuid
    )
    assert journal.current_manifest("OTHER^^^&1.2&ISO", manifest.study_instance_uid) is None


def test_published_times(journal: PublishedManifests) -> None:
    manifest = record(generate_uid())
    journal.record(manifest)
    assert journal.published_times([manifest.study_instance_uid, "1.2.3"]) == {
        manifest.study_instance_uid: T0
    }


def test_instance_digest_ignores_order_and_repeats() -> None:
    assert instance_digest(["1.2", "1.3", "1.2"]) == instance_digest(["1.3", "1.2"])
    assert instance_digest(["1.2"]) != instance_digest(["1.2", "1.3"])


@pytest.mark.parametrize(
    ("received", "published", "due"),
    [
        (T0 - timedelta(minutes=10), None, True),  # stable, never published
        (T0 - timedelta(minutes=1), None, False),  # still arriving
        (T0 - timedelta(minutes=10), T0 - timedelta(minutes=20), True),  # changed since
        (T0 - timedelta(minutes=10), T0 - timedelta(minutes=5), False),  # already published
        (T0 - timedelta(minutes=5), None, True),  # exactly the delay
    ],
)
def test_studies_due(received: datetime, published: datetime | None, due: bool) -> None:
    result = studies_due(
        {"1.2.3": received},
        {} if published is None else {"1.2.3": published},
        now=T0,
        delay=timedelta(minutes=5),
    )
    assert result == (["1.2.3"] if due else [])


@pytest.fixture
def config(tmp_path: Path) -> PublishConfig:
    return PublishConfig(
        MANIFEST_CONFIG, ManifestMetadataConfig(source_id="1.3.6.1.4.1.21367.13.71.1"), tmp_path
    )


def test_unchanged_study_is_not_published_again(
    repository: DocumentRepository, journal: PublishedManifests, config: PublishConfig
) -> None:
    images = study_images()
    client = InProcessRepositoryClient(repository)
    kwargs = dict(repository=client, config=config, journal=journal)
    first = publish_study(images[0].StudyInstanceUID, images, AFFINITY_PATIENT, **kwargs)
    again = publish_study(images[0].StudyInstanceUID, images, AFFINITY_PATIENT, **kwargs)
    assert first.ok and again.unchanged
    assert again.manifest_unique_id == first.manifest_unique_id


def test_changed_study_replaces_the_journals_manifest(
    repository: DocumentRepository, journal: PublishedManifests, config: PublishConfig
) -> None:
    images = study_images()
    client = InProcessRepositoryClient(repository)
    kwargs = dict(repository=client, config=config, journal=journal)
    first = publish_study(images[0].StudyInstanceUID, images, AFFINITY_PATIENT, **kwargs)
    second = publish_study(images[0].StudyInstanceUID, images[:-1], AFFINITY_PATIENT, **kwargs)
    assert second.ok, second.response.errors
    assert second.replaced_entry_uuid == first.manifest_entry_uuid
    assert journal.get(images[0].StudyInstanceUID).manifest_unique_id == second.manifest_unique_id


def test_force_publishes_an_unchanged_study(
    repository: DocumentRepository, journal: PublishedManifests, config: PublishConfig
) -> None:
    images = study_images()
    client = InProcessRepositoryClient(repository)
    kwargs = dict(repository=client, config=config, journal=journal)
    first = publish_study(images[0].StudyInstanceUID, images, AFFINITY_PATIENT, **kwargs)
    forced = publish_study(
        images[0].StudyInstanceUID, images, AFFINITY_PATIENT, force=True, **kwargs
    )
    assert not forced.unchanged and forced.replaced_entry_uuid == first.manifest_entry_uuid


def test_failed_publication_is_not_recorded(
    repository: DocumentRepository, journal: PublishedManifests, config: PublishConfig
) -> None:
    images = study_images()
    result = publish_study(
        images[0].StudyInstanceUID,
        images,
        "NOBODY^^^&1.3.6.1.4.1.21367.13.20.1000&ISO",
        repository=InProcessRepositoryClient(repository),
        config=config,
        journal=journal,
    )
    assert not result.ok
    assert journal.get(images[0].StudyInstanceUID) is None


def test_a_deprecated_manifest_is_no_longer_current(journal: PublishedManifests) -> None:
    manifest = record(generate_uid())
    journal.record(manifest)
    journal.record_deprecation(manifest.study_instance_uid, T0 + timedelta(hours=1))
    assert journal.current_manifest(AFFINITY_PATIENT, manifest.study_instance_uid) is None


def test_a_deprecation_is_recorded_with_its_time(journal: PublishedManifests) -> None:
    manifest = record(generate_uid())
    journal.record(manifest)
    later = T0 + timedelta(hours=1)
    journal.record_deprecation(manifest.study_instance_uid, later)
    assert journal.get(manifest.study_instance_uid).deprecated == later
    assert journal.published_times([manifest.study_instance_uid]) == {
        manifest.study_instance_uid: later
    }


def test_deprecating_an_unknown_study_records_nothing(journal: PublishedManifests) -> None:
    assert journal.record_deprecation(generate_uid(), T0) is None
