"""The one interpreter of xdsi conformance plans.

Each case gets a fresh :class:`Scope` (new patient ids, uniqueIds and entryUUIDs under
the run's OID root), so a run can be repeated against a live system.  Steps run in
order; the first failed check ends the case (FAILED), a transport error or a plan that
cannot be built ends it as ERROR; a case whose system-under-test requirements are not
met is NOT_RUNNABLE with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lxml import etree

from conformance.assertions import capture, check_assertion, check_expectations, fault_codes
from conformance.plan import Assertion, Case, PlanError, Step, case_requirements, select
from conformance.result import CaseResult, Check, Endpoints, Outcome, StepResult
from conformance.steps import TRANSACTIONS, StepContext, StepError, execute
from conformance.templates import Document, Scope, TemplateError, new_run_root, render
from conformance.transport import SoapTransport, TransportError

DICOM_MEDIA_TYPE = "application/dicom"  # RAD TF-3 4.69.4.2.3

MAX_KEPT_BYTES = 64 * 1024  # of each request and response, for the report

# requirement -> (is it met by these endpoints?, what to give when it is not)
REQUIREMENT_CHECKS: dict[str, tuple[Callable[[Endpoints], bool], str]] = {
    "mllp": (lambda e: e.mllp is not None, "an ITI-8 patient feed (--mllp HOST:PORT)"),
    "registry": (lambda e: bool(e.registry_url), "a registry URL (--registry)"),
    "repository": (lambda e: bool(e.repository_url), "a repository URL (--repository)"),
    "imaging_source": (
        lambda e: bool(e.imaging_source_url),
        "an Imaging Document Source URL (--imaging-source)",
    ),
    "repository_id": (
        lambda e: bool(e.repository_unique_id),
        "the repositoryUniqueId (--repository-id)",
    ),
    "imaging_source_id": (
        lambda e: bool(e.imaging_source_id),
        "the imaging source's repositoryUniqueId (--imaging-source-id)",
    ),
}


def unmet_requirements(case: Case, endpoints: Endpoints) -> list[str]:
    return [
        REQUIREMENT_CHECKS[r][1]
        for r in case_requirements(case)
        if r in REQUIREMENT_CHECKS and not REQUIREMENT_CHECKS[r][0](endpoints)
    ]


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
# WS-Addressing 1.0 SOAP Binding 6.4.4: the endpoint does not handle this Action
ACTION_NOT_SUPPORTED = "ActionNotSupported"
# step kinds carrying a transaction an actor may leave out (an option, or another
# profile's): answered ActionNotSupported in a case with an ``option``, not runnable
OPTIONAL_STEP_KINDS = frozenset(
    {"feed_v3", "register_on_demand", "remove", "remove_documents", "multi_query", "update"}
)


def action_not_supported(result: StepResult) -> bool:
    """Whether the step was answered with the wsa:ActionNotSupported fault."""
    response = result.response or b""
    start = response.find(b"<")
    if ACTION_NOT_SUPPORTED.encode() not in response or start < 0:
        return False
    try:
        envelope = etree.fromstring(response[start:], _PARSER)
    except etree.XMLSyntaxError:
        return False
    fault = envelope.find(".//{http://www.w3.org/2003/05/soap-envelope}Fault")
    return fault is not None and fault_codes(fault)[1].endswith(ACTION_NOT_SUPPORTED)


def _truncate(data: bytes | None) -> bytes | None:
    if data is None or len(data) <= MAX_KEPT_BYTES:
        return data
    return data[:MAX_KEPT_BYTES] + b"\n... (truncated)"


def _render_value(value: Any, scope: Scope) -> Any:
    """Placeholders filled in an expected value (strings, lists, tables)."""
    if isinstance(value, str):
        return render(value, scope)
    if isinstance(value, list):
        return [_render_value(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _render_value(v, scope) for k, v in value.items()}
    return value


def _posted_documents(expect: dict[str, Any], scope: Scope) -> dict[str, Document]:
    """``instances`` (names of posted instances, or ``"posted"`` for all of them) becomes
    ``documents`` items: each returned byte for byte as it was posted, as
    application/dicom (RAD TF-3 4.69.4.2.3); the posted instances as case documents."""
    names = expect.pop("instances", None)
    if names is None:
        return dict(scope.documents)
    names = list(scope.posted) if names == "posted" else list(names)
    expect["documents"] = [
        *expect.get("documents", ()),
        *({"uid": scope.posted[name].sop_instance_uid, "document": name} for name in names),
    ]
    posted = {
        name: Document(name, instance.content, DICOM_MEDIA_TYPE)
        for name, instance in scope.posted.items()
    }
    return {**scope.documents, **posted}


def judge(step: Step, exchange: Any, scope: Scope) -> list[Check]:
    """Every check of a step against what came back; captures are stored in ``scope``."""
    expect = _render_value(dict(step.expect), scope)
    documents = _posted_documents(expect, scope)
    checks = check_expectations(exchange, expect, documents, step.source)
    for assertion in step.assertions:
        rendered = Assertion(render(assertion.xpath, scope), assertion.kind, assertion.value)
        value = _render_value(assertion.value, scope)
        checks.append(check_assertion(exchange, rendered, value, step.source))
    for name, xpath in step.capture.items():
        value, check = capture(exchange, name, render(xpath, scope))
        checks.append(check)
        if value is not None:
            scope.captured[f"{step.name}.{name}"] = value
    return checks


def _attempt(step: Step, ctx: StepContext) -> tuple[Any, list[Check]]:
    """Send the step once and judge the answer."""
    exchange = execute(step, ctx)
    try:
        checks = judge(step, exchange, ctx.scope)
    except (TemplateError, KeyError) as exc:
        checks = [Check("expectations could be evaluated", False, "", f"bad plan: {exc}")]
    return exchange, checks


def run_step(step: Step, ctx: StepContext) -> StepResult:
    """Run the step; with ``poll``, again every ``every`` seconds until its checks pass
    or ``seconds`` have gone by (what a system does in the background, e.g. publishing)."""
    started = time.monotonic()
    transaction = TRANSACTIONS[step.kind]
    poll = step.options.get("poll") or {}
    deadline = started + float(poll.get("seconds", 0))
    try:
        exchange, checks = _attempt(step, ctx)
        while any(not c.passed for c in checks) and time.monotonic() < deadline:
            time.sleep(float(poll.get("every", 1)))
            exchange, checks = _attempt(step, ctx)
    except (StepError, TemplateError, PlanError) as exc:
        return StepResult(step.name, transaction, Outcome.ERROR, message=f"bad plan: {exc}")
    except TransportError as exc:
        return StepResult(
            step.name, transaction, Outcome.ERROR, message=str(exc),
            seconds=time.monotonic() - started,
        )  # fmt: skip
    failed = [c for c in checks if not c.passed]
    message = "; ".join(f"{c.description}: expected {c.expected}, got {c.actual}" for c in failed)
    return StepResult(
        name=step.name,
        transaction=transaction,
        outcome=Outcome.FAILED if failed else Outcome.PASSED,
        checks=tuple(checks),
        request=_truncate(exchange.request),
        response=_truncate(exchange.response),
        message=message,
        seconds=time.monotonic() - started,
    )


def run_case(
    case: Case,
    endpoints: Endpoints,
    transport: SoapTransport,
    *,
    run_root: str,
    number: int,
) -> CaseResult:
    unmet = unmet_requirements(case, endpoints)
    if unmet:
        return CaseResult(
            case.case_id, case.title, Outcome.NOT_RUNNABLE,
            reason="needs " + ", ".join(unmet), tags=case.tags,
        )  # fmt: skip
    documents: Mapping[str, Document] = {
        name: Document(name, spec.content, spec.mime_type) for name, spec in case.documents.items()
    }
    scope = Scope(endpoints, run_root, number, documents)
    ctx = StepContext(scope, endpoints, transport)
    started = time.monotonic()
    results: list[StepResult] = []
    outcome, reason = Outcome.PASSED, ""
    for step in case.steps:
        result = run_step(step, ctx)
        results.append(result)
        if result.outcome is not Outcome.PASSED:
            outcome = result.outcome
            reason = f"step {step.name}: {result.message}"
            if case.option and step.kind in OPTIONAL_STEP_KINDS and action_not_supported(result):
                # an optional transaction the system does not offer is not a failure
                outcome = Outcome.NOT_RUNNABLE
                reason = f"the system does not offer {case.option} (step {step.name}: ActionNotSupported)"
            break
    return CaseResult(
        case_id=case.case_id,
        title=case.title,
        outcome=outcome,
        steps=tuple(results),
        reason=reason,
        seconds=time.monotonic() - started,
        tags=case.tags,
    )


def run_cases(
    cases: Iterable[Case],
    endpoints: Endpoints,
    *,
    only: str | None = None,
    progress: Callable[[CaseResult], None] | None = None,
    run_root: str | None = None,
    transport: SoapTransport | None = None,
) -> list[CaseResult]:
    """Run the selected cases one after another; ``progress`` is told each result."""
    run_root = run_root or new_run_root()
    own_transport = transport is None
    transport = transport or SoapTransport()
    results: list[CaseResult] = []
    try:
        for number, case in enumerate(select(cases, only), 1):
            result = run_case(case, endpoints, transport, run_root=run_root, number=number)
            results.append(result)
            if progress is not None:
                progress(result)
    finally:
        if own_transport:
            transport.close()
    return results


__all__ = [
    "ACTION_NOT_SUPPORTED",
    "MAX_KEPT_BYTES",
    "OPTIONAL_STEP_KINDS",
    "action_not_supported",
    "REQUIREMENT_CHECKS",
    "judge",
    "run_case",
    "run_cases",
    "run_step",
    "unmet_requirements",
]
