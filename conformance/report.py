"""Reports of a conformance run: a progress line per case, a console summary table,
JUnit XML (for CI) and one self-contained HTML file a tester can hand to a vendor."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from lxml import etree

from conformance.result import CaseResult, Outcome

_MARK = {
    Outcome.PASSED: "PASS",
    Outcome.FAILED: "FAIL",
    Outcome.ERROR: "ERROR",
    Outcome.NOT_RUNNABLE: "N/R",
}


def progress_line(result: CaseResult) -> str:
    reason = f"  ({result.reason})" if result.reason else ""
    return f"{_MARK[result.outcome]:<5} {result.case_id} [{result.seconds:.2f}s]{reason}"


def counts(results: Sequence[CaseResult]) -> Counter[Outcome]:
    return Counter(r.outcome for r in results)


def failed(results: Sequence[CaseResult]) -> bool:
    """Whether the run fails: any case FAILED or ERROR (NOT_RUNNABLE does not)."""
    return any(r.outcome in (Outcome.FAILED, Outcome.ERROR) for r in results)


def write_summary(results: Sequence[CaseResult], out: TextIO) -> None:
    """Totals per transaction tag, then every case that did not pass with its reason."""
    by_tag: dict[str, Counter[Outcome]] = {}
    for result in results:
        for tag in result.tags[:1] or ("-",):
            by_tag.setdefault(tag, Counter())[result.outcome] += 1
    header = f"{'group':<24}{'passed':>8}{'failed':>8}{'error':>8}{'n/r':>8}{'total':>8}"
    print(header, file=out)
    print("-" * len(header), file=out)
    rows = [*sorted(by_tag.items()), ("total", counts(results))]
    for tag, c in rows:
        print(
            f"{tag:<24}{c[Outcome.PASSED]:>8}{c[Outcome.FAILED]:>8}{c[Outcome.ERROR]:>8}"
            f"{c[Outcome.NOT_RUNNABLE]:>8}{sum(c.values()):>8}",
            file=out,
        )
    others = [r for r in results if r.outcome is not Outcome.PASSED]
    if others:
        print("", file=out)
        for result in others:
            print(f"{_MARK[result.outcome]:<5} {result.case_id}: {result.reason}", file=out)


def junit_xml(results: Sequence[CaseResult], suite: str = "xdsi-conformance") -> bytes:
    """JUnit XML: FAILED is <failure>, ERROR <error>, NOT_RUNNABLE <skipped>."""
    c = counts(results)
    root = etree.Element(
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(c[Outcome.FAILED]),
        errors=str(c[Outcome.ERROR]),
        skipped=str(c[Outcome.NOT_RUNNABLE]),
        time=f"{sum(r.seconds for r in results):.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for result in results:
        case = etree.SubElement(
            root,
            "testcase",
            classname=result.tags[0] if result.tags else suite,
            name=result.case_id,
            time=f"{result.seconds:.3f}",
        )
        child = {
            Outcome.FAILED: "failure",
            Outcome.ERROR: "error",
            Outcome.NOT_RUNNABLE: "skipped",
        }.get(result.outcome)
        if child is not None:
            element = etree.SubElement(case, child, message=result.reason)
            element.text = _details(result)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _details(result: CaseResult) -> str:
    lines = [result.title]
    for step in result.steps:
        lines.append(f"{step.name} ({step.transaction}): {step.outcome.value} {step.message}")
        for check in step.checks:
            mark = "ok " if check.passed else "NOT"
            lines.append(
                f"  {mark} {check.description}: expected {check.expected}, got {check.actual}"
            )
    return "\n".join(lines)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
.passed{color:#176117}.failed{color:#a11}.error{color:#a60}.not-runnable{color:#666}
details{margin:.3em 0 .8em 1em}pre{background:#f6f6f6;padding:.5em;overflow:auto;max-height:30em}
"""


def html_report(results: Sequence[CaseResult], title: str = "xdsi conformance report") -> str:
    """One HTML file with no external resources: totals, then each case with its
    steps, checks and the messages exchanged."""
    c = counts(results)
    esc = html.escape
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{esc(title)}</h1>",
        f"<p>{datetime.now(UTC).isoformat(timespec='seconds')} - {len(results)} cases: ",
        ", ".join(f"<span class='{o.value}'>{c[o]} {o.value}</span>" for o in Outcome),
        "</p><table><tr><th>case</th><th>outcome</th><th>tags</th><th>reason</th></tr>",
    ]
    for r in results:
        parts.append(
            f"<tr><td><a href='#{esc(r.case_id)}'>{esc(r.case_id)}</a></td>"
            f"<td class='{r.outcome.value}'>{r.outcome.value}</td>"
            f"<td>{esc(', '.join(r.tags))}</td><td>{esc(r.reason)}</td></tr>"
        )
    parts.append("</table>")
    for r in results:
        parts.append(
            f"<h2 id='{esc(r.case_id)}'>{esc(r.case_id)} <span class='{r.outcome.value}'>"
            f"{r.outcome.value}</span></h2><p>{esc(r.title)}</p>"
        )
        for step in r.steps:
            parts.append(
                f"<details{' open' if step.outcome is not Outcome.PASSED else ''}><summary>"
                f"{esc(step.name)} ({esc(step.transaction)}) - "
                f"<span class='{step.outcome.value}'>{step.outcome.value}</span> "
                f"{esc(step.message)}</summary><ul>"
            )
            for check in step.checks:
                cls = "passed" if check.passed else "failed"
                source = f" [{esc(check.source)}]" if check.source else ""
                parts.append(
                    f"<li class='{cls}'>{esc(check.description)}: expected "
                    f"{esc(check.expected)}, got {esc(check.actual)}{source}</li>"
                )
            parts.append("</ul>")
            for label, data in (("request", step.request), ("response", step.response)):
                if data:
                    text = data.decode("utf-8", "replace")
                    parts.append(f"<p>{label}</p><pre>{esc(text)}</pre>")
            parts.append("</details>")
    parts.append("</body></html>")
    return "".join(parts)


def write_junit(results: Sequence[CaseResult], path: Path) -> None:
    path.write_bytes(junit_xml(results))


def write_html(results: Sequence[CaseResult], path: Path) -> None:
    path.write_text(html_report(results), encoding="utf-8")


__all__ = [
    "counts",
    "failed",
    "html_report",
    "junit_xml",
    "progress_line",
    "write_html",
    "write_junit",
    "write_summary",
]
