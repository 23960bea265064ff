"""NIST XDS Toolkit test plans, read as published: ``index.idx`` and ``testplan.xml``.

A test is a folder; ``index.idx`` lists its sections (sub-folders) in run order; each
section's ``testplan.xml`` holds TestSteps, each with at most one ``...Transaction``
element.  Everything the runner needs is read here into frozen values; elements this
reader does not know are kept by name so the runner can say which one it cannot run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)

# TestStep children the runner understands besides the transaction itself
STEP_ELEMENTS = frozenset(
    {
        "Rule",
        "Goal",
        "ExpectedStatus",
        "ExpectedErrorMessage",
        "ExpectedErrorCode",
        "AltPatientId",
        "Standard",
    }
)
# children of a transaction element the runner understands
TRANSACTION_ELEMENTS = frozenset(
    {
        "XDSb",
        "xdsb",
        "NoMetadata",
        "MetadataFile",
        "Document",
        "AssignUuids",
        "NoAssignUids",
        "NoPatientId",
        "UseId",
        "UseReport",
        "UseXPath",
        "Report",
        "ExpectedContents",
        "Assertions",
        "ReferenceMetadata",
        "ReferenceDocument",
    }
)


class PlanError(Exception):
    """A test folder or plan that cannot be read."""


@dataclass(frozen=True, slots=True)
class UseId:
    """Take an id the toolkit logged for ``id`` in another section (``AssignedUids``,
    ``AssignedUuids`` or ``AssignedPatientId``) and put it where ``symbol`` stands."""

    testdir: str
    id: str
    symbol: str
    step: str
    section: str


@dataclass(frozen=True, slots=True)
class UseReport:
    """Take a named report of a step (of this test's ``section``, or of ``test``)."""

    report_name: str
    use_as: str
    section: str
    step: str
    test: str | None = None


@dataclass(frozen=True, slots=True)
class UseXPath:
    """Take the value of an XPath over a step's logged result."""

    symbol: str
    testdir: str
    step: str
    xpath: str


@dataclass(frozen=True, slots=True)
class Report:
    """Capture ``xpath`` over ``section`` (InputMetadata or Result) under ``name``."""

    name: str
    section: str
    xpath: str


@dataclass(frozen=True, slots=True)
class Expectation:
    """One child of ExpectedContents (``SSwithOneDoc``, ``Documents count="1"``...)."""

    name: str
    attributes: tuple[tuple[str, str], ...] = ()

    def get(self, key: str, default: str = "") -> str:
        return dict(self.attributes).get(key, default)


@dataclass(frozen=True, slots=True)
class Assert:
    """One Assertions/Assert: an XPath test, or a named ``process`` check."""

    id: str
    process: str | None
    text: str
    element: etree._Element = field(compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Transaction:
    kind: str  # the element name, e.g. "RegisterTransaction"
    element: etree._Element = field(compare=False, repr=False)
    metadata_file: str | None = None
    documents: tuple[tuple[str, str], ...] = ()  # (metadata id, file name)
    assign_uuids: bool = False
    assign_uids: bool = True
    no_patient_id: bool = False
    use_ids: tuple[UseId, ...] = ()
    use_reports: tuple[UseReport, ...] = ()
    use_xpaths: tuple[UseXPath, ...] = ()
    reports: tuple[Report, ...] = ()
    expected_contents: tuple[Expectation, ...] | None = None
    assertions: tuple[Assert, ...] = ()
    data_refs: tuple[tuple[str, str], ...] = ()  # (file, as)
    reference_metadata: tuple[str, str] | None = None  # (testdir, step)
    reference_documents: tuple[tuple[str, str], ...] = ()  # (uid, path)
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestStep:
    id: str
    goals: tuple[str, ...] = ()
    expected_status: str | None = None
    expected_error_messages: tuple[str, ...] = ()
    expected_error_codes: tuple[str, ...] = ()
    alt_patient_id: bool = False
    standard: etree._Element | None = field(default=None, compare=False, repr=False)
    transaction: Transaction | None = None
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TestPlan:
    name: str  # the plan's <Test>, e.g. "11990/submit"
    section_dir: Path
    steps: tuple[TestStep, ...]


def _text(elem: etree._Element | None) -> str:
    return " ".join("".join(elem.itertext()).split()) if elem is not None else ""


def _children(elem: etree._Element) -> list[etree._Element]:
    return [c for c in elem if isinstance(c.tag, str)]


def _local(elem: etree._Element) -> str:
    return etree.QName(elem).localname


def _assertions(elem: etree._Element) -> tuple[tuple[Assert, ...], tuple[tuple[str, str], ...]]:
    asserts: list[Assert] = []
    refs: list[tuple[str, str]] = []
    for child in _children(elem):
        if _local(child) == "Assert":
            own_text = (child.text or "") + "".join(c.tail or "" for c in _children(child))
            asserts.append(
                Assert(child.get("id", ""), child.get("process"), own_text.strip(), child)
            )
        elif _local(child) == "DataRef":
            refs.append((child.get("file", ""), child.get("as", "")))
    return tuple(asserts), tuple(refs)


def _transaction(elem: etree._Element) -> Transaction:
    values: dict[str, list] = {
        k: []
        for k in (
            "documents",
            "use_ids",
            "use_reports",
            "use_xpaths",
            "reports",
            "reference_documents",
            "unknown",
        )
    }
    metadata_file = None
    flags = {"assign_uuids": False, "assign_uids": True, "no_patient_id": False}
    expected: tuple[Expectation, ...] | None = None
    asserts: tuple[Assert, ...] = ()
    data_refs: tuple[tuple[str, str], ...] = ()
    reference_metadata = None
    for child in _children(elem):
        name = _local(child)
        if name not in TRANSACTION_ELEMENTS:
            values["unknown"].append(name)
        elif name == "MetadataFile":
            metadata_file = _text(child)
        elif name == "Document":
            values["documents"].append((child.get("id", ""), _text(child)))
        elif name == "AssignUuids":
            flags["assign_uuids"] = True
        elif name == "NoAssignUids":
            flags["assign_uids"] = False
        elif name == "NoPatientId":
            flags["no_patient_id"] = True
        elif name == "UseId":
            values["use_ids"].append(
                UseId(
                    child.get("testdir", ""),
                    child.get("id", ""),
                    child.get("symbol", ""),
                    child.get("step", ""),
                    child.get("section", ""),
                )
            )
        elif name == "UseReport":
            values["use_reports"].append(
                UseReport(
                    child.get("reportName", ""),
                    child.get("useAs", ""),
                    child.get("section", ""),
                    child.get("step", ""),
                    child.get("test"),
                )
            )
        elif name == "UseXPath":
            values["use_xpaths"].append(
                UseXPath(
                    child.get("symbol", ""),
                    child.get("testdir", "THIS"),
                    child.get("step", ""),
                    _text(child),
                )
            )
        elif name == "Report":
            values["reports"].append(
                Report(child.get("name", ""), child.get("section", "Result"), _text(child))
            )
        elif name == "ExpectedContents":
            expected = tuple(
                Expectation(_local(c), tuple(sorted(c.attrib.items()))) for c in _children(child)
            )
        elif name == "Assertions":
            asserts, data_refs = _assertions(child)
        elif name == "ReferenceMetadata":
            reference_metadata = (child.get("testdir", ""), child.get("step", ""))
        elif name == "ReferenceDocument":
            values["reference_documents"].append((child.get("uid", ""), _text(child)))
    return Transaction(
        kind=_local(elem),
        element=elem,
        metadata_file=metadata_file,
        expected_contents=expected,
        assertions=asserts,
        data_refs=data_refs,
        reference_metadata=reference_metadata,
        **flags,
        **{k: tuple(v) for k, v in values.items()},
    )


def _step(elem: etree._Element) -> TestStep:
    goals: list[str] = []
    status = None
    messages: list[str] = []
    codes: list[str] = []
    alt_patient = False
    standard = None
    transaction = None
    unknown: list[str] = []
    for child in _children(elem):
        name = _local(child)
        if name.endswith("Transaction"):
            if transaction is not None:
                unknown.append(f"second transaction {name}")
            else:
                transaction = _transaction(child)
        elif name not in STEP_ELEMENTS:
            unknown.append(name)
        elif name == "Goal":
            goals.append(_text(child))
        elif name == "ExpectedStatus":
            status = _text(child)
        elif name == "ExpectedErrorMessage":
            messages.append(_text(child))
        elif name == "ExpectedErrorCode":
            codes.append(_text(child))
        elif name == "AltPatientId":
            alt_patient = True
        elif name == "Standard":
            standard = child
    return TestStep(
        id=elem.get("id", ""),
        goals=tuple(goals),
        expected_status=status,
        expected_error_messages=tuple(messages),
        expected_error_codes=tuple(codes),
        alt_patient_id=alt_patient,
        standard=standard,
        transaction=transaction,
        unknown=tuple(unknown),
    )


def parse_testplan(path: Path) -> TestPlan:
    """One section's ``testplan.xml``."""
    try:
        root = etree.parse(str(path), _PARSER).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        raise PlanError(f"{path}: {exc}") from exc
    if _local(root) != "TestPlan":
        raise PlanError(f"{path}: root element is {_local(root)}, not TestPlan")
    steps = tuple(_step(c) for c in _children(root) if _local(c) == "TestStep")
    return TestPlan(_text(root.find("Test")), path.parent, steps)


def read_index(test_dir: Path) -> list[str]:
    """The sections of a test in run order (``index.idx``, one name a line)."""
    index = test_dir / "index.idx"
    if not index.is_file():
        raise PlanError(f"{test_dir.name}: no index.idx")
    return [line.strip() for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_title(test_dir: Path) -> str:
    """The first line of the test's ``readme.txt``; for HTML readmes the <h2> heading."""
    readme = test_dir / "readme.txt"
    if not readme.is_file():
        return test_dir.name
    text = readme.read_text(encoding="utf-8", errors="replace")
    if text.lstrip().startswith("<"):
        try:
            html = etree.fromstring(text.encode(), etree.HTMLParser(no_network=True))
            heading = html.find(".//h2")
            if heading is not None:
                return " ".join("".join(heading.itertext()).split())
        except etree.XMLSyntaxError:
            pass
    return next((line.strip() for line in text.splitlines() if line.strip()), test_dir.name)


__all__ = [
    "Assert",
    "Expectation",
    "PlanError",
    "Report",
    "TestPlan",
    "TestStep",
    "Transaction",
    "UseId",
    "UseReport",
    "UseXPath",
    "parse_testplan",
    "read_index",
    "read_title",
]
