"""The requester's side (atna.requester) and the administrative events (atna.admin):
each message valid against the DICOM audit schema, the client as the Source of what
it asks (or the Destination of what it imports), the OS user as human requestor,
failures with their outcome."""

from __future__ import annotations

import base64
import getpass

import pytest
from atna_support import AUDIT_SCHEMAS, need
from lxml import etree

from atna.admin import AuditLogUsed, repository_repair_alert
from atna.codes import EventOutcomeIndicator
from atna.events import AuditContext, DocumentReference, Endpoint, audit_messages
from atna.message import to_xml
from atna.requester import (
    AuditingRepositoryClient,
    auditing_query,
    error_outcome,
    query_facts,
    requester_outcome,
    soap_requester,
)
from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, RegistryResponse
from ebxml.model import Submission, SubmissionSet
from ebxml.vocabulary import ResponseStatus, StoredQuery, Transaction
from soap.faults import FaultCode, SoapFault

AUDIT_XSD_2017 = AUDIT_SCHEMAS / "ipf-dicom2017c.xsd"
CONTEXT = AuditContext("xdsi-client", process_id="31337")
PATIENT = "P1^^^&1.3.6.1.4.1.21367.13.20.3000&ISO"
REGISTRY = "http://127.0.0.1:9/xds/registry"
REPOSITORY = "http://127.0.0.1:9/xds/repository"
SOURCE, DESTINATION = "110153", "110152"
QUERY = AdhocQueryRequest(
    StoredQuery.FIND_DOCUMENTS,
    {"$XDSDocumentEntryPatientId": [[f"'{PATIENT}'"]]},
)
SUBMISSION = Submission(SubmissionSet(entry_uuid="ss", unique_id="1.2.3.4", patient_id=PATIENT))


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(need(AUDIT_XSD_2017))))


def _documents(event: object) -> list[etree._Element]:
    return [etree.fromstring(to_xml(m)) for m in audit_messages(event, CONTEXT)]  # type: ignore[arg-type]


def _event(document: etree._Element) -> tuple[str, str, str, str]:
    event = document.find("EventIdentification")
    return (
        event.find("EventID").get("csd-code"),
        event.find("EventTypeCode").get("csd-code")
        if event.find("EventTypeCode") is not None
        else "",
        event.get("EventActionCode"),
        event.get("EventOutcomeIndicator"),
    )


def _role(document: etree._Element, role: str) -> list[str]:
    return [
        p.get("UserID")
        for p in document.iterfind("ActiveParticipant")
        if p.find(f"RoleIDCode[@csd-code='{role}']") is not None
    ]


def _all_objects_named(document: etree._Element) -> bool:
    # DICOM PS3.15 A.5.1: every participant object has a name or a query
    return all(
        o.find("ParticipantObjectName") is not None or o.find("ParticipantObjectQuery") is not None
        for o in document.iterfind("ParticipantObjectIdentification")
    )


