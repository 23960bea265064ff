"""``xdsi conformance validate FILE``: what is wrong with one captured message or file.

The kind is detected from the content: a MIME package (MTOM/XOP, RFC 2387) or SOAP 1.2
envelope is opened to its body; the body element is an ebRIM/ebRS message (lcm:
SubmitObjectsRequest, xdsb:ProvideAndRegisterDocumentSetRequest, rs:RegistryResponse,
query:AdhocQueryRequest/Response, xdsb:RetrieveDocumentSetRequest/Response, xdsi:
RetrieveImagingDocumentSetRequest), a DICOM audit message (PS3.15 A.5.1), or the file
is a DICOM Part 10 file (PS3.10 7.1: 128-byte preamble, "DICM").  Findings come from
the XSDs (``schemas/nist-toolkit/v3``, ``schemas/audit``) when the reference folder is
present, from xdsi's XDS rules (``ebxml.validate``) for submissions, and from
``dciodvfy`` for DICOM files when it is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from lxml import etree

from ebxml.errors import ErrorCode
from ebxml.parse import parse_submit_objects_request
from ebxml.tags import LCM, QUERY, RS, XDSB, XDSI
from ebxml.validate import validate_submission
from ebxml.vocabulary import ErrorSeverity, Transaction
from soap.namespaces import NS_SOAP12

ERROR, WARNING, INFO = "error", "warning", "info"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
_DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
_WRAPPER = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    targetNamespace="urn:xdsi:validate:all" elementFormDefault="qualified">
  <xs:import namespace="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" schemaLocation="lcm.xsd"/>
  <xs:import namespace="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" schemaLocation="query.xsd"/>
  <xs:import namespace="urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0" schemaLocation="rs.xsd"/>
  <xs:import namespace="urn:ihe:iti:xds-b:2007" schemaLocation="XDS.b_DocumentRepository.xsd"/>
  <xs:import namespace="urn:ihe:rad:xdsi-b:2009" schemaLocation="XDSI.b_ImagingDocumentSource.xsd"/>
</xs:schema>"""


@dataclass(frozen=True, slots=True)
class Finding:
    severity: str  # error, warning, info
    location: str
    message: str
    source: str  # the schema, rule id and spec section, or the tool


@dataclass(frozen=True, slots=True)
class ValidationReport:
    path: Path
    kind: str
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(f.severity == ERROR for f in self.findings)


def reference_dir() -> Path:
    return Path(os.environ.get("XDSI_REFERENCE_DIR", str(_DEFAULT_REFERENCE)))


@cache
def _schema(path: Path, wrapper: bool) -> etree.XMLSchema:
    if wrapper:
        doc = etree.fromstring(_WRAPPER.encode(), base_url=f"{path.as_posix()}/all.xsd")
        return etree.XMLSchema(etree.ElementTree(doc))
    return etree.XMLSchema(etree.parse(str(path)))


def _schema_findings(element: etree._Element, path: Path, wrapper: bool) -> list[Finding]:
    if not (path.is_dir() if wrapper else path.is_file()):
        return [Finding(INFO, "", f"schema {path} is not present; not checked", "xsd")]
    schema = _schema(path, wrapper)
    copy = etree.fromstring(etree.tostring(element))
    if schema.validate(copy):
        return []
    source = path.name if not wrapper else "ebRS/ebRIM 3.0, IHE XDS.b/XDS-I.b XSD"
    return [Finding(ERROR, f"line {e.line}", e.message, source) for e in schema.error_log]


def _ebxml_schema(element: etree._Element) -> list[Finding]:
    return _schema_findings(element, reference_dir() / "schemas" / "nist-toolkit" / "v3", True)


_RULE = re.compile(r"\[([^;\]]+);\s*([^\]]+)\]\s*$")


def _xds_findings(submission_elem: etree._Element, transaction: Transaction) -> list[Finding]:
    """ITI TF-3 4.1-4.3 rules of ``ebxml.validate`` on a SubmitObjectsRequest."""
    code = (
        ErrorCode.XDSRepositoryMetadataError
        if transaction == Transaction.ITI41
        else ErrorCode.XDSRegistryMetadataError
    )
    parsed = parse_submit_objects_request(submission_elem, default_code=code)
    errors = list(parsed.errors)
    if parsed.value.submission_set is not None or parsed.value.document_entries:
        errors += validate_submission(parsed.value, transaction, default_code=code)
    findings = []
    for error in errors:
        match = _RULE.search(error.context)
        source = f"{match.group(1)} ({match.group(2)})" if match else "ebxml.parse"
        severity = ERROR if error.severity == ErrorSeverity.ERROR else WARNING
        findings.append(Finding(severity, error.location, f"{error.code}: {error.context}", source))
    return findings


def _submission(element: etree._Element) -> list[Finding]:
    return _ebxml_schema(element) + _xds_findings(element, Transaction.ITI42)


