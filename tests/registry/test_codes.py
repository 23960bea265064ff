"""Affinity-domain code validation (issue: ITI TF-3 4.2.3.1.2): the code set file, each
checked attribute, and the registry refusing what the set does not list."""

from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree
from registry_builders import document_entry, folder, known_patients, submission_set, submit
from sqlalchemy.orm import Session

from ebxml.errors import ErrorCode
from ebxml.model import Association, Code, Submission
from ebxml.vocabulary import AssociationType
from registry.codes import CodeSet, CodeType, check_codes, load_code_set, parse_code_set
from registry.service import DocumentRegistry, RegistryConfig

REFERENCE_CODES = (
    Path(__file__).parents[3] / "shared/reference/testkit/environment/default/codes.xml"
)
# The codes the registry_builders fixtures use, in the code set file layout
CODES_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<Codes>
  <CodeType name="classCode" classScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a">
    <Code code="IMG" display="Imaging" codingScheme="1.3.6.1.4.1.19376.1.2.6.1"/>
  </CodeType>
  <CodeType name="typeCode">
    <Code code="18748-4" display="Diagnostic imaging study" codingScheme="2.16.840.1.113883.6.1"/>
  </CodeType>
  <CodeType name="formatCode">
    <Code code="1.2.840.10008.5.1.4.1.1.88.59" codingScheme="1.2.840.10008.2.6.1"/>
  </CodeType>
  <CodeType name="healthcareFacilityTypeCode">
    <Code code="RADDX" codingScheme="2.16.840.1.113883.5.11"/>
  </CodeType>
  <CodeType name="practiceSettingCode">
    <Code code="R-3027B" codingScheme="SRT"/>
  </CodeType>
  <CodeType name="eventCodeList">
    <Code code="CT" codingScheme="1.2.840.10008.2.16.4"/>
    <Code code="T-D3000" codingScheme="SRT"/>
  </CodeType>
  <CodeType name="confidentialityCode">
    <Code code="N" codingScheme="2.16.840.1.113883.5.25"/>
  </CodeType>
  <CodeType name="contentTypeCode">
    <Code code="Imaging" codingScheme="1.3.6.1.4.1.21367.100.1"/>
  </CodeType>
  <CodeType name="folderCodeList">
    <Code code="Referrals" codingScheme="1.3.6.1.4.1.21367.100.1"/>
  </CodeType>
  <CodeType name="associationDocumentation">
    <Code code="Corrected_Information" codingScheme="1.3.6.1.4.1.21367.2017.3"/>
  </CodeType>
  <CodeType name="mimeType">
    <Code code="application/dicom" ext="dcm"/>
  </CodeType>
