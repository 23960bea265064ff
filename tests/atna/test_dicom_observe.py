"""DICOM exchanges of the Imaging Document Source mapped to DICOM PS3.15 A.5.3 audit
messages: the event and action per operation, who is Source and Destination, one
message per patient, valid against the DICOM audit schema."""

from __future__ import annotations

import base64

import pytest
from atna_support import AUDIT_SCHEMAS, need
from lxml import etree

from atna.dicom_observe import DicomAuditObserver, ObservedDicomExchange, dicom_exchange_messages
from atna.events import AuditContext, audit_messages
from atna.message import to_xml
from imaging_source.exchange import DicomExchange, DicomOperation, ExchangeStatus, InstanceTouched

AUDIT_XSD_2017 = AUDIT_SCHEMAS / "ipf-dicom2017c.xsd"
CONTEXT = AuditContext("xdsi-test", process_id="4242")
CT = "1.2.840.10008.5.1.4.1.1.2"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
SOURCE, DESTINATION = "110153", "110152"


def _instance(patient: str, study: str, sop: str) -> InstanceTouched:
    return InstanceTouched(patient, study, f"{study}.1", sop, CT)


ONE_PATIENT = (_instance("PAT-1", "1.2.3", "1.2.3.1.1"), _instance("PAT-1", "1.2.3", "1.2.3.1.2"))
TWO_PATIENTS = (_instance("PAT-1", "1.2.3", "1.2.3.1.1"), _instance("PAT-2", "1.2.4", "1.2.4.1.1"))

CASES: dict[str, DicomExchange] = {
    "c-store": DicomExchange(
        DicomOperation.C_STORE, "MODALITY", "XDSI", "10.0.0.5", instances=ONE_PATIENT[:1]
    ),
    "stow-rs": DicomExchange(
        DicomOperation.STOW_RS, "10.0.0.6", "http://xdsi/dicomweb/studies", "10.0.0.6",
        instances=ONE_PATIENT,
    ),
    "c-move": DicomExchange(
        DicomOperation.C_MOVE, "VIEWER", "XDSI", "10.0.0.7", instances=ONE_PATIENT,
        move_destination="WORKSTATION",
    ),
    "c-get": DicomExchange(
        DicomOperation.C_GET, "VIEWER", "XDSI", "10.0.0.7", instances=ONE_PATIENT
    ),
    "wado-rs": DicomExchange(
        DicomOperation.WADO_RS, "10.0.0.8", "http://xdsi/dicomweb/studies/1.2.3", "10.0.0.8",
        instances=ONE_PATIENT,
    ),
    "wado-uri": DicomExchange(
        DicomOperation.WADO_URI, "10.0.0.8", "http://xdsi/dicomweb/wado", "10.0.0.8",
        outcome=ExchangeStatus.FAILURE, status=404, description="no such instance",
    ),
    "c-find": DicomExchange(
        DicomOperation.C_FIND, "VIEWER", "XDSI", "10.0.0.7", query=b"\x08\x00\x52\x00",
        query_sop_class_uid=FIND, query_transfer_syntax="1.2.840.10008.1.2",
        patient_id="PAT-1", study_instance_uids=("1.2.3",),
    ),
    "qido-rs": DicomExchange(
        DicomOperation.QIDO_RS, "10.0.0.9", "http://xdsi/dicomweb/studies?PatientID=PAT-1",
        "10.0.0.9", query=b"/dicomweb/studies?PatientID=PAT-1", query_sop_class_uid=FIND,
        patient_id="PAT-1",
    ),
}  # fmt: skip


def _documents(exchange: DicomExchange) -> list[etree._Element]:
    return [etree.fromstring(to_xml(m)) for m in dicom_exchange_messages(exchange, CONTEXT)]


def _event(document: etree._Element) -> tuple[str, str, str]:
    event = document.find("EventIdentification")
    return (
        event.find("EventID").get("csd-code"),
        event.get("EventActionCode"),
        event.get("EventOutcomeIndicator"),
    )


def _role(document: etree._Element, role: str) -> list[str]:
    return [
        p.get("UserID")
        for p in document.iterfind("ActiveParticipant")
        if p.find(f"RoleIDCode[@csd-code='{role}']") is not None
    ]


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(need(AUDIT_XSD_2017))))


