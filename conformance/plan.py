"""The xdsi conformance plan format: TOML files of cases, loaded and validated.

A plan file holds ``[[case]]`` tables and ``[[family]]`` tables; a family is one case
written once with ``%{column}`` variables and a ``rows`` table, expanded into one case
per row when loaded (each with its own id and expectation).  ``conformance/README.md``
describes every key.  Loading checks everything a run would trip over later: unknown
keys and step kinds, duplicate ids, templates and document files that do not exist,
unknown placeholders, bad expectations.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from conformance.templates import FILLERS, placeholders

PLANS_DIR = Path(__file__).resolve().parent / "plans"
TEMPLATES_DIR_NAME = "templates"
ROW_VARIABLE = re.compile(r"%\{([A-Za-z_][A-Za-z0-9_]*)\}")

STEP_KINDS = (
    "feed",
    "submit",
    "register",
    "query",
    "retrieve",
    "rad69",
    "soap",
    "wait",
    "feed_v3",
    "register_on_demand",
    "remove",
    "remove_documents",
    "multi_query",
    "update",
    "stow",
)
# what each step kind needs of the system under test
STEP_REQUIRES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "feed": ("mllp",),
        "submit": ("repository",),
        "register": ("registry",),
        "query": ("registry",),
        "retrieve": ("repository",),
        "rad69": ("imaging_source",),
        "soap": (),
        "wait": (),
        "feed_v3": ("registry",),
        "register_on_demand": ("registry",),
        "remove": ("registry",),
        "remove_documents": ("repository",),
        "multi_query": ("registry",),
        "update": ("registry",),
        "stow": ("imaging_source",),
    }
)
REQUIREMENTS = (
    "mllp",
    "registry",
    "repository",
    "imaging_source",
    "imaging_source_id",
    "repository_id",
)
STATUSES = ("Success", "Failure", "PartialSuccess")
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")
ASSERT_KINDS = ("count", "equals", "exists", "values", "contains")
EXPECT_KEYS = frozenset(
    {
        "status",
        "errors",
        "errors_contain",
        "errors_any",
        "errors_absent",
        "warnings",
        "warnings_contain",
        "fault",
        "ack",
        "ack_details",
        "http_status",
        "documents",
        "instances",
    }
)
CASE_KEYS = frozenset(
    {"id", "title", "tags", "requires", "source", "documents", "steps", "note", "option"}
)
STEP_KEYS = frozenset(
    {
        "name",
        "kind",
        "template",
        "vars",
        "edits",
        "attach",
        "expect",
        "assert",
        "capture",
        "source",
        "endpoint",
        "action",
        "content_type",
        "mtom",
        "stored_query",
        "params",
        "slots",
        "return_type",
        "requests",
        "seconds",
        "objects",
        "series",
        "patient",
        "poll",
    }
)
EDIT_KINDS = ("remove", "set", "append")
# the template a step uses when the plan names none
DEFAULT_TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "feed": "adt_a01.hl7",
        "query": "iti18_stored_query.xml",
        "retrieve": "iti43_retrieve.xml",
        "feed_v3": "iti44_patient_added.xml",
        "register_on_demand": "iti61_register_on_demand.xml",
        "remove": "iti62_remove_metadata.xml",
        "remove_documents": "iti86_remove_documents.xml",
        "multi_query": "iti51_multi_patient_query.xml",
        "update": "iti57_update.xml",
        "rad69": "rad69_retrieve.xml",
    }
)


class PlanError(ValueError):
    """A plan that cannot be run; the message names the file and the case."""


@dataclass(frozen=True, slots=True)
class DocumentSpec:
    name: str
    content: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class Assertion:
    """One XPath assertion over a response (``count``, ``equals``, ``exists``,
    ``values`` - the set of string values - or ``contains``)."""

    xpath: str
    kind: str
    value: Any


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    kind: str
    template: Path | None = None
    vars: Mapping[str, str] = field(default_factory=dict)
    edits: tuple[Mapping[str, Any], ...] = ()
    attach: tuple[str, ...] | None = None
    expect: Mapping[str, Any] = field(default_factory=dict)
    assertions: tuple[Assertion, ...] = ()
    capture: Mapping[str, str] = field(default_factory=dict)
    source: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)  # kind-specific keys


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    title: str
    steps: tuple[Step, ...]
    tags: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    source: str = ""
    documents: Mapping[str, DocumentSpec] = field(default_factory=dict)
    path: Path | None = None
    # an optional transaction or option of the profile (e.g. "ITI-51"): a system that
    # answers ActionNotSupported does not offer it, and the case is not runnable there
    option: str = ""

    def matches(self, pattern: str) -> bool:
        """``--only``: a glob on the id or any tag; several patterns comma separated."""
        return any(
            fnmatch.fnmatchcase(self.case_id, p)
            or any(fnmatch.fnmatchcase(t, p) for t in self.tags)
            for p in (p.strip() for p in pattern.split(","))
            if p
        )


# --- loading ------------------------------------------------------------------------------


def load_plans(directory: Path | None = None) -> list[Case]:
    """Every case of every ``*.toml`` in ``directory`` (default: the shipped plans),
    in file then definition order."""
    directory = directory or PLANS_DIR
    if not directory.is_dir():
        raise PlanError(f"{directory}: not a directory")
    cases: list[Case] = []
    for path in sorted(directory.glob("*.toml")):
        cases += load_plan_file(path, directory / TEMPLATES_DIR_NAME)
    seen: dict[str, Path | None] = {}
    for case in cases:
        if case.case_id in seen:
            raise PlanError(f"{case.path}: case id {case.case_id!r} also in {seen[case.case_id]}")
        seen[case.case_id] = case.path
    return cases


def load_plan_file(path: Path, templates: Path | None = None) -> list[Case]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PlanError(f"{path}: {exc}") from None
    unknown = set(data) - {"case", "family", "defaults"}
    if unknown:
        raise PlanError(f"{path}: unknown top-level keys {sorted(unknown)}")
    defaults = data.get("defaults", {})
    raw_cases: list[dict[str, Any]] = list(data.get("case", []))
    for family in data.get("family", []):
        raw_cases += expand_family(family, path)
    templates = templates or path.parent / TEMPLATES_DIR_NAME
    return [_case(raw, defaults, path, templates) for raw in raw_cases]


def expand_family(family: Mapping[str, Any], path: Path) -> list[dict[str, Any]]:
    """One case per row; ``%{column}`` in every string of the family is the row's value."""
    rows = family.get("rows")
    if not isinstance(rows, list) or not rows:
        raise PlanError(f"{path}: family {family.get('id')!r} has no rows")
    body = {k: v for k, v in family.items() if k != "rows"}
    return [_substitute(body, row, path) for row in rows]


