"""The composition root: ``xdsi serve`` builds every actor from a Config and runs them.

:func:`build_application` makes the database engines, runs the migrations and the
repository's start-up recovery, builds the actors and mounts their SOAP endpoints with
``GET /health`` on one Starlette app.  :func:`run` drives uvicorn's ``Server`` and the
MLLP listener in one event loop; ``/health`` answers 200 only once both listen.
SIGTERM and SIGINT stop both cleanly.  Nothing is made at import: each call builds
its own objects, so tests may run several in one process.

ATNA auditing observes the actors rather than living in them: the SOAP endpoints get
an ``on_exchange`` observer, the patient feed an ``on_outcome`` hook, and the
repository's RegistryClient an auditing decorator (``atna.observe``).  All three hand
their records to one :class:`atna.Auditor`, which spools each event durably and ships
it to the ``[audit] destinations``; with none configured the events stay spooled.
Application Start and Stop (DICOM PS3.15 A.5.3.1) frame the run.

ITI-19 Authenticate Node: with ``[tls] cert`` set (``--tls-cert``), the HTTP and
MLLP listeners do a mutual TLS handshake (``xdsi.tls``) before any byte reaches an
actor; a refused peer is audited as a Security Alert (Node Authentication) with its
address and the reason, and an accepted peer's certificate subject is named in the
audit records of its transactions.  ``Application.dicom_ssl_context`` is the context
for the DICOM listener (pynetdicom ``ssl_context``), reporting refusals the same way.
The connections xdsi opens (to an https registry, an https PACS, the DICOM peers in
``tls_peers``) offer the node certificate, and their failed authentications are
audited as Security Alerts too (``xdsi.outgoing_tls``, ``atna.node_authentication``).

Shutdown drains the audit: what is queued is spooled, and the shipper gets
``AUDIT_DRAIN_SECONDS`` to send what is spooled before it stops; what is left is
shipped after the next start.

The Imaging Document Source (``[imaging_source]``, ``xdsi.imaging``) adds RAD-69 at
``/xdsi/imaging-source`` (through the same SOAP routes, so auditing observes it), the
DICOMweb services under ``/dicomweb`` and its DIMSE listener on ``--dicom-port`` (over
TLS with ``dicom_ssl_context`` when ``[tls]`` is on); ``/health`` waits for that
listener too.  Studies it receives are published by a background task every
``publish_interval`` seconds once stable.

With ``[server] workers`` above 1, ``xdsi serve`` is the supervisor of ``xdsi.workers``
and :func:`run` runs in each worker: it listens on nothing for HTTP and serves the
connections the supervisor hands over; only the primary worker (``ProcessRole``) runs
the MLLP and DICOM listeners and the automatic RAD-68.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import signal
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from atna.auditor import Auditor
from atna.codes import ApplicationActivityType, CodedValue
from atna.dicom_observe import DicomAuditObserver
from atna.events import ApplicationActivity, Endpoint
from atna.node_authentication import (
    OnTlsFailure,
    TlsFailure,
    node_authentication_alert,
    outgoing_authentication_alert,
)
from atna.observe import (
    AuditingRegistryClient,
    FeedAuditObserver,
    SoapAuditObserver,
    exchange_audits,
)
from atna.spool import AuditSpool
from atna.syslog import TlsConfig
from ebxml.vocabulary import Action
from imaging_source.publish import (
    InProcessRegistryUpdateClient,
    InProcessRepositoryClient,
    StoredQueryManifestLocator,
    in_process_query,
)
from registry import db as registry_db
from registry.codes import load_code_set
from registry.feed_hl7v2 import FeedProcessor
from registry.feed_hl7v3 import Hl7v3Feed, Hl7v3FeedConfig
from registry.mllp import MllpLimits, _Connections, serve_mllp
from registry.remove import RemoveConfig
from registry.service import DocumentRegistry, RegistryConfig
from registry.soap_feed_hl7v3 import patient_feed_operations
from registry.soap_multipatient import MultiPatientQueryConfig, multi_patient_operation
from registry.soap_ondemand import on_demand_operation
from registry.soap_remove import remove_metadata_operation
from registry.soap_service import RegistryEndpointConfig, registry_service
from registry.soap_update import update_operation
from registry.stored_query import StoredQueryConfig
from repository import db as repository_db
from repository.blobs import BlobStore
from repository.registry_client import InProcessRegistryClient, RegistryClient, SoapRegistryClient
from repository.service import DocumentRepository, RepositoryConfig, repository_service
from repository.soap_remove import remove_documents_operation
from soap.app import SoapDispatch, build_soap_endpoints, soap_routes
from soap.message import Operation, Service
from xdsi import collector
from xdsi.config import HEALTH_PATH, REGISTRY_PATH, REPOSITORY_PATH, Config, ConfigError
from xdsi.header_timeout import header_timeout_protocol
from xdsi.imaging import ImagingWiring, build_imaging
from xdsi.imaging import make_engine as imaging_engine
from xdsi.outgoing_tls import registry_ssl_context
from xdsi.tls import (
    NodeTls,
    OnRefused,
    PeerCertificateMiddleware,
    TlsConfigError,
    TlsRefusal,
    current_peer_subject,
    ensure_dh_params,
    https_protocol_factory,
    listener_url,
    serve_tls,
    server_context,
    socket_server_context,
)
from xdsi.workers import SOLE_PROCESS, ProcessRole

if TYPE_CHECKING:
    from xdsi.workers import WorkerLink

log = logging.getLogger("xdsi.serve")

# ITI-41 3.41.4.1.3.2: a pending document older than this was left by a crash
RECOVERY_GRACE = timedelta(hours=1)
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# at shutdown, how long spooled audit messages may take to go out before the shipper
# stops; what is left is shipped after the next start
AUDIT_DRAIN_SECONDS = 5.0
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


@dataclass(slots=True)
class Readiness:
    """Which listeners are up; ``/health`` is 200 only when all of them are."""

    http: bool = False
    mllp: bool = False
    dicom: bool = True  # False while an Imaging Document Source's listener is not up

    @property
    def ready(self) -> bool:
        return self.http and self.mllp and self.dicom


@dataclass(slots=True)
class Application:
    """Everything ``build_application`` made, to run and then to close."""

    config: Config
    app: ASGIApp  # Starlette's, SOAP POSTs dispatched ahead of it
    readiness: Readiness
    registry: DocumentRegistry | None = None
    repository: DocumentRepository | None = None
    feed: FeedProcessor | None = None
    engines: list[Engine] = field(default_factory=list)
    auditor: Auditor | None = None
    tls_context: ssl.SSLContext | None = None  # HTTP and MLLP (ITI-19)
    dicom_ssl_context: ssl.SSLContext | None = None  # for pynetdicom's ssl_context
    on_tls_refused: OnRefused | None = None
    imaging: ImagingWiring | None = None

    def close(self) -> None:
        """Stop the imaging source, the repository's registry client, auditing (what is
        queued is spooled first), then the databases."""
        imaging, self.imaging = self.imaging, None
        if imaging is not None:
            imaging.close()
        repository, self.repository = self.repository, None
        if repository is not None:
            repository.close()  # its connections to a remote registry
        auditor, self.auditor = self.auditor, None
        if auditor is not None:
            auditor.stop()
            auditor.spool.close()
        for engine in self.engines:
            engine.dispose()


def _health(readiness: Readiness, config: Config, role: ProcessRole) -> Route:
    async def health(_request: Request) -> JSONResponse:
        body: dict[str, Any] = {
            "status": "ok" if readiness.ready else "starting",
            "device": config.device.name,
            "http": readiness.http,
            "mllp": readiness.mllp,
            "dicom": readiness.dicom,
        }
        if role.worker is not None:
            body["worker"] = role.worker
        return JSONResponse(body, status_code=200 if readiness.ready else 503)

    return Route(HEALTH_PATH, health, methods=["GET"])


def _sqlalchemy_url(url: str) -> str:
    # a bare postgresql:// URL means psycopg 3, the driver xdsi ships with
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _build_registry(config: Config, engines: list[Engine]) -> DocumentRegistry:
    engine = registry_db.make_engine(_sqlalchemy_url(config.database.url))
    engines.append(engine)
    registry_db.upgrade(engine)
    code_set_file = config.registry.code_set_file
    code_set = load_code_set(Path(code_set_file)) if code_set_file else None
    return DocumentRegistry(engine, RegistryConfig(code_set=code_set))


def _registry_options(
    config: Config, registry: DocumentRegistry, stored_query: StoredQueryConfig
) -> dict[str, Operation]:
    """The registry's optional transactions, as configured."""
    settings = config.registry
    operations: dict[str, Operation] = {}
    if settings.on_demand:
        operations[Action.ITI61] = on_demand_operation(registry)
    if settings.remove_metadata:
        operations[Action.ITI62] = remove_metadata_operation(
            registry, RemoveConfig(metadata_update=settings.metadata_update)
        )
    if settings.metadata_update:
        operations[Action.ITI57] = update_operation(registry)
    if settings.hl7v3_feed:
        device_id = settings.affinity_domain  # the registry answers as its domain's device
        feed_v3 = Hl7v3Feed(registry, Hl7v3FeedConfig(settings.affinity_domain, device_id))
        operations.update(patient_feed_operations(feed_v3))
    multi_patient = multi_patient_operation(
        registry,
        MultiPatientQueryConfig(enabled=settings.multi_patient_query, stored_query=stored_query),
    )
    if multi_patient is not None:
        operations[Action.ITI51] = multi_patient
    return operations


