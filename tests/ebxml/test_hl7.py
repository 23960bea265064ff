"""HL7 v2 data types: escaping, parsing and building (ebxml.hl7)."""

from __future__ import annotations

import pytest

from ebxml import hl7


@pytest.mark.parametrize(
    "plain, encoded",
    [
        ("a|b", "a\\F\\b"),
        ("a^b", "a\\S\\b"),
        ("a&b", "a\\T\\b"),
        ("a~b", "a\\R\\b"),
        ("a\\b", "a\\E\\b"),
        ("\\S\\", "\\E\\S\\E\\"),
    ],
)
def test_escape_and_unescape(plain, encoded):
    assert hl7.escape(plain) == encoded
    assert hl7.unescape(encoded) == plain


def test_unknown_escape_sequence_is_left_alone():
    assert hl7.unescape("a\\H\\b") == "a\\H\\b"


def test_parse_cx_patient_id():
    cx = hl7.parse_cx("PID-1^^^&1.2.3&ISO")
    assert cx.id_number == "PID-1"
    assert cx.assigning_authority == hl7.HD("", "1.2.3", "ISO")
    assert cx.others == ()


def test_parse_cx_unescapes_id():
    assert hl7.parse_cx("a\\S\\b^^^&1.2.3&ISO").id_number == "a^b"


def test_patient_id_builder_escapes():
    assert hl7.patient_id("a^b", "1.2.3") == "a\\S\\b^^^&1.2.3&ISO"


def test_parse_cxi_reference_id():
    cx = hl7.parse_cxi("ACC-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession^&1.2.4&ISO")
    assert cx.identifier_type_code == "urn:ihe:iti:xds:2013:accession"
    assert cx.assigning_facility.universal_id == "1.2.4"


def test_cx_keeps_unknown_components_in_position():
    cx = hl7.parse_cx("1^^^&1.2.3&ISO^^^^^^X")
    assert cx.others == ((10, "X"),)
    assert cx.encode() == "1^^^&1.2.3&ISO^^^^^^X"


def test_parse_xcn():
    xcn = hl7.parse_xcn("11375^Welby^Marcus^J^Jr. MD^Dr^^^&1.2.840.113619.6.197&ISO")
    assert (xcn.id_number, xcn.family_name, xcn.given_name, xcn.prefix) == (
        "11375",
        "Welby",
        "Marcus",
        "Dr",
    )
    assert xcn.assigning_authority.universal_id == "1.2.840.113619.6.197"


def test_xcn_family_name_subcomponents_round_trip():
    xcn = hl7.parse_xcn("1^van Dam&van^Anna")
    assert xcn.family_name == "van Dam"
    assert xcn.encode() == "1^van Dam&van^Anna"


def test_parse_xon_with_organization_identifier():
    xon = hl7.parse_xon("Some Hospital^^^^^&1.2.3&ISO^^^^45")
    assert xon.organization_name == "Some Hospital"
    assert xon.assigning_authority.universal_id == "1.2.3"
    assert xon.organization_identifier == "45"


def test_parse_xtn_email():
    xtn = hl7.parse_xtn("^NET^Internet^a@example.org")
    assert (xtn.use_code, xtn.equipment_type, xtn.communication_address) == (
        "NET",
        "Internet",
        "a@example.org",
    )


def test_parse_hd_as_components():
    assert hl7.parse_hd("NS^1.2.3^ISO", hl7.COMPONENT) == hl7.HD("NS", "1.2.3", "ISO")


@pytest.mark.parametrize(
    "value, parse",
    [
        ("PID-1^^^&1.2.3&ISO", hl7.parse_cx),
        ("^Welby^Marcus^^^Dr", hl7.parse_xcn),
        ("Some Hospital^^^^^^^^^1.2.3.4", hl7.parse_xon),
        ("^^PH^^1^555^5551234", hl7.parse_xtn),
    ],
)
def test_encode_round_trips(value, parse):
    assert parse(value).encode() == value


def test_encode_drops_trailing_empty_components():
    assert hl7.XCN(family_name="Welby").encode() == "^Welby"