def _substitute(value: Any, row: Mapping[str, Any], path: Path) -> Any:
    if isinstance(value, str):

        def fill(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in row:
                raise PlanError(f"{path}: family row {dict(row)} has no column {key!r}")
            return str(row[key])

        return ROW_VARIABLE.sub(fill, value)
    if isinstance(value, list):
        return [_substitute(v, row, path) for v in value]
    if isinstance(value, dict):  # keys too: a parameter name may be a column
        return {_substitute(k, row, path): _substitute(v, row, path) for k, v in value.items()}
    return value


def _case(raw: Mapping[str, Any], defaults: Mapping[str, Any], path: Path, templates: Path) -> Case:
    where = f"{path.name}: case {raw.get('id', '?')!r}"
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise PlanError(f"{where}: unknown keys {sorted(unknown)}")
    for key in ("id", "title"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise PlanError(f"{where}: {key} missing")
    documents = {
        name: _document(name, spec, path, where) for name, spec in raw.get("documents", {}).items()
    }
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise PlanError(f"{where}: no steps")
    steps = tuple(_step(s, n, where, templates, documents) for n, s in enumerate(raw_steps, 1))
    names = [s.name for s in steps]
    if len(set(names)) != len(names):
        raise PlanError(f"{where}: step names repeat: {names}")
    requires = tuple(raw.get("requires", ()))
    for requirement in requires:
        if requirement not in REQUIREMENTS:
            raise PlanError(f"{where}: unknown requirement {requirement!r}")
    tags = tuple(dict.fromkeys([*defaults.get("tags", ()), *raw.get("tags", ())]))
    return Case(
        case_id=raw["id"],
        title=raw["title"],
        steps=steps,
        tags=tags,
        requires=requires,
        source=raw.get("source", defaults.get("source", "")),
        documents=MappingProxyType(documents),
        path=path,
        option=str(raw.get("option", defaults.get("option", ""))),
    )


def _document(name: str, spec: Any, path: Path, where: str) -> DocumentSpec:
    if not isinstance(spec, dict):
        raise PlanError(f"{where}: document {name!r} must be a table")
    mime_type = spec.get("mime_type", "text/plain")
    if "text" in spec:
        return DocumentSpec(name, str(spec["text"]).encode("utf-8"), mime_type)
    if "file" in spec:
        file = path.parent / spec["file"]
        if not file.is_file():
            raise PlanError(f"{where}: document file {file} does not exist")
        return DocumentSpec(name, file.read_bytes(), mime_type)
    if "bytes" in spec:  # a list of integers, for binary content written inline
        return DocumentSpec(name, bytes(spec["bytes"]), mime_type)
    raise PlanError(f"{where}: document {name!r} needs text, file or bytes")


def _step(
    raw: Any, number: int, where: str, templates: Path, documents: Mapping[str, DocumentSpec]
) -> Step:
    if not isinstance(raw, dict):
        raise PlanError(f"{where}: step {number} must be a table")
    kind = raw.get("kind")
    name = raw.get("name", f"{kind}{number}")
    here = f"{where}, step {name!r}"
    if kind not in STEP_KINDS:
        raise PlanError(f"{here}: unknown kind {kind!r} (one of {', '.join(STEP_KINDS)})")
    unknown = set(raw) - STEP_KEYS
    if unknown:
        raise PlanError(f"{here}: unknown keys {sorted(unknown)}")
    template = None
    template_name = raw.get("template", DEFAULT_TEMPLATES.get(kind))
    if template_name is not None:
        template = templates / template_name
        if not template.is_file():
            raise PlanError(f"{here}: template {template} does not exist")
        _check_placeholders(template.read_text(encoding="utf-8"), here, documents)
    expect = raw.get("expect", {})
    _check_expect(expect, here)
    assertions = tuple(_assertion(a, here) for a in raw.get("assert", ()))
    for edit in raw.get("edits", ()):
        if not isinstance(edit, dict) or not any(k in edit for k in EDIT_KINDS):
            raise PlanError(f"{here}: an edit needs one of {', '.join(EDIT_KINDS)}: {edit}")
    attach = raw.get("attach")
    for doc in attach or ():
        if doc not in documents:
            raise PlanError(f"{here}: attaches unknown document {doc!r}")
    _check_poll(raw.get("poll"), here)
    series = raw.get("series", [1])
    if not isinstance(series, list) or not all(isinstance(n, int) and n > 0 for n in series):
        raise PlanError(f"{here}: series must be a list of instance counts (positive integers)")
    options = {k: v for k, v in raw.items() if k not in _COMMON_STEP_KEYS}
    return Step(
        name=name,
        kind=kind,
        template=template,
        vars=MappingProxyType(dict(raw.get("vars", {}))),
        edits=tuple(raw.get("edits", ())),
        attach=tuple(attach) if attach is not None else None,
        expect=MappingProxyType(dict(expect)),
        assertions=assertions,
        capture=MappingProxyType(dict(raw.get("capture", {}))),
        source=raw.get("source", ""),
        options=MappingProxyType(options),
    )


_COMMON_STEP_KEYS = frozenset(
    {"name", "kind", "template", "vars", "edits", "attach", "expect", "assert", "capture", "source"}
)


def _check_poll(poll: Any, where: str) -> None:
    """``poll = { seconds = 30, every = 0.5 }``: the step is repeated until its checks
    pass, for at most ``seconds``."""
    if poll is None:
        return
    if not isinstance(poll, dict) or set(poll) - {"seconds", "every"}:
        raise PlanError(f"{where}: poll is a table of seconds (and every)")
    for key in ("seconds", "every"):
        value = poll.get(key, 1)
        if not isinstance(value, int | float) or value <= 0:
            raise PlanError(f"{where}: poll {key} must be a positive number")


def _check_placeholders(text: str, where: str, documents: Mapping[str, DocumentSpec]) -> None:
    for kind, name in placeholders(text):
        if kind not in FILLERS:
            raise PlanError(f"{where}: unknown placeholder {{{{{kind}}}}}")
        if (
            kind in ("sha1", "size", "content_id", "mime_type")
            and (name or "main") not in documents
        ) and (name is None or "%{" not in name):
            raise PlanError(f"{where}: placeholder {kind}:{name} names no case document")


def _check_expect(expect: Any, where: str) -> None:
    if not isinstance(expect, dict):
        raise PlanError(f"{where}: expect must be a table")
    unknown = set(expect) - EXPECT_KEYS
    if unknown:
        raise PlanError(f"{where}: unknown expectations {sorted(unknown)}")
    statuses = expect.get("status", [])
    if any(s not in STATUSES for s in (statuses if isinstance(statuses, list) else [statuses])):
        raise PlanError(f"{where}: status must be one of {', '.join(STATUSES)}")
    if "ack" in expect and expect["ack"] not in ACK_CODES:
        raise PlanError(f"{where}: ack must be one of {', '.join(ACK_CODES)}")
    fault = expect.get("fault")
    if fault is not None and (not isinstance(fault, dict) or "code" not in fault):
        raise PlanError(f"{where}: fault needs a code (and may have a subcode)")
    for key in (
        "errors",
        "errors_contain",
        "errors_any",
        "errors_absent",
        "warnings",
        "warnings_contain",
        "ack_details",
    ):
        if key in expect and not isinstance(expect[key], list):
            raise PlanError(f"{where}: {key} must be a list of error codes")


def _assertion(raw: Any, where: str) -> Assertion:
    if not isinstance(raw, dict) or "xpath" not in raw:
        raise PlanError(f"{where}: an assertion needs an xpath")
    kinds = [k for k in ASSERT_KINDS if k in raw]
    if len(kinds) != 1:
        raise PlanError(f"{where}: an assertion needs exactly one of {', '.join(ASSERT_KINDS)}")
    return Assertion(raw["xpath"], kinds[0], raw[kinds[0]])


def case_requirements(case: Case) -> tuple[str, ...]:
    """What the case needs of the system under test: its own ``requires`` and its steps'."""
    needed = list(case.requires)
    for step in case.steps:
        needed += STEP_REQUIRES[step.kind]
    return tuple(dict.fromkeys(needed))


def select(cases: Iterable[Case], only: str | None) -> list[Case]:
    return [c for c in cases if only is None or c.matches(only)]


def tag_counts(cases: Sequence[Case]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for case in cases:
        for tag in case.tags:
            counts[tag] = counts.get(tag, 0) + 1
    return dict(sorted(counts.items()))


__all__ = [
    "PLANS_DIR",
    "STEP_KINDS",
    "Assertion",
    "Case",
    "DocumentSpec",
    "PlanError",
    "Step",
    "case_requirements",
    "expand_family",
    "load_plan_file",
    "load_plans",
    "select",
    "tag_counts",
]