def _registry_client(
    config: Config, registry: DocumentRegistry | None, auditor: Auditor | None
) -> RegistryClient:
    """The seam to the registry, chosen once: in this process, or over SOAP; audited
    either way (ITI-42 as the repository, and as the registry when it is in process)."""
    url = config.repository.registry_url
    inner: RegistryClient
    if url:
        # ITI TF-2 3.19.1: to an https registry as a Secure Node, when [tls] is on
        context = registry_ssl_context(config, _tls_failure_auditor(config, auditor))
        inner = (
            SoapRegistryClient(url) if context is None else SoapRegistryClient(url, verify=context)
        )
    elif registry is None:
        raise ConfigError(
            "[repository] registry_url is empty but [registry] enabled is false: "
            "the repository has no registry to register its documents with"
        )
    else:
        inner = InProcessRegistryClient(registry)
    if auditor is None:
        return inner
    return AuditingRegistryClient(
        inner,
        auditor.record,
        repository=Endpoint(config.repository_endpoint),
        registry=Endpoint(url or config.registry_endpoint),
        in_process=not url,
    )


def _node_address(host: str) -> str:
    """The address an audit message names for a listener bound to ``host``."""
    return socket.getfqdn() if host in _WILDCARD_HOSTS else host


def _audit_tls(config: Config) -> TlsConfig | None:
    audit = config.audit
    if not any(d.startswith("tls://") for d in audit.destinations):
        return None
    for key in ("tls_cert", "tls_key", "tls_ca"):
        value = getattr(audit, key)
        if not value or not Path(value).is_file():
            raise ConfigError(
                f"[audit] {key}: the tls:// audit destinations need a client certificate, "
                f"its key and the CA of the audit repository ({value!r} is not a file)"
            )
    return TlsConfig(Path(audit.tls_cert), Path(audit.tls_key), Path(audit.tls_ca))