CASES = {
    "iti18-consumer": (
        requester_outcome(
            Transaction.ITI18, REGISTRY, EventOutcomeIndicator.SUCCESS,
            **query_facts(QUERY, (PATIENT,)),
        ),
        ("110112", "ITI-18", "E", "0"),
    ),
    "iti43-consumer-failed": (
        requester_outcome(
            Transaction.ITI43, REPOSITORY, EventOutcomeIndicator.SERIOUS_FAILURE, "XDSMissingDocument",
            documents=(DocumentReference("1.2.3.9", "1.3.6.1.4.1.21367.13.40.3000"),),
        ),
        ("110107", "ITI-43", "C", "8"),
    ),
    "iti41-source": (
        requester_outcome(
            Transaction.ITI41, REPOSITORY, EventOutcomeIndicator.SUCCESS,
            patient_ids=(PATIENT,), submission_set_unique_id="1.2.3.4",
        ),
        ("110106", "ITI-41", "R", "0"),
    ),
    "iti8-source": (
        requester_outcome(
            Transaction.ITI8, "mllp://127.0.0.1:9", EventOutcomeIndicator.SUCCESS,
            requester=Endpoint("XDSI-CLI|XDSI", network_access_point="127.0.0.1"),
            responder=Endpoint("mllp://127.0.0.1:9", network_access_point="127.0.0.1"),
            patient_ids=(PATIENT,), hl7_message_control_id="42", hl7_trigger_event="A01",
        ),
        ("110110", "ITI-8", "C", "0"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_requester_messages_are_valid_and_name_every_object(
    case: str, schema: etree.XMLSchema
) -> None:
    event, expected = CASES[case]
    (document,) = _documents(event)
    assert schema.validate(document), schema.error_log
    assert _event(document) == expected
    assert _all_objects_named(document)


def test_the_consumer_is_the_source_of_its_query_with_the_os_user_as_requestor() -> None:
    (document,) = _documents(CASES["iti18-consumer"][0])
    (source,) = document.xpath(f"ActiveParticipant[RoleIDCode/@csd-code='{SOURCE}']")
    assert source.get("UserID") == "http://www.w3.org/2005/08/addressing/anonymous"
    assert (source.get("AlternativeUserID"), source.get("UserIsRequestor")) == ("31337", "true")
    assert source.get("NetworkAccessPointID") == "127.0.0.1"  # the address it left from
    assert _role(document, DESTINATION) == [REGISTRY]
    humans = [p.get("UserID") for p in document.iterfind("ActiveParticipant") if not len(p)]
    assert humans == [getpass.getuser()]


def test_the_consumer_of_a_retrieve_is_the_destination() -> None:
    (document,) = _documents(CASES["iti43-consumer-failed"][0])
    assert (_role(document, SOURCE), _role(document, DESTINATION)) == (
        [REPOSITORY],
        ["http://www.w3.org/2005/08/addressing/anonymous"],
    )


def test_soap_requester_names_the_local_address_towards_the_peer() -> None:
    assert soap_requester("https://127.0.0.1:8443/xds/registry").network_access_point == (
        "127.0.0.1"
    )


def test_errors_map_to_outcomes() -> None:
    fault = SoapFault(FaultCode.RECEIVER, "registry down")
    assert error_outcome(fault) == (EventOutcomeIndicator.MAJOR_FAILURE, "registry down")
    assert error_outcome(ConnectionRefusedError("refused"))[0] is (
        EventOutcomeIndicator.MAJOR_FAILURE
    )


def test_publishing_audits_rad68_and_its_lookup_even_when_they_fail() -> None:
    recorded: list[object] = []

    class Failing:
        def provide_and_register(self, request: object) -> RegistryResponse:
            return RegistryResponse(ResponseStatus.FAILURE)

    class Request:
        submission = SUBMISSION

    response = AuditingRepositoryClient(Failing(), recorded.append, REPOSITORY)
    assert response.provide_and_register(Request()).status == ResponseStatus.FAILURE

    def unreachable(request: AdhocQueryRequest) -> AdhocQueryResponse:
        raise OSError("connection refused")

    with pytest.raises(OSError):
        auditing_query(unreachable, recorded.append, REGISTRY)(QUERY)
    events = [_event(d) for e in recorded for d in _documents(e)]
    assert events == [("110106", "RAD-68", "R", "8"), ("110112", "ITI-18", "E", "12")]


def test_audit_log_used_names_the_log_and_who_read_it(schema: etree.XMLSchema) -> None:
    (document,) = _documents(
        AuditLogUsed("sqlite:///data/audit.sqlite3", "alice", "xdsi audit tail")
    )
    assert schema.validate(document), schema.error_log
    event = document.find("EventIdentification")
    assert (event.find("EventID").get("csd-code"), event.get("EventActionCode")) == ("110101", "R")
    (log,) = document.iterfind("ParticipantObjectIdentification")
    assert (log.get("ParticipantObjectID"), log.findtext("ParticipantObjectName")) == (
        "sqlite:///data/audit.sqlite3",
        "Security Audit Log",
    )
    assert log.get("ParticipantObjectTypeCodeRole") == "13"  # Security Resource
    users = [
        (p.get("UserID"), p.get("UserIsRequestor")) for p in document.iterfind("ActiveParticipant")
    ]
    assert users == [("xdsi audit tail", "false"), ("alice", "true")]


def test_repository_repair_is_a_use_of_a_restricted_function(schema: etree.XMLSchema) -> None:
    alert = repository_repair_alert(
        Endpoint("xdsi-node", network_access_point="127.0.0.1"),
        "alice",
        "file:///data/blobs",
        "blobs removed 2",
        EventOutcomeIndicator.MINOR_FAILURE,
    )
    (document,) = _documents(alert)
    assert schema.validate(document), schema.error_log
    event = document.find("EventIdentification")
    assert (
        event.find("EventID").get("csd-code"),
        event.find("EventTypeCode").get("csd-code"),
        event.get("EventOutcomeIndicator"),
    ) == ("110113", "110132", "4")
    assert _all_objects_named(document)
    (detail,) = document.xpath("ParticipantObjectIdentification/ParticipantObjectDetail")
    assert base64.b64decode(detail.get("value")) == b"blobs removed 2"
