"""The Imaging Document Source in ``xdsi serve``: built from ``[imaging_source]``.

:func:`build_imaging` makes the local instance store (its index in the same database
as the registry, with its own Alembic version tables), chooses where instances come
from - the store itself (:class:`imaging_source.pacs.LocalSource`) or a backing PACS
by WADO-RS or C-FIND/C-MOVE (:class:`imaging_source.pacs.PacsSource`, cached) - and
returns the RAD-69 service for ``/xdsi/imaging-source``, the ``/dicomweb`` routes
(WADO-RS, QIDO-RS, WADO-URI, STOW-RS) and, when configured, the automatic publisher.

Automatic publication (RAD-68, RAD TF-3 4.68.4.1.2): a study received by C-STORE or
STOW-RS is published once nothing arrived for ``stability_delay`` seconds; a study that
changes later is published again as an RPLC of its previous manifest (RAD68-006).
A study whose instances are all gone has its manifest deprecated (ITI-57, through the
``updater``).  A publication that fails is tried again after a delay that doubles with
each failure of that study, up to a cap (:func:`retry_delay`).  Instances a backing
PACS delivers into the cache are not published automatically: with a backing PACS
configured, ``xdsi publish`` publishes on demand.

The manifest's patientId is the DICOM Patient ID in the affinity domain
(:func:`affinity_patient_id`): ``PatientID^^^&<affinity domain>&ISO``.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine
from starlette.routing import BaseRoute, Mount, Route

from atna.node_authentication import OnTlsFailure
from ebxml import hl7
from ebxml.model import Code
from imaging_source import instances as instance_index
from imaging_source import published as published_journal
from imaging_source.config import ImagingSourceConfig
from imaging_source.dicomweb import dicomweb_routes
from imaging_source.exchange import OnExchange
from imaging_source.instances import InstanceStore
from imaging_source.kos import InstanceDescription, ManifestConfig, PatientStudy, describe
from imaging_source.kos_metadata import ManifestMetadataConfig
from imaging_source.pacs import DimseFetcher, InstanceSource, LocalSource, PacsSource, WadoRsFetcher
from imaging_source.peers import DicomPeer, parse_peer
from imaging_source.publish import (
    DeprecationResult,
    DocumentRepositoryClient,
    ManifestLocator,
    PublishConfig,
    PublishResult,
    RegistryUpdateClient,
    deprecate_manifest,
    publish_study,
)
from imaging_source.published import PublishedManifests, studies_due
from imaging_source.service import ImagingSource, StudyChanged
from imaging_source.soap_rad69 import Rad69Config, imaging_source_service
from imaging_source.stow import stow_endpoint
from soap.message import Service
from xdsi.config import ARC_MANIFEST, DICOMWEB_PATH, IMAGING_SOURCE_PATH, Config
from xdsi.outgoing_tls import node_client_context

log = logging.getLogger("xdsi.imaging")

# How far before its previous look AutoPublisher.look_again reaches back: longer than
# any store takes from setting an instance's received time to committing its row
LOOK_BACK = timedelta(minutes=10)


# --- configuration -----------------------------------------------------------------------


def parse_code(text: str) -> Code:
    """``code^codingScheme^displayName`` (as the config validated it) -> Code."""
    code, scheme, *display = text.split("^", 2)
    return Code(code.strip(), scheme.strip(), display[0] if display else code.strip())


def imaging_source_config(
    config: Config,
    *,
    database_url: str | None = None,
    on_tls_failure: OnTlsFailure | None = None,
) -> ImagingSourceConfig:
    """``[imaging_source]`` and ``[connection.dicom]`` as the actor takes them; a failed
    authentication of a ``tls_peers`` peer is reported to ``on_tls_failure``."""
    settings = config.imaging_source
    dicom = config.connection.dicom
    return ImagingSourceConfig(
        storage_dir=Path(settings.storage_dir),
        database_url=database_url,
        ae_title=settings.ae_title,
        dicom_host=dicom.host,
        dicom_port=dicom.port,
        peers=tuple(_peer(config, p) for p in settings.peers),
        allow_unknown_callers=settings.allow_unknown_callers,
        repository_unique_id=settings.repository_unique_id,
        stability_delay=settings.stability_delay,
        cache_max_bytes=settings.cache_max_bytes,
        wado_rs_base_url=settings.wado_rs_base_url or None,
        peer_tls=peer_ssl_context(config, on_tls_failure),
        peer_tls_by_title=peer_ssl_contexts(config, on_tls_failure),
    )


def _peer(config: Config, text: str) -> DicomPeer:
    """A configured peer (``AET@HOST:PORT``), marked ``tls`` if it is one of ``tls_peers``."""
    peer = parse_peer(text)
    tls = peer.ae_title in {title.strip(" ") for title in config.imaging_source.tls_peers}
    return replace(peer, tls=tls)


def peer_ssl_context(
    config: Config, on_tls_failure: OnTlsFailure | None = None
) -> ssl.SSLContext | None:
    """The client side of TLS for the DICOM associations xdsi opens to ``tls_peers``
    (ITI TF-2 3.19.1, PS3.15 B.1): this node's certificate offered, the peer
    authenticated against ``[tls] ca`` and ``trusted_certs``, a failed authentication
    reported to ``on_tls_failure``; None without tls_peers."""
    node = config.tls
    if not config.imaging_source.tls_peers or not node.enabled:
        return None
    return node_client_context(
        config,
        (*node.ca, *node.trusted_certs),
        where="[tls]",
        scheme="dicom",
        on_failure=on_tls_failure,
    )


def peer_ssl_contexts(
    config: Config, on_tls_failure: OnTlsFailure | None = None
) -> dict[str, ssl.SSLContext]:
    """AE title -> the client context of each peer named in ``[imaging_source] peer_ca``:
    this node's certificate offered, the peer authenticated against its own CAs only."""
    cas: dict[str, list[str]] = {}
    for entry in config.imaging_source.peer_ca:
        title, _, path = entry.partition("=")
        cas.setdefault(title.strip(" "), []).append(path.strip())
    return {
        title: node_client_context(
            config,
            tuple(paths),
            where=f"[imaging_source] peer_ca {title}",
            scheme="dicom",
            on_failure=on_tls_failure,
        )
        for title, paths in cas.items()
    }


