"""Run NIST XDS Toolkit test folders against a system under test.

A test runs its sections in ``index.idx`` order; a test another one depends on (a
``UseId testdir="../../12346/..."``, a ``UseReport test="15818"``, or the Patient
Identity Feed that supplies its patient) runs first, once per run, and its logs stay
for every later test.  One ``CaseResult`` per test folder, one ``StepResult`` per step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from conformance.result import CaseResult, Check, Endpoints, Outcome, StepResult
from conformance.testkit import assertions
from conformance.testkit.assertions import AssertInput, MissingData, UnknownCheck
from conformance.testkit.logs import LogLookupError, RunLogs, SectionLog, UpstreamNotRunnable
from conformance.testkit.plan import (
    PlanError,
    TestPlan,
    TestStep,
    parse_testplan,
    read_index,
    read_title,
)
from conformance.testkit.transactions import (
    EXECUTORS,
    TRANSACTION_NAMES,
    Exchange,
    NotRunnable,
    StepContext,
    StepFailed,
)
from conformance.testkit.wire import SoapClient, WireError

# The toolkit's readme of 15817: "Send Patient Identity Feed - used for Register tests";
# a test that names no feed of its own takes its patient from this one.
REGISTER_PATIENT_TEST = "15817"
# transactions whose metadata carries the test's patient
_SUBMISSIONS = frozenset({"RegisterTransaction", "ProvideAndRegisterTransaction"})
_FEED = "PatientIdentityFeedTransaction"
_SEVERITY = {Outcome.PASSED: 0, Outcome.NOT_RUNNABLE: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}
_KEEP_BYTES = 65536
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def tests_root(testkit_dir: Path) -> Path:
    """``testkit_dir`` may be the testkit (holding ``tests/``) or ``tests/`` itself."""
    return testkit_dir / "tests" if (testkit_dir / "tests").is_dir() else testkit_dir


def _worst(outcomes: list[Outcome]) -> Outcome:
    return max(outcomes, key=_SEVERITY.__getitem__, default=Outcome.PASSED)


class _Run:
    def __init__(self, root: Path, endpoints: Endpoints) -> None:
        self.root = root
        self.endpoints = endpoints
        self.client = SoapClient()
        self.logs = RunLogs()
        self.plans: dict[str, list[TestPlan]] = {}
        self.cases: dict[str, CaseResult] = {}
        self.patients: dict[str, str | None] = {}
        self.uid_root = f"2.25.{uuid.uuid4().int}"[:48]
        self.uid_count = 0

    # --- plans and dependencies ---

    def tests(self) -> list[str]:
        return sorted(d.name for d in self.root.iterdir() if (d / "index.idx").is_file())

    def plans_of(self, name: str) -> list[TestPlan]:
        if name not in self.plans:
            test_dir = self.root / name
            self.plans[name] = [
                parse_testplan(test_dir / section / "testplan.xml")
                for section in read_index(test_dir)
            ]
        return self.plans[name]

    def _transactions(self, name: str):
        for plan in self.plans_of(name):
            for step in plan.steps:
                if step.transaction is not None:
                    yield plan, step.transaction

    def patient_test(self, name: str) -> str:
        """The feed test whose patient this test's submissions carry."""
        kinds = {t.kind for _, t in self._transactions(name)}
        if _FEED in kinds:
            return name
        for _, transaction in self._transactions(name):
            for use in transaction.use_reports:
                if use.test and (self.root / use.test).is_dir():
                    return use.test
        return REGISTER_PATIENT_TEST

    def dependencies(self, name: str) -> list[str]:
        deps: list[str] = []
        test_dir = (self.root / name).resolve()
        for plan, transaction in self._transactions(name):
            for use in transaction.use_reports:
                if use.test:
                    deps.append(use.test)
            dirs = [u.testdir for u in transaction.use_ids]
            if transaction.reference_metadata:
                dirs.append(transaction.reference_metadata[0])
            for testdir in dirs:
                target = (plan.section_dir / testdir).resolve()
                if target.parent != test_dir and target.parent.parent == self.root.resolve():
                    deps.append(target.parent.name)
            if transaction.kind in _SUBMISSIONS:
                deps.append(self.patient_test(name))
        return [d for d in dict.fromkeys(deps) if d != name and (self.root / d).is_dir()]

    def order(self, name: str, seen: set[str] | None = None) -> list[str]:
        """``name`` after everything it depends on (depth first, each once)."""
        seen = seen if seen is not None else set()
        if name in seen:
            return []
        seen.add(name)
        ordered: list[str] = []
        try:
            deps = self.dependencies(name)
        except PlanError:
            deps = []
        for dep in deps:
            ordered += self.order(dep, seen)
        return ordered + [name]

    # --- ids ---

    def new_uid(self) -> str:
        self.uid_count += 1
        return f"{self.uid_root}.{self.uid_count}"

    def new_patient(self) -> str | None:
        domain = self.endpoints.affinity_domain
        if not domain:
            return None
        return f"TK{uuid.uuid4().hex[:12].upper()}^^^&{domain}&ISO"

    def patient_of(self, feed_test: str) -> str | None:
        if feed_test not in self.patients:
            self.patients[feed_test] = self.new_patient()
        return self.patients[feed_test]

    # --- running ---

    def case(self, name: str) -> CaseResult:
        if name not in self.cases:
            self.cases[name] = self._run_case(name)
        return self.cases[name]

    def _run_case(self, name: str) -> CaseResult:
        started = time.monotonic()
        test_dir = self.root / name
        title = read_title(test_dir)
        try:
            plans = self.plans_of(name)
        except PlanError as exc:
            return CaseResult(name, title, Outcome.ERROR, reason=str(exc))
        patient = self.patient_of(self.patient_test(name))
        alt_patient = self.new_patient() or ""
        steps: list[StepResult] = []
        for plan in plans:
            section_log = self.logs.section(plan.section_dir)
            for step in plan.steps:
                steps.append(self._run_step(plan, step, section_log, patient, alt_patient))
        outcome = _worst([s.outcome for s in steps])
        reason = next((f"{s.name}: {s.message}" for s in steps if s.outcome == outcome), "")
        tags = sorted(
            {s.transaction for s in steps if s.transaction}
            | {c for p in plans for st in p.steps for c in st.expected_error_messages}
        )
        return CaseResult(
            name,
            title,
            outcome,
            tuple(steps),
            reason if outcome != Outcome.PASSED else "",
            time.monotonic() - started,
            tuple(tags),
        )

    def _symbols(self, plan: TestPlan, step: TestStep) -> dict[str, str]:
        transaction = step.transaction
        assert transaction is not None
        symbols: dict[str, str] = {}
        test_dir = plan.section_dir.parent
        for use in transaction.use_ids:
            symbols[use.symbol] = self.logs.use_id(plan.section_dir, use)
        for report in transaction.use_reports:
            symbols[report.use_as] = self.logs.use_report(test_dir, self.root, report)
        for use in transaction.use_xpaths:
            target = plan.section_dir if use.testdir == "THIS" else plan.section_dir / use.testdir
            result = self.logs.step(target, use.step).result
            found = result.xpath(use.xpath) if result is not None else []
            if not found:
                raise LogLookupError(f"UseXPath {use.xpath} selects nothing")
            first = found[0] if isinstance(found, list) else found
            symbols[use.symbol] = first if isinstance(first, str) else "".join(first.itertext())
        return symbols

    def _run_step(
        self,
        plan: TestPlan,
        step: TestStep,
        section_log: SectionLog,
        patient: str | None,
        alt_patient: str,
    ) -> StepResult:
        started = time.monotonic()
        name = f"{plan.section_dir.name}/{step.id}"
        transaction = step.transaction
        label = TRANSACTION_NAMES.get(transaction.kind, "") if transaction else ""
        log = section_log.step(step.id)

        def result(outcome: Outcome, message: str = "", exchange: Exchange | None = None,
                   checks: list[Check] | None = None) -> StepResult:  # fmt: skip
            ex = exchange or Exchange()
            return StepResult(
                name,
                label,
                outcome,
                tuple(checks or ()),
                ex.request[:_KEEP_BYTES] if ex.request else None,
                ex.response[:_KEEP_BYTES] if ex.response else None,
                message,
                time.monotonic() - started,
            )

        unknown = list(step.unknown) + list(transaction.unknown if transaction else ())
        if transaction is None:
            return result(Outcome.ERROR, "TestStep has no transaction element")
        if transaction.kind not in EXECUTORS:
            return result(Outcome.ERROR, f"unsupported transaction {transaction.kind}")
        if unknown:
            return result(Outcome.ERROR, f"unsupported element(s): {', '.join(unknown)}")
        exchange: Exchange | None = None
        try:
            ctx = StepContext(
                step=step,
                transaction=transaction,
                section_dir=plan.section_dir,
                test_dir=plan.section_dir.parent,
                endpoints=self.endpoints,
                client=self.client,
                logs=self.logs,
                section_log=section_log,
                log=log,
                symbols=self._symbols(plan, step),
                patient_id=patient,
                alt_patient_id=alt_patient,
                new_uid=self.new_uid,
            )
            exchange = EXECUTORS[transaction.kind](ctx)
            checks = exchange.checks + self._checks(plan, step, section_log, exchange)
        except (NotRunnable, MissingData, UpstreamNotRunnable) as exc:
            log.not_runnable = str(exc)
            return result(Outcome.NOT_RUNNABLE, str(exc), exchange)
        except UnknownCheck as exc:
            return result(Outcome.ERROR, f"unsupported check {exc}", exchange)
        except (StepFailed, LogLookupError, WireError, PlanError, etree.XPathError) as exc:
            return result(Outcome.ERROR, str(exc), exchange)
        failed = [c for c in checks if not c.passed]
        message = "; ".join(
            f"{c.description}: expected {c.expected!r}, got {c.actual!r}" for c in failed
        )
        return result(Outcome.FAILED if failed else Outcome.PASSED, message, exchange, checks)

    def _checks(
        self, plan: TestPlan, step: TestStep, section_log: SectionLog, exchange: Exchange
    ) -> list[Check]:
        transaction = step.transaction
        assert transaction is not None
        source = f"NIST {plan.section_dir.parent.name}/{plan.section_dir.name}/{step.id}"
        checks: list[Check] = []
        if exchange.body is not None:
            checks += assertions.status_checks(step.expected_status, exchange.body, source)
            checks += assertions.error_checks(
                step.expected_error_messages, step.expected_error_codes, exchange.body, source
            )
            if transaction.expected_contents:
                checks += assertions.expected_contents(
                    transaction.expected_contents, exchange.body, source
                )
        for assertion in transaction.assertions:
            if assertion.process is None:
                checks.append(
                    assertions.xpath_assert(
                        assertion, self._data_ref(plan, transaction.data_refs, section_log), source
                    )
                )
                continue
            response = self._test_response(plan, assertion.element, exchange)
            data = AssertInput(assertion, response, step.standard, plan.section_dir)
            checks += assertions.process_assert(data, source)
        return checks

    def _data_ref(self, plan: TestPlan, refs, section_log: SectionLog) -> etree._Element:
        """DataRef file="THIS": this section's log; another name: a file of the section."""
        file = refs[0][0] if refs else "THIS"
        if file == "THIS":
            return section_log.to_xml()
        path = plan.section_dir / file
        if not path.is_file():
            raise StepFailed(f"DataRef {file} is missing")
        return etree.parse(str(path), _PARSER).getroot()

    def _test_response(
        self, plan: TestPlan, assert_elem: etree._Element, exchange: Exchange
    ) -> etree._Element | None:
        """The response an Assert names with TestResponse testDir/step (THIS: this section)."""
        ref = next(assert_elem.iter("TestResponse"), None)
        if ref is None:
            return exchange.body
        testdir = ref.get("testDir", "THIS")
        target = plan.section_dir if testdir == "THIS" else plan.section_dir / testdir
        return self.logs.step(target, ref.get("step", "")).result

    def close(self) -> None:
        self.client.close()


def run_testkit(
    testkit_dir: Path,
    endpoints: Endpoints,
    *,
    only: str | None = None,
    progress: Callable[[CaseResult], None] | None = None,
) -> list[CaseResult]:
    """Run every test folder under ``testkit_dir`` (or only the one named ``only``, after
    the tests it depends on); one CaseResult per test folder, in the order run."""
    run = _Run(tests_root(testkit_dir), endpoints)
    results: list[CaseResult] = []
    try:
        names = run.tests()
        if only is not None and only not in names:
            return [CaseResult(only, only, Outcome.ERROR, reason=f"no test folder {only}")]
        reported: set[str] = set()
        for target in [only] if only else names:
            for name in run.order(target):
                case = run.case(name)
                if name in reported or (only and name != only):
                    continue
                reported.add(name)
                results.append(case)
                if progress is not None:
                    progress(case)
    finally:
        run.close()
    return results


__all__ = ["REGISTER_PATIENT_TEST", "run_testkit", "tests_root"]
