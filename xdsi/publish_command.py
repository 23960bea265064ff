"""``xdsi publish STUDY_UID --patient-id PID``: RAD-68 on demand.

The command reads the study where the server finds it - the data directory's instance
store, or the backing PACS it is configured with (``[imaging_source] pacs_wado_rs`` /
``pacs_dimse``; fetched instances land in the shared cache, so the RAD-69 that follows
finds them there) - builds the manifest (RAD TF-3 4.68.4.1.2) and sends it by SOAP to
the repository of ``--server`` (default: the local server).  The study's current
manifest is found by ITI-18 FindDocumentsByReferenceId at the same server, so a changed
study replaces its manifest (RAD68-006).  No admin endpoint is involved: the server's
own endpoints are the interface.  Prints the manifest's uniqueId (the KOS SOP Instance
UID).  Exit codes as the other client commands: 0 success, 1 XDS Failure or no such
study, 2 usage or transport error.

Given ``record``, the command audits as the Imaging Document Source: the RAD-68 (the
ITI-41 Document Source's audit, ``atna.requester``) and the ITI-18 of the manifest
lookup (as a Document Consumer), failures included.
"""

from __future__ import annotations

from typing import TextIO

from atna.requester import AuditingRepositoryClient, auditing_query
from imaging_source import instances as instance_index
from imaging_source import published as published_journal
from imaging_source.instances import InstanceStore
from imaging_source.pacs import PacsError
from imaging_source.publish import (
    TRANSPORT_ERRORS,
    DocumentRepositoryClient,
    RegistryQueryFailed,
    SoapRepositoryClient,
    StoredQueryManifestLocator,
    publish_study,
    soap_query,
)
from imaging_source.published import PublishedManifests
from xdsi import client_commands as cc
from xdsi.config import REGISTRY_PATH, REPOSITORY_PATH, Config
from xdsi.imaging import describe_study, instance_source, make_engine, publish_config


def _database_url(url: str) -> str:
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def publish(
    config: Config,
    study_uid: str,
    patient_id: str,
    server_url: str | None,
    *,
    force: bool = False,
    out: TextIO,
    err: TextIO,
    tls: cc.ClientTls | None = None,
    record: cc.Record | None = None,
) -> int:
    """RAD-68 of ``study_uid`` for ``patient_id`` (ID in the affinity domain, or CX)."""
    base = (server_url or config.http_base_url()).rstrip("/")
    options = cc._tls_options(config, tls, record)
    if config.limits.spool_dir is not None:
        config.limits.spool_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(_database_url(config.database.url))
    closers = []
    try:
        instance_index.upgrade(engine)
        published_journal.upgrade(engine)
        store = InstanceStore(config.imaging_source.storage_dir, engine)
        source, closers = instance_source(config, store)
        try:
            described = describe_study(source, study_uid)
        except (PacsError, *TRANSPORT_ERRORS) as exc:
            print(f"cannot read study {study_uid} from the backing PACS: {exc}", file=err)
            return cc.EXIT_USAGE
        if not described:
            print(f"study {study_uid} not found", file=err)
            return cc.EXIT_FAILURE
        repository_url, registry_url = f"{base}{REPOSITORY_PATH}", f"{base}{REGISTRY_PATH}"
        repository: DocumentRepositoryClient = SoapRepositoryClient(repository_url, **options)
        query = soap_query(registry_url, **options)
        if record is not None:
            repository = AuditingRepositoryClient(repository, record, repository_url)
            query = auditing_query(query, record, registry_url)
        try:
            result = publish_study(
                study_uid,
                described,
                cc.patient_cx(patient_id, config),
                repository=repository,
                config=publish_config(config),
                locator=StoredQueryManifestLocator(query),
                journal=PublishedManifests(engine),
                force=force,
            )
        except RegistryQueryFailed as exc:
            print(f"cannot ask the registry for the study's manifest: {exc}", file=err)
            return cc.EXIT_USAGE
    finally:
        for close in closers:
            close()
        engine.dispose()
    for error in result.response.errors:
        print(
            f"{'error' if error.is_error else 'warning'}: {error.code}: {error.context}", file=err
        )
    if not result.ok:
        print("publication failed", file=err)
        return cc.EXIT_FAILURE
    print(result.manifest_unique_id, file=out)
    return cc.EXIT_OK


__all__ = ["publish"]
