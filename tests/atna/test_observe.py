"""atna/observe.py: exchanges, feed outcomes and registry calls become the outcome
records the IHE profile prescribes, one table row per Action."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from string import Template

import pytest
from lxml import etree

from atna.codes import EventActionCode, EventID, EventOutcomeIndicator
from atna.events import (
    AuditContext,
    AuditEvent,
    Endpoint,
    Side,
    TransactionOutcome,
    audit_messages,
)
from atna.message import to_xml
from atna.observe import (
    EXCHANGE_AUDITS,
    AuditingRegistryClient,
    ObservedExchange,
    RequestFacts,
    SoapAuditObserver,
    exchange_audits,
    exchange_outcome,
    feed_outcome,
)
from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import (
    AdhocQueryRequest,
    AdhocQueryResponse,
    DocumentRequest,
    RegistryResponse,
    RetrievedDocument,
    RetrieveDocumentSetRequest,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.model import DocumentEntry, Submission, SubmissionSet
from ebxml.remove import (
    RemoveDocumentsRequest,
    RemoveObjectsRequest,
    remove_documents_request,
    remove_objects_request,
)
from ebxml.retrieve import (
    retrieve_document_set_request,
    retrieve_document_set_response,
    retrieve_imaging_document_set_request,
)
from ebxml.serialize import registry_response, submit_objects_request
from ebxml.tags import RIM, XDSB
from ebxml.vocabulary import (
    Action,
    QueryParameter,
    ResponseStatus,
    ReturnType,
    StoredQuery,
    Transaction,
)
from ebxml.wire import adhoc_query_request, adhoc_query_response
from registry.feed_hl7v2 import FeedOutcome
from registry.hl7v2 import AckCode
from registry.hl7v3 import AckCode as Hl7v3AckCode
from registry.hl7v3 import (
    Acknowledgement,
    AcknowledgementDetail,
    ErrorCondition,
    InstanceIdentifier,
    build_acknowledgement,
)
from soap.app import ExchangeInfo
from soap.faults import FaultCode, SoapFault
from soap.message import Addressing, SoapRequest
from soap.namespaces import WSA_ANONYMOUS

PATIENT = "P1001^^^&1.3.6.1.4.1.21367.13.20.3000&ISO"
OTHER = "P2002^^^&1.3.6.1.4.1.21367.13.20.3000&ISO"
SS_UID = "1.3.6.1.4.1.21367.13.50.1.1"
DOC_UID = "1.3.6.1.4.1.21367.13.50.2.1"
REPO_ID = "1.3.6.1.4.1.21367.13.40.3000"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70"
RECEIVED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
BAD = ErrorCode.XDSRegistryMetadataError


def submission(patient: str = PATIENT, doc_patient: str = PATIENT) -> Submission:
    return Submission(
        SubmissionSet("urn:uuid:5a1c0b3e-1111-4111-8111-000000000001", SS_UID, patient_id=patient),
        document_entries=(
            DocumentEntry(
                "urn:uuid:5a1c0b3e-1111-4111-8111-000000000002", DOC_UID, patient_id=doc_patient
            ),
        ),
    )


def provide_body(sub: Submission) -> etree._Element:
    body = etree.Element(XDSB.ProvideAndRegisterDocumentSetRequest)
    body.append(submit_objects_request(sub))
    return body


def query(patient: str = PATIENT) -> AdhocQueryRequest:
    return AdhocQueryRequest(
        StoredQuery.FIND_DOCUMENTS,
        {QueryParameter.DOC_ENTRY_PATIENT_ID: [[f"'{patient}'"]]},
        ReturnType.LEAF_CLASS,
        home=HOME,
    )


def retrieve_body() -> etree._Element:
    return retrieve_document_set_request(
        RetrieveDocumentSetRequest((DocumentRequest(REPO_ID, DOC_UID, HOME),))
    )


def soap_request(action: str, body: etree._Element) -> SoapRequest:
    return SoapRequest("/xds/x", Addressing(action, "urn:uuid:1", reply_to=WSA_ANONYMOUS), body)


def info(action: str | None, path: str = "/xds/registry", status: int = 200) -> ExchangeInfo:
    return ExchangeInfo(
        path, f"http://xdsi.example.org:8080{path}", RECEIVED, status, action, "10.1.2.3", 4711
    )


def observed(
    action: str,
    body: etree._Element,
    response: etree._Element | None,
    fault: SoapFault | None = None,
) -> TransactionOutcome:
    outcome = exchange_outcome(soap_request(action, body), response, fault, info(action))
    assert outcome is not None
    return outcome


def success() -> etree._Element:
    return registry_response(RegistryResponse(ResponseStatus.SUCCESS))


def failure() -> etree._Element:
    return registry_response(RegistryResponse.from_errors([RegistryError(BAD, "no patient")]))


# --- the table --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "transaction"),
    [
        (Action.ITI41, Transaction.ITI41),
        (Action.ITI42, Transaction.ITI42),
        (Action.ITI18, Transaction.ITI18),
        (Action.ITI43, Transaction.ITI43),
    ],
)
def test_each_action_is_audited_as_its_transaction_on_the_responder_side(action, transaction):
    row = EXCHANGE_AUDITS[action]
    assert (row.transaction, row.side) == (transaction, Side.RESPONDER)


def test_an_action_not_in_the_table_is_not_audited():
    assert exchange_outcome(None, None, None, info("urn:example:Echo")) is None


# --- ITI-41 ----------------------------------------------------------------------------
def test_iti41_success_names_patient_and_submission_set():
    outcome = observed(Action.ITI41, provide_body(submission()), success())
    assert (outcome.outcome, outcome.patient_ids, outcome.submission_set_unique_id) == (
        EventOutcomeIndicator.SUCCESS,
        (PATIENT,),
        SS_UID,
    )


def test_iti41_failure_is_serious_failure_with_the_error_codes_as_description():
    outcome = observed(Action.ITI41, provide_body(submission()), failure())
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE
    assert outcome.outcome_description == f"{BAD}: no patient"


def test_iti41_with_two_patients_names_both():
    outcome = observed(Action.ITI41, provide_body(submission(PATIENT, OTHER)), failure())
    assert outcome.patient_ids == (PATIENT, OTHER)


def test_iti41_sender_fault_is_serious_failure():
    fault = SoapFault(FaultCode.SENDER, "bad MTOM")
    outcome = observed(Action.ITI41, provide_body(submission()), None, fault)
    assert (outcome.outcome, outcome.outcome_description) == (
        EventOutcomeIndicator.SERIOUS_FAILURE,
        "bad MTOM",
    )


def test_receiver_fault_is_major_failure():
    fault = SoapFault(FaultCode.RECEIVER, "the server could not process the message")
    outcome = observed(Action.ITI41, provide_body(submission()), None, fault)
    assert outcome.outcome is EventOutcomeIndicator.MAJOR_FAILURE


def test_refused_request_with_known_action_is_audited_without_objects():
    fault = SoapFault(FaultCode.SENDER, "envelope too large")
    outcome = exchange_outcome(None, None, fault, info(Action.ITI41))
    assert outcome is not None and outcome.patient_ids == ()
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE


def test_requester_is_reply_to_at_client_address_and_responder_our_url():
    outcome = observed(Action.ITI41, provide_body(submission()), success())
    assert outcome.requester == Endpoint(WSA_ANONYMOUS, network_access_point="10.1.2.3")
    assert outcome.responder == Endpoint("http://xdsi.example.org:8080/xds/registry")


def test_event_time_is_when_the_request_arrived():
    assert observed(Action.ITI41, provide_body(submission()), success()).event_date_time == (
        RECEIVED
    )


# --- ITI-42 ----------------------------------------------------------------------------
def test_iti42_success_names_patient_and_submission_set():
    outcome = observed(Action.ITI42, submit_objects_request(submission()), success())
    assert (outcome.transaction, outcome.patient_ids, outcome.submission_set_unique_id) == (
        Transaction.ITI42,
        (PATIENT,),
        SS_UID,
    )


def test_iti42_failure_is_serious_failure():
    outcome = observed(Action.ITI42, submit_objects_request(submission()), failure())
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE


def test_iti42_facts_come_from_detached_identifiers_too():
    body = submit_objects_request(submission(PATIENT, OTHER))
    objects = body.find(f"{RIM.RegistryObjectList}")
    assert objects is not None
    for identifier in list(body.iter(RIM.ExternalIdentifier)):
        owner = identifier.getparent()
        identifier.set("registryObject", owner.get("id"))
        objects.append(identifier)  # moved out of its object, as ebRIM 3.0 allows
    outcome = observed(Action.ITI42, body, success())
    assert (outcome.patient_ids, outcome.submission_set_unique_id) == ((PATIENT, OTHER), SS_UID)


def test_iti42_a_submission_the_parser_refuses_still_names_its_patient():
    body = submit_objects_request(submission())
    for classification in list(body.iter(RIM.Classification)):  # no object type left
        classification.getparent().remove(classification)
    outcome = observed(Action.ITI42, body, failure())
    assert (outcome.patient_ids, outcome.submission_set_unique_id) == ((PATIENT,), SS_UID)
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE


def test_unreadable_request_body_is_still_audited():
    outcome = observed(Action.ITI42, etree.Element("wrong"), failure())
    assert (outcome.patient_ids, outcome.outcome) == ((), EventOutcomeIndicator.SERIOUS_FAILURE)


# --- ITI-18 ----------------------------------------------------------------------------
def query_response(status: ResponseStatus, *errors: RegistryError) -> etree._Element:
    return adhoc_query_response(AdhocQueryResponse(status, errors=errors), "LeafClass")


def test_iti18_names_the_patient_of_the_patient_id_parameter():
    outcome = observed(
        Action.ITI18, adhoc_query_request(query()), query_response(ResponseStatus.SUCCESS)
    )
    assert outcome.patient_ids == (PATIENT,)


def test_iti18_carries_query_id_home_and_the_request_itself():
    body = adhoc_query_request(query())
    outcome = observed(Action.ITI18, body, query_response(ResponseStatus.SUCCESS))
    assert (outcome.query_id, outcome.home_community_id) == (StoredQuery.FIND_DOCUMENTS, HOME)
    assert etree.fromstring(outcome.query_request).find(".//*[@id]").get("id") == (
        StoredQuery.FIND_DOCUMENTS
    )


def test_iti18_query_is_sent_base64_as_participant_object_query():
    body = adhoc_query_request(query())
    outcome = observed(Action.ITI18, body, query_response(ResponseStatus.SUCCESS))
    (message,) = audit_messages(outcome, AuditContext("xdsi"))
    text = to_xml(message)
    query_text = etree.fromstring(text).findtext(".//ParticipantObjectQuery")
    assert base64.b64decode(query_text) == etree.tostring(body)


def test_iti18_partial_success_is_minor_failure():
    outcome = observed(
        Action.ITI18,
        adhoc_query_request(query()),
        query_response(ResponseStatus.PARTIAL_SUCCESS),
    )
    assert outcome.outcome is EventOutcomeIndicator.MINOR_FAILURE


def test_iti18_failure_is_serious_failure():
    error = RegistryError(ErrorCode.XDSStoredQueryParamNumber, "missing $XDSDocumentEntryStatus")
    outcome = observed(
        Action.ITI18, adhoc_query_request(query()), query_response(ResponseStatus.FAILURE, error)
    )
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE


# --- ITI-43 ----------------------------------------------------------------------------
def retrieve_response(*documents: RetrievedDocument) -> etree._Element:
    status = ResponseStatus.SUCCESS if documents else ResponseStatus.FAILURE
    errors = () if documents else (RegistryError(ErrorCode.XDSMissingDocument, DOC_UID),)
    return retrieve_document_set_response(
        RetrieveDocumentSetResponse(status, documents, errors),
        [f"doc{n}@xdsi" for n in range(len(documents))],
    )


def test_iti43_names_the_documents_sent_with_repository_and_home(tmp_path):
    sent = RetrievedDocument(REPO_ID, DOC_UID, "text/plain", tmp_path / "d", 3, HOME)
    outcome = observed(Action.ITI43, retrieve_body(), retrieve_response(sent))
    assert (
        outcome.outcome,
        [(d.unique_id, d.repository_unique_id) for d in outcome.documents],
    ) == (
        EventOutcomeIndicator.SUCCESS,
        [(DOC_UID, REPO_ID)],
    )


def test_iti43_failure_names_the_documents_asked_for():
    outcome = observed(Action.ITI43, retrieve_body(), retrieve_response())
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE
    assert [(d.unique_id, d.home_community_id) for d in outcome.documents] == [(DOC_UID, HOME)]


# --- the observer -------------------------------------------------------------------------
def test_observer_records_what_it_maps():
    recorded: list[AuditEvent] = []
    observer = SoapAuditObserver(recorded.append)
    request = soap_request(Action.ITI42, submit_objects_request(submission()))
    observer(request, success(), None, info(Action.ITI42))
    assert [type(e) for e in recorded] == [ObservedExchange]
    assert isinstance(recorded[0].outcome(), TransactionOutcome)


def test_observer_reads_nothing_on_the_request_path():
    """The bodies are read when the messages are built, not when the exchange ends."""
    reads: list[str] = []

    def reader(_body: etree._Element) -> RequestFacts:
        reads.append("read")
        return RequestFacts()

    row = EXCHANGE_AUDITS[Action.ITI42]
    table = {Action.ITI42: type(row)(row.transaction, row.side, reader, row.read_response)}
    recorded: list[AuditEvent] = []
    SoapAuditObserver(recorded.append, table)(
        soap_request(Action.ITI42, submit_objects_request(submission())),
        success(),
        None,
        info(Action.ITI42),
    )
    assert reads == []
    assert len(audit_messages(recorded[0], AuditContext("xdsi"))) == 1
    assert reads == ["read"]


def test_observer_ignores_actions_it_does_not_audit():
    recorded: list[AuditEvent] = []
    SoapAuditObserver(recorded.append)(None, None, None, info("urn:example:Echo"))
    assert recorded == []


def test_observer_takes_the_peer_subject_while_the_connection_is_served():
    recorded: list[AuditEvent] = []
    subjects = iter(["CN=node-a", "CN=later"])
    observer = SoapAuditObserver(recorded.append, peer=lambda: next(subjects))
    observer(
        soap_request(Action.ITI42, submit_objects_request(submission())),
        success(),
        None,
        info(Action.ITI42),
    )
    assert recorded[0].outcome().requester.alternative_user_id == "CN=node-a"


def test_observer_survives_a_mapping_bug():
    def broken(_body: etree._Element):  # noqa: ANN202
        raise AssertionError("reader bug")

    row = EXCHANGE_AUDITS[Action.ITI42]
    table = {Action.ITI42: type(row)(row.transaction, row.side, row.read_request, broken)}
    recorded: list[AuditEvent] = []
    SoapAuditObserver(recorded.append, table)(
        soap_request(Action.ITI42, submit_objects_request(submission())),
        success(),
        None,
        info(Action.ITI42),
    )
    assert recorded[0].outcome().outcome is EventOutcomeIndicator.SERIOUS_FAILURE


# --- ITI-8 -----------------------------------------------------------------------------
RECEIVER = Endpoint("XDSI|XDSI", network_access_point="xdsi.example.org")


def feed(trigger: str, ids: tuple[str, ...], ack: AckCode = AckCode.ACCEPT) -> FeedOutcome:
    return FeedOutcome(ack, "ADT", trigger, "MSG-1", "PIX_SOURCE", "HOSPITAL", ids)


def actions(outcome: TransactionOutcome) -> list[tuple[str | None, EventActionCode]]:
    return [
        (
            next(
                (o.participant_object_id for o in m.participant_objects if o.id_type_code),
                None,
            ),
            m.event_identification.event_action_code,
        )
        for m in audit_messages(outcome, AuditContext("xdsi"))
    ]


@pytest.mark.parametrize("trigger", ["A01", "A04", "A05"])
def test_feed_register_is_create(trigger):
    assert actions(feed_outcome(feed(trigger, (PATIENT,)), RECEIVER)) == [
        (PATIENT, EventActionCode.CREATE)
    ]


def test_feed_update_is_update():
    assert actions(feed_outcome(feed("A08", (PATIENT,)), RECEIVER)) == [
        (PATIENT, EventActionCode.UPDATE)
    ]


def test_feed_merge_updates_surviving_and_deletes_subsumed():
    outcome = feed_outcome(feed("A40", (PATIENT, OTHER)), RECEIVER)
    assert actions(outcome) == [(PATIENT, EventActionCode.UPDATE), (OTHER, EventActionCode.DELETE)]


def test_feed_source_is_sending_application_and_facility():
    outcome = feed_outcome(feed("A01", (PATIENT,)), RECEIVER)
    assert (outcome.requester.user_id, outcome.responder, outcome.side) == (
        "PIX_SOURCE|HOSPITAL",
        RECEIVER,
        Side.RESPONDER,
    )


@pytest.mark.parametrize(
    ("ack", "expected"),
    [
        (AckCode.ACCEPT, EventOutcomeIndicator.SUCCESS),
        (AckCode.ERROR, EventOutcomeIndicator.SERIOUS_FAILURE),
        (AckCode.REJECT, EventOutcomeIndicator.MAJOR_FAILURE),
    ],
)
def test_feed_ack_code_gives_the_outcome(ack, expected):
    assert feed_outcome(feed("A01", (PATIENT,), ack), RECEIVER).outcome is expected


def test_feed_message_control_id_is_kept():
    assert feed_outcome(feed("A01", (PATIENT,)), RECEIVER).hl7_message_control_id == "MSG-1"


# --- the registry seam ------------------------------------------------------------------
class FakeRegistry:
    """A RegistryClient stand-in that answers as told."""

    def __init__(self, response: RegistryResponse | Exception) -> None:
        self.response = response
        self.extra = "passed through"

    def register(self, submission: Submission) -> RegistryResponse:
        if isinstance(self.response, Exception):
            raise self.response
        return self.response

    def close(self) -> None:
        pass

    def registered_documents(self, unique_ids, repository_unique_id) -> set[str]:  # noqa: ANN001
        return set(unique_ids)


REPOSITORY = Endpoint("http://xdsi.example.org:8080/xds/repository")
REGISTRY = Endpoint("http://xdsi.example.org:8080/xds/registry")


def client(response, in_process: bool, recorded: list) -> AuditingRegistryClient:  # noqa: ANN001
    return AuditingRegistryClient(
        FakeRegistry(response),
        recorded.append,
        repository=REPOSITORY,
        registry=REGISTRY,
        in_process=in_process,
    )


def test_in_process_register_is_audited_as_export_and_import():
    recorded: list[TransactionOutcome] = []
    client(RegistryResponse(ResponseStatus.SUCCESS), True, recorded).register(submission())
    messages = [m for outcome in recorded for m in audit_messages(outcome, AuditContext("x"))]
    assert [m.event_identification.event_id for m in messages] == [EventID.EXPORT, EventID.IMPORT]


def test_remote_register_is_audited_on_the_repository_side_only():
    recorded: list[TransactionOutcome] = []
    client(RegistryResponse(ResponseStatus.SUCCESS), False, recorded).register(submission())
    assert [(o.transaction, o.side) for o in recorded] == [(Transaction.ITI42, Side.REQUESTER)]


def test_register_failure_is_audited_with_its_outcome():
    recorded: list[TransactionOutcome] = []
    response = RegistryResponse.from_errors([RegistryError(BAD, "bad")])
    assert client(response, False, recorded).register(submission()) is response
    assert recorded[0].outcome is EventOutcomeIndicator.SERIOUS_FAILURE


def test_register_exception_is_audited_and_raised():
    recorded: list[TransactionOutcome] = []
    with pytest.raises(ConnectionError):
        client(ConnectionError("down"), False, recorded).register(submission())
    assert recorded[0].outcome is EventOutcomeIndicator.MAJOR_FAILURE


def test_recovery_query_is_audited_as_iti18_consumer():
    recorded: list[TransactionOutcome] = []
    found = client(None, False, recorded).registered_documents([DOC_UID], REPO_ID)
    assert found == {DOC_UID}
    assert [(o.transaction, o.side, o.query_id) for o in recorded] == [
        (Transaction.ITI18, Side.REQUESTER, StoredQuery.GET_DOCUMENTS)
    ]


def test_other_attributes_pass_through_to_the_wrapped_client():
    assert client(None, False, []).extra == "passed through"


# --- ITI-44, ITI-57, ITI-61, ITI-62, ITI-86, RAD-69 rows ---------------------------------------
HL7V3_FIXTURES = Path(__file__).parents[1] / "fixtures" / "hl7v3"
AUTHORITY = "1.3.6.1.4.1.21367.13.20.3000"
ENTRY_UUID = "urn:uuid:7c1fa7a6-0a5c-4f4b-8f3e-1b2f0f6a9a01"
STUDY_UID = "1.2.840.113619.2.55.3.1"


def hl7v3_message(interaction: str) -> etree._Element:
    values = dict(
        message_id="MSG-9",
        patient_id="P1001",
        surviving_id="P1001",
        subsumed_id="P2002",
        authority=AUTHORITY,
    )
    text = Template((HL7V3_FIXTURES / f"{interaction}.xml").read_text()).substitute(values)
    return etree.fromstring(text.encode())


def acknowledgement(code: Hl7v3AckCode, text: str | None = None) -> etree._Element:
    details = (AcknowledgementDetail(ErrorCondition.UNKNOWN_KEY_IDENTIFIER, text),) if text else ()
    return build_acknowledgement(
        Acknowledgement(code, InstanceIdentifier("1.2.3", "MSG-9"), details),
        message_id=InstanceIdentifier("1.2.4", "ACK-1"),
        creation_time="20250102030405",
        sender="1.2.5",
        receiver="1.2.6",
    )


@pytest.mark.parametrize(
    ("action", "trigger"),
    [
        (Action.ITI44_ADD, "PRPA_IN201301UV02"),
        (Action.ITI44_REVISE, "PRPA_IN201302UV02"),
    ],
)
def test_iti44_names_patient_message_id_and_interaction(action: str, trigger: str):
    outcome = observed(action, hl7v3_message(trigger), acknowledgement(Hl7v3AckCode.ACCEPT))
    assert (outcome.transaction, outcome.side) == (Transaction.ITI44, Side.RESPONDER)
    assert outcome.patient_ids == (PATIENT,)
    assert outcome.hl7_trigger_event == trigger
    assert outcome.hl7_message_control_id == "1.2.840.114350.1.13.0.1.7.1.1^MSG-9"
    assert outcome.outcome is EventOutcomeIndicator.SUCCESS


def test_iti44_merge_names_the_subsumed_patient():
    outcome = observed(
        Action.ITI44_MERGE,
        hl7v3_message("PRPA_IN201304UV02"),
        acknowledgement(Hl7v3AckCode.ACCEPT),
    )
    assert (outcome.patient_ids, outcome.merged_patient_ids) == ((PATIENT,), (OTHER,))
    actions = [
        m.event_identification.event_action_code
        for m in audit_messages(outcome, AuditContext("xdsi"))
    ]
    assert actions == [EventActionCode.UPDATE, EventActionCode.DELETE]


def test_iti44_error_acknowledgement_is_a_serious_failure():
    outcome = observed(
        Action.ITI44_MERGE,
        hl7v3_message("PRPA_IN201304UV02"),
        acknowledgement(Hl7v3AckCode.ERROR, "surviving patient id P1001 is not known"),
    )
    assert outcome.outcome is EventOutcomeIndicator.SERIOUS_FAILURE
    assert outcome.outcome_description == "surviving patient id P1001 is not known"


def test_iti44_requester_is_named_by_its_address():
    outcome = observed(
        Action.ITI44_ADD, hl7v3_message("PRPA_IN201301UV02"), acknowledgement(Hl7v3AckCode.ACCEPT)
    )
    assert outcome.requester.network_access_point == "10.1.2.3"


@pytest.mark.parametrize(
    ("action", "transaction"),
    [(Action.ITI57, Transaction.ITI57), (Action.ITI61, Transaction.ITI61)],
)
def test_submissions_name_patient_and_submission_set(action: str, transaction: Transaction):
    outcome = observed(action, submit_objects_request(submission()), success())
    assert outcome.transaction is transaction
    assert (outcome.patient_ids, outcome.submission_set_unique_id) == ((PATIENT,), SS_UID)


def test_iti62_names_the_objects_to_remove():
    body = remove_objects_request(RemoveObjectsRequest((ENTRY_UUID,)))
    outcome = observed(Action.ITI62, body, success())
    assert outcome.transaction is Transaction.ITI62
    assert outcome.removed_object_ids == (ENTRY_UUID,)


def test_iti62_failure_is_reported():
    body = remove_objects_request(RemoveObjectsRequest((ENTRY_UUID,)))
    assert observed(Action.ITI62, body, failure()).outcome is EventOutcomeIndicator.SERIOUS_FAILURE


def test_iti86_names_the_documents_to_remove():
    request = RemoveDocumentsRequest((DocumentRequest(REPO_ID, DOC_UID, HOME),))
    outcome = observed(Action.ITI86, remove_documents_request(request), success())
    assert outcome.transaction is Transaction.ITI86
    assert [(d.unique_id, d.repository_unique_id) for d in outcome.documents] == [
        (DOC_UID, REPO_ID)
    ]


def test_rad69_names_the_studies_and_instances_asked_for():
    request = RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                STUDY_UID,
                (SeriesRequest("1.2.3.8", (DocumentRequest(REPO_ID, "1.2.3.9.1"),)),),
            ),
        ),
        ("1.2.840.10008.1.2.1",),
    )
    outcome = observed(
        Action.RAD69, retrieve_imaging_document_set_request(request), retrieve_response()
    )
    assert outcome.transaction is Transaction.RAD69
    assert [(s.study_instance_uid, s.instance_uids) for s in outcome.studies] == [
        (STUDY_UID, ("1.2.3.9.1",))
    ]


def test_rad69_reads_the_status_of_its_response_not_the_instances_sent(tmp_path):
    # RAD TF-3 4.69.4.1.4: the record names the studies asked for; the response's
    # DocumentResponses (one per instance sent) are not read for it
    request = RetrieveImagingDocumentSetRequest(
        (
            StudyRequest(
                STUDY_UID, (SeriesRequest("1.2.3.8", (DocumentRequest(REPO_ID, DOC_UID),)),)
            ),
        ),
        ("1.2.840.10008.1.2.1",),
    )
    sent = RetrievedDocument(REPO_ID, DOC_UID, "application/dicom", tmp_path / "d", 3)
    body = retrieve_imaging_document_set_request(request)
    answered = observed(Action.RAD69, body, retrieve_response(sent))
    assert (answered.outcome, answered.documents) == (EventOutcomeIndicator.SUCCESS, ())
    refused = observed(Action.RAD69, body, retrieve_response())
    assert refused.outcome is EventOutcomeIndicator.SERIOUS_FAILURE
    assert DOC_UID in (refused.outcome_description or "")


def test_iti44_reads_the_affinity_domain_id_when_configured():
    table = exchange_audits("1.2.840.114350.1")
    row = table[Action.ITI44_ADD]
    outcome = exchange_outcome(
        soap_request(Action.ITI44_ADD, hl7v3_message("PRPA_IN201301UV02")),
        acknowledgement(Hl7v3AckCode.ACCEPT),
        None,
        info(Action.ITI44_ADD),
        {Action.ITI44_ADD: row},
    )
    assert outcome.patient_ids == ("LOCAL-77^^^&1.2.840.114350.1&ISO",)