def build_auditor(config: Config) -> Auditor:
    """The spool (migrated now) and the auditor shipping it to ``[audit] destinations``."""
    audit = config.audit
    tls = _audit_tls(config)
    spool = AuditSpool.open(_sqlalchemy_url(audit.spool_url), synchronous=audit.spool_sync)
    if not audit.destinations:
        log.warning("no [audit] destinations: audit events are kept in %s", audit.spool_url)
    if spool.holds:
        # records held by exchanges this server was answering when it last stopped:
        # their outcome was never recorded, they are shipped as they are
        released = spool.release_held()
        if released:
            log.warning("%d audit deliveries of unfinished exchanges released", released)
    try:
        return Auditor(
            spool,
            audit.destinations,
            audit.source_id,
            audit.enterprise_site_id,
            tls=tls,
            hostname=_node_address(config.connection.http.host),
            spool_limit=audit.spool_limit,
        )
    except BaseException:
        spool.engine.dispose()
        raise


def _audit_admission(auditor: Auditor | None) -> Callable[[], bool] | None:
    """Refuse new transactions while the audit spool is full (``[audit] spool_limit``)."""
    if auditor is None or not auditor.spool_limit:
        return None
    return lambda: auditor.accepting


def node_tls(config: Config) -> NodeTls:
    """``[tls]`` as ``xdsi.tls`` takes it; the DH parameters are written at first start."""
    tls = config.tls
    dh_params = ensure_dh_params(Path(tls.dh_params))
    return NodeTls(
        Path(tls.cert),
        Path(tls.key or tls.cert),
        tuple(Path(p) for p in tls.ca),
        tuple(Path(p) for p in tls.trusted_certs),
        dh_params,
    )


