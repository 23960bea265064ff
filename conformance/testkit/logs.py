"""What each section of a run logged, for later sections and tests to use.

The toolkit keeps, per section and step, the ids it assigned (``AssignedUids``,
``AssignedUuids``, ``AssignedPatientId``: symbolic object id -> value), named reports
(``Report`` / ``UseReport``), the metadata as sent and the response.  ``UseId`` and
``UseReport`` read them; ``DataRef file="THIS"`` asserts over a section's log as XML.
Logs live for one run, keyed by the resolved section folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from conformance.testkit.plan import UseId, UseReport

ID_SECTIONS = ("AssignedUids", "AssignedUuids", "AssignedPatientId")


class LogLookupError(Exception):
    """A UseId / UseReport / TestResponse names something no section logged."""


class UpstreamNotRunnable(Exception):
    """A UseId / UseReport / TestResponse names a step that could not run."""


@dataclass(slots=True)
class StepLog:
    step_id: str
    ids: dict[str, dict[str, str]] = field(default_factory=lambda: {s: {} for s in ID_SECTIONS})
    reports: dict[str, str] = field(default_factory=dict)
    input_metadata: etree._Element | None = None
    result: etree._Element | None = None
    documents: dict[str, bytes] = field(default_factory=dict)  # uniqueId -> content sent
    not_runnable: str = ""  # why this step could not be carried out

    def assign(self, section: str, symbol: str, value: str) -> None:
        self.ids[section][symbol] = value


@dataclass(slots=True)
class SectionLog:
    section_dir: Path
    steps: dict[str, StepLog] = field(default_factory=dict)

    def step(self, step_id: str) -> StepLog:
        return self.steps.setdefault(step_id, StepLog(step_id))

    def to_xml(self) -> etree._Element:
        """The section's log as one document (the toolkit's log.xml, reduced to what
        assertions read): TestStep/InputMetadata, TestStep/Result, AssignedUids..."""
        root = etree.Element("TestResults", section=self.section_dir.name)
        for step in self.steps.values():
            elem = etree.SubElement(root, "TestStep", id=step.step_id)
            for section, values in step.ids.items():
                holder = etree.SubElement(elem, section)
                for symbol, value in values.items():
                    etree.SubElement(holder, "Assign", symbol=symbol, id=value)
            for name, holder_name in (("input_metadata", "InputMetadata"), ("result", "Result")):
                content = getattr(step, name)
                holder = etree.SubElement(elem, holder_name)
                if content is not None:
                    holder.append(etree.fromstring(etree.tostring(content)))
        return root


class RunLogs:
    """Every section log of one run."""

    def __init__(self) -> None:
        self._sections: dict[Path, SectionLog] = {}

    def section(self, section_dir: Path) -> SectionLog:
        key = section_dir.resolve()
        return self._sections.setdefault(key, SectionLog(key))

    def find(self, section_dir: Path) -> SectionLog | None:
        return self._sections.get(section_dir.resolve())

    def step(self, section_dir: Path, step_id: str) -> StepLog:
        log = self.find(section_dir)
        if log is None:
            raise LogLookupError(f"section {_name(section_dir)} has not run")
        if step_id not in log.steps:
            raise LogLookupError(f"section {_name(section_dir)} logged no step {step_id!r}")
        step = log.steps[step_id]
        if step.not_runnable:
            raise UpstreamNotRunnable(
                f"needs {_name(section_dir)}/{step_id}, which could not run: {step.not_runnable}"
            )
        return step

    def use_id(self, current: Path, use: UseId) -> str:
        """The value a UseId names; ``testdir`` is relative to the current section."""
        target = (current / use.testdir).resolve() if use.testdir else current.resolve()
        step = self.step(target, use.step)
        if use.section not in step.ids:
            raise LogLookupError(f"UseId section {use.section!r} is not one of {ID_SECTIONS}")
        values = step.ids[use.section]
        if use.id not in values:
            raise LogLookupError(
                f"{_name(target)}/{use.step} logged no {use.section} for {use.id!r}"
            )
        return values[use.id]

    def use_report(self, test_dir: Path, tests_root: Path, use: UseReport) -> str:
        """A named report of ``section``/``step`` of this test, or of ``use.test``."""
        base = tests_root / use.test if use.test else test_dir
        step = self.step(base / use.section, use.step)
        if use.report_name not in step.reports:
            raise LogLookupError(
                f"{_name(base / use.section)}/{use.step} has no report {use.report_name!r}"
            )
        return step.reports[use.report_name]


def _name(section_dir: Path) -> str:
    return f"{section_dir.parent.name}/{section_dir.name}"


__all__ = [
    "ID_SECTIONS",
    "LogLookupError",
    "RunLogs",
    "SectionLog",
    "StepLog",
    "UpstreamNotRunnable",
]