def publish_config(config: Config) -> PublishConfig:
    """The manifest's retrieve information and the affinity domain's metadata."""
    settings = config.imaging_source
    return PublishConfig(
        manifest=ManifestConfig(
            retrieve_ae_title=settings.ae_title,
            # RAD TF-3 4.68.4.1.2.3: Retrieve Location UID = the source's own id
            retrieve_location_uid=settings.repository_unique_id,
            uid_root=f"{config.oid_root}.{ARC_MANIFEST}",
            retrieve_url=settings.wado_rs_base_url or None,
        ),
        metadata=ManifestMetadataConfig(
            source_id=settings.repository_unique_id,
            class_code=parse_code(settings.class_code),
            type_code=parse_code(settings.type_code),
            confidentiality_codes=tuple(parse_code(c) for c in settings.confidentiality_codes),
            healthcare_facility_type_code=parse_code(settings.healthcare_facility_type_code),
            practice_setting_code=parse_code(settings.practice_setting_code),
            content_type_code=parse_code(settings.content_type_code),
            accession_issuer_oid=settings.accession_issuer_oid or None,
            # ITI TF-3 4.2.3.2.23: sourcePatientId needs an assigning authority
            patient_id_issuer_oid=settings.patient_id_issuer_oid or config.registry.affinity_domain,
            default_timezone=settings.default_timezone,
        ),
        spool_dir=config.limits.spool_dir,
    )


def affinity_patient_id(study: PatientStudy, affinity_domain: str) -> str:
    """The manifest's patientId (ITI TF-3 4.2.3.2.16): the DICOM Patient ID qualified by
    the affinity domain, ``PatientID^^^&<affinity domain>&ISO``.

    When the images name the affinity domain as Issuer of Patient ID (its qualifiers'
    Universal Entity ID, or the issuer text itself) the id is the domain's by
    declaration; otherwise xdsi takes the PACS's Patient IDs to be the domain's, which
    is how a deployment without a PIX manager runs.  Where they are not, publish with
    ``xdsi publish --patient-id``.
    """
    if study.issuer_of_patient_id_oid not in ("", affinity_domain):
        log.info(
            "Patient ID %s is issued by %s, published in the affinity domain %s",
            study.patient_id,
            study.issuer_of_patient_id_oid,
            affinity_domain,
        )
    return hl7.CX(study.patient_id, assigning_authority=hl7.HD("", affinity_domain, "ISO")).encode()


def describe_study(source: InstanceSource, study_uid: str) -> list[InstanceDescription]:
    """The study's instances as a manifest references them (headers only)."""
    from pydicom import dcmread

    described = []
    for instance in source.instances(study_uid):
        with instance.path.open("rb") as stream:
            described.append(describe(dcmread(stream, stop_before_pixels=True)))
    return described


