"""Affinity-domain code sets: the coded values a registry accepts (off by default).

ITI TF-3 4.2.3.1.2 leaves the value sets of the coded attributes (classCode, typeCode,
formatCode, ...) to the XDS Affinity Domain; a registry that knows them may refuse other
values with ``XDSRegistryMetadataError`` (ITI TF-3 Table 4.2.4.1-2).  The code set file
has the layout of the NIST XDS Toolkit's ``codes.xml``::

    <Codes>
      <CodeType name="classCode" classScheme="urn:uuid:41a5887f-...">
        <Code code="REPORTS" display="Reports" codingScheme="1.3.6.1.4.1.21367.100.1"/>
      </CodeType>
      <CodeType name="mimeType">
        <Code code="application/pdf" ext="pdf"/>
      </CodeType>
    </Codes>

A value is allowed when its (code, codingScheme) pair is listed under the CodeType of its
attribute; mimeType values are listed by code alone.  An attribute whose CodeType the
file does not have is not checked.  Parsing is the only I/O; checking reads the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO

from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import Code, Submission


class CodeType(StrEnum):
    """The CodeType names of the code set file, each an ITI TF-3 4.2.3 attribute."""

    CLASS_CODE = "classCode"  # ITI TF-3 4.2.3.2.3
    CONFIDENTIALITY_CODE = "confidentialityCode"  # 4.2.3.2.5
    EVENT_CODE_LIST = "eventCodeList"  # 4.2.3.2.8
    FORMAT_CODE = "formatCode"  # 4.2.3.2.9
    HEALTHCARE_FACILITY_TYPE_CODE = "healthcareFacilityTypeCode"  # 4.2.3.2.11
    PRACTICE_SETTING_CODE = "practiceSettingCode"  # 4.2.3.2.17
    TYPE_CODE = "typeCode"  # 4.2.3.2.25
    MIME_TYPE = "mimeType"  # 4.2.3.2.15
    CONTENT_TYPE_CODE = "contentTypeCode"  # 4.2.3.3.4
    FOLDER_CODE_LIST = "folderCodeList"  # 4.2.3.4.1
    ASSOCIATION_DOCUMENTATION = "associationDocumentation"  # 4.2.2.2 (ITI-57)


@dataclass(frozen=True, slots=True)
class CodeSet:
    """The allowed values per CodeType: (code, codingScheme) pairs, and bare mimeTypes."""

    codes: Mapping[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    mime_types: frozenset[str] | None = None  # None: the file lists no mimeType

    def allows(self, code_type: CodeType, code: Code) -> bool:
        allowed = self.codes.get(code_type)
        return allowed is None or (code.code, code.scheme) in allowed

    def allows_mime_type(self, mime_type: str) -> bool:
        return self.mime_types is None or mime_type in self.mime_types


def parse_code_set(source: str | Path | IO[bytes]) -> CodeSet:
    """A code set file (the NIST XDS Toolkit ``codes.xml`` layout) -> CodeSet; parsed
    without entity expansion or network access."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(source) if isinstance(source, Path) else source, parser).getroot()
    if etree.QName(root).localname != "Codes":
        raise ValueError(f"a code set file has a Codes root element, not {root.tag}")
    codes: dict[str, set[tuple[str, str]]] = {}
    mime_types: set[str] | None = None
    for code_type in root.iterchildren("{*}CodeType", "CodeType"):
        name = code_type.get("name", "")
        listed = list(code_type.iterchildren("{*}Code", "Code"))
        if name == CodeType.MIME_TYPE:
            mime_types = (mime_types or set()) | {c.get("code", "") for c in listed}
        else:
            pairs = {(c.get("code", ""), c.get("codingScheme", "")) for c in listed}
            codes.setdefault(name, set()).update(pairs)
    return CodeSet(
        {name: frozenset(pairs) for name, pairs in codes.items()},
        None if mime_types is None else frozenset(mime_types),
    )


def load_code_set(path: str | Path) -> CodeSet:
    """The code set of the file at ``path`` (read once, at startup)."""
    return parse_code_set(Path(path))