def _reporter(config: Config) -> Endpoint:
    """This node, as the reporter of a Security Alert."""
    return Endpoint(
        config.device.name, network_access_point=_node_address(config.connection.http.host)
    )


def _refusal_auditor(config: Config, auditor: Auditor | None) -> OnRefused | None:
    """ITI TF-2 3.20.7: each refused TLS peer becomes a Security Alert."""
    if auditor is None:
        return None
    reporter = _reporter(config)

    def audit(refusal: TlsRefusal) -> None:
        auditor.record(
            node_authentication_alert(
                reporter, refusal.listener, refusal.peer_host, refusal.peer_port, refusal.reason
            )
        )

    return audit


def _tls_failure_auditor(config: Config, auditor: Auditor | None) -> OnTlsFailure | None:
    """ITI TF-2 3.20.7: each failed node authentication on a connection xdsi opens (to
    a registry, a PACS, a DICOM peer) becomes a Security Alert."""
    if auditor is None:
        return None
    reporter = _reporter(config)

    def audit(failure: TlsFailure) -> None:
        auditor.record(outgoing_authentication_alert(reporter, failure))

    return audit


def _build_repository(
    config: Config,
    registry: DocumentRegistry | None,
    engines: list[Engine],
    auditor: Auditor | None,
) -> DocumentRepository:
    engine = repository_db.make_engine(_sqlalchemy_url(config.database.url))
    engines.append(engine)
    repository_db.upgrade(engine)
    repository = DocumentRepository(
        engine,
        BlobStore(config.repository.blob_dir),
        _registry_client(config, registry, auditor),
        RepositoryConfig(
            repository_unique_id=config.repository.repository_unique_id,
            home_community_id=config.registry.home_community_id,
            pending_grace=RECOVERY_GRACE,
        ),
    )
    report = repository.recover()
    log.info("repository recovery: %s", report)
    return repository


