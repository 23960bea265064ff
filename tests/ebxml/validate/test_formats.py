"""Value formats (ITI TF-3 Table 4.2.3.1.7-2): each format with good and bad values."""

from __future__ import annotations

import uuid

import pytest

from ebxml.model import Code
from ebxml.validate import formats
from ebxml.validate.formats import FORMAT_CHECKS, Format, check, code_problem

GOOD = {
    Format.OID: ["1.2.3", "2.16.840.1.113883.6.1", "0.0", "129.6.58.92.1.1"],
    Format.UNIQUE_ID: ["1.3.6.1.4.1.21367.2005.3.7", "1." + "1" * 62],
    Format.DOCUMENT_UNIQUE_ID: ["1.2.3", "1.2.3^abcdefghijklmnop", "1.2.3^a"],
    Format.UUID: [
        "urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000001",
        "urn:uuid:ABCDEF01-7B1D-4D8E-9C4A-0000000000FF",
    ],
    Format.DTM: ["2024", "202402", "20240229", "2024022923", "202402292359", "20240229235959"],
    Format.SHA1: [
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "DA39A3EE5E6B4B0D3255BFEF95601890AFD80709",
    ],
    Format.SIZE: ["0", "1024"],
    Format.MIME_TYPE: [
        "text/xml",
        "application/dicom",
        "application/hl7-v3+xml",
        "text/plain; charset=UTF-8",
    ],
    Format.CX: ["PID-1^^^&1.3.6.1.4.1.21367.2005.3.7&ISO", "a\\S\\b^^^&1.2.3&ISO"],
    Format.SOURCE_CX: ["jd12323^^^wsh", "jd^^^&1.2.3&ISO"],
    Format.CXI: [
        "1.2.3^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        "ACC-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession^&1.2.4&ISO",
    ],
    Format.XCN: ["^Welby^Marcus", "11375^^^^^^^^&1.2.840.113619.6.197&ISO", "id-1"],
    Format.XON: ["Some Hospital", "Some Hospital^^^^^^^^^1.2.3.4", "Clinic^^^^^&1.2.3&ISO^^^^45"],
    Format.XTN: ["^^Internet^a@example.org", "^PRN^PH^^1^555^5551234", "^^PH^^^^^^^^^+15555551234"],
    Format.INTENDED_RECIPIENT: ["Some Hospital|^Welby", "|^Welby", "||^^Internet^a@example.org"],
    Format.LANGUAGE_CODE: [
        "en",
        "en-US",
        "de-CH-1996",
        "zh-Hant-TW",
        "es-419",
        "x-private",
        "i-klingon",
    ],
    Format.SOURCE_PATIENT_INFO: ["PID-3|pid1^^^domain", "PID-5|Doe^John^^^", "PID-8|"],
    Format.TEXT: ["http://example.org/doc"],
}
BAD = {
    Format.OID: ["", "1", "1.02", "01.2", "1..2", "1.2.", "a.b", "urn:oid:1.2.3", " 1.2.3"],
    Format.UNIQUE_ID: ["1." + "1" * 63, "1.2.03"],
    Format.DOCUMENT_UNIQUE_ID: ["1.2.3^", "1.2.3^" + "x" * 17, "x^y"],
    Format.UUID: ["0f9a3a40-7b1d-4d8e-9c4a-000000000001", "urn:uuid:0f9a3a40", "Document01"],
    Format.DTM: [
        "202",
        "2024023",
        "20240230",
        "20230229",
        "20241301",
        "2024010124",
        "202401012360",
        "20240101235960",
        "20240101120000+0100",
        "20240101120000.5",
        "2024-01-01",
        "２０２４",
    ],
    Format.SHA1: ["", "da39a3ee", "za39a3ee5e6b4b0d3255bfef95601890afd80709"],
    Format.SIZE: ["", "-1", "1.5", "ten"],
    Format.MIME_TYPE: ["", "text", "text/", "/xml", "text xml", "text/x ml"],
    Format.CX: [
        "",
        "^^^&1.2.3&ISO",
        "PID-1",
        "PID-1^^^&1.2.3&ISO^PI",
        "PID-1^1^^&1.2.3&ISO",
        "PID-1^^^NS&1.2.3&ISO",
        "PID-1^^^&1.2.3",
        "PID-1^^^&1.2.3&DNS",
        "PID-1^^^&not-oid&ISO",
    ],
    Format.SOURCE_CX: ["", "jd12323", "^^^wsh"],
    Format.CXI: ["1.2.3", "^^^^urn:ihe:iti:xds:2013:accession", "1^2^^^urn:x", "1^^^^urn:x^^extra"],
    Format.XCN: ["", "^^Marcus", "11375^^^^^^^^&1.2.3&L", "11375^^^^^^^^&x&ISO"],
    Format.XON: ["", "^^^^^^^^^1.2.3", "Hospital^L", "Hospital^^^^^^^^^local-id"],
    Format.XTN: ["", "^^Internet", "^PRN^PH", "^PRN"],
    Format.INTENDED_RECIPIENT: ["", "||", "a|b|c|d", "^L|"],
    Format.LANGUAGE_CODE: ["", "e", "english!", "en_US", "en-", "-en"],
    Format.SOURCE_PATIENT_INFO: ["", "Doe^John", "PID5|x", "PID-0|x"],
    Format.TEXT: ["", "   "],
}