# --- automatic publication -----------------------------------------------------------------


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def retry_delay(failures: int, base: timedelta, cap: timedelta) -> timedelta:
    """How long to wait after the ``failures``-th failure in a row: ``base`` doubled
    for each failure before it, never more than ``cap``."""
    if failures < 1:
        return timedelta(0)
    return min(cap, base * (2 ** min(failures - 1, 32)))


@dataclass(frozen=True, slots=True)
class Backoff:
    """A study whose publication failed ``failures`` times in a row: not before ``until``."""

    failures: int
    until: datetime


Outcome = PublishResult | DeprecationResult


@dataclass
class AutoPublisher:
    """RAD-68 for stable studies of the local store, one look per :meth:`tick`.

    Studies with news (instances added, replaced or removed) are remembered from
    ``StudyChanged`` (and, at start, from the store's index); a tick publishes those
    stable for ``delay``, and deprecates the manifest of a study left without instances
    through ``updater`` (ITI-57).  A failed publication is logged and tried again after
    :func:`retry_delay` (``retry_base`` doubled per failure, at most ``retry_cap``);
    nothing here raises.
    """

    source: ImagingSource
    repository: DocumentRepositoryClient
    journal: PublishedManifests
    config: PublishConfig
    affinity_domain: str
    delay: timedelta
    locator: ManifestLocator | None = None
    updater: RegistryUpdateClient | None = None
    clock: Clock = _utcnow
    retry_base: timedelta = timedelta(seconds=10)
    retry_cap: timedelta = timedelta(minutes=30)
    # True when other processes store into the same index (``[server] workers``): their
    # instances raise no StudyChanged here, so each tick looks at what arrived lately
    shared_store: bool = False
    _pending: dict[str, datetime] = field(default_factory=dict)
    _backoff: dict[str, Backoff] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _looked: datetime | None = None

    def seed(self, since: datetime | None = None) -> None:
        """Studies received (before a restart, too) but not published since; with
        ``since``, among those that received an instance at or after it."""
        received = self.source.store.last_received(since)
        published = self.journal.published_times(received)
        with self._lock:
            for study, at in received.items():
                if study not in published or at > published[study]:
                    self._pending[study] = max(at, self._pending.get(study, at))

    def look_again(self) -> None:
        """Studies other processes received since the last look.  An instance's
        ``received`` time is set before its row commits, so each look reaches back
        :data:`LOOK_BACK` before the previous one; a study seen twice is pending once."""
        now = self.clock()
        self.seed(None if self._looked is None else self._looked - LOOK_BACK)
        self._looked = now

    def changed(self, change: StudyChanged) -> None:
        """The ``ImagingSource`` subscriber: the study has news as of ``change.at``."""
        with self._lock:
            self._pending[change.study_instance_uid] = change.at

    def pending(self) -> dict[str, datetime]:
        with self._lock:
            return dict(self._pending)

    def backoff(self, study: str) -> Backoff | None:
        """The study's retry state after failed publications, if any."""
        with self._lock:
            return self._backoff.get(study)

    def tick(self) -> list[Outcome]:
        """Publish every pending study that is stable and not backing off; the results
        of those sent (RAD-68) or deprecated (ITI-57)."""
        if self.shared_store:
            try:
                self.look_again()
            except Exception:
                log.exception("cannot read the instance index for new studies")
        pending = self.pending()
        if not pending:
            return []
        try:
            published = self.journal.published_times(pending)
        except Exception:
            log.exception("cannot read the journal of published manifests")
            return []
        now = self.clock()
        results = []
        for study in studies_due(pending, published, now=now, delay=self.delay):
            waiting = self.backoff(study)
            if waiting is not None and now < waiting.until:
                continue
            result = self._attempt(study, pending[study])
            if result is not None:
                results.append(result)
        return results

    def _done(self, study: str, seen: datetime) -> None:
        with self._lock:
            self._backoff.pop(study, None)
            if self._pending.get(study) == seen:  # nothing newer arrived meanwhile
                del self._pending[study]

    def _failed(self, study: str) -> None:
        with self._lock:
            failures = self._backoff[study].failures + 1 if study in self._backoff else 1
            wait = retry_delay(failures, self.retry_base, self.retry_cap)
            self._backoff[study] = Backoff(failures, self.clock() + wait)
        log.warning("study %s: failure %d in a row, next attempt in %s", study, failures, wait)

    def _attempt(self, study: str, seen: datetime) -> Outcome | None:
        try:
            result = self._publish(study, seen)
        except Exception:
            log.exception("publishing study %s failed", study)
            self._failed(study)
            return None
        if result is not None and not result.ok:
            self._failed(study)
        return result

    def _publish(self, study: str, seen: datetime) -> Outcome | None:
        described = describe_study(LocalSource(self.source.store), study)
        if not described:
            return self._deprecate(study, seen)
        patient = described[0].patient_study
        if not patient.patient_id:
            log.warning("study %s has no Patient ID: not published", study)
            self._done(study, seen)
            return None
        result = publish_study(
            study,
            described,
            affinity_patient_id(patient, self.affinity_domain),
            repository=self.repository,
            config=self.config,
            locator=self.locator,
            journal=self.journal,
        )
        if result.ok:
            log.info(
                "RAD-68: study %s published as manifest %s%s",
                study,
                result.manifest_unique_id,
                " (unchanged)" if result.unchanged else "",
            )
            self._done(study, seen)
        return result

    def _deprecate(self, study: str, seen: datetime) -> DeprecationResult | None:
        """No instances left: the study's manifest, if it has one, is deprecated."""
        record = self.journal.get(study)
        if record is None or record.deprecated is not None:
            self._done(study, seen)
            return None
        if self.updater is None:
            log.warning("study %s has no instances left; no ITI-57 registry configured", study)
            self._done(study, seen)
            return None
        result = deprecate_manifest(
            study,
            record.patient_id,  # the manifest's patient
            registry=self.updater,
            config=self.config,
            locator=self.locator,
            journal=self.journal,
        )
        if result.ok:
            log.info("ITI-57: manifest %s of emptied study %s deprecated", record.entry_uuid, study)
            self._done(study, seen)
        return result