</Codes>
"""
UNLISTED = Code("NOT-LISTED", "1.2.3.4.5", "Not listed")


@pytest.fixture(scope="module")
def code_set() -> CodeSet:
    return parse_code_set(io.BytesIO(CODES_XML))


def valid() -> Submission:
    return submit(folders=(folder(),))


def codes(submission: Submission, code_set: CodeSet) -> list[ErrorCode]:
    return [e.code for e in check_codes(submission, code_set)]


def with_entry(**changes: object) -> Submission:
    return submit(document_entry(**changes))


def test_valid_submission_has_listed_codes(code_set: CodeSet) -> None:
    assert codes(valid(), code_set) == []


@pytest.mark.parametrize(
    "attribute",
    [
        "class_code",
        "type_code",
        "format_code",
        "healthcare_facility_type_code",
        "practice_setting_code",
    ],
)
def test_unlisted_single_code_is_refused(code_set: CodeSet, attribute: str) -> None:
    assert codes(with_entry(**{attribute: UNLISTED}), code_set) == [
        ErrorCode.XDSRegistryMetadataError
    ]


@pytest.mark.parametrize("attribute", ["event_codes", "confidentiality_codes"])
def test_unlisted_code_among_several_is_refused(code_set: CodeSet, attribute: str) -> None:
    listed = getattr(document_entry(), attribute)
    assert codes(with_entry(**{attribute: (*listed, UNLISTED)}), code_set) == [
        ErrorCode.XDSRegistryMetadataError
    ]


def test_listed_code_in_other_scheme_is_refused(code_set: CodeSet) -> None:
    wrong_scheme = Code("IMG", "1.2.3.4.5", "Imaging")
    assert codes(with_entry(class_code=wrong_scheme), code_set) == [
        ErrorCode.XDSRegistryMetadataError
    ]


def test_unlisted_content_type_code_is_refused(code_set: CodeSet) -> None:
    sub = submit(ss=submission_set(content_type_code=UNLISTED))
    assert codes(sub, code_set) == [ErrorCode.XDSRegistryMetadataError]


def test_unlisted_folder_code_is_refused(code_set: CodeSet) -> None:
    sub = submit(folders=(folder(code_list=(UNLISTED,)),))
    assert codes(sub, code_set) == [ErrorCode.XDSRegistryMetadataError]


def test_unlisted_mime_type_is_refused(code_set: CodeSet) -> None:
    assert codes(with_entry(mime_type="application/x-unlisted"), code_set) == [
        ErrorCode.XDSRegistryMetadataError
    ]


def test_unlisted_association_documentation_is_refused(code_set: CodeSet) -> None:
    sub = valid()
    first = replace(sub.associations[0], documentation=UNLISTED)
    sub = replace(sub, associations=(first, *sub.associations[1:]))
    assert codes(sub, code_set) == [ErrorCode.XDSRegistryMetadataError]


def test_error_names_the_offending_code(code_set: CodeSet) -> None:
    (error,) = check_codes(with_entry(type_code=UNLISTED), code_set)
    assert "typeCode" in error.context and "NOT-LISTED" in error.context


def test_error_location_is_the_object(code_set: CodeSet) -> None:
    sub = with_entry(type_code=UNLISTED)
    (error,) = check_codes(sub, code_set)
    assert error.location == sub.document_entries[0].entry_uuid


def test_code_type_missing_from_file_is_not_checked() -> None:
    only_class = (
        b'<Codes><CodeType name="classCode"><Code code="X" codingScheme="S"/></CodeType></Codes>'
    )
    code_set = parse_code_set(io.BytesIO(only_class))
    assert codes(with_entry(class_code=Code("X", "S"), type_code=UNLISTED), code_set) == []


def test_file_without_codes_root_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_code_set(io.BytesIO(b"<Other/>"))


def test_file_entities_are_not_expanded(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("IMG")
    text = (
        f'<!DOCTYPE Codes [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<Codes><CodeType name="classCode"><Code code="&x;" codingScheme="S"/></CodeType></Codes>'
    ).encode()
    try:
        code_set = parse_code_set(io.BytesIO(text))
    except etree.XMLSyntaxError:
        return  # refused outright: nothing was read from the file
    assert ("IMG", "S") not in code_set.codes[CodeType.CLASS_CODE]


def test_reference_codes_file_is_read() -> None:
    if not REFERENCE_CODES.exists():
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail(f"{REFERENCE_CODES} is missing")
        pytest.skip("reference codes.xml not present")
    code_set = load_code_set(REFERENCE_CODES)
    assert code_set.allows(
        CodeType.FORMAT_CODE, Code("urn:ihe:iti:dsg:detached:2014", "1.3.6.1.4.1.19376.1.2.3")
    )
    assert code_set.allows_mime_type("application/dicom")
    assert set(CodeType) <= {*code_set.codes, CodeType.MIME_TYPE}


# --- the registry with a code set (both databases) --------------------------------------


@pytest.fixture
def checking_registry(engine, session: Session, code_set: CodeSet) -> DocumentRegistry:  # noqa: ANN001
    known_patients(session)
    return DocumentRegistry(engine, RegistryConfig(code_set=code_set))


def test_registry_accepts_listed_codes(checking_registry: DocumentRegistry) -> None:
    assert checking_registry.register(valid()).ok


def test_registry_refuses_unlisted_code(checking_registry: DocumentRegistry) -> None:
    response = checking_registry.register(with_entry(class_code=UNLISTED))
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryMetadataError]


def test_registry_does_not_check_codes_by_default(
    registry: DocumentRegistry, session: Session
) -> None:
    known_patients(session)
    assert registry.register(with_entry(class_code=UNLISTED)).ok


def test_registry_checks_codes_of_on_demand_entries(checking_registry: DocumentRegistry) -> None:
    from ebxml.vocabulary import DOC_ENTRY_ON_DEMAND, Transaction

    entry = document_entry(object_type=DOC_ENTRY_ON_DEMAND, hash=None, size=None)
    entry = replace(entry, creation_time=None, type_code=UNLISTED)
    response = checking_registry.register(submit(entry), transaction=Transaction.ITI61)
    assert [e.code for e in response.errors] == [ErrorCode.XDSRegistryMetadataError]


def test_association_type_is_not_a_code(code_set: CodeSet) -> None:
    # associationType is a fixed vocabulary (ITI TF-3 4.2.2), never an affinity-domain code
    sub = valid()
    assert all(isinstance(a, Association) for a in sub.associations)
    assert AssociationType.HAS_MEMBER not in {c for pairs in code_set.codes.values() for c in pairs}