@dataclass(frozen=True, slots=True)
class _Coded:
    """One coded attribute: where it lives and which CodeType lists its values."""

    kind: str  # object kind, for messages
    attribute: str
    code_type: CodeType
    values: Callable[[object], tuple[Code, ...]]


def _one(code: Code | None) -> tuple[Code, ...]:
    return () if code is None else (code,)


_DOCUMENT_ENTRY: tuple[_Coded, ...] = (
    _Coded("DocumentEntry", "classCode", CodeType.CLASS_CODE, lambda d: _one(d.class_code)),
    _Coded("DocumentEntry", "typeCode", CodeType.TYPE_CODE, lambda d: _one(d.type_code)),
    _Coded("DocumentEntry", "formatCode", CodeType.FORMAT_CODE, lambda d: _one(d.format_code)),
    _Coded(
        "DocumentEntry",
        "healthcareFacilityTypeCode",
        CodeType.HEALTHCARE_FACILITY_TYPE_CODE,
        lambda d: _one(d.healthcare_facility_type_code),
    ),
    _Coded(
        "DocumentEntry",
        "practiceSettingCode",
        CodeType.PRACTICE_SETTING_CODE,
        lambda d: _one(d.practice_setting_code),
    ),
    _Coded("DocumentEntry", "eventCodeList", CodeType.EVENT_CODE_LIST, lambda d: d.event_codes),
    _Coded(
        "DocumentEntry",
        "confidentialityCode",
        CodeType.CONFIDENTIALITY_CODE,
        lambda d: d.confidentiality_codes,
    ),
)
_SUBMISSION_SET = (
    _Coded(
        "SubmissionSet",
        "contentTypeCode",
        CodeType.CONTENT_TYPE_CODE,
        lambda s: _one(s.content_type_code),
    ),
)
_FOLDER = (_Coded("Folder", "codeList", CodeType.FOLDER_CODE_LIST, lambda f: f.code_list),)
_ASSOCIATION = (
    _Coded(
        "Association",
        "associationDocumentation",
        CodeType.ASSOCIATION_DOCUMENTATION,
        lambda a: _one(a.documentation),
    ),
)


def _objects(submission: Submission) -> Iterator[tuple[object, tuple[_Coded, ...]]]:
    if submission.submission_set is not None:
        yield submission.submission_set, _SUBMISSION_SET
    yield from ((d, _DOCUMENT_ENTRY) for d in submission.document_entries)
    yield from ((f, _FOLDER) for f in submission.folders)
    yield from ((a, _ASSOCIATION) for a in submission.associations)


def check_codes(submission: Submission, code_set: CodeSet) -> list[RegistryError]:
    """Every coded value of ``submission`` the affinity domain does not list, each as an
    ``XDSRegistryMetadataError`` naming the code (ITI TF-3 4.2.3.1.2)."""
    errors = []
    for obj, coded in _objects(submission):
        location = obj.entry_uuid  # type: ignore[attr-defined]
        for attribute in coded:
            for code in attribute.values(obj):
                if not code_set.allows(attribute.code_type, code):
                    errors.append(
                        RegistryError(
                            ErrorCode.XDSRegistryMetadataError,
                            f"{attribute.kind} {location} {attribute.attribute} "
                            f"{code.code!r} (codingScheme {code.scheme!r}) is not a "
                            f"{attribute.code_type} of the affinity domain "
                            "[affinity-domain-code; ITI TF-3 4.2.3.1.2]",
                            location,
                        )
                    )
    for entry in submission.document_entries:
        if entry.mime_type is not None and not code_set.allows_mime_type(entry.mime_type):
            errors.append(
                RegistryError(
                    ErrorCode.XDSRegistryMetadataError,
                    f"DocumentEntry {entry.entry_uuid} mimeType {entry.mime_type!r} is not a "
                    "mimeType of the affinity domain [affinity-domain-code; ITI TF-3 4.2.3.2.15]",
                    entry.entry_uuid,
                )
            )
    return errors


__all__ = ["CodeSet", "CodeType", "check_codes", "load_code_set", "parse_code_set"]
