"""``xdsi conformance run`` and ``xdsi conformance list``.

Exit codes: 0 every case passed or was not runnable, 1 a case failed or errored,
2 a usage error (bad flag, plan or testkit directory, server that does not start).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conformance.plan import PlanError, case_requirements, load_plans, select
from conformance.result import CaseResult, Endpoints

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("conformance", help="run the conformance suite against XDS endpoints")
    csub = parser.add_subparsers(dest="conformance_command", required=True)
    run = csub.add_parser("run", help="run the cases against a system under test")
    run.add_argument("--registry", help="registry URL (ITI-42, ITI-18)")
    run.add_argument("--repository", help="repository URL (ITI-41, ITI-43)")
    run.add_argument("--imaging-source", help="Imaging Document Source URL (RAD-69)")
    run.add_argument("--imaging-source-id", help="repositoryUniqueId of the imaging source")
    run.add_argument("--dicomweb", help="DICOMweb root URL of the imaging source (STOW-RS)")
    run.add_argument("--mllp", help="HOST:PORT of the ITI-8 patient identity feed")
    run.add_argument("--repository-id", help="repositoryUniqueId of the repository")
    run.add_argument("--affinity-domain", help="assigning authority OID of patient ids")
    run.add_argument("--home-community-id", help="homeCommunityId (urn:oid:...)")
    run.add_argument("--plans", type=Path, help="plan directory (default: the shipped plans)")
    run.add_argument("--testkit", type=Path, help="also run NIST XDS Toolkit test plans here")
    run.add_argument("--only", help="glob(s) on case id or tag, comma separated")
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--html", type=Path, help="write the HTML report here")
    run.add_argument("--self", action="store_true", help="test a temporary local xdsi server")
    run.set_defaults(run=run_command)
    listing = csub.add_parser("list", help="list the cases")
    listing.add_argument("--plans", type=Path)
    listing.add_argument("--only")
    listing.set_defaults(run=list_command)


def _mllp(text: str | None) -> tuple[str, int] | None:
    if not text:
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise PlanError(f"--mllp: expected HOST:PORT, got {text!r}")
    return host, int(port)


def endpoints_from(args: argparse.Namespace) -> Endpoints:
    return Endpoints(
        registry_url=args.registry,
        repository_url=args.repository,
        imaging_source_url=args.imaging_source,
        mllp=_mllp(args.mllp),
        repository_unique_id=args.repository_id,
        home_community_id=args.home_community_id,
        affinity_domain=args.affinity_domain,
        imaging_source_id=args.imaging_source_id,
        dicomweb_url=args.dicomweb,
    )


def _run_testkit(
    directory: Path, endpoints: Endpoints, only: str | None, progress: Callable[[CaseResult], None]
) -> list[CaseResult] | None:
    try:
        from conformance.testkit import run_testkit  # type: ignore[attr-defined]
    except ImportError:
        print("xdsi: the NIST testkit interpreter is not available in this build", file=sys.stderr)
        return None
    results: list[CaseResult] = run_testkit(directory, endpoints, only=only, progress=progress)
    return results


def execute(args: argparse.Namespace, endpoints: Endpoints) -> int:
    from conformance.report import failed, progress_line, write_html, write_junit, write_summary
    from conformance.runner import run_cases

    def progress(result: CaseResult) -> None:
        print(progress_line(result), flush=True)

    cases = load_plans(args.plans)
    results = run_cases(cases, endpoints, only=args.only, progress=progress)
    if args.testkit is not None:
        testkit = _run_testkit(args.testkit, endpoints, args.only, progress)
        if testkit is None:
            return EXIT_USAGE
        results += testkit
    print()
    write_summary(results, sys.stdout)
    if args.junit:
        write_junit(results, args.junit)
    if args.html:
        write_html(results, args.html)
    return EXIT_FAILED if failed(results) else EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    try:
        if args.self:
            from conformance.selfserver import SelfServer, SelfServerError

            try:
                with SelfServer() as endpoints:
                    return execute(args, endpoints)
            except SelfServerError as exc:
                print(f"xdsi: {exc}", file=sys.stderr)
                return EXIT_USAGE
        endpoints = endpoints_from(args)
        if not any((endpoints.registry_url, endpoints.repository_url, endpoints.mllp)):
            print("xdsi: give --registry/--repository/--mllp, or --self", file=sys.stderr)
            return EXIT_USAGE
        return execute(args, endpoints)
    except PlanError as exc:
        print(f"xdsi: {exc}", file=sys.stderr)
        return EXIT_USAGE


def list_command(args: argparse.Namespace) -> int:
    try:
        cases = select(load_plans(args.plans), args.only)
    except PlanError as exc:
        print(f"xdsi: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for case in cases:
        needs = ",".join(case_requirements(case))
        print(f"{case.case_id:<56} {','.join(case.tags):<60} needs {needs}")
    print(f"{len(cases)} cases")
    return EXIT_OK


__all__ = ["add_parser", "endpoints_from", "execute", "list_command", "run_command"]
