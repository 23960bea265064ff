"""atna.message: the DICOM PS3.15 A.5.1 XML, checked against the audit schema."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from atna_support import AUDIT_XSD, need
from lxml import etree

from atna.codes import (
    TRANSACTION_EVENT_TYPE,
    AuditSourceTypeCode,
    EventActionCode,
    EventID,
    EventOutcomeIndicator,
    NetworkAccessPointTypeCode,
    ParticipantObjectIDTypeCode,
    ParticipantObjectTypeCode,
    ParticipantObjectTypeCodeRole,
    RoleIDCode,
)
from atna.message import (
    ActiveParticipant,
    AuditMessage,
    AuditSourceIdentification,
    EventIdentification,
    ParticipantObjectDescription,
    ParticipantObjectDetail,
    ParticipantObjectIdentification,
    SOPClass,
    format_date_time,
    to_xml,
)
from ebxml.vocabulary import Transaction

MOMENT = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def message(**objects: object) -> AuditMessage:
    return AuditMessage(
        EventIdentification(
            EventID.EXPORT,
            MOMENT,
            EventOutcomeIndicator.SUCCESS,
            EventActionCode.READ,
            (TRANSACTION_EVENT_TYPE[Transaction.ITI41],),
        ),
        (
            ActiveParticipant(
                "http://source/reply",
                True,
                (RoleIDCode.SOURCE,),
                alternative_user_id="4711",
                network_access_point_id="10.0.0.1",
                network_access_point_type_code=NetworkAccessPointTypeCode.IP_ADDRESS,
            ),
            ActiveParticipant("https://repo/xds", False, (RoleIDCode.DESTINATION,)),
        ),
        AuditSourceIdentification("xdsi", "1.2.3", (AuditSourceTypeCode.APPLICATION_SERVER,)),
        (
            ParticipantObjectIdentification(
                "P1^^^&1.2&ISO",
                ParticipantObjectIDTypeCode.PATIENT_NUMBER,
                name="P1^^^&1.2&ISO",
                type_code=ParticipantObjectTypeCode.PERSON,
                type_code_role=ParticipantObjectTypeCodeRole.PATIENT,
                details=(ParticipantObjectDetail.text("MSH-10", "M1"),),
            ),
        ),
    )


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(need(AUDIT_XSD))))


def test_message_is_valid_against_the_dicom_audit_schema(schema: etree.XMLSchema) -> None:
    document = etree.fromstring(to_xml(message()))
    assert schema.validate(document), schema.error_log


def test_dicom_object_description_is_valid_against_the_schema(schema: etree.XMLSchema) -> None:
    study = ParticipantObjectIdentification(
        "1.2.3.4",
        ParticipantObjectIDTypeCode.STUDY_INSTANCE_UID,
        name="1.2.3.4",
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
        descriptions=(
            ParticipantObjectDescription(
                accession_numbers=("A1",),
                sop_classes=(SOPClass("1.2.840.10008.5.1.4.1.1.2", 2, ("1.1", "1.2")),),
                study_instance_uids=("1.2.3.4",),
                encrypted=False,
            ),
        ),
    )
    base = message()
    document = etree.fromstring(to_xml(replace(base, participant_objects=(study,))))
    assert schema.validate(document), schema.error_log


def test_top_level_elements_come_in_schema_order() -> None:
    root = etree.fromstring(to_xml(message()))
    assert [child.tag for child in root] == [
        "EventIdentification",
        "ActiveParticipant",
        "ActiveParticipant",
        "AuditSourceIdentification",
        "ParticipantObjectIdentification",
    ]


def test_event_id_carries_code_system_name_and_original_text() -> None:
    event_id = etree.fromstring(to_xml(message())).find("EventIdentification/EventID")
    assert dict(event_id.attrib) == {
        "csd-code": "110106",
        "codeSystemName": "DCM",
        "originalText": "Export",
    }


def test_event_date_time_is_utc_with_milliseconds_and_z() -> None:
    event = etree.fromstring(to_xml(message())).find("EventIdentification")
    assert event.get("EventDateTime") == "2024-05-01T12:30:15.123Z"


def test_date_time_in_another_zone_is_converted_to_utc() -> None:
    moment = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_date_time(moment) == "2024-05-01T12:00:00.000Z"


def test_naive_event_date_time_is_refused() -> None:
    with pytest.raises(ValueError):
        EventIdentification(EventID.QUERY, datetime(2024, 5, 1, 12, 0))


def test_detail_values_are_base64() -> None:
    detail = etree.fromstring(to_xml(message())).find(
        "ParticipantObjectIdentification/ParticipantObjectDetail"
    )
    assert (detail.get("type"), detail.get("value")) == ("MSH-10", "TTE=")


def test_query_is_base64() -> None:
    query = ParticipantObjectIdentification(
        "urn:uuid:x", ParticipantObjectIDTypeCode.REGISTRY_STORED_QUERY, query=b"<q/>"
    )
    base = message()
    root = etree.fromstring(to_xml(replace(base, participant_objects=(query,))))
    assert root.findtext("ParticipantObjectIdentification/ParticipantObjectQuery") == "PHEvPg=="


@pytest.mark.parametrize("name, query", [(None, None), ("n", b"q")])
def test_participant_object_needs_exactly_one_of_name_and_query(
    name: str | None, query: bytes | None
) -> None:
    with pytest.raises(ValueError):
        ParticipantObjectIdentification(
            "x", ParticipantObjectIDTypeCode.URI, name=name, query=query
        )


def test_message_needs_an_active_participant() -> None:
    base = message()
    with pytest.raises(ValueError):
        AuditMessage(base.event_identification, (), base.audit_source_identification)


def test_xml_declares_utf8_on_the_same_line() -> None:
    assert to_xml(message()).startswith(b'<?xml version="1.0" encoding="UTF-8"?><AuditMessage>')


def test_non_ascii_text_is_written_as_utf8() -> None:
    base = message()
    event = replace(base.event_identification, event_outcome_description="Zur\u00fcckgewiesen")
    assert "Zur\u00fcckgewiesen".encode() in to_xml(replace(base, event_identification=event))


def with_description(text: str) -> etree._Element:
    base = message()
    event = replace(base.event_identification, event_outcome_description=text)
    return etree.fromstring(to_xml(replace(base, event_identification=event)))


def with_user_id(user_id: str) -> etree._Element:
    base = message()
    participant = replace(base.active_participants[0], user_id=user_id)
    participants = (participant, *base.active_participants[1:])
    return etree.fromstring(to_xml(replace(base, active_participants=participants)))


def test_markup_in_attributes_is_escaped() -> None:
    value = 'a "quoted" <tag> & more'
    assert with_user_id(value).find("ActiveParticipant").get("UserID") == value


def test_line_breaks_and_tabs_in_attributes_survive() -> None:
    # XML 1.0 3.3.3: unescaped, an attribute value's TAB, LF and CR become spaces
    value = "line one\nline\ttwo\r"
    assert with_user_id(value).find("ActiveParticipant").get("UserID") == value


def test_markup_in_text_is_escaped() -> None:
    text = "XDSRegistryError: <b>bad</b> & worse"
    document = with_description(text)
    assert document.findtext("EventIdentification/EventOutcomeDescription") == text


def test_characters_xml_cannot_carry_are_replaced_not_refused() -> None:
    document = with_description("bad\x00byte\x1b")
    assert document.findtext("EventIdentification/EventOutcomeDescription") == (
        "bad\ufffdbyte\ufffd"
    )


def test_sop_class_uid_may_be_left_out(schema: etree.XMLSchema) -> None:
    study = ParticipantObjectIdentification(
        "1.2.3.4",
        ParticipantObjectIDTypeCode.STUDY_INSTANCE_UID,
        name="1.2.3.4",
        type_code=ParticipantObjectTypeCode.SYSTEM_OBJECT,
        type_code_role=ParticipantObjectTypeCodeRole.REPORT,
        descriptions=(ParticipantObjectDescription(sop_classes=(SOPClass(None, 1, ("1.1",)),)),),
    )
    document = etree.fromstring(to_xml(replace(message(), participant_objects=(study,))))
    assert schema.validate(document), schema.error_log
    (sop_class,) = document.iter("SOPClass")
    assert sop_class.get("UID") is None
    assert sop_class.get("NumberOfInstances") == "1"
