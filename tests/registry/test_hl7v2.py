"""HL7 v2 parsing, escaping and message building (registry/hl7v2.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.hl7v2 import (
    DEFAULT_ENCODING,
    AckCode,
    AckError,
    Encoding,
    ErrorCondition,
    Hl7ParseError,
    UnknownCharacterSet,
    build_ack,
    build_adt_a01,
    join_field,
    parse_message,
    split_field,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7v2"
AA = "1.3.6.1.4.1.21367.2005.13.20.1000"


def fixture(name: str, charset: str = "utf-8", **values: str) -> bytes:
    """An annotated fixture as wire bytes: notes dropped, segments CR-terminated."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    segments = [line for line in lines if line and not line.startswith("#")]
    text = "".join(s + "\r" for s in segments)
    return text.format(aa=AA, **values).encode(charset)


A01 = fixture("adt_a01.hl7", pid="PAT-1")


# --- structure ---------------------------------------------------------------------------


def test_msh_fields_are_numbered_as_the_standard_numbers_them() -> None:
    msg = parse_message(A01)
    assert msg.get("MSH", 1) == "|"
    assert msg.get("MSH", 2) == "^~\\&"
    assert msg.get("MSH", 3) == "PAT_SOURCE"
    assert (msg.message_type, msg.trigger_event) == ("ADT", "A01")
    assert msg.get("MSH", 9, 3) == "ADT_A01"
    assert (msg.control_id, msg.processing_id, msg.version) == ("MSG-A01-0001", "P", "2.3.1")


def test_segments_are_kept_in_order() -> None:
    assert [s.name for s in parse_message(A01).segments] == ["MSH", "EVN", "PID", "PV1"]


def test_pid3_repetitions_are_split_into_components_and_subcomponents() -> None:
    reps = parse_message(A01).repetitions("PID", 3)
    assert len(reps) == 2
    assert reps[0][0] == ("PAT-1",)
    assert reps[0][3] == ("", AA, "ISO")
    assert reps[1][0] == ("MRN-778",)
    assert reps[1][4] == ("MR",)


def test_get_addresses_repetition_component_and_subcomponent() -> None:
    msg = parse_message(A01)
    assert msg.get("PID", 3, 4, 2, repetition=2) == "1.2.840.99999.1"


def test_absent_values_are_empty() -> None:
    msg = parse_message(A01)
    assert msg.get("PID", 3, 9, repetition=5) == ""
    assert msg.get("ZZZ", 1) == ""
    assert msg.repetitions("MRG", 1) == ()


def test_lf_and_crlf_segment_separators_are_tolerated() -> None:
    for separator in (b"\n", b"\r\n"):
        msg = parse_message(A01.replace(b"\r", separator))
        assert [s.name for s in msg.segments] == ["MSH", "EVN", "PID", "PV1"]


def test_custom_encoding_characters_are_read_from_msh() -> None:
    msg = parse_message(fixture("adt_a01_custom_encoding.hl7", pid="PAT-2"))
    assert msg.encoding == Encoding("*", "!", "@", "%", "$")
    assert msg.get("MSH", 2) == "!@%$"
    assert msg.trigger_event == "A01"
    assert msg.get("PID", 3, 4, 2) == AA
    assert msg.get("PID", 3, 1, repetition=2) == "LOCAL7"


def test_escapes_are_resolved_after_splitting() -> None:
    msg = parse_message(fixture("adt_a01_custom_encoding.hl7", pid="PAT-2"))
    assert msg.get("PID", 5, 1) == "O!BRIEN$%*@"
    assert msg.get("PID", 5, 2) == "PAT"


def test_message_must_start_with_msh() -> None:
    with pytest.raises(Hl7ParseError):
        parse_message(b"EVN|A01\rPID|||1\r")


def test_encoding_characters_must_be_distinct() -> None:
    with pytest.raises(Hl7ParseError):
        parse_message(b"MSH|^^\\&|A|B\r")


