"""The ``xdsi`` command: ``serve`` and the client commands ``patients add``, ``submit``,
``query`` and ``retrieve``.  Exit codes: 0 success, 1 XDS Failure, 2 usage or transport
error (argparse's own usage errors are 2 as well)."""

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


def _serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the registry, repository and patient feed")
    _common(p)
    p.add_argument("--host", help="HTTP and MLLP listen address ([connection.*] host)")
    p.add_argument("--port", type=int, help="HTTP port ([connection.http] port)")
    p.add_argument("--mllp-port", type=int, help="ITI-8 MLLP port ([connection.mllp] port)")
    p.add_argument(
        "--dicom-port", type=int,
        help="DICOM port, reserved for the imaging document source ([connection.dicom] port)",
    )  # fmt: skip
    p.add_argument("--database", help="SQLAlchemy URL ([database] url)")
    p.add_argument("--blob-dir", help="where documents are kept ([repository] blob_dir)")
    p.add_argument(
        "--registry-url", help="a remote registry for ITI-42 ([repository] registry_url)"
    )
    p.add_argument(
        "--audit", action="append", default=None, metavar="URL",
        help="audit record repository tls://HOST:PORT or udp://HOST:PORT; repeatable "
        "([audit] destinations)",
    )  # fmt: skip
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(run=_serve)


def _client_parsers(sub: Any) -> None:
    patients = sub.add_parser("patients", help="patient identity feed (ITI-8)")
    psub = patients.add_subparsers(dest="patients_command", required=True)
    add = psub.add_parser("add", help="send an ADT^A01 for a patient")
    _common(add)
    add.add_argument("patient", help="patient id: ID (in the affinity domain) or ID^^^&OID&ISO")
    add.add_argument("--mllp", help="HOST:PORT of the patient feed (default: the local server)")
    add.add_argument("--name", default="", help="patient name as FAMILY^GIVEN")
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
    query.set_defaults(run=_query)

    retrieve = sub.add_parser("retrieve", help="retrieve a document (ITI-43)")
    _common(retrieve)
    retrieve.add_argument("unique_id")
    retrieve.add_argument("--repository-id", help="repositoryUniqueId (default: the local one)")
    retrieve.add_argument("--repository", help="repository URL (default: the local server)")
    retrieve.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    retrieve.set_defaults(run=_retrieve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xdsi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    _client_parsers(sub)
    from conformance.cli import add_parser as _conformance_parser

    _conformance_parser(sub)
    return parser


def _load(args: argparse.Namespace, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    return load_config(args.data_dir, args.config, overrides)


# --- commands ------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from xdsi.serve import run

    host = args.host
    overrides = {
        "connection.http": {"host": host, "port": args.port},
        "connection.mllp": {"host": host, "port": args.mllp_port},
        "connection.dicom": {"host": host, "port": args.dicom_port},
        "database": {"url": args.database},
        "repository": {"blob_dir": args.blob_dir, "registry_url": args.registry_url},
        "audit": {"destinations": args.audit},
    }
    config = _load(args, overrides)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(run(config))


def _code(value: str | None, what: str, default: Any) -> Any:
    return cc.parse_code(value, what) if value else default


def _patients_add(args: argparse.Namespace) -> int:
    return cc.patients_add(
        _load(args), args.patient, args.mllp, name=args.name, out=sys.stdout, err=sys.stderr
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
    return cc.submit(
        _load(args), args.files, options, args.repository, out=sys.stdout, err=sys.stderr
    )


def _query(args: argparse.Namespace) -> int:
    class_codes = [cc.parse_code(c, "--class-code") for c in args.class_code]
    return cc.query(
        _load(args),
        args.patient,
        args.status or ["approved"],
        class_codes,
        args.registry,
        as_json=args.json,
        out=sys.stdout,
        err=sys.stderr,
    )


def _retrieve(args: argparse.Namespace) -> int:
    return cc.retrieve(
        _load(args),
        args.unique_id,
        args.repository_id,
        args.repository,
        args.output,
        out=sys.stdout,
        err=sys.stderr,
    )


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