def test_every_format_has_a_check_and_test_values():
    assert set(FORMAT_CHECKS) == set(Format)
    assert set(GOOD) == set(BAD) == set(Format)


@pytest.mark.parametrize("fmt, value", [(f, v) for f, values in GOOD.items() for v in values])
def test_good_value_passes(fmt, value):
    assert check(fmt, value) is None


@pytest.mark.parametrize("fmt, value", [(f, v) for f, values in BAD.items() for v in values])
def test_bad_value_gives_reason(fmt, value):
    reason = check(fmt, value)
    assert isinstance(reason, str) and reason


def test_validate_dtm_utc_is_the_dtm_check():
    assert formats.validate_dtm_utc("20240229")
    assert not formats.validate_dtm_utc("20240229T10")


def test_predicates_answer_as_bools():
    assert formats.is_oid("1.2.3") and not formats.is_oid("1.2.03")
    assert formats.is_uuid_urn("urn:uuid:0f9a3a40-7b1d-4d8e-9c4a-000000000001")
    assert formats.is_sha1("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    assert formats.is_mime_type("text/xml") and not formats.is_mime_type("xml")
    assert formats.is_patient_id("1^^^&1.2.3&ISO") and not formats.is_patient_id("1^^^A")
    assert not formats.is_unique_id_oid("1." + "1" * 63)


def test_complete_code_has_no_problem():
    assert code_problem(Code("N", "2.16.840.1.113883.5.25", "Normal")) is None


@pytest.mark.parametrize(
    "code, missing",
    [
        (Code("", "1.2.3", "Normal"), "code"),
        (Code("N", " ", "Normal"), "codingScheme"),
        (Code("N", "1.2.3", ""), "display name"),
    ],
)
def test_code_needs_code_scheme_and_display(code, missing):
    assert missing in code_problem(code)


REMEMBERED = [Format.CX, Format.SOURCE_CX, Format.CXI, Format.XCN, Format.XON, Format.XTN]


@pytest.mark.parametrize("fmt", REMEMBERED)
def test_a_kept_finding_is_the_finding_of_the_value(fmt):
    # the HL7 types' findings are kept per value: asked again, in any order, each value
    # gets its own finding, as the first time
    values = [*GOOD.get(fmt, []), *BAD.get(fmt, [])]
    first = [check(fmt, v) for v in values]
    assert [check(fmt, v) for v in reversed(values)] == first[::-1]
    assert [check(fmt, v) is None for v in values] == [v in GOOD.get(fmt, []) for v in values]


def test_a_value_longer_than_a_slot_value_is_checked_and_not_kept():
    cx = FORMAT_CHECKS[Format.CX]
    long_id = "x" * 300 + "^^^&1.2.3&ISO"
    kept = cx.cache_info().currsize  # type: ignore[attr-defined]
    assert cx(long_id) is None
    assert cx.cache_info().currsize == kept  # type: ignore[attr-defined]
    assert cx(f"{uuid.uuid4().hex}^^^&1.2.3&ISO") is None  # a value not asked before
    assert cx.cache_info().currsize == kept + 1  # type: ignore[attr-defined]
    assert cx("x" * 300 + "^^^&1.02.3&ISO") == formats.check_cx("x" * 300 + "^^^&1.02.3&ISO")
    assert cx("x" * 300 + "^^^&1.02.3&ISO") is not None