# --- the actor, mounted ------------------------------------------------------------------


@dataclass
class ImagingWiring:
    """What :func:`build_imaging` made: the actor, its endpoints and its publisher."""

    source: ImagingSource
    instances: InstanceSource
    service: Service
    routes: list[BaseRoute]
    publisher: AutoPublisher | None = None
    publish_interval: float = 5.0
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    def start_listening(self) -> int:
        """Start the DIMSE listener; the port it listens on."""
        self.source.dimse.start()
        return self.source.dimse.port

    def close(self) -> None:
        self.source.stop()
        for close in self._closers:
            close()


def _stow_routes(source: ImagingSource, on_event: OnExchange | None = None) -> list[Route]:
    """STOW-RS (PS3.18 10.5): POST on /studies and /studies/{study}."""
    store = stow_endpoint(source, on_event)
    return [Route(path, store, methods=["POST"]) for path in ("/studies", "/studies/{study}")]


def _pacs_dimse_context(
    config: Config, on_tls_failure: OnTlsFailure | None
) -> ssl.SSLContext | None:
    """The ``pacs_dimse`` PACS's context: its own (``peer_ca``), else the peers'."""
    title = parse_peer(config.imaging_source.pacs_dimse).ae_title
    own = peer_ssl_contexts(config, on_tls_failure).get(title)
    return own if own is not None else peer_ssl_context(config, on_tls_failure)


def pacs_ssl_context(
    config: Config, on_tls_failure: OnTlsFailure | None = None
) -> ssl.SSLContext | None:
    """TLS to an https WADO-RS PACS, as between Secure Nodes (ITI TF-2 3.19.1: each
    end authenticates the other): with ``[tls]`` on, this node's certificate is offered
    and the PACS must chain to ``[imaging_source] pacs_ca``, else to ``[tls] ca`` or
    ``trusted_certs``; ``pacs_ca`` alone authenticates the PACS without a certificate
    offered; a failed authentication is reported to ``on_tls_failure``.  None (neither
    set, or an http URL): the system's CAs, no certificate."""
    settings, node = config.imaging_source, config.tls
    if not settings.pacs_wado_rs.startswith("https://"):
        return None
    if not node.enabled and not settings.pacs_ca:
        return None
    if settings.pacs_ca:
        ca, where = settings.pacs_ca, "[imaging_source] pacs_ca"
    else:
        ca, where = (*node.ca, *node.trusted_certs), "[tls]"
    return node_client_context(
        config,
        ca,
        where=where,
        scheme="https",
        service=settings.pacs_wado_rs,
        on_failure=on_tls_failure,
    )


