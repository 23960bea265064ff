"""xdsi.imaging and [imaging_source]: configuration, the affinity-domain patient id,
automatic publication of stable studies (real store on SQLite, a recording repository)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ebxml.messages import AdhocQueryRequest, ProvideAndRegisterRequest, RegistryResponse
from ebxml.model import DocumentEntry
from ebxml.vocabulary import AvailabilityStatus, QueryParameter, ResponseStatus, StoredQuery
from imaging_source.instances import InstanceStore
from imaging_source.kos import PatientStudy
from imaging_source.kos_metadata import KOS_FORMAT
from imaging_source.pacs import PacsSource, WadoRsFetcher
from imaging_source.publish import (
    InProcessRegistryUpdateClient,
    InProcessRepositoryClient,
    StoredQueryManifestLocator,
    in_process_query,
)
from imaging_source.published import PublishedManifests
from imaging_source.published import upgrade as upgrade_journal
from imaging_source.service import ImagingSource
from xdsi.cli import build_parser
from xdsi.config import ConfigError, load_config
from xdsi.imaging import (
    LOOK_BACK,
    AutoPublisher,
    affinity_patient_id,
    imaging_source_config,
    instance_source,
    make_engine,
    publish_config,
    retry_delay,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from dicom_studies import make_study  # noqa: E402
from publish_fixtures import (  # noqa: E402, F401 (fixtures)
    AFFINITY_PATIENT,
    database_url_fixture,
    postgres_url_fixture,
    registry_fixture,
    repository_fixture,
    sqlite_template_fixture,
)

FEED_PATIENT, FEED_DOMAIN = "IHERED-1", "1.3.6.1.4.1.21367.13.20.1000"  # AFFINITY_PATIENT

AFFINITY = "1.3.6.1.4.1.21367.13.20.3000"


def test_imaging_source_ids_and_places_derive_from_the_data_dir(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={})
    imaging = config.imaging_source
    assert imaging.repository_unique_id == f"{config.oid_root}.7"
    assert imaging.storage_dir == str(tmp_path / "dicom")
    assert imaging.wado_rs_base_url == "http://127.0.0.1:8080/dicomweb"


def test_imaging_source_needs_its_own_repository_unique_id(tmp_path: Path) -> None:
    same = {"repository_unique_id": "1.2.3"}
    with pytest.raises(ConfigError, match="repository_unique_id"):
        load_config(tmp_path, environ={}, overrides={"repository": same, "imaging_source": same})


def test_one_backing_pacs_not_both(tmp_path: Path) -> None:
    both = {"pacs_wado_rs": "http://pacs/dicom-web", "pacs_dimse": "PACS@pacs:104"}
    with pytest.raises(ConfigError, match="one backing PACS"):
        load_config(tmp_path, environ={}, overrides={"imaging_source": both})


def test_dicom_peer_must_be_aet_at_host_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AET@HOST:PORT"):
        load_config(tmp_path, environ={}, overrides={"imaging_source": {"peers": ["PACS:104"]}})


def test_environment_sets_the_stability_delay(tmp_path: Path) -> None:
    config = load_config(tmp_path, environ={"XDSI_IMAGING_SOURCE__STABILITY_DELAY": "2.5"})
    assert config.imaging_source.stability_delay == 2.5


def test_the_pacs_timeout_reaches_the_fetcher_and_must_be_positive(tmp_path: Path) -> None:
    settings = {"pacs_wado_rs": "http://pacs.example/dicom-web", "pacs_timeout": "7.5"}
    environ = {f"XDSI_IMAGING_SOURCE__{k.upper()}": v for k, v in settings.items()}
    config = load_config(tmp_path, environ=environ)
    assert config.imaging_source.pacs_timeout == 7.5
    store = InstanceStore(tmp_path / "dicom", make_engine(f"sqlite:///{tmp_path / 'i.db'}"))
    source, closers = instance_source(config, store)
    assert isinstance(source, PacsSource) and isinstance(source.fetcher, WadoRsFetcher)
    assert source.fetcher.timeout == 7.5 and source.fetcher.connection().timeout == 7.5
    for close in closers:
        close()
    with pytest.raises(ConfigError, match="pacs_timeout"):
        load_config(tmp_path, environ={}, overrides={"imaging_source": {"pacs_timeout": 0}})


def test_pacs_flags_are_mutually_exclusive() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["serve", "--pacs-wado-rs", "http://p/dicom-web", "--pacs-dimse", "P@h:104"]
        )


def test_serve_takes_repeated_dicom_peers() -> None:
    args = build_parser().parse_args(
        ["serve", "--dicom-peer", "A@h:104", "--dicom-peer", "B@h:105", "--ae-title", "X"]
    )
    assert (args.dicom_peer, args.ae_title) == (["A@h:104", "B@h:105"], "X")


def test_patient_id_is_qualified_by_the_affinity_domain() -> None:
    study = PatientStudy(patient_id="PAT-1", issuer_of_patient_id="HOSP")
    assert affinity_patient_id(study, AFFINITY) == f"PAT-1^^^&{AFFINITY}&ISO"


def test_patient_id_is_hl7_escaped() -> None:
    study = PatientStudy(patient_id="A^B")
    assert affinity_patient_id(study, AFFINITY) == f"A\\S\\B^^^&{AFFINITY}&ISO"


# --- automatic publication -------------------------------------------------------------------


class RecordingRepository:
    """The RAD-68 seam: answers ``status`` and keeps what it was sent."""

    def __init__(self, status: str = ResponseStatus.SUCCESS) -> None:
        self.status = status
        self.requests: list[ProvideAndRegisterRequest] = []

    def provide_and_register(self, request: ProvideAndRegisterRequest) -> RegistryResponse:
        self.requests.append(request)
        return RegistryResponse(self.status)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def publisher_parts(tmp_path: Path):
    config = load_config(
        tmp_path, environ={}, overrides={"registry": {"affinity_domain": AFFINITY}}
    )
    config.limits.spool_dir.mkdir(parents=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'xdsi.sqlite'}")
    source = ImagingSource(imaging_source_config(config), engine=engine)
    source.start(dimse=False)
    upgrade_journal(engine)
    yield config, source, engine
    source.stop()
    engine.dispose()


def _publisher(
    parts, repository: RecordingRepository, clock: Clock, *, shared_store: bool = False
) -> AutoPublisher:
    config, source, engine = parts
    publisher = AutoPublisher(
        source,
        repository,
        PublishedManifests(engine),
        publish_config(config),
        AFFINITY,
        timedelta(seconds=60),
        clock=clock,
        shared_store=shared_store,
    )
    source.subscribe(publisher.changed)
    return publisher


def test_a_study_is_published_only_once_stable(publisher_parts) -> None:
    repository, clock = RecordingRepository(), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    for ds in make_study(patient_id="PAT-9"):
        publisher_parts[1].add(ds)
    assert publisher.tick() == []
    clock.now += timedelta(seconds=61)
    (result,) = publisher.tick()
    assert result.ok and len(repository.requests) == 1
    entry = repository.requests[0].submission.document_entries[0]
    assert entry.patient_id == f"PAT-9^^^&{AFFINITY}&ISO"
    assert publisher.pending() == {}


def test_a_failed_publication_is_not_tried_again_at_the_next_tick(publisher_parts) -> None:
    repository, clock = RecordingRepository(ResponseStatus.FAILURE), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    for ds in make_study():
        publisher_parts[1].add(ds)
    clock.now += timedelta(seconds=61)
    publisher.tick()
    repository.status = ResponseStatus.SUCCESS
    assert publisher.tick() == [] and len(repository.requests) == 1


def test_a_failed_publication_is_tried_again_after_its_delay(publisher_parts) -> None:
    repository, clock = RecordingRepository(ResponseStatus.FAILURE), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    for ds in make_study():
        publisher_parts[1].add(ds)
    clock.now += timedelta(seconds=61)
    publisher.tick()
    repository.status = ResponseStatus.SUCCESS
    clock.now += publisher.retry_base
    (result,) = publisher.tick()
    assert result.ok and len(repository.requests) == 2


def test_each_failure_doubles_the_wait(publisher_parts) -> None:
    repository, clock = RecordingRepository(ResponseStatus.FAILURE), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    (ds, *rest) = make_study()
    publisher_parts[1].add(ds)
    clock.now += timedelta(seconds=61)
    publisher.tick()
    first = publisher.backoff(ds.StudyInstanceUID)
    clock.now = first.until
    publisher.tick()
    second = publisher.backoff(ds.StudyInstanceUID)
    assert second.failures == 2
    assert second.until - clock.now == 2 * publisher.retry_base


def test_a_success_clears_the_backoff(publisher_parts) -> None:
    repository, clock = RecordingRepository(ResponseStatus.FAILURE), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    (ds, *rest) = make_study()
    publisher_parts[1].add(ds)
    clock.now += timedelta(seconds=61)
    publisher.tick()
    repository.status = ResponseStatus.SUCCESS
    clock.now = publisher.backoff(ds.StudyInstanceUID).until
    publisher.tick()
    assert publisher.backoff(ds.StudyInstanceUID) is None


def test_a_failing_study_does_not_hold_back_another(publisher_parts) -> None:
    repository, clock = RecordingRepository(ResponseStatus.FAILURE), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    publisher.retry_base = timedelta(hours=1)
    (failing, *_), (other, *_) = make_study(), make_study()
    publisher_parts[1].add(failing)
    clock.now += timedelta(seconds=61)
    publisher.tick()
    repository.status = ResponseStatus.SUCCESS
    publisher_parts[1].add(other)
    clock.now += timedelta(seconds=61)
    (result,) = publisher.tick()
    assert result.ok
    sent = repository.requests[-1].submission.document_entries[0].reference_ids
    assert any(other.StudyInstanceUID in ref for ref in sent)


@pytest.mark.parametrize(
    ("failures", "seconds"),
    [(0, 0), (1, 10), (2, 20), (3, 40), (6, 320), (7, 600), (40, 600)],
)
def test_retry_delay_doubles_up_to_the_cap(failures: int, seconds: int) -> None:
    delay = retry_delay(failures, timedelta(seconds=10), timedelta(seconds=600))
    assert delay == timedelta(seconds=seconds)


def test_studies_received_before_a_restart_are_seeded(publisher_parts) -> None:
    config, source, engine = publisher_parts
    for ds in make_study():
        source.add(ds)  # nobody subscribed: as if received before this process started
    repository, clock = RecordingRepository(), Clock()
    publisher = _publisher(publisher_parts, repository, clock)
    publisher.seed()
    clock.now += timedelta(seconds=61)
    assert len(publisher.tick()) == 1


def test_a_publisher_sharing_its_store_finds_what_other_processes_stored(
    publisher_parts,
) -> None:
    _config, source, _engine = publisher_parts
    repository, clock = RecordingRepository(), Clock()
    publisher = _publisher(publisher_parts, repository, clock, shared_store=True)
    publisher.seed()
    assert publisher.tick() == []
    for ds in make_study(patient_id="PAT-7"):
        source.store.add(ds)  # stored by another worker: no StudyChanged in this one
    assert publisher.pending() == {}
    clock.now += timedelta(seconds=1)
    assert publisher.tick() == []  # seen, not yet stable
    assert len(publisher.pending()) == 1
    clock.now += timedelta(seconds=61)
    (result,) = publisher.tick()
    assert result.ok and len(repository.requests) == 1


def test_a_shared_store_is_looked_at_back_past_the_previous_look(publisher_parts) -> None:
    """An instance whose row committed after a look, with a received time before it."""
    _config, source, _engine = publisher_parts
    repository, clock = RecordingRepository(), Clock()
    publisher = _publisher(publisher_parts, repository, clock, shared_store=True)
    publisher.tick()
    clock.now += LOOK_BACK / 2
    publisher.tick()  # the previous look: after the instance's received time below
    for ds in make_study():
        source.store.add(ds)  # received "now", LOOK_BACK / 2 before that look
    clock.now += timedelta(seconds=1)
    (result,) = publisher.tick()  # found, and stable since its received time
    assert result.ok and len(repository.requests) == 1


# --- an emptied study, end to end (real registry and repository, SQLite and PostgreSQL) ---


@pytest.fixture
def live_publisher(tmp_path: Path, database_url: str, registry, repository):
    """An AutoPublisher into xdsi's own repository and registry, sharing their database."""
    config = load_config(
        tmp_path, environ={}, overrides={"registry": {"affinity_domain": FEED_DOMAIN}}
    )
    config.limits.spool_dir.mkdir(parents=True)
    engine = make_engine(database_url)
    source = ImagingSource(imaging_source_config(config), engine=engine)
    source.start(dimse=False)
    clock = Clock()
    publisher = AutoPublisher(
        source,
        InProcessRepositoryClient(repository),
        PublishedManifests(engine),
        publish_config(config),
        FEED_DOMAIN,
        timedelta(seconds=60),
        locator=StoredQueryManifestLocator(in_process_query(registry)),
        updater=InProcessRegistryUpdateClient(registry),
        clock=clock,
    )
    source.subscribe(publisher.changed)
    yield publisher, clock
    source.stop()
    engine.dispose()