@pytest.mark.parametrize("case", CASES)
def test_message_is_valid_against_audit_schema(case: str, schema: etree.XMLSchema) -> None:
    for document in _documents(CASES[case]):
        assert schema.validate(document), schema.error_log


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("c-store", ("110104", "C", "0")),
        ("stow-rs", ("110104", "C", "0")),
        ("c-move", ("110104", "R", "0")),
        ("c-get", ("110104", "R", "0")),
        ("wado-rs", ("110104", "R", "0")),
        ("wado-uri", ("110104", "R", "8")),
        ("c-find", ("110112", "E", "0")),
        ("qido-rs", ("110112", "E", "0")),
    ],
)
def test_event_and_action_follow_the_operation(case: str, expected: tuple[str, ...]) -> None:
    assert [_event(d) for d in _documents(CASES[case])] == [expected]


def test_c_store_sender_is_source_and_this_node_destination() -> None:
    (document,) = _documents(CASES["c-store"])
    assert (_role(document, SOURCE), _role(document, DESTINATION)) == (["MODALITY"], ["XDSI"])


def test_c_move_destination_receives_and_requester_is_named() -> None:
    (document,) = _documents(CASES["c-move"])
    assert (_role(document, SOURCE), _role(document, DESTINATION)) == (["XDSI"], ["WORKSTATION"])
    requestors = [
        p.get("UserID")
        for p in document.iterfind("ActiveParticipant")
        if p.get("UserIsRequestor") == "true"
    ]
    assert requestors == ["VIEWER"]


def test_retrieve_requester_is_destination() -> None:
    (document,) = _documents(CASES["wado-rs"])
    assert (_role(document, SOURCE), _role(document, DESTINATION)) == (
        ["http://xdsi/dicomweb/studies/1.2.3"],
        ["10.0.0.8"],
    )


def test_transfer_names_study_with_its_sop_class_and_instances() -> None:
    (document,) = _documents(CASES["c-get"])
    studies = [
        o
        for o in document.iterfind("ParticipantObjectIdentification")
        if o.find("ParticipantObjectIDTypeCode").get("csd-code") == "110180"
    ]
    assert [s.get("ParticipantObjectID") for s in studies] == ["1.2.3"]
    sop = studies[0].find("ParticipantObjectDescription/SOPClass")
    assert (sop.get("UID"), sop.get("NumberOfInstances")) == (CT, "2")


def test_one_message_per_patient() -> None:
    exchange = DicomExchange(
        DicomOperation.WADO_RS, "10.0.0.8", "http://xdsi/dicomweb/studies", instances=TWO_PATIENTS
    )
    patients = [
        [
            o.get("ParticipantObjectID")
            for o in d.iterfind("ParticipantObjectIdentification")
            if o.get("ParticipantObjectTypeCodeRole") == "1"
        ]
        for d in _documents(exchange)
    ]
    assert patients == [["PAT-1"], ["PAT-2"]]


def test_c_find_carries_the_identifier_as_query() -> None:
    (document,) = _documents(CASES["c-find"])
    query = document.find(
        "ParticipantObjectIdentification[@ParticipantObjectID='"
        + FIND
        + "']/ParticipantObjectQuery"
    )
    assert query is not None and base64.b64decode(query.text) == b"\x08\x00\x52\x00"


def test_observer_records_an_event_the_auditor_builds() -> None:
    recorded: list[object] = []
    DicomAuditObserver(recorded.append, peer=lambda: "CN=viewer")(CASES["c-get"])
    (observed,) = recorded
    assert isinstance(observed, ObservedDicomExchange)
    (message,) = audit_messages(observed, CONTEXT)
    destination = message.active_participants[1]
    assert (destination.user_id, destination.alternative_user_id) == ("VIEWER", "CN=viewer")


def test_qido_rs_carries_the_query_string_as_query() -> None:
    (document,) = _documents(CASES["qido-rs"])
    assert (_role(document, SOURCE), _role(document, DESTINATION)) == (
        ["10.0.0.9"],
        ["http://xdsi/dicomweb/studies?PatientID=PAT-1"],
    )
    query = document.find(
        f"ParticipantObjectIdentification[@ParticipantObjectID='{FIND}']/ParticipantObjectQuery"
    )
    assert base64.b64decode(query.text) == b"/dicomweb/studies?PatientID=PAT-1"


def test_the_dimse_peer_certificate_wins_over_the_connection_context() -> None:
    recorded: list[object] = []
    exchange = DicomExchange(
        DicomOperation.C_STORE, "MODALITY", "XDSI", "10.0.0.5",
        instances=ONE_PATIENT[:1], peer_subject="CN=modality-1,O=Hospital",
    )  # fmt: skip
    DicomAuditObserver(recorded.append, peer=lambda: None)(exchange)
    (message,) = audit_messages(recorded[0], CONTEXT)
    source = message.active_participants[0]
    assert (source.user_id, source.alternative_user_id) == ("MODALITY", "CN=modality-1,O=Hospital")
