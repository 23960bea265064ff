"""registry/hl7v3.py: reading ITI-44 messages (ITI TF-2 3.44.4.1.2, 3.44.4.2.2) and
building the MCCI_IN000002UV01 acknowledgement, from the fixtures in
tests/fixtures/hl7v3."""

from __future__ import annotations

from pathlib import Path
from string import Template

import pytest
from lxml import etree

from registry.hl7v3 import (
    ERROR_CONDITION_SYSTEM,
    NS_HL7,
    AckCode,
    Acknowledgement,
    AcknowledgementDetail,
    ErrorCondition,
    Hl7v3MessageError,
    InstanceIdentifier,
    Interaction,
    build_acknowledgement,
    parse_acknowledgement,
    parse_feed_message,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7v3"
AUTHORITY = "1.3.6.1.4.1.21367.13.20.1000"
V3 = f"{{{NS_HL7}}}"


def message(interaction: Interaction, **values: str) -> etree._Element:
    defaults = dict(
        message_id="MSG-1",
        patient_id="ALPHA-1",
        surviving_id="ALPHA-1",
        subsumed_id="ALPHA-2",
        authority=AUTHORITY,
    )
    text = Template((FIXTURES / f"{interaction}.xml").read_text()).substitute(defaults | values)
    return etree.fromstring(text.encode())


def test_patient_added_is_read() -> None:
    parsed = parse_feed_message(message(Interaction.PATIENT_ADDED))
    assert parsed.interaction == Interaction.PATIENT_ADDED
    assert parsed.message_id == InstanceIdentifier("1.2.840.114350.1.13.0.1.7.1.1", "MSG-1")
    assert parsed.processing_code == "P"
    assert (parsed.sender, parsed.receiver) == (
        "1.3.6.1.4.1.21367.13.10.1",
        "1.3.6.1.4.1.21367.13.10.2",
    )
    assert parsed.patient.ids == (
        InstanceIdentifier(AUTHORITY, "ALPHA-1"),
        InstanceIdentifier("1.2.840.114350.1", "LOCAL-77"),
    )


def test_demographics_are_kept_as_text() -> None:
    parsed = parse_feed_message(message(Interaction.PATIENT_ADDED))
    assert parsed.patient.demographics == {
        "name": "Alpha^Alan",
        "administrativeGenderCode": "M",
        "birthTime": "19610617",
    }


def test_revise_is_read() -> None:
    parsed = parse_feed_message(message(Interaction.PATIENT_REVISED))
    assert parsed.interaction == Interaction.PATIENT_REVISED
    assert parsed.patient.demographics["name"] == "Alpha-Beta^Alan"


def test_merge_reads_the_prior_registration() -> None:
    parsed = parse_feed_message(message(Interaction.PATIENTS_MERGED))
    assert parsed.patient.ids == (InstanceIdentifier(AUTHORITY, "ALPHA-1"),)
    assert parsed.prior_ids == (InstanceIdentifier(AUTHORITY, "ALPHA-2"),)


def rejected(elem: etree._Element) -> Hl7v3MessageError:
    with pytest.raises(Hl7v3MessageError) as caught:
        parse_feed_message(elem)
    return caught.value


def test_unknown_interaction_is_rejected() -> None:
    elem = message(Interaction.PATIENT_ADDED)
    elem.tag = f"{V3}PRPA_IN201305UV02"
    error = rejected(elem)
    assert (error.ack, error.condition) == (
        AckCode.REJECT,
        ErrorCondition.UNSUPPORTED_MESSAGE_TYPE,
    )


def test_interaction_id_must_match_the_root_element() -> None:
    elem = message(Interaction.PATIENT_ADDED)
    elem.find(f"{V3}interactionId").set("extension", "PRPA_IN201304UV02")
    assert rejected(elem).location == "interactionId"


def test_message_id_is_required() -> None:
    elem = message(Interaction.PATIENT_ADDED)
    elem.remove(elem.find(f"{V3}id"))
    error = rejected(elem)
    assert (error.ack, error.condition) == (AckCode.REJECT, ErrorCondition.REQUIRED_FIELD_MISSING)


def test_unsupported_processing_code_is_rejected() -> None:
    elem = message(Interaction.PATIENT_ADDED)
    elem.find(f"{V3}processingCode").set("code", "X")
    assert rejected(elem).condition == ErrorCondition.UNSUPPORTED_PROCESSING_ID


def test_patient_id_is_required() -> None:
    elem = message(Interaction.PATIENT_ADDED)
    patient = next(elem.iter(f"{V3}patient"))
    for ident in patient.findall(f"{V3}id"):
        patient.remove(ident)
    error = rejected(elem)
    assert (error.ack, error.condition) == (AckCode.ERROR, ErrorCondition.REQUIRED_FIELD_MISSING)


def test_merge_needs_the_subsumed_id() -> None:
    elem = message(Interaction.PATIENTS_MERGED)
    event = next(elem.iter(f"{V3}registrationEvent"))
    event.remove(event.find(f"{V3}replacementOf"))
    assert rejected(elem).ack == AckCode.ERROR


# --- MCCI_IN000002UV01 ------------------------------------------------------------------


def acknowledgement(ack: Acknowledgement) -> etree._Element:
    return build_acknowledgement(
        ack,
        message_id=InstanceIdentifier("1.2.3.4", "ACK-1"),
        creation_time="20240105120001",
        sender="1.3.6.1.4.1.21367.13.10.2",
        receiver="1.3.6.1.4.1.21367.13.10.1",
    )


def test_acknowledgement_names_the_message_it_answers() -> None:
    target = InstanceIdentifier("1.2.840.114350.1.13.0.1.7.1.1", "MSG-1")
    elem = acknowledgement(Acknowledgement(AckCode.ACCEPT, target))
    assert elem.tag == f"{V3}MCCI_IN000002UV01"
    assert elem.find(f"{V3}interactionId").get("extension") == "MCCI_IN000002UV01"
    ack = elem.find(f"{V3}acknowledgement")
    assert ack.find(f"{V3}typeCode").get("code") == "AA"
    target_id = ack.find(f"{V3}targetMessage/{V3}id")
    assert (target_id.get("root"), target_id.get("extension")) == (target.root, target.extension)


def test_acknowledgement_is_addressed_back_to_the_sender() -> None:
    elem = acknowledgement(Acknowledgement(AckCode.ACCEPT, None))
    receiver = elem.find(f"{V3}receiver/{V3}device/{V3}id")
    sender = elem.find(f"{V3}sender/{V3}device/{V3}id")
    assert (receiver.get("root"), sender.get("root")) == (
        "1.3.6.1.4.1.21367.13.10.1",
        "1.3.6.1.4.1.21367.13.10.2",
    )


def test_acknowledgement_detail_carries_a_table_0357_code() -> None:
    detail = AcknowledgementDetail(ErrorCondition.UNKNOWN_KEY_IDENTIFIER, "unknown", "patient/id")
    elem = acknowledgement(Acknowledgement(AckCode.ERROR, None, (detail,)))
    code = elem.find(f"{V3}acknowledgement/{V3}acknowledgementDetail/{V3}code")
    assert (code.get("code"), code.get("codeSystem")) == ("204", ERROR_CONDITION_SYSTEM)


def test_acknowledgement_round_trips() -> None:
    detail = AcknowledgementDetail(ErrorCondition.DUPLICATE_KEY_IDENTIFIER, "twice", "id")
    ack = Acknowledgement(AckCode.ERROR, InstanceIdentifier("1.2", "x"), (detail,))
    assert parse_acknowledgement(acknowledgement(ack)) == ack