def _provide(element: etree._Element) -> list[Finding]:
    findings = _ebxml_schema(element)
    inner = element.find(LCM.SubmitObjectsRequest)
    if inner is not None:
        findings += _xds_findings(inner, Transaction.ITI41)
    findings.append(
        Finding(INFO, "", "documents are not paired with metadata in a file check", "ITI-41")
    )
    return findings


def _audit(element: etree._Element) -> list[Finding]:
    schema = reference_dir() / "schemas" / "audit" / "ipf-dicom2024d.xsd"
    return _schema_findings(element, schema, False)


# body element -> (kind, validator)
KINDS: dict[str, tuple[str, Callable[[etree._Element], list[Finding]]]] = {
    LCM.SubmitObjectsRequest: ("ITI-42 SubmitObjectsRequest", _submission),
    XDSB.ProvideAndRegisterDocumentSetRequest: ("ITI-41 ProvideAndRegister", _provide),
    RS.RegistryResponse: ("RegistryResponse", _ebxml_schema),
    QUERY.AdhocQueryRequest: ("ITI-18 AdhocQueryRequest", _ebxml_schema),
    QUERY.AdhocQueryResponse: ("ITI-18 AdhocQueryResponse", _ebxml_schema),
    XDSB.RetrieveDocumentSetRequest: ("ITI-43 RetrieveDocumentSetRequest", _ebxml_schema),
    XDSB.RetrieveDocumentSetResponse: ("ITI-43 RetrieveDocumentSetResponse", _ebxml_schema),
    XDSI.RetrieveImagingDocumentSetRequest: (
        "RAD-69 RetrieveImagingDocumentSetRequest",
        _ebxml_schema,
    ),
    "AuditMessage": ("DICOM audit message", _audit),
}


def _mime_root(data: bytes) -> bytes | None:
    """The root part of a MIME package (headers then body, or a bare multipart body)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    boundary = None
    match = re.search(rb'boundary="?([^";\r\n]+)"?', head, re.IGNORECASE)
    if match and b"content-type" in head.lower():
        boundary, data = match.group(1), rest
    elif data.startswith(b"--"):
        boundary = data[2:].split(b"\r\n", 1)[0].strip()
    if boundary is None:
        return None
    for chunk in data.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, body = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        return body.removesuffix(b"\r\n")
    return None


def _xml(path: Path, data: bytes, wrapper: str) -> ValidationReport:
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        return ValidationReport(path, wrapper or "XML", (Finding(ERROR, "", str(exc), "XML 1.0"),))
    findings: list[Finding] = []
    if root.tag == f"{{{NS_SOAP12}}}Envelope":
        wrapper = f"{wrapper} SOAP 1.2 envelope".strip()
        body = root.find(f"{{{NS_SOAP12}}}Body")
        if body is None or not len(body):
            return ValidationReport(
                path, wrapper, (Finding(ERROR, "Envelope", "no env:Body content", "SOAP 1.2"),)
            )
        root = body[0]
    key = root.tag if root.tag in KINDS else etree.QName(root).localname
    if key not in KINDS:
        findings.append(Finding(ERROR, root.tag, "not a message kind this validator knows", ""))
        return ValidationReport(path, f"{wrapper} XML".strip(), tuple(findings))
    kind, check = KINDS[key]
    return ValidationReport(path, f"{wrapper} {kind}".strip(), tuple(check(root)))


def _dicom(path: Path) -> ValidationReport:
    tool = shutil.which("dciodvfy")
    if tool is None:
        note = Finding(INFO, "", "dciodvfy is not on PATH; the IOD was not checked", "dciodvfy")
        return ValidationReport(path, "DICOM file", (note,))
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
    findings = []
    for line in (run.stdout + run.stderr).splitlines():
        level, _, message = line.partition(" - ")
        severity = {"Error": ERROR, "Warning": WARNING}.get(level.strip())
        if severity:
            findings.append(Finding(severity, "", message.strip(), "dciodvfy (PS3.3 IODs)"))
    return ValidationReport(path, "DICOM file", tuple(findings))


def validate_file(path: Path) -> ValidationReport:
    """Detect what ``path`` holds and report every finding about it."""
    data = path.read_bytes()
    if data[128:132] == b"DICM":
        return _dicom(path)
    root = _mime_root(data)
    if root is not None:
        return _xml(path, root, "MIME package,")
    return _xml(path, data, "")


def format_report(report: ValidationReport) -> str:
    """The report as the CLI prints it: a header line, then one line per finding."""
    verdict = "valid" if report.ok else "INVALID"
    lines = [f"{report.path}: {report.kind}: {verdict} ({len(report.findings)} findings)"]
    for f in report.findings:
        where = f" at {f.location}" if f.location else ""
        source = f" [{f.source}]" if f.source else ""
        lines.append(f"  {f.severity.upper():7} {f.message}{where}{source}")
    return "\n".join(lines)


__all__ = ["Finding", "ValidationReport", "format_report", "validate_file"]
