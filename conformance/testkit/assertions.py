"""The checks a test step asks for: ExpectedStatus, ExpectedErrorMessage/Code,
ExpectedContents (count-style checks on a query response) and Assertions (an XPath, or
a named ``process=`` check).  Each is a table from the toolkit's name to a function that
returns ``Check``s; a name not in the table is reported, never ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from conformance.result import Check
from conformance.testkit.plan import Assert, Expectation
from ebxml.tags import RIM, RS, XDSB
from ebxml.vocabulary import (
    FOLDER_NODE,
    SUBMISSION_SET_NODE,
    AssociationType,
    AvailabilityStatus,
    FolderIdentifier,
    ResponseStatus,
    SubmissionSetIdentifier,
)

# ExpectedStatus text -> ebRS 3.0 / ITI TF-3 4.2.4 response status
STATUSES: dict[str, str] = {
    "Success": ResponseStatus.SUCCESS,
    "Failure": ResponseStatus.FAILURE,
    "PartialSuccess": ResponseStatus.PARTIAL_SUCCESS,
}


class UnknownCheck(Exception):
    """The plan names an ExpectedContents element or Assert process this runner lacks."""


class MissingData(Exception):
    """The check needs data or an actor that is absent; the message says which."""


def response_status(body: etree._Element | None) -> str:
    """The status of a RegistryResponse, AdhocQueryResponse or RetrieveDocumentSetResponse."""
    if body is None:
        return ""
    if body.tag == XDSB.RetrieveDocumentSetResponse:
        inner = body.find(RS.RegistryResponse)
        return inner.get("status", "") if inner is not None else ""
    return body.get("status", "")


def registry_errors(body: etree._Element | None) -> list[etree._Element]:
    return list(body.iter(RS.RegistryError)) if body is not None else []


def status_checks(expected: str | None, body: etree._Element | None, source: str) -> list[Check]:
    if expected is None:
        return []
    want = STATUSES.get(expected, expected)
    got = response_status(body)
    return [Check(f"status is {expected}", got == want, want, got, source)]


def error_checks(
    messages: tuple[str, ...], codes: tuple[str, ...], body: etree._Element | None, source: str
) -> list[Check]:
    """ExpectedErrorMessage: found in an errorCode or codeContext; ExpectedErrorCode: an
    errorCode equal to it."""
    errors = registry_errors(body)
    seen = "; ".join(f"{e.get('errorCode', '')}: {e.get('codeContext', '')}" for e in errors)
    checks = [
        Check(
            f"an error reports {message}",
            any(
                message in e.get("errorCode", "") or message in e.get("codeContext", "")
                for e in errors
            ),
            message,
            seen,
            source,
        )
        for message in messages
    ]
    checks += [
        Check(
            f"errorCode {code} returned",
            any(e.get("errorCode") == code for e in errors),
            code,
            seen,
            source,
        )
        for code in codes
    ]
    return checks


# --- ExpectedContents -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Contents:
    """The objects of a query response's RegistryObjectList, sorted by kind."""

    documents: tuple[etree._Element, ...] = ()
    submission_sets: tuple[etree._Element, ...] = ()
    folders: tuple[etree._Element, ...] = ()
    associations: tuple[etree._Element, ...] = ()
    object_refs: tuple[etree._Element, ...] = ()
    has_member: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    @classmethod
    def of(cls, body: etree._Element | None) -> Contents:
        listing = body.find(RIM.RegistryObjectList) if body is not None else None
        if listing is None:
            return cls()
        children = [c for c in listing if isinstance(c.tag, str)]
        nodes = {
            c.get("classifiedObject"): c.get("classificationNode")
            for c in listing.iter(RIM.Classification)
            if c.get("classificationNode")
        }
        schemes = {
            i.get("registryObject"): i.get("identificationScheme")
            for i in listing.iter(RIM.ExternalIdentifier)
        }
        packages = [c for c in children if c.tag == RIM.RegistryPackage]

        def kind(package: etree._Element) -> str:
            pid = package.get("id")
            if nodes.get(pid) == SUBMISSION_SET_NODE:
                return "ss"
            if nodes.get(pid) == FOLDER_NODE:
                return "fol"
            idents = {
                i.get("identificationScheme") for i in package.iter(RIM.ExternalIdentifier)
            } | {schemes.get(pid)}
            if SubmissionSetIdentifier.UNIQUE_ID in idents:
                return "ss"
            return "fol" if FolderIdentifier.UNIQUE_ID in idents else ""

        associations = tuple(c for c in children if c.tag == RIM.Association)
        return cls(
            documents=tuple(c for c in children if c.tag == RIM.ExtrinsicObject),
            submission_sets=tuple(p for p in packages if kind(p) == "ss"),
            folders=tuple(p for p in packages if kind(p) == "fol"),
            associations=associations,
            object_refs=tuple(c for c in children if c.tag == RIM.ObjectRef),
            has_member=frozenset(
                (a.get("sourceObject", ""), a.get("targetObject", ""))
                for a in associations
                if a.get("associationType") == AssociationType.HAS_MEMBER
            ),
        )


