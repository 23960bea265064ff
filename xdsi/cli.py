"""The ``xdsi`` command: ``serve``, the client commands ``patients add``, ``submit``,
``query``, ``retrieve`` and ``publish`` (RAD-68), ``check``, ``certs`` (a test PKI for ITI-19), ``audit tail`` / ``audit search`` and ``bench load``.  Exit codes: 0 success, 1 XDS Failure (or,
for ``check``, an inconsistency), 2 usage or transport error (argparse's own usage
errors are 2 as well)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xdsi import client_commands as cc
from xdsi.config import Config, ConfigError, load_config


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default ./data)"
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML file (default <data-dir>/xdsi.toml)"
    )


def _audit_options(parser: argparse.ArgumentParser) -> None:
    """ATNA (ITI-20): where this command's audit records go, as ``xdsi serve``'s."""
    parser.add_argument(
        "--audit", action="append", default=None, metavar="URL",
        help="audit record repository tls://HOST:PORT or udp://HOST:PORT; repeatable "
        "([audit] destinations)",
    )  # fmt: skip
    parser.add_argument("--audit-tls-cert", help="client certificate for tls:// audit "
                        "destinations ([audit] tls_cert)")  # fmt: skip
    parser.add_argument("--audit-tls-key", help="its key ([audit] tls_key)")
    parser.add_argument("--audit-tls-ca", help="CA of the audit record repository "
                        "([audit] tls_ca)")  # fmt: skip


def _audit_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    return {
        "audit": {
            "destinations": args.audit,
            "tls_cert": args.audit_tls_cert,
            "tls_key": args.audit_tls_key,
            "tls_ca": args.audit_tls_ca,
        }
    }


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the registry, repository and patient feed")
    _common(p)
    p.add_argument("--host", help="HTTP and MLLP listen address ([connection.*] host)")
    p.add_argument("--port", type=int, help="HTTP port ([connection.http] port)")
    p.add_argument("--mllp-port", type=int, help="ITI-8 MLLP port ([connection.mllp] port)")
    p.add_argument(
        "--dicom-port", type=int,
        help="DIMSE port of the imaging document source ([connection.dicom] port)",
    )  # fmt: skip
    p.add_argument("--ae-title", help="our DICOM AE title ([imaging_source] ae_title)")
    p.add_argument(
        "--dicom-peer", action="append", default=None, metavar="AET@HOST:PORT",
        help="a known DICOM peer (move destination, allowed caller); repeatable "
        "([imaging_source] peers)",
    )  # fmt: skip
    pacs = p.add_mutually_exclusive_group()
    pacs.add_argument(
        "--pacs-wado-rs", metavar="URL",
        help="a backing PACS by its DICOMweb root ([imaging_source] pacs_wado_rs)",
    )  # fmt: skip
    pacs.add_argument(
        "--pacs-dimse", metavar="AET@HOST:PORT",
        help="a backing PACS by C-FIND/C-MOVE ([imaging_source] pacs_dimse)",
    )  # fmt: skip
    p.add_argument("--database", help="SQLAlchemy URL ([database] url)")
    p.add_argument("--blob-dir", help="where documents are kept ([repository] blob_dir)")
    p.add_argument(
        "--registry-url", help="a remote registry for ITI-42 ([repository] registry_url)"
    )
    _audit_options(p)
    p.add_argument("--tls-cert", help="ITI-19: this node's certificate; turns on mutual TLS "
                   "on every listener ([tls] cert)")  # fmt: skip
    p.add_argument("--tls-key", help="its private key ([tls] key; default: in the cert file)")
    p.add_argument("--tls-ca", action="append", default=None, metavar="FILE",
                   help="CA whose certificates are accepted; repeatable ([tls] ca)")  # fmt: skip
    p.add_argument("--tls-trusted-cert", action="append", default=None, metavar="FILE",
                   help="a peer certificate accepted as it is (self-signed too); repeatable "
                   "([tls] trusted_certs)")  # fmt: skip
    p.add_argument(
        "--workers", type=int,
        help="HTTP worker processes sharing the listener; >1 needs PostgreSQL ([server] workers)",
    )  # fmt: skip
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(run=_serve)


def _client_tls(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-cert", type=Path, help="client certificate (default: [tls] cert)")
    parser.add_argument("--tls-key", type=Path, help="its key (default: [tls] key)")
    parser.add_argument("--tls-ca", type=Path, action="append", default=None,
                        help="CA of the server; repeatable (default: [tls] ca)")  # fmt: skip


def _tls_of(args: argparse.Namespace) -> cc.ClientTls:
    return cc.ClientTls(args.tls_cert, args.tls_key, tuple(args.tls_ca or ()))


def _tools_parsers(sub: Any) -> None:
    certs = sub.add_parser("certs", help="make a test CA and node certificates (ITI-19)")
    certs.add_argument("--out", type=Path, required=True, help="directory to write them to")
    certs.add_argument("--host", action="append", default=[], help="extra host name or address")
    certs.set_defaults(run=_certs)

    audit = sub.add_parser("audit", help="read the local audit trail (the spool)")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    tail = asub.add_parser("tail", help="the latest audit records")
    _common(tail)
    tail.add_argument("-n", type=int, default=10, help="how many (default 10)")
    tail.add_argument("--follow", action="store_true", help="keep printing new records")
    _audit_options(tail)
    tail.set_defaults(run=_audit_tail)
    search = asub.add_parser("search", help="audit records about a patient")
    _common(search)
    search.add_argument("--patient", required=True, help="patient id (ID or ID^^^&OID&ISO)")
    search.add_argument("--since", help="DTM or ISO date/time, e.g. 20250101 or 2025-01-01")
    search.add_argument("--event", help="a transaction, e.g. ITI-18")
    _audit_options(search)
    search.set_defaults(run=_audit_search)


def _client_parsers(sub: Any) -> None:
    patients = sub.add_parser("patients", help="patient identity feed (ITI-8)")
    psub = patients.add_subparsers(dest="patients_command", required=True)
    add = psub.add_parser("add", help="send an ADT^A01 for a patient")
    _common(add)
    add.add_argument("patient", help="patient id: ID (in the affinity domain) or ID^^^&OID&ISO")
    add.add_argument("--mllp", help="HOST:PORT of the patient feed (default: the local server)")
    add.add_argument("--name", default="", help="patient name as FAMILY^GIVEN")
    _client_tls(add)
    _audit_options(add)
    add.set_defaults(run=_patients_add)

    submit = sub.add_parser("submit", help="provide and register documents (ITI-41)")
    _common(submit)
    submit.add_argument("files", nargs="+", type=Path)
    submit.add_argument("--patient", required=True)
    submit.add_argument("--class-code", help="code^scheme^display")
    submit.add_argument("--type-code", help="code^scheme^display")
    submit.add_argument("--format-code", help="code^scheme^display (default: by mime type)")
    submit.add_argument("--confidentiality", help="code^scheme^display (default N)")
    submit.add_argument("--mime-type", help="default: guessed from each file name")
    submit.add_argument("--title", help="default: each file name")
    submit.add_argument("--repository", help="repository URL (default: the local server)")
    _client_tls(submit)
    _audit_options(submit)
    submit.set_defaults(run=_submit)

    query = sub.add_parser("query", help="find a patient's documents (ITI-18)")
    _common(query)
    query.add_argument("--patient", required=True)
    query.add_argument(
        "--status", action="append", default=None,
        help="approved, deprecated or a status URN; repeatable (default approved)",
    )  # fmt: skip
    query.add_argument("--class-code", action="append", default=[], help="code^scheme; repeatable")
    query.add_argument("--registry", help="registry URL (default: the local server)")
    query.add_argument("--json", action="store_true", help="JSON instead of a table")
    _client_tls(query)
    _audit_options(query)
    query.set_defaults(run=_query)

    retrieve = sub.add_parser("retrieve", help="retrieve a document (ITI-43)")
    _common(retrieve)
    retrieve.add_argument("unique_id")
    retrieve.add_argument("--repository-id", help="repositoryUniqueId (default: the local one)")
    retrieve.add_argument("--repository", help="repository URL (default: the local server)")
    retrieve.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    _client_tls(retrieve)
    _audit_options(retrieve)
    retrieve.set_defaults(run=_retrieve)

    publish = sub.add_parser("publish", help="publish a study's imaging manifest (RAD-68)")
    _common(publish)
    publish.add_argument("study_uid", help="Study Instance UID")
    publish.add_argument(
        "--patient-id", required=True, help="ID (in the affinity domain) or ID^^^&OID&ISO"
    )
    publish.add_argument("--server", help="xdsi base URL (default: the local server)")
    publish.add_argument(
        "--force", action="store_true", help="publish even if the study has not changed"
    )
    publish_pacs = publish.add_mutually_exclusive_group()
    publish_pacs.add_argument("--pacs-wado-rs", metavar="URL",
                              help="read the study from this PACS ([imaging_source] pacs_wado_rs)")  # fmt: skip
    publish_pacs.add_argument("--pacs-dimse", metavar="AET@HOST:PORT",
                              help="read the study from this PACS ([imaging_source] pacs_dimse)")  # fmt: skip
    _client_tls(publish)
    _audit_options(publish)
    publish.set_defaults(run=_publish)


def _check_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="verify registry <-> repository <-> blob store consistency (exit 1 if not)",
    )
    _common(p)
    p.add_argument("--database", help="SQLAlchemy URL ([database] url)")
    p.add_argument("--blob-dir", help="where documents are kept ([repository] blob_dir)")
    p.add_argument(
        "--registry-url", help="a remote registry, asked by ITI-18 ([repository] registry_url)"
    )
    p.add_argument(
        "--repair", action="store_true",
        help="settle pending documents with the registry, remove temp files and "
        "unreferenced blobs older than the grace period",
    )  # fmt: skip
    p.add_argument(
        "--grace", type=float, default=3600.0, metavar="SECONDS",
        help="younger files and pending documents may belong to a running transaction "
        "(default 3600)",
    )  # fmt: skip
    p.add_argument("--no-hash", action="store_true", help="check blob sizes, not their SHA-1")
    _audit_options(p)
    p.set_defaults(run=_check)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xdsi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _client_parsers(sub)
    _check_parser(sub)
    _tools_parsers(sub)
    from conformance.cli import add_parser as _conformance_parser
    from xdsi.bench_commands import add_parser as _bench_parser

    _conformance_parser(sub)
    _bench_parser(sub)
    return parser


def _load(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    return load_config(args.data_dir, args.config, overrides)


def _load_audited(
    args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None
) -> Config:
    """The configuration of a command that audits (``--audit`` and its TLS options)."""
    return _load(args, {**(overrides or {}), **_audit_overrides(args)})


# --- commands ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    host = args.host
    overrides = {
        "connection.http": {"host": host, "port": args.port},
        "connection.mllp": {"host": host, "port": args.mllp_port},
        "connection.dicom": {"host": host, "port": args.dicom_port},
        "database": {"url": args.database},
        "repository": {"blob_dir": args.blob_dir, "registry_url": args.registry_url},
        **_audit_overrides(args),
        "imaging_source": {
            "ae_title": args.ae_title,
            "peers": args.dicom_peer,
            "pacs_wado_rs": args.pacs_wado_rs,
            "pacs_dimse": args.pacs_dimse,
        },
        "tls": {
            "cert": args.tls_cert,
            "key": args.tls_key,
            "ca": args.tls_ca,
            "trusted_certs": args.tls_trusted_cert,
        },
        "server": {"workers": args.workers},
    }
    config = _load(args, overrides)
    if config.server.workers > 1:
        from xdsi.workers import Supervisor

        logging.basicConfig(
            level=args.log_level.upper(),
            format="%(asctime)s %(levelname)s supervisor %(name)s: %(message)s",
        )
        return Supervisor(config, args.log_level).run()
    from xdsi.serve import configure_process, run

    configure_process(args.log_level)
    return asyncio.run(run(config))


def _code(value: str | None, what: str, default: Any) -> Any:
    return cc.parse_code(value, what) if value else default


def _patients_add(args: argparse.Namespace) -> int:
    from xdsi.client_audit import client_auditing

    config = _load_audited(args)
    with client_auditing(config) as record:
        return cc.patients_add(
            config,
            args.patient,
            args.mllp,
            name=args.name,
            out=sys.stdout,
            err=sys.stderr,
            tls=_tls_of(args),
            record=record,
        )


def _submit(args: argparse.Namespace) -> int:
    options = cc.SubmitOptions(
        patient=args.patient,
        class_code=_code(args.class_code, "--class-code", cc.DEFAULT_CLASS_CODE),
        type_code=_code(args.type_code, "--type-code", cc.DEFAULT_TYPE_CODE),
        format_code=_code(args.format_code, "--format-code", None),
        confidentiality=_code(
            args.confidentiality, "--confidentiality", cc.DEFAULT_CONFIDENTIALITY
        ),
        mime_type=args.mime_type,
        title=args.title,
    )
    from xdsi.client_audit import client_auditing

    config = _load_audited(args)
    with client_auditing(config) as record:
        return cc.submit(
            config,
            args.files,
            options,
            args.repository,
            out=sys.stdout,
            err=sys.stderr,
            tls=_tls_of(args),
            record=record,
        )


def _query(args: argparse.Namespace) -> int:
    from xdsi.client_audit import client_auditing

    class_codes = [cc.parse_code(c, "--class-code") for c in args.class_code]
    config = _load_audited(args)
    with client_auditing(config) as record:
        return cc.query(
            config,
            args.patient,
            args.status or ["approved"],
            class_codes,
            args.registry,
            as_json=args.json,
            out=sys.stdout,
            err=sys.stderr,
            tls=_tls_of(args),
            record=record,
        )


def _retrieve(args: argparse.Namespace) -> int:
    from xdsi.client_audit import client_auditing

    config = _load_audited(args)
    with client_auditing(config) as record:
        return cc.retrieve(
            config,
            args.unique_id,
            args.repository_id,
            args.repository,
            args.output,
            out=sys.stdout,
            err=sys.stderr,
            tls=_tls_of(args),
            record=record,
        )


def _publish(args: argparse.Namespace) -> int:
    from xdsi.client_audit import client_auditing
    from xdsi.publish_command import publish

    pacs = {"pacs_wado_rs": args.pacs_wado_rs, "pacs_dimse": args.pacs_dimse}
    config = _load_audited(args, {"imaging_source": pacs})
    with client_auditing(config) as record:
        return publish(
            config,
            args.study_uid,
            args.patient_id,
            args.server,
            force=args.force,
            out=sys.stdout,
            err=sys.stderr,
            tls=_tls_of(args),
            record=record,
        )


def _certs(args: argparse.Namespace) -> int:
    # Not audited: writing a test PKI into --out changes no node's security
    # configuration (ITI TF-2 3.20.4.1.1.1 "Security Alert" is about a node's own
    # security administration); a node takes the certificates when ``xdsi serve
    # --tls-cert`` starts it, and that start is audited (Application Start, PS3.15
    # A.5.3.1).  The command has no data directory, hence no spool, either.
    from xdsi.certs import make_test_pki

    pki = make_test_pki(args.out, hosts=args.host)
    print(f"test CA:            {pki.ca}")
    print(f"node certificate:   {pki.node_cert}  key {pki.node_key}")
    print(f"client certificate: {pki.client_cert}  key {pki.client_key}")
    print(
        f"serve with:  xdsi serve --tls-cert {pki.node_cert} --tls-key {pki.node_key} "
        f"--tls-ca {pki.ca}"
    )
    return cc.EXIT_OK


def _audit_tail(args: argparse.Namespace) -> int:
    from xdsi.audit_commands import audit_tail
    from xdsi.client_audit import client_auditing

    config = _load_audited(args)
    with client_auditing(config) as record:
        return audit_tail(config, args.n, follow=args.follow, out=sys.stdout, record=record)


def _audit_search(args: argparse.Namespace) -> int:
    from xdsi.audit_commands import audit_search
    from xdsi.client_audit import client_auditing

    config = _load_audited(args)
    with client_auditing(config) as record:
        return audit_search(
            config, args.patient, since=args.since, event=args.event, out=sys.stdout, record=record
        )


def _check(args: argparse.Namespace) -> int:
    """``xdsi check``: the repository's index and blobs against the registry, which is
    the one in this process (its tables listed) or ``registry_url`` (asked by ITI-18)."""
    if args.grace < 0:
        raise cc.UsageError("--grace must not be negative")
    config = _load_audited(
        args,
        {
            "database": {"url": args.database},
            "repository": {"blob_dir": args.blob_dir, "registry_url": args.registry_url},
        },
    )
    if args.repair:
        from xdsi.client_audit import client_auditing

        with client_auditing(config) as record:
            return _check_run(args, config, record)
    return _check_run(args, config, None)


def _check_run(args: argparse.Namespace, config: Config, record: Any) -> int:
    """``xdsi check`` itself; a repair is audited through ``record`` (``atna.admin``)."""
    from datetime import timedelta

    from atna.codes import EventOutcomeIndicator
    from registry import db as registry_db
    from registry.service import DocumentRegistry
    from repository import db as repository_db
    from repository import registry_client as rc
    from repository.blobs import BlobStore
    from repository.check import RegistryInventory, RegistryTables, check, check_and_repair
    from xdsi.serve import _sqlalchemy_url as database_url

    url = database_url(config.database.url)
    engines = [repository_db.make_engine(url)]
    try:
        repository_db.upgrade(engines[0])
        registry: rc.RegistryClient
        inventory: RegistryInventory | None = None
        if config.repository.registry_url:
            registry = rc.SoapRegistryClient(config.repository.registry_url)
        else:
            engines.append(registry_db.make_engine(url))
            registry_db.upgrade(engines[1])
            document_registry = DocumentRegistry(engines[1])
            registry = rc.InProcessRegistryClient(document_registry)
            inventory = RegistryTables(document_registry.sessions)
        run = check_and_repair if args.repair else check
        report = run(
            repository_db.session_factory(engines[0]),
            BlobStore(config.repository.blob_dir),
            registry,
            config.repository.repository_unique_id,
            grace=timedelta(seconds=args.grace),
            inventory=inventory,
            verify_hashes=not args.no_hash,
            spool_dir=config.limits.spool_dir,
        )
    except Exception as exc:
        if record is not None:
            record(
                _repair_alert(
                    config, f"repair failed: {exc!r}", EventOutcomeIndicator.SERIOUS_FAILURE
                )
            )
        raise
    finally:
        for engine in engines:
            engine.dispose()
    if record is not None:
        # the repair left problems: minor failure (PS3.15 A.5.1 EventOutcomeIndicator 4)
        outcome = (
            EventOutcomeIndicator.SUCCESS
            if report.consistent
            else EventOutcomeIndicator.MINOR_FAILURE
        )
        text = f"{report.repair}; {len(report.findings)} problems left"
        record(_repair_alert(config, text, outcome))
    if report.repair is not None:
        print(f"repaired: {report.repair}", file=sys.stdout)
    for finding in report.findings:
        print(finding, file=sys.stdout)
    verdict = "consistent" if report.consistent else f"{len(report.findings)} problems"
    print(f"{report.documents} documents, {report.blobs} blobs: {verdict}", file=sys.stdout)
    return 0 if report.consistent else 1


def _repair_alert(config: Config, report: str, outcome: Any) -> Any:
    """``xdsi check --repair`` as ``atna.admin.repository_repair_alert`` names it."""
    import socket

    from atna.admin import repository_repair_alert
    from atna.events import Endpoint
    from atna.requester import operator

    reporter = Endpoint(config.device.name, network_access_point=socket.getfqdn())
    store = Path(config.repository.blob_dir).resolve().as_uri()
    return repository_repair_alert(reporter, operator(), store, report, outcome)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.run
    try:
        return command(args)
    except (ConfigError, cc.UsageError) as exc:
        print(f"xdsi: {exc}", file=sys.stderr)
        return cc.EXIT_USAGE
    except KeyboardInterrupt:
        return cc.EXIT_USAGE


__all__ = ["build_parser", "main"]