def build_application(config: Config, role: ProcessRole = SOLE_PROCESS) -> Application:
    """Engines, migrations, recovery, actors and the ASGI app for ``config``, as the
    process ``role`` says."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.limits.spool_dir is not None:
        config.limits.spool_dir.mkdir(parents=True, exist_ok=True)
    engines: list[Engine] = []
    readiness = Readiness()
    services: list[Service] = []
    registry = feed = repository = None
    imaging: ImagingWiring | None = None
    auditor = build_auditor(config) if config.audit.enabled else None
    tls_context = dicom_ssl_context = None
    on_tls_refused = _refusal_auditor(config, auditor)
    try:
        if config.tls.enabled:
            tls = node_tls(config)
            tls_context = server_context(tls)
            dicom = config.connection.dicom
            dicom_ssl_context = socket_server_context(
                tls, listener_url("dicom", dicom.host, dicom.port), on_tls_refused
            )
        if config.registry.enabled:
            registry = _build_registry(config, engines)
            stored_query = StoredQueryConfig(
                home_community_id=config.registry.home_community_id,
                max_results=config.registry.max_results,
            )
            services.append(
                registry_service(
                    registry,
                    RegistryEndpointConfig(stored_query),
                    path=REGISTRY_PATH,
                    extra_operations=_registry_options(config, registry, stored_query),
                )
            )
            application_name = config.device.name.upper()
            # ITI TF-2 3.8.5.1.2: the receiver is named MSH-5|MSH-6 of the feed
            receiver = Endpoint(
                f"{application_name}|{application_name}",
                network_access_point=_node_address(config.connection.mllp.host),
            )
            feed = FeedProcessor(
                registry.write_sessions,
                config.registry.affinity_domain,
                application=application_name,
                facility=application_name,
                on_outcome=(
                    FeedAuditObserver(auditor.record, receiver, peer=current_peer_subject)
                    if auditor
                    else None
                ),
                admit=_audit_admission(auditor),
            )
        if config.repository.enabled:
            repository = _build_repository(config, registry, engines, auditor)
            options = (
                {Action.ITI86: remove_documents_operation(repository)}
                if config.repository.remove_documents
                else {}
            )
            services.append(
                repository_service(repository, path=REPOSITORY_PATH, extra_operations=options)
            )
        if config.imaging_source.enabled:
            imaging = _build_imaging(
                config, registry, repository, engines, dicom_ssl_context, auditor, role
            )
            services.append(imaging.service)
            readiness.dicom = not role.primary  # the primary's listener, when it is up
    except TlsConfigError as exc:
        _dispose(engines, auditor, imaging)
        raise ConfigError(f"[tls]: {exc}") from exc
    except BaseException:
        _dispose(engines, auditor, imaging)
        raise
    endpoints = build_soap_endpoints(
        services,
        config.limits,
        accept_unvalidated_wsse_security=config.registry.accept_unvalidated_wsse_security,
        on_exchange=(
            SoapAuditObserver(
                auditor.record,
                exchange_audits(config.registry.affinity_domain),
                peer=current_peer_subject,
                auditor=auditor,
            )
            if auditor
            else None
        ),
        admit=_audit_admission(auditor),
    )
    routes = [
        _health(readiness, config, role),
        *soap_routes(endpoints),
        *(imaging.routes if imaging is not None else ()),
    ]
    # a SOAP POST goes straight to its endpoint (soap.app.SoapDispatch), the rest
    # through Starlette's stack; the peer's certificate is known to both
    app = PeerCertificateMiddleware(SoapDispatch(endpoints, Starlette(routes=routes)))
    if feed is None or not role.primary:
        readiness.mllp = True  # no feed listener here to wait for
    return Application(
        config,
        app,
        readiness,
        registry,
        repository,
        feed,
        engines,
        auditor,
        tls_context,
        dicom_ssl_context,
        on_tls_refused,
        imaging,
    )


def _build_imaging(
    config: Config,
    registry: DocumentRegistry | None,
    repository: DocumentRepository | None,
    engines: list[Engine],
    dicom_ssl_context: ssl.SSLContext | None,
    auditor: Auditor | None = None,
    role: ProcessRole = SOLE_PROCESS,
) -> ImagingWiring:
    """The Imaging Document Source; its index and journal share the database; its
    DICOM routes audited when ``auditor`` is given; publishing in the primary process."""
    engine = imaging_engine(_sqlalchemy_url(config.database.url))
    engines.append(engine)
    return build_imaging(
        config,
        engine,
        repository=InProcessRepositoryClient(repository) if repository is not None else None,
        locator=(
            StoredQueryManifestLocator(in_process_query(registry)) if registry is not None else None
        ),
        ssl_context=dicom_ssl_context,
        on_tls_failure=_tls_failure_auditor(config, auditor),
        # a study that lost every instance has its manifest deprecated by ITI-57
        updater=InProcessRegistryUpdateClient(registry) if registry is not None else None,
        on_dicom_event=(
            DicomAuditObserver(auditor.record, peer=current_peer_subject) if auditor else None
        ),
        publish=role.primary,
        sweep=role.sweep,
        shared_store=role.shared,
    )


def _dispose(
    engines: list[Engine], auditor: Auditor | None, imaging: ImagingWiring | None = None
) -> None:
    if imaging is not None:
        imaging.close()
    for engine in engines:
        engine.dispose()
    if auditor is not None:
        auditor.spool.close()


def _application_activity(config: Config, event_type: CodedValue) -> ApplicationActivity:
    try:
        launcher = getpass.getuser()
    except (KeyError, OSError):
        launcher = None
    return ApplicationActivity(event_type, config.device.name, launcher)


def _drain(auditor: Auditor, timeout: float) -> None:
    """Give the shipper up to ``timeout`` seconds to send what is spooled."""
    deadline = time.monotonic() + timeout
    auditor.flush(timeout)
    while auditor.destinations and time.monotonic() < deadline:
        if auditor.spool.pending_count() == 0:
            return
        time.sleep(0.05)


def _start_publishing(imaging: ImagingWiring, done: asyncio.Event) -> asyncio.Task[None] | None:
    """The automatic RAD-68 loop: a tick every ``publish_interval`` seconds until
    ``done``; a tick under way is finished before the loop ends."""
    publisher = imaging.publisher
    if publisher is None:
        return None

    async def publish_stable_studies() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), imaging.publish_interval)
                return
            try:
                await asyncio.to_thread(publisher.tick)
            except Exception:  # a tick logs its own failures; this is the last guard
                log.exception("automatic publication failed; trying again")

    return asyncio.create_task(publish_stable_studies(), name="xdsi-auto-publish")


def configure_process(level: str, tag: str = "") -> None:
    """Log lines to stderr at ``level`` ("info", ...), each with ``tag`` (a worker's
    name) when given, and tune glibc's malloc before the first worker thread starts."""
    name = f"{tag} %(name)s" if tag else "%(name)s"
    logging.basicConfig(
        level=level.upper(), format=f"%(asctime)s %(levelname)s {name}: %(message)s"
    )
    if logging.getLogger().level > logging.DEBUG:
        # pynetdicom logs each sub-operation at INFO (a C-MOVE of a study: thousands of
        # lines); its warnings still show, everything with --log-level debug
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    from xdsi.allocator import tune_allocator

    # before the first worker thread: its malloc arena is made under these settings
    logging.getLogger("xdsi.allocator").info("glibc malloc: %s", tune_allocator() or "as is")