def _count(attribute: str, label: str) -> Callable[[Contents, Expectation], list[Check]]:
    def check(contents: Contents, expectation: Expectation) -> list[Check]:
        want = expectation.get("count", "")
        got = str(len(getattr(contents, attribute)))
        return [Check(f"{label} count={want}", got == want, want, got)]

    return check


def _pattern(documents: int, folders: int) -> Callable[[Contents, Expectation], list[Check]]:
    """One SubmissionSet with ``documents`` DocumentEntries and ``folders`` Folders, each
    a member of the SubmissionSet, every document a member of every folder."""

    def check(contents: Contents, expectation: Expectation) -> list[Check]:
        shape = (len(contents.submission_sets), len(contents.documents), len(contents.folders))
        want = (1, documents, folders)
        checks = [
            Check(
                f"{expectation.name}: SubmissionSets, DocumentEntries, Folders",
                shape == want,
                str(want),
                str(shape),
            )
        ]
        if shape != want:
            return checks
        ss = contents.submission_sets[0].get("id", "")
        members = [d.get("id", "") for d in contents.documents + contents.folders]
        links = [(ss, m) for m in members] + [
            (f.get("id", ""), d.get("id", "")) for f in contents.folders for d in contents.documents
        ]
        missing = [f"{s} -> {t}" for s, t in links if (s, t) not in contents.has_member]
        checks.append(
            Check(
                f"{expectation.name}: HasMember associations", not missing, "", "; ".join(missing)
            )
        )
        return checks

    return check


def _status_of_all(status: str, label: str) -> Callable[[Contents, Expectation], list[Check]]:
    def check(contents: Contents, expectation: Expectation) -> list[Check]:
        got = sorted({d.get("status", "") for d in contents.documents})
        ok = bool(contents.documents) and got == [status]
        return [Check(f"{label}: every DocumentEntry is {status}", ok, status, ", ".join(got))]

    return check


def _none(contents: Contents, expectation: Expectation) -> list[Check]:
    total = sum(
        len(getattr(contents, a))
        for a in ("documents", "submission_sets", "folders", "associations", "object_refs")
    )
    return [Check("None: no objects returned", total == 0, "0", str(total))]


EXPECTATIONS: dict[str, Callable[[Contents, Expectation], list[Check]]] = {
    "Documents": _count("documents", "Documents"),
    "SubmissionSets": _count("submission_sets", "SubmissionSets"),
    "Folders": _count("folders", "Folders"),
    "Associations": _count("associations", "Associations"),
    "ObjectRefs": _count("object_refs", "ObjectRefs"),
    "SSwithOneDoc": _pattern(1, 0),
    "SSwithOneDocOneFol": _pattern(1, 1),
    "SSwithTwoDocOneFol": _pattern(2, 1),
    "DocApp": _status_of_all(AvailabilityStatus.APPROVED, "DocApp"),
    "DocDep": _status_of_all(AvailabilityStatus.DEPRECATED, "DocDep"),
    "None": _none,
}