def _manifests(registry, status: str) -> set[str]:  # noqa: ANN001
    request = AdhocQueryRequest(
        StoredQuery.FIND_DOCUMENTS,
        {
            QueryParameter.DOC_ENTRY_PATIENT_ID: [[f"'{AFFINITY_PATIENT}'"]],
            QueryParameter.DOC_ENTRY_STATUS: [[f"('{status}')"]],
            QueryParameter.DOC_ENTRY_FORMAT_CODE: [[f"('{KOS_FORMAT.code}^^{KOS_FORMAT.scheme}')"]],
        },
    )
    response = in_process_query(registry)(request)
    return {o.unique_id for o in response.objects if isinstance(o, DocumentEntry)}


def test_a_study_whose_instances_are_all_gone_has_its_manifest_deprecated(
    live_publisher, registry
) -> None:
    publisher, clock = live_publisher
    images = make_study(patient_id=FEED_PATIENT)
    for ds in images:
        publisher.source.add(ds)
    clock.now += timedelta(seconds=61)
    (published,) = publisher.tick()
    assert published.ok, published.response.errors
    publisher.source.remove(study_instance_uid=images[0].StudyInstanceUID)
    clock.now += timedelta(seconds=61)
    (deprecated,) = publisher.tick()
    assert deprecated.ok, deprecated.response.errors
    assert published.manifest_unique_id in _manifests(registry, AvailabilityStatus.DEPRECATED)
    assert published.manifest_unique_id not in _manifests(registry, AvailabilityStatus.APPROVED)
    assert publisher.journal.get(images[0].StudyInstanceUID).deprecated is not None
    assert publisher.pending() == {}


def test_a_study_losing_some_instances_is_republished_as_a_replacement(
    live_publisher, registry
) -> None:
    publisher, clock = live_publisher
    images = make_study(patient_id=FEED_PATIENT)
    for ds in images:
        publisher.source.add(ds)
    clock.now += timedelta(seconds=61)
    (first,) = publisher.tick()
    publisher.source.remove(sop_instance_uids=[images[0].SOPInstanceUID])
    clock.now += timedelta(seconds=61)
    (second,) = publisher.tick()
    assert second.ok, second.response.errors
    assert second.replaced_entry_uuid == first.manifest_entry_uuid
    assert _manifests(registry, AvailabilityStatus.APPROVED) == {second.manifest_unique_id}