class _Server(uvicorn.Server):
    """uvicorn's server without its own signal handling: :func:`run` owns the signals.

    A worker's server listens on nothing: the supervisor hands it connections it
    accepted (:meth:`accepted`), served by the protocol uvicorn's listener would make."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._handing: set[asyncio.Task[Any]] = set()  # connections being set up

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def accepted(self, sock: socket.socket) -> None:
        """Serve ``sock``, a connection accepted by another process."""
        if self.should_exit:
            sock.close()
            return
        loop = asyncio.get_running_loop()
        sock.setblocking(False)

        def protocol() -> asyncio.Protocol:
            return self.config.http_protocol_class(  # type: ignore[call-arg]
                config=self.config,
                server_state=self.server_state,
                app_state=self.lifespan.state,
                _loop=loop,
            )

        handing = loop.create_task(loop.connect_accepted_socket(protocol, sock))
        self._handing.add(handing)
        handing.add_done_callback(lambda task: self._handed(task, sock))

    def _handed(self, task: asyncio.Task[Any], sock: socket.socket) -> None:
        self._handing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("a handed-over connection failed: %s", task.exception())
            sock.close()


async def run(
    config: Config, *, application: Application | None = None, worker: WorkerLink | None = None
) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean shutdown.  As a ``worker``, serve the
    connections its supervisor hands over, and stop when the supervisor is gone."""
    role = worker.role if worker is not None else SOLE_PROCESS
    application = application or await asyncio.to_thread(build_application, config, role)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in SHUTDOWN_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    http = config.connection.http
    header_timeout = config.limits.header_timeout
    protocol: Callable[..., asyncio.Protocol] = header_timeout_protocol(
        header_timeout, sendfile=config.server.sendfile
    )
    if application.tls_context is not None:
        # uvicorn gets no SSL context: xdsi.tls does the handshake, so a refused peer
        # is audited and an accepted one is named in the ASGI scope
        protocol = https_protocol_factory(
            application.tls_context,
            listener_url("https", http.host, http.port),
            application.on_tls_refused,
            header_timeout,
        )
    server = _Server(
        uvicorn.Config(
            application.app,
            host=http.host,
            port=http.port,
            lifespan="on",
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=10,
            http=protocol,
        )
    )
    mllp_server = None
    publishing: asyncio.Task[None] | None = None
    publishing_done = asyncio.Event()
    auditor = application.auditor
    if auditor is not None:
        auditor.start()
    try:
        if application.feed is not None and role.primary:
            mllp = config.connection.mllp
            if application.tls_context is None:
                mllp_server = await serve_mllp(
                    mllp.host, mllp.port, application.feed.handle, refuse=application.feed.refuse
                )
            else:  # MLLP over TLS (ITI TF-2 3.8.4 / ITI-19), handshake audited
                mllp_server = await serve_tls(
                    _Connections(application.feed.handle, MllpLimits(), application.feed.refuse),
                    mllp.host,
                    mllp.port,
                    application.tls_context,
                    listener_url("mllp", mllp.host, mllp.port),
                    application.on_tls_refused,
                )
            application.readiness.mllp = True
            log.info("ITI-8 MLLP listening on %s:%d", mllp.host, mllp.port)
        if application.imaging is not None and role.primary:
            dicom = config.connection.dicom
            port = await asyncio.to_thread(application.imaging.start_listening)
            application.readiness.dicom = True
            log.info(
                "DICOM %s listening on %s:%d", config.imaging_source.ae_title, dicom.host, port
            )
            publishing = _start_publishing(application.imaging, publishing_done)
        serving = asyncio.create_task(server.serve(sockets=[] if worker is not None else None))
        while not server.started and not serving.done():
            await asyncio.sleep(0.02)
        if serving.done():
            await serving
            raise OSError(f"HTTP listener on {http.host}:{http.port} did not start")
        if worker is not None:
            worker.receive(loop, server.accepted, stop.set)
        collector.settle()  # the application is built and every listener open
        application.readiness.http = True
        if auditor is not None:
            auditor.record(_application_activity(config, ApplicationActivityType.APPLICATION_START))
        scheme = "https" if application.tls_context is not None else "http"
        log.info("xdsi %s ready on %s://%s:%d", config.device.name, scheme, http.host, http.port)
        if worker is not None:
            worker.ready()
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        application.readiness.http = False
        if worker is not None:
            worker.close(loop)
        server.should_exit = True
        await serving
        waiting.cancel()
    finally:
        for sig in SHUTDOWN_SIGNALS:
            loop.remove_signal_handler(sig)
        if publishing is not None:
            publishing_done.set()
            await publishing
        if mllp_server is not None:
            mllp_server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(mllp_server.wait_closed(), 5.0)
        if auditor is not None:
            auditor.record(_application_activity(config, ApplicationActivityType.APPLICATION_STOP))
            await asyncio.to_thread(_drain, auditor, AUDIT_DRAIN_SECONDS)
        await asyncio.to_thread(application.close)
    log.info("xdsi %s stopped", config.device.name)
    return 0


__all__ = [
    "Application",
    "Readiness",
    "build_application",
    "build_auditor",
    "configure_process",
    "node_tls",
    "run",
]
