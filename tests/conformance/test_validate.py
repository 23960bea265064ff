"""conformance/validate.py: kind detection, schema and XDS rule findings, DICOM files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import mtom_request, render  # noqa: E402

from conformance.validate import ERROR, format_report, reference_dir, validate_file  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _register_envelope() -> bytes:
    return render(
        "iti42_register.xml",
        message_id="urn:uuid:0b6e9c1e-1a8e-4d5b-9b7a-3f1f2a1b4c5d",
        to="http://localhost/xds/registry",
        patient_id="P1^^^&1.3.6.1.4.1.21367.13.20.3000&ISO",
        ss_unique_id="1.3.6.1.4.1.21367.13.50.1",
        source_id="1.3.6.1.4.1.21367.13.50",
        creation_time="20240101120000",
        doc_unique_id="1.3.6.1.4.1.21367.13.50.2",
        mime_type="text/plain",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Registered",
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=0,
        repository_unique_id="1.3.6.1.4.1.21367.13.40.3000",
    )


def _needs_schemas() -> None:
    if not (reference_dir() / "schemas" / "nist-toolkit" / "v3").is_dir():
        import os

        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail("XDSI_REQUIRE_INTEROP=1 but the reference schemas are missing")
        pytest.skip("reference schemas are missing")


def test_valid_register_envelope_has_no_errors(tmp_path: Path) -> None:
    _needs_schemas()
    path = tmp_path / "iti42.xml"
    path.write_bytes(_register_envelope())
    report = validate_file(path)
    assert report.ok, format_report(report)
    assert "SOAP 1.2 envelope" in report.kind and "ITI-42" in report.kind


def test_mime_package_is_opened_to_its_root_part(tmp_path: Path) -> None:
    content_type, body = mtom_request(
        _register_envelope(), [], "urn:ihe:iti:2007:RegisterDocumentSet-b"
    )
    path = tmp_path / "iti42.mime"
    path.write_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    assert validate_file(path).kind.startswith("MIME package")


def test_xds_rule_violation_names_the_rule_and_its_source() -> None:
    report = validate_file(FIXTURES / "ebxml" / "iti42_symbolic.xml")
    sizes = [f for f in report.findings if f.severity == ERROR and "size" in f.message]
    assert (
        sizes and "ITI TF-3" in sizes[0].source and "XDSRegistryMetadataError" in sizes[0].message
    )


def test_schema_violation_is_reported_with_its_line(tmp_path: Path) -> None:
    _needs_schemas()
    path = tmp_path / "query.xml"
    path.write_text(
        '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0">'
        '<query:ResponseOption returnType="LeafClass"/></query:AdhocQueryRequest>'
    )
    report = validate_file(path)
    assert not report.ok and report.findings[0].location.startswith("line ")


def test_not_xml_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.xml"
    path.write_text("<unclosed")
    assert not validate_file(path).ok


def test_unknown_message_kind_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "other.xml"
    path.write_text("<Other/>")
    assert "knows" in validate_file(path).findings[0].message


def test_dicom_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "image.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x00\x00UL\x04\x00\x00\x00\x00\x00")
    assert validate_file(path).kind == "DICOM file"


def test_format_report_marks_an_invalid_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.xml"
    path.write_text("<unclosed")
    assert "INVALID" in format_report(validate_file(path)).splitlines()[0]