def test_encoding_characters_must_not_be_alphanumeric() -> None:
    with pytest.raises(Hl7ParseError):
        parse_message(b"MSH|^~A&|A|B\r")


def test_segment_ids_must_be_three_characters() -> None:
    with pytest.raises(Hl7ParseError):
        parse_message(A01 + b"not a segment\r")


# --- escapes (HL7 v2.3.1 2.9) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("escaped", "text"),
    [
        ("A\\F\\B", "A|B"),
        ("A\\S\\B", "A^B"),
        ("A\\T\\B", "A&B"),
        ("A\\R\\B", "A~B"),
        ("A\\E\\B", "A\\B"),
        ("\\X41424344\\", "ABCD"),
        ("\\H\\bold\\N\\", "bold"),
        ("line\\.br\\next", "linenext"),
        ("open \\F", "open \\F"),
        ("\\Q\\", "\\Q\\"),
    ],
)
def test_unescape(escaped: str, text: str) -> None:
    assert DEFAULT_ENCODING.unescape(escaped) == text


def test_escape_text_escapes_every_delimiter() -> None:
    assert DEFAULT_ENCODING.escape_text("a|b^c&d~e\\f") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_unescape_inverts_escape_text(text: str) -> None:
    assert DEFAULT_ENCODING.unescape(DEFAULT_ENCODING.escape_text(text)) == text


def test_join_field_inverts_split_field() -> None:
    raw = "DOE^JOHN\\S\\JR~X^^^&1.2&ISO"
    assert join_field(split_field(raw)) == raw


# --- character sets (MSH-18, HL7 Table 0211) -----------------------------------------------


def test_utf8_declared_in_msh18_is_decoded() -> None:
    msg = parse_message(fixture("adt_a01_utf8.hl7", pid="PAT-3"))
    assert msg.character_set == "UNICODE UTF-8"
    assert (msg.get("PID", 5, 1), msg.get("PID", 5, 2)) == ("MÜLLER", "ZOË")


def test_latin1_declared_in_msh18_is_decoded() -> None:
    text = fixture("adt_a01_utf8.hl7", pid="PAT-3").decode("utf-8")
    data = text.replace("UNICODE UTF-8", "8859/1").encode("latin-1")
    assert parse_message(data).get("PID", 5, 1) == "MÜLLER"


def test_without_msh18_utf8_is_read_when_valid() -> None:
    text = fixture("adt_a01_utf8.hl7", pid="PAT-3").decode("utf-8")
    data = text.replace("UNICODE UTF-8", "").encode("utf-8")
    assert parse_message(data).get("PID", 5, 2) == "ZOË"


def test_without_msh18_other_bytes_are_read_as_latin1() -> None:
    text = fixture("adt_a01_utf8.hl7", pid="PAT-3").decode("utf-8")
    data = text.replace("UNICODE UTF-8", "").encode("latin-1")
    assert parse_message(data).get("PID", 5, 2) == "ZOË"


def test_unknown_character_set_is_refused() -> None:
    data = A01.replace(b"|2.3.1", b"|2.3.1||||||KLINGON")
    with pytest.raises(UnknownCharacterSet):
        parse_message(data)


# --- ACK (HL7 v2.3.1 2.13.1, ITI TF-2x C.2.3) ---------------------------------------------


def ack(data: bytes, code: AckCode, *errors: AckError, text: str = "") -> str:
    return build_ack(
        parse_message(data),
        code,
        control_id="ACK-1",
        timestamp="20260101120001+0000",
        errors=errors,
        text=text,
    )


def test_ack_swaps_sender_and_receiver_and_echoes_control_id() -> None:
    assert ack(A01, AckCode.ACCEPT) == (
        "MSH|^~\\&|XDS_REGISTRY|AFFINITY|PAT_SOURCE|HOSPITAL|20260101120001+0000||"
        "ACK^A01^ACK|ACK-1|P|2.3.1\r"
        "MSA|AA|MSG-A01-0001\r"
    )