def instance_source(
    config: Config, store: InstanceStore, on_tls_failure: OnTlsFailure | None = None
) -> tuple[InstanceSource, list[Callable[[], Any]]]:
    """The store itself, or a backing PACS cached in it; and what to close at the end.
    A failed authentication of a PACS reached over TLS is reported to ``on_tls_failure``."""
    settings = config.imaging_source
    if settings.pacs_wado_rs:
        fetcher = WadoRsFetcher(
            settings.pacs_wado_rs,
            timeout=settings.pacs_timeout,
            ssl_context=pacs_ssl_context(config, on_tls_failure),
        )
        return PacsSource(store, fetcher, settings.cache_max_bytes), [fetcher.close]
    if settings.pacs_dimse:
        dimse_fetcher = DimseFetcher(
            _peer(config, settings.pacs_dimse),
            settings.ae_title,
            ssl_context=_pacs_dimse_context(config, on_tls_failure),
        )
        return PacsSource(store, dimse_fetcher, settings.cache_max_bytes), []
    return LocalSource(store), []


def build_imaging(
    config: Config,
    engine: Engine,
    *,
    repository: DocumentRepositoryClient | None,
    locator: ManifestLocator | None = None,
    updater: RegistryUpdateClient | None = None,
    ssl_context: ssl.SSLContext | None = None,
    on_dicom_event: OnExchange | None = None,
    on_tls_failure: OnTlsFailure | None = None,
    publish: bool = True,
    sweep: bool = True,
    shared_store: bool = False,
) -> ImagingWiring:
    """The Imaging Document Source on ``engine`` (migrated here), not yet listening.

    ``repository`` is where automatic RAD-68 goes (None: no automatic publication);
    ``locator`` finds a study's current manifest by ITI-18 (None: the journal's);
    ``updater`` deprecates the manifest of an emptied study by ITI-57 (None: it stays);
    ``on_dicom_event`` observes every C-STORE, C-FIND, C-MOVE, C-GET, WADO and STOW-RS
    (auditing); ``on_tls_failure`` each failed node authentication on a connection it
    opens (to a PACS, to a ``tls_peers`` peer).  ``publish``: run the automatic RAD-68 here; ``sweep``: remove what an
    interrupted store left (never while another process may be storing);
    ``shared_store``: other processes store into the same index (``[server] workers``)."""
    settings = config.imaging_source
    source = ImagingSource(
        imaging_source_config(config, on_tls_failure=on_tls_failure),
        engine=engine,
        ssl_context=ssl_context,
    )
    source.start(dimse=False, sweep=sweep)  # migrates the index
    published_journal.upgrade(engine)
    instances, closers = instance_source(config, source.store, on_tls_failure)
    source.dimse.serve_from(instances)  # C-FIND/C-MOVE/C-GET from the PACS, transparently
    source.dimse.on_event = on_dicom_event
    rad69 = Rad69Config(settings.repository_unique_id, config.registry.home_community_id)
    transcoder = rad69.transcoder(Path(settings.storage_dir))
    service = imaging_source_service(
        instances, transcoder, rad69.identity(), path=IMAGING_SOURCE_PATH
    )
    web = [
        *_stow_routes(source, on_dicom_event),
        *dicomweb_routes(
            instances,
            transcoder,
            base_url=settings.wado_rs_base_url or None,
            on_event=on_dicom_event,
        ),
    ]
    publisher = None
    if not publish:
        pass  # another process publishes what this one stores
    elif settings.auto_publish and settings.backing_pacs:
        log.info("a backing PACS is configured: studies are published by `xdsi publish`")
    elif settings.auto_publish and repository is None:
        log.warning("no Document Repository in this process: no automatic RAD-68")
    elif settings.auto_publish and repository is not None:
        publisher = AutoPublisher(
            source,
            repository,
            PublishedManifests(engine),
            publish_config(config),
            config.registry.affinity_domain,
            timedelta(seconds=settings.stability_delay),
            locator=locator,
            updater=updater,
            shared_store=shared_store,
        )
        publisher.seed()
        source.subscribe(publisher.changed)
    return ImagingWiring(
        source,
        instances,
        service,
        [Mount(DICOMWEB_PATH, routes=web)],
        publisher,
        settings.publish_interval,
        closers,
    )


def make_engine(database_url: str) -> Engine:
    """The engine of the instance index and the journal (SQLite pragmas as the index's)."""
    return instance_index.make_engine(database_url)


__all__ = [
    "LOOK_BACK",
    "AutoPublisher",
    "Backoff",
    "ImagingWiring",
    "affinity_patient_id",
    "build_imaging",
    "describe_study",
    "imaging_source_config",
    "instance_source",
    "make_engine",
    "parse_code",
    "publish_config",
    "retry_delay",
]