def expected_contents(
    expectations: tuple[Expectation, ...], body: etree._Element | None, source: str
) -> list[Check]:
    contents = Contents.of(body)
    checks: list[Check] = []
    for expectation in expectations:
        check = EXPECTATIONS.get(expectation.name)
        if check is None:
            raise UnknownCheck(f"ExpectedContents/{expectation.name}")
        checks += [
            Check(c.description, c.passed, c.expected, c.actual, source)
            for c in check(contents, expectation)
        ]
    return checks


# --- Assertions -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssertInput:
    """What a process check may read: the response it names and the step's Standard."""

    assertion: Assert
    response: etree._Element | None
    standard: etree._Element | None
    section_dir: Path


def xpath_assert(assertion: Assert, document: etree._Element, source: str) -> Check:
    """An Assert without ``process``: an XPath 1.0 expression that must be true."""
    try:
        value = document.xpath(assertion.text)
    except etree.XPathError as exc:
        return Check(f"assert {assertion.id}", False, assertion.text, f"bad XPath: {exc}", source)
    passed = bool(value) if not isinstance(value, bool) else value
    return Check(f"assert {assertion.id}", passed, assertion.text, str(value), source)


def _registry_error_list_not_empty(data: AssertInput) -> list[Check]:
    count = len(registry_errors(data.response))
    return [Check("RegistryErrorList has a RegistryError", count > 0, ">= 1", str(count))]


def _same_retrieved_documents(data: AssertInput) -> list[Check]:
    """The response's DocumentResponse values equal those of Standard/ResponseBody."""
    body = data.standard.find("ResponseBody") if data.standard is not None else None
    if body is None or not len(body):
        return [Check("Standard/ResponseBody present", False, "ResponseBody", "none")]
    fields = ("RepositoryUniqueId", "DocumentUniqueId", "mimeType")

    def values(root: etree._Element | None) -> list[tuple[str, ...]]:
        if root is None:
            return []
        return sorted(
            tuple((r.findtext(getattr(XDSB, f)) or "").strip() for f in fields)
            for r in root.iter(XDSB.DocumentResponse)
        )

    want, got = values(body[0]), values(data.response)
    return [Check("returned documents match the standard", want == got, str(want), str(got))]


def _needs_images(data: AssertInput) -> list[Check]:
    dirs = [d.text.strip() for d in data.assertion.element.iter("StdDir") if d.text]
    raise MissingData(
        "comparing DICOM attributes needs the gold images "
        + (", ".join(dirs) or "(no StdDir)")
        + " of the Connectathon image set ids_2018.zip, which is not present"
    )


def _needs_simulator(data: AssertInput) -> list[Check]:
    ref = next(data.assertion.element.iter("SimReference"), None)
    gold = data.assertion.text.strip()
    missing_gold = gold and not (data.section_dir / gold).is_file()
    sim = (
        f"a Repository simulator (SimReference id={ref.get('id')} actor={ref.get('actor')} "
        f"transaction={ref.get('transaction')} pid={ref.get('pid')})"
        if ref is not None
        else "a Repository simulator"
    )
    parts = [f"needs {sim} that received the RAD-68 submission"]
    if missing_gold:
        parts.append(f"gold file {data.section_dir.name}/{gold} is not present")
    raise MissingData("; ".join(parts))


PROCESSES: dict[str, Callable[[AssertInput], list[Check]]] = {
    "registryErrorListNotEmpty": _registry_error_list_not_empty,
    "sameRetImgs": _same_retrieved_documents,
    "sameDcmImgs": _needs_images,
    "sameKOSDcm": _needs_simulator,
    "sameKOSMetadata": _needs_simulator,
}


def process_assert(data: AssertInput, source: str) -> list[Check]:
    name = data.assertion.process or ""
    check = PROCESSES.get(name)
    if check is None:
        raise UnknownCheck(f"Assert process={name}")
    return [
        Check(f"{data.assertion.id}: {c.description}", c.passed, c.expected, c.actual, source)
        for c in check(data)
    ]


__all__ = [
    "EXPECTATIONS",
    "PROCESSES",
    "STATUSES",
    "AssertInput",
    "Contents",
    "MissingData",
    "UnknownCheck",
    "error_checks",
    "expected_contents",
    "process_assert",
    "registry_errors",
    "response_status",
    "status_checks",
    "xpath_assert",
]