def test_ack_v231_error_uses_err1_eld() -> None:
    error = AckError(ErrorCondition.UNSUPPORTED_VERSION_ID, "", "MSH", 1, 12)
    assert ack(A01, AckCode.REJECT, error).endswith(
        "MSA|AR|MSG-A01-0001\rERR|MSH^1^12^203&Unsupported version id&HL70357\r"
    )


def test_ack_v25_error_uses_err2_err3_err4() -> None:
    data = A01.replace(b"|2.3.1", b"|2.5")
    error = AckError(ErrorCondition.UNKNOWN_KEY_IDENTIFIER, "no such patient", "PID", 1, 3)
    assert ack(data, AckCode.ERROR, error).endswith(
        "MSA|AE|MSG-A01-0001\rERR||PID^1^3|204^no such patient^HL70357|E\r"
    )


def test_ack_to_v23_has_no_message_structure() -> None:
    data = A01.replace(b"|2.3.1", b"|2.3")
    assert "|ACK^A01|ACK-1|P|2.3\r" in ack(data, AckCode.ACCEPT)


def test_ack_text_goes_to_msa3_escaped() -> None:
    assert "MSA|AA|MSG-A01-0001|a\\F\\b\r" in ack(A01, AckCode.ACCEPT, text="a|b")


def test_ack_keeps_the_request_encoding_characters() -> None:
    data = fixture("adt_a01_custom_encoding.hl7", pid="PAT-2")
    assert ack(data, AckCode.ACCEPT) == (
        "MSH*!@%$*XDS_REGISTRY*AFFINITY*PAT_SOURCE*HOSPITAL*20260101120001+0000**"
        "ACK!A01!ACK*ACK-1*P*2.3.1\r"
        "MSA*AA*MSG-CUSTOM-1\r"
    )


def test_ack_echoes_a_known_character_set() -> None:
    data = fixture("adt_a01_utf8.hl7", pid="PAT-3")
    assert ack(data, AckCode.ACCEPT).split("\r")[0].endswith("|2.5||||||UNICODE UTF-8")


def test_ack_without_a_readable_request_is_generic() -> None:
    text = build_ack(
        None,
        AckCode.REJECT,
        control_id="ACK-2",
        timestamp="20260101120001+0000",
        errors=(AckError(ErrorCondition.SEGMENT_SEQUENCE_ERROR, "no MSH"),),
        sending_application="XDSI",
        sending_facility="REG",
    )
    assert text == (
        "MSH|^~\\&|XDSI|REG|||20260101120001+0000||ACK|ACK-2|P|2.3.1\r"
        "MSA|AR\r"
        "ERR|^^^100&no MSH&HL70357\r"
    )


# --- ADT^A01 builder (xdsi patients add) ------------------------------------------------------


def test_build_adt_a01_bytes() -> None:
    data = build_adt_a01(
        f"P-9^^^&{AA}&ISO",
        control_id="CLI-1",
        timestamp="20260101120000",
        name="DOE^JANE",
        birth_date="19900101",
        sex="F",
    )
    assert (
        data
        == (
            "MSH|^~\\&|XDSI|XDSI|||20260101120000||ADT^A01^ADT_A01|CLI-1|P|2.3.1||||||UNICODE UTF-8\r"
            "EVN|A01|20260101120000\r"
            f"PID|||P-9^^^&{AA}&ISO||DOE^JANE||19900101|F\r"
            "PV1||I\r"
        ).encode()
    )


def test_build_adt_a01_fills_control_id_and_time() -> None:
    msg = parse_message(build_adt_a01(f"P-9^^^&{AA}&ISO"))
    assert 0 < len(msg.control_id) <= 20
    assert len(msg.get("MSH", 7)) == len("20260101120000+0000")


def test_build_adt_a01_parses_back() -> None:
    msg = parse_message(build_adt_a01(f"P-9^^^&{AA}&ISO", control_id="C", timestamp="2026"))
    assert (msg.trigger_event, msg.get("PID", 3, 1), msg.get("PID", 3, 4, 2)) == ("A01", "P-9", AA)
