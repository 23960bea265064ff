"""Auditing by observation: exchanges become ``TransactionOutcome``s, actors stay unaware.

Three seams feed the auditor, each chosen once in the composition root:

- SOAP: :class:`SoapAuditObserver` is ``soap.app``'s ``on_exchange`` observer.  The
  table :data:`EXCHANGE_AUDITS` says, per request Action, which transaction and side
  the exchange is and how its request and response bodies are read (patients,
  submission set, documents, the query, studies, objects removed); the outcome follows
  from the response status (:data:`STATUS_OUTCOME`), the HL7 v3 acknowledgement
  (:data:`ACK_OUTCOME`) or the SOAP fault (:data:`FAULT_OUTCOME`).  Rows: ITI-18,
  ITI-41, ITI-42, ITI-43, ITI-44, ITI-57, ITI-61, ITI-62, ITI-86, RAD-69.
  The request path captures an :class:`ObservedExchange`; the auditor spools it as a
  deferred record (:func:`deferred_record`: the transport facts, the outcome and the
  request body), read into its audit message only when shipped or viewed
  (:func:`render_deferred`).  With the auditor's ``hold`` the record is written as
  soon as the request is read (its fsync runs while the exchange is answered) and
  settled with the outcome before the answer (:func:`settled_record`).  Deferred are
  the exchanges whose message carries their request (:data:`DEFERRED_ACTIONS`: ITI-18,
  ITI-62, ITI-86) when it is at most :data:`DEFERRED_MAX_REQUEST`; the others are built
  at once.
- The repository's registry seam: :class:`AuditingRegistryClient` wraps the configured
  ``RegistryClient`` and audits the repository's ITI-42 (and the ITI-18 its start-up
  recovery asks); when the registry runs in this process, the call never crosses
  SOAP, so the registry's side of that ITI-42 is audited here as well.
- ITI-8: :func:`feed_outcome` maps the feed's ``FeedOutcome`` (its ``on_outcome`` hook).

ITI-19: where the peer authenticated with a certificate (mutual TLS), the observers
are given ``peer``, a callable answering the subject of the certificate of the
connection being served; it becomes the requester's AlternativeUserID, so the audit
record names the authenticated node as well as its claimed address.  A peer refused
during the handshake becomes a Security Alert
(``atna.node_authentication.node_authentication_alert``).

Mapping never raises into a transaction: the observers log and go on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from lxml import etree

from atna.auditor import DurableWait, framed_messages, wait_durable
from atna.codes import EventOutcomeIndicator
from atna.events import (
    MAX_DESCRIPTION,
    AuditContext,
    AuditEvent,
    DocumentReference,
    Endpoint,
    Side,
    StudyReference,
    TransactionOutcome,
)
from ebxml.errors import RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import Submission
from ebxml.parse import parse_registry_errors, parse_registry_response
from ebxml.query import ValueSyntaxError, split_value
from ebxml.remove import parse_remove_documents_request, parse_remove_objects_request
from ebxml.retrieve import (
    document_ids,
    parse_retrieve_document_set_request,
    parse_retrieve_imaging_document_set_request,
)
from ebxml.tags import LCM, RIM, RS, XDSB
from ebxml.vocabulary import (
    Action,
    DocumentEntryIdentifier,
    QueryParameter,
    ResponseStatus,
    SubmissionSetIdentifier,
    Transaction,
)
from ebxml.wire import adhoc_query_request, parse_adhoc_query_request
from registry.feed_hl7v2 import FeedOutcome
from registry.hl7v2 import AckCode
from registry.hl7v3 import (
    NS_HL7,
    Hl7v3MessageError,
    InstanceIdentifier,
    message_id_of,
    parse_feed_message,
)
from repository.registry_client import RegistryClient, get_documents_request
from soap.app import ExchangeInfo
from soap.faults import FaultCode, SoapFault
from soap.message import SoapRequest
from soap.namespaces import WSA_ANONYMOUS

log = logging.getLogger(__name__)

Record = Callable[[AuditEvent], object]  # Auditor.record: a ticket
PeerSubject = Callable[[], str | None]
_O = EventOutcomeIndicator

# DICOM PS3.15 A.5.1 EventOutcomeIndicator: a Failure did not do what was asked (8,
# serious failure); PartialSuccess did part of it (4, minor failure).
STATUS_OUTCOME: dict[str, EventOutcomeIndicator] = {
    ResponseStatus.SUCCESS: _O.SUCCESS,
    ResponseStatus.PARTIAL_SUCCESS: _O.MINOR_FAILURE,
    ResponseStatus.FAILURE: _O.SERIOUS_FAILURE,
}
# A fault ends the transaction before it acted: the requester's message was refused
# (env:Sender and the other SOAP-level codes: 8, serious failure), or this node failed
# (env:Receiver: 12, major failure - the service was not available to the request).
FAULT_OUTCOME: dict[FaultCode, EventOutcomeIndicator] = {
    FaultCode.SENDER: _O.SERIOUS_FAILURE,
    FaultCode.MUST_UNDERSTAND: _O.SERIOUS_FAILURE,
    FaultCode.VERSION_MISMATCH: _O.SERIOUS_FAILURE,
    FaultCode.DATA_ENCODING_UNKNOWN: _O.SERIOUS_FAILURE,
    FaultCode.RECEIVER: _O.MAJOR_FAILURE,
}
# HL7 Table 0008: AE is an error in the message (8), AR a failure of the receiver (12)
ACK_OUTCOME: dict[str, EventOutcomeIndicator] = {
    AckCode.ACCEPT: _O.SUCCESS,
    AckCode.ERROR: _O.SERIOUS_FAILURE,
    AckCode.REJECT: _O.MAJOR_FAILURE,
}
# ITI TF-2 3.18.5.1: the patient of a query is the one its patient id parameter names
QUERY_PATIENT_PARAMETERS = (
    QueryParameter.DOC_ENTRY_PATIENT_ID,
    QueryParameter.SUBMISSION_SET_PATIENT_ID,
    QueryParameter.FOLDER_PATIENT_ID,
)


# --- what a request and a response say ------------------------------------------------
@dataclass(frozen=True)
class RequestFacts:
    """The participant objects a request names."""

    patient_ids: tuple[str, ...] = ()
    submission_set_unique_id: str | None = None
    documents: tuple[DocumentReference, ...] = ()
    query_id: str | None = None
    query_request: bytes | None = None
    home_community_id: str | None = None
    hl7_message_id: str | None = None  # ITI-44: the message id
    hl7_trigger_event: str | None = None  # ITI-44: the interaction
    merged_patient_ids: tuple[str, ...] = ()  # ITI-44 merge: the subsumed ids
    studies: tuple[StudyReference, ...] = ()  # RAD-69
    removed_object_ids: tuple[str, ...] = ()  # ITI-62


@dataclass(frozen=True)
class ResponseFacts:
    outcome: EventOutcomeIndicator
    description: str | None = None
    documents: tuple[DocumentReference, ...] = ()  # documents the response carries


def _describe(errors: Iterable[RegistryError]) -> str | None:
    text = "; ".join(f"{e.code}: {e.context}" if e.context else str(e.code) for e in errors)
    return text[:MAX_DESCRIPTION] or None


def _submission_facts(submission: Submission) -> RequestFacts:
    ss = submission.submission_set
    return _facts_of_submission(
        ss.patient_id if ss is not None else None,
        [e.patient_id for e in submission.document_entries],
        ss.unique_id if ss is not None else None,
    )


def _facts_of_submission(
    set_patient: str | None, entry_patients: Iterable[str | None], unique_id: str | None
) -> RequestFacts:
    """The patients a submission names, its submission set's first, each once, and the
    submission set's uniqueId."""
    patients = [set_patient] if set_patient else []
    patients += [p for p in entry_patients if p]
    return RequestFacts(
        patient_ids=tuple(dict.fromkeys(patients)), submission_set_unique_id=unique_id
    )


def register_request_facts(body: etree._Element) -> RequestFacts:
    """ITI-42 lcm:SubmitObjectsRequest (ITI TF-2 3.42.5.1: patient, submission set),
    read off its ExternalIdentifiers: each identification scheme belongs to one object
    type (ITI TF-3 Table 4.2.3.2-1, 4.2.3.3-1), so the submission set's patient and
    uniqueId and the DocumentEntries' patients are found without building the model of
    the submission a second time (the handler builds its own), and a request the parser
    refuses is audited with the same facts.  Detached ExternalIdentifiers (children of
    the RegistryObjectList) count as attached ones do."""
    set_patient: str | None = None
    entry_patients: list[str] = []
    unique_id: str | None = None
    for identifier in body.iter(RIM.ExternalIdentifier):
        scheme = identifier.get("identificationScheme")
        value = identifier.get("value")
        if not value:
            continue
        if scheme == DocumentEntryIdentifier.PATIENT_ID:
            entry_patients.append(value)
        elif scheme == SubmissionSetIdentifier.PATIENT_ID:
            set_patient = set_patient or value
        elif scheme == SubmissionSetIdentifier.UNIQUE_ID and unique_id is None:
            unique_id = value
    return _facts_of_submission(set_patient, entry_patients, unique_id)


def provide_request_facts(body: etree._Element) -> RequestFacts:
    """ITI-41 ProvideAndRegisterDocumentSetRequest (ITI TF-2 3.41.5.1)."""
    inner = body.find(LCM.SubmitObjectsRequest)
    return RequestFacts() if inner is None else register_request_facts(inner)


def _query_patients(parameters: dict[str, list[list[str]]]) -> tuple[str, ...]:
    patients: list[str] = []
    for name in QUERY_PATIENT_PARAMETERS:
        for values in parameters.get(name, ()):
            for value in values:
                try:
                    patients += [token.text for token in split_value(value)]
                except ValueSyntaxError:
                    patients.append(value)
    return tuple(dict.fromkeys(p for p in patients if p))


def query_request_facts(body: etree._Element) -> RequestFacts:
    """ITI-18 AdhocQueryRequest (ITI TF-2 3.18.5.1: the patient, the query id, the
    request itself as ParticipantObjectQuery, homeCommunityId)."""
    query = parse_adhoc_query_request(body)
    return RequestFacts(
        patient_ids=_query_patients(query.parameters),
        query_id=query.query_id or None,
        query_request=etree.tostring(body, with_tail=False),
        home_community_id=query.home,
    )


def retrieve_request_facts(body: etree._Element) -> RequestFacts:
    """ITI-43 RetrieveDocumentSetRequest: the documents asked for (ITI TF-2 3.43.6.1)."""
    request = parse_retrieve_document_set_request(body).value
    return RequestFacts(
        documents=tuple(
            DocumentReference(d.document_unique_id, d.repository_unique_id, d.home_community_id)
            for d in request.documents
        )
    )


def remove_objects_request_facts(body: etree._Element) -> RequestFacts:
    """ITI-62 lcm:RemoveObjectsRequest: the entryUUIDs to remove (ITI TF-2 3.62.5.1)."""
    return RequestFacts(removed_object_ids=parse_remove_objects_request(body).value.object_refs)


def remove_documents_request_facts(body: etree._Element) -> RequestFacts:
    """ITI-86 rmd:RemoveDocumentsRequest: the documents to remove (ITI TF-2 3.86.5.1)."""
    request = parse_remove_documents_request(body).value
    return RequestFacts(
        documents=tuple(
            DocumentReference(d.document_unique_id, d.repository_unique_id, d.home_community_id)
            for d in request.documents
        )
    )


def imaging_retrieve_request_facts(body: etree._Element) -> RequestFacts:
    """RAD-69 RetrieveImagingDocumentSetRequest: the studies and the instances asked for
    (RAD TF-3 4.69.4.1.4)."""
    request = parse_retrieve_imaging_document_set_request(body).value
    return RequestFacts(
        studies=tuple(
            StudyReference(
                study.study_instance_uid,
                tuple(
                    document.document_unique_id
                    for series in study.series
                    for document in series.documents
                ),
            )
            for study in request.studies
            if study.study_instance_uid
        )
    )


def _cx(identifier: InstanceIdentifier) -> str | None:
    # the CX form the registry stores (ITI TF-2 3.44.4.1.3): ID^^^&OID&ISO
    if not identifier.extension:
        return None
    return f"{identifier.extension}^^^&{identifier.root}&ISO"


def _ii_text(identifier: InstanceIdentifier | None) -> str | None:
    if identifier is None:
        return None
    return f"{identifier.root}^{identifier.extension}" if identifier.extension else identifier.root


def _patient_id(ids: Sequence[InstanceIdentifier], authority: str | None) -> tuple[str, ...]:
    # one patient, one id (ITI TF-2 3.20.7): the affinity domain's id when the domain is
    # configured (ITI TF-2 3.44.4.1.3), else the first id the message gives
    chosen = [i for i in ids if i.extension and (authority is None or i.root == authority)]
    cx = _cx(chosen[0]) if chosen else None
    return (cx,) if cx else ()


def patient_feed_reader(
    assigning_authority: str | None = None,
) -> Callable[[etree._Element], RequestFacts]:
    """The ITI-44 request reader: PRPA_IN2013xxUV02 (ITI TF-2 3.44.5.1): the patient's
    id (of ``assigning_authority`` when given), the message id (detail "II"), the
    interaction; a merge names the subsumed id."""

    def read(body: etree._Element) -> RequestFacts:
        try:
            message = parse_feed_message(body)
        except Hl7v3MessageError:
            return RequestFacts(
                hl7_message_id=_ii_text(message_id_of(body)),
                hl7_trigger_event=etree.QName(body).localname,
            )
        return RequestFacts(
            patient_ids=_patient_id(message.patient.ids, assigning_authority),
            hl7_message_id=_ii_text(message.message_id),
            hl7_trigger_event=str(message.interaction),
            merged_patient_ids=_patient_id(message.prior_ids, assigning_authority),
        )

    return read


patient_feed_request_facts = patient_feed_reader()


def acknowledgement_facts(body: etree._Element) -> ResponseFacts:
    """MCCI_IN000002UV01: acknowledgement/typeCode/@code (HL7 Table 0008 codes) and the
    acknowledgementDetail texts."""
    ack = body.find(_HL7_ACKNOWLEDGEMENT)
    type_code = None if ack is None else ack.find(_HL7_TYPE_CODE)
    code = "" if type_code is None else type_code.get("code", "")
    texts = [] if ack is None else [(t.text or "").strip() for t in ack.iter(_HL7_DETAIL_TEXT)]
    description = "; ".join(t for t in texts if t)[:MAX_DESCRIPTION] or None
    return ResponseFacts(ACK_OUTCOME.get(code, _O.SERIOUS_FAILURE), description)


def registry_response_facts(body: etree._Element) -> ResponseFacts:
    """rs:RegistryResponse of ITI-41 and ITI-42."""
    response = parse_registry_response(body)
    return ResponseFacts(_status_outcome(response.status), _describe(response.errors))


def query_response_facts(body: etree._Element) -> ResponseFacts:
    """query:AdhocQueryResponse: its status and RegistryErrors."""
    errors = parse_registry_errors(body)
    return ResponseFacts(_status_outcome(body.get("status", "")), _describe(errors))


_NO_REGISTRY_RESPONSE = ResponseFacts(_O.SERIOUS_FAILURE, "no RegistryResponse in the response")


def imaging_retrieve_response_facts(body: etree._Element) -> ResponseFacts:
    """RAD-69's xdsb:RetrieveDocumentSetResponse: its status and errors.  The record
    names the studies asked for, not the instances sent (RAD TF-3 4.69.4.1.4), so the
    DocumentResponses - one per instance, hundreds for a study - are not read."""
    registry_response = body.find(RS.RegistryResponse)
    if registry_response is None:
        return _NO_REGISTRY_RESPONSE
    response = parse_registry_response(registry_response)
    return ResponseFacts(_status_outcome(response.status), _describe(response.errors))


def retrieve_response_facts(body: etree._Element) -> ResponseFacts:
    """xdsb:RetrieveDocumentSetResponse: status, errors, and the documents sent."""
    facts = imaging_retrieve_response_facts(body)
    if facts is _NO_REGISTRY_RESPONSE:
        return facts
    documents = tuple(
        DocumentReference(
            ids.get(XDSB.DocumentUniqueId) or "",
            ids.get(XDSB.RepositoryUniqueId),
            ids.get(XDSB.HomeCommunityId),
        )
        for ids in map(document_ids, body.iterfind(XDSB.DocumentResponse))
    )
    return ResponseFacts(facts.outcome, facts.description, documents)


def _status_outcome(status: str) -> EventOutcomeIndicator:
    return STATUS_OUTCOME.get(status, _O.SERIOUS_FAILURE)


_HL7_ACKNOWLEDGEMENT = f"{{{NS_HL7}}}acknowledgement"
_HL7_DETAIL_TEXT = f"{{{NS_HL7}}}text"
_HL7_TYPE_CODE = f"{{{NS_HL7}}}typeCode"


# --- the table: request Action -> what the responder audits ---------------------------
@dataclass(frozen=True)
class ExchangeAudit:
    transaction: Transaction
    side: Side
    read_request: Callable[[etree._Element], RequestFacts]
    read_response: Callable[[etree._Element], ResponseFacts]


ITI44_ACTIONS = (Action.ITI44_ADD, Action.ITI44_REVISE, Action.ITI44_MERGE)
EXCHANGE_AUDITS: dict[str, ExchangeAudit] = {
    Action.ITI41: ExchangeAudit(
        Transaction.ITI41, Side.RESPONDER, provide_request_facts, registry_response_facts
    ),
    Action.ITI42: ExchangeAudit(
        Transaction.ITI42, Side.RESPONDER, register_request_facts, registry_response_facts
    ),
    Action.ITI18: ExchangeAudit(
        Transaction.ITI18, Side.RESPONDER, query_request_facts, query_response_facts
    ),
    Action.ITI43: ExchangeAudit(
        Transaction.ITI43, Side.RESPONDER, retrieve_request_facts, retrieve_response_facts
    ),
    Action.ITI57: ExchangeAudit(
        Transaction.ITI57, Side.RESPONDER, register_request_facts, registry_response_facts
    ),
    Action.ITI61: ExchangeAudit(
        Transaction.ITI61, Side.RESPONDER, register_request_facts, registry_response_facts
    ),
    Action.ITI62: ExchangeAudit(
        Transaction.ITI62, Side.RESPONDER, remove_objects_request_facts, registry_response_facts
    ),
    Action.ITI86: ExchangeAudit(
        Transaction.ITI86, Side.RESPONDER, remove_documents_request_facts, registry_response_facts
    ),
    Action.RAD69: ExchangeAudit(
        Transaction.RAD69,
        Side.RESPONDER,
        imaging_retrieve_request_facts,
        imaging_retrieve_response_facts,
    ),
    **dict.fromkeys(
        ITI44_ACTIONS,
        ExchangeAudit(
            Transaction.ITI44, Side.RESPONDER, patient_feed_request_facts, acknowledgement_facts
        ),
    ),
}


def exchange_audits(assigning_authority: str | None = None) -> dict[str, ExchangeAudit]:
    """The table, with ITI-44 reading the patient id of ``assigning_authority`` (the
    affinity domain's; the first id of the message when None).

    ITI-44 is audited on the SOAP seam rather than the feed's ``on_outcome`` hook: the
    exchange names the requester's address, which the record needs (ITI TF-2 3.44.5.1)."""
    reader = patient_feed_reader(assigning_authority)
    feed = ExchangeAudit(Transaction.ITI44, Side.RESPONDER, reader, acknowledgement_facts)
    return {**EXCHANGE_AUDITS, **dict.fromkeys(ITI44_ACTIONS, feed)}


def _read(reader: Callable[[etree._Element], Any], body: etree._Element, default: Any) -> Any:
    try:
        return reader(body)
    except Exception:
        # a body the actor refused may be one the reader cannot follow either
        log.debug("audit could not read %s", body.tag, exc_info=True)
        return default


def _response_result(
    audit: ExchangeAudit, response_body: etree._Element | None, fault: SoapFault | None
) -> ResponseFacts:
    if fault is not None:
        return ResponseFacts(FAULT_OUTCOME.get(fault.code, _O.SERIOUS_FAILURE), fault.reason)
    if response_body is not None:
        failed = ResponseFacts(_O.SERIOUS_FAILURE, "response not readable")
        return _read(audit.read_response, response_body, failed)
    return ResponseFacts(_O.SERIOUS_FAILURE)


def _transaction_outcome(
    audit: ExchangeAudit,
    facts: RequestFacts,
    result: ResponseFacts,
    *,
    reply_to: str | None,
    peer_subject: str | None,
    client_host: str | None,
    url: str,
    received: datetime,
) -> TransactionOutcome:
    # ITI TF-2 3.41.5.1.2 etc.: the requester is named by its wsa:ReplyTo and address
    requester = Endpoint(
        reply_to or WSA_ANONYMOUS,
        alternative_user_id=peer_subject,  # ITI-19: the authenticated node
        network_access_point=client_host,
    )
    return TransactionOutcome(
        transaction=audit.transaction,
        side=audit.side,
        requester=requester,
        responder=Endpoint(url),
        outcome=result.outcome,
        outcome_description=result.description,
        event_date_time=received,
        patient_ids=facts.patient_ids,
        submission_set_unique_id=facts.submission_set_unique_id,
        documents=result.documents or facts.documents,
        query_id=facts.query_id,
        query_request=facts.query_request,
        home_community_id=facts.home_community_id,
        hl7_message_control_id=facts.hl7_message_id,
        hl7_trigger_event=facts.hl7_trigger_event,
        merged_patient_ids=facts.merged_patient_ids,
        studies=facts.studies,
        removed_object_ids=facts.removed_object_ids,
    )


def exchange_outcome(
    request: SoapRequest | None,
    response_body: etree._Element | None,
    fault: SoapFault | None,
    info: ExchangeInfo,
    audits: dict[str, ExchangeAudit] = EXCHANGE_AUDITS,
    peer_subject: str | None = None,
) -> TransactionOutcome | None:
    """The responder's record of one SOAP exchange, or None when its Action is not one
    audited here (or was never read)."""
    audit = audits.get(info.action or "")
    if audit is None:
        return None
    facts = RequestFacts()
    if request is not None:
        facts = _read(audit.read_request, request.body, facts)
    return _transaction_outcome(
        audit,
        facts,
        _response_result(audit, response_body, fault),
        reply_to=request.addressing.reply_to if request is not None else None,
        peer_subject=peer_subject,
        client_host=info.client_host,
        url=info.url,
        received=info.received,
    )


# --- deferred records: the exchange spooled as it was seen, read when shipped --------
# What the spool holds for an exchange whose record follows from its request body and
# its response's status alone (no document list read from the response): a JSON line
# of the transport facts and the response's outcome, then the request body as
# received.  Writing it costs the request path a serialisation and an insert; reading
# the request and building the audit message happen when the record is shipped or
# viewed (``render_deferred``), off the transaction's critical path.
DEFERRED_MAX_REQUEST = 64 * 1024  # bytes of request body a deferred record carries at most
# ... but a RAD-69 request, which names every instance asked for (~220 bytes each: a
# study of 4,000 instances fits)
DEFERRED_MAX_RAD69_REQUEST = 1024 * 1024
_DEFERRED_VERSION = 1
# The exchanges spooled as deferred records: those whose audit message carries their
# request whole or nearly so - the query (ParticipantObjectQuery, ITI TF-2 3.18.5.1),
# the ids of the objects or documents removed, the studies and instances a RAD-69 asks
# for (RAD TF-3 4.69.4.1.4: each study with its SOP Instance UIDs; building that
# message for a study of 500 instances cost ~2 ms before the answer's first byte).  A
# submission's metadata (names, dates of birth, titles) is not copied into the audit
# spool: ITI-41, ITI-42, ITI-57 and ITI-61 records are built at once, of the patient
# and submission set they name.
DEFERRED_ACTIONS = frozenset({Action.ITI18, Action.ITI62, Action.ITI86, Action.RAD69})
_DEFERRED_MAX = {Action.RAD69: DEFERRED_MAX_RAD69_REQUEST}


def deferred_record(
    observed: ObservedExchange,
    context: AuditContext,
    hostname: str,
    app_name: str,
    *,
    held: bool = False,
) -> bytes | None:
    """``observed`` as a deferred spool record, or None when it is built now (an Action
    not in :data:`DEFERRED_ACTIONS` or read with another table, a large request).
    ``held``: the record of the exchange still being answered, its outcome not yet
    known (read as unknown if it is never settled)."""
    action = observed.info.action or ""
    audit = observed.audits.get(action)
    if action not in DEFERRED_ACTIONS or EXCHANGE_AUDITS.get(action) is not audit:
        return None  # built at once, or read with a table the renderer does not have
    if held:
        result = None
    else:
        result = _response_result(audit, observed.response_body, observed.fault)
        if result.documents:
            return None
    request = observed.request
    body = b"" if request is None else etree.tostring(request.body, with_tail=False)
    if len(body) > _DEFERRED_MAX.get(action, DEFERRED_MAX_REQUEST):
        return None
    info = observed.info
    head = {
        "v": _DEFERRED_VERSION,
        "action": action,
        "request": request is not None,
        "reply_to": request.addressing.reply_to if request is not None else None,
        "peer": observed.peer_subject,
        "client_host": info.client_host,
        "url": info.url,
        "received": info.received.isoformat(),
        "outcome": None if result is None else result.outcome.value,
        "description": None if result is None else result.description,
        "source": [context.audit_source_id, context.audit_enterprise_site_id, context.process_id],
        "host": [hostname, app_name],
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + body


def render_deferred(record: bytes) -> list[bytes]:
    """The RFC 5424 messages of a ``deferred_record`` (ValueError if unreadable)."""
    line, _, body = record.partition(b"\n")
    try:
        head = json.loads(line)
        if head.get("v") != _DEFERRED_VERSION:
            raise ValueError(f"deferred audit record version {head.get('v')!r}")
        audit = EXCHANGE_AUDITS[head["action"]]
        facts = RequestFacts()
        if head["request"]:
            facts = _read(audit.read_request, etree.fromstring(body, _DEFERRED_PARSER), facts)
        outcome = _transaction_outcome(
            audit,
            facts,
            _recorded_result(head["outcome"], head["description"]),
            reply_to=head["reply_to"],
            peer_subject=head["peer"],
            client_host=head["client_host"],
            url=head["url"],
            received=datetime.fromisoformat(head["received"]),
        )
        source_id, site_id, process_id = head["source"]
        hostname, app_name = head["host"]
    except (KeyError, TypeError, ValueError, etree.XMLSyntaxError) as exc:
        raise ValueError(f"deferred audit record not readable: {exc}") from exc
    context = AuditContext(source_id, site_id, process_id=process_id)
    return framed_messages(outcome, context, hostname, app_name)


_UNSETTLED_HEAD = b'"outcome":null,"description":null,'


def is_unsettled(record: bytes) -> bool:
    """Whether ``record`` is a held record whose outcome is not written yet."""
    line_end = record.find(b"\n")
    return line_end >= 0 and _UNSETTLED_HEAD in record[:line_end]


def settled_record(held: bytes, observed: ObservedExchange) -> bytes | None:
    """The ``held`` record of ``observed``'s exchange completed with its outcome (what
    ``deferred_record`` would write now, without reading the request again); None when
    ``held`` is not such a record."""
    audit = observed.audits.get(observed.info.action or "")
    line_end = held.find(b"\n")
    if audit is None or line_end < 0 or _UNSETTLED_HEAD not in held[:line_end]:
        return None
    result = _response_result(audit, observed.response_body, observed.fault)
    outcome = json.dumps(
        {"outcome": result.outcome.value, "description": result.description},
        separators=(",", ":"),
    )
    head = held[:line_end].replace(_UNSETTLED_HEAD, outcome[1:-1].encode() + b",", 1)
    return head + held[line_end:]


# A held record never settled: the exchange was being answered when xdsi stopped (or,
# read by the viewer, is being answered now).  DICOM PS3.15 A.5.1: 8, serious failure,
# the outcome the requester cannot count on.
UNSETTLED = ResponseFacts(
    EventOutcomeIndicator.SERIOUS_FAILURE,
    "outcome not recorded: the exchange was still being answered when xdsi stopped",
)


def _recorded_result(outcome: str | None, description: str | None) -> ResponseFacts:
    if outcome is None:
        return UNSETTLED
    return ResponseFacts(EventOutcomeIndicator(outcome), description)


# the request body as the SOAP layer accepted it: no entities, no network
_DEFERRED_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


@dataclass(frozen=True)
class ObservedExchange:
    """One audited SOAP exchange as it was seen, read later (``outcome``).

    The request path only captures this record; the auditor spools it as a deferred
    record (``deferred_record``) read when shipped, or reads it at once where that
    cannot be.  The bodies are no longer changed once the answer is encoded; the peer's
    certificate subject is taken while the connection is served."""

    request: SoapRequest | None
    response_body: etree._Element | None
    fault: SoapFault | None
    info: ExchangeInfo
    audits: dict[str, ExchangeAudit]
    peer_subject: str | None = None

    def outcome(self) -> TransactionOutcome | None:
        return exchange_outcome(
            self.request,
            self.response_body,
            self.fault,
            self.info,
            self.audits,
            self.peer_subject,
        )

    def deferred(
        self, context: AuditContext, hostname: str, app_name: str, *, held: bool = False
    ) -> bytes | None:
        return deferred_record(self, context, hostname, app_name, held=held)

    def settled(self, held: bytes) -> bytes | None:
        return settled_record(held, self)


class Holder(Protocol):
    """What ``SoapAuditObserver`` needs to write a record while its exchange runs: the
    ``Auditor``'s ``hold`` and ``settle``."""

    def hold(self, event: AuditEvent) -> Future | None: ...

    def settle(self, held: Future, event: AuditEvent) -> Future: ...


class SoapAuditObserver:
    """``soap.app`` ``on_exchange`` observer: records each audited exchange as an
    :class:`ObservedExchange`; exchanges of Actions not in the table cost a lookup.

    With an ``auditor`` (a :class:`Holder`), ``begin`` writes the exchange's record as
    soon as its request is read - its fsync runs while the exchange is answered - and
    the observation at the end settles it with the outcome, which costs the answer an
    unsynced update instead of a synced insert."""

    def __init__(
        self,
        record: Record,
        audits: dict[str, ExchangeAudit] | None = None,
        *,
        peer: PeerSubject | None = None,
        auditor: Holder | None = None,
    ) -> None:
        self._record = record
        self._audits = EXCHANGE_AUDITS if audits is None else audits
        self._peer = peer
        self._holder = auditor

    def _observed(
        self,
        request: SoapRequest | None,
        response_body: etree._Element | None,
        fault: SoapFault | None,
        info: ExchangeInfo,
    ) -> ObservedExchange | None:
        if (info.action or "") not in self._audits:
            return None
        try:
            subject = self._peer() if self._peer is not None else None
            return ObservedExchange(request, response_body, fault, info, self._audits, subject)
        except Exception:
            log.exception("audit record of %s %s not made", info.endpoint, info.action)
            return None

    def begin(self, request: SoapRequest, info: ExchangeInfo) -> Future | None:
        """The exchange's request is read: hold its record; what the end settles."""
        if self._holder is None:
            return None
        observed = self._observed(request, None, None, info)
        return None if observed is None else self._holder.hold(observed)

    def __call__(
        self,
        request: SoapRequest | None,
        response_body: etree._Element | None,
        fault: SoapFault | None,
        info: ExchangeInfo,
        begun: object = None,
    ) -> DurableWait | None:
        observed = self._observed(request, response_body, fault, info)
        if observed is None:
            return None
        if isinstance(begun, Future) and self._holder is not None:
            ticket = self._holder.settle(begun, observed)
        else:
            ticket = self._record(observed)
        if isinstance(ticket, Future) and ticket.done():
            return None  # durable already (written on this thread)
        # the answer waits for this: the record is durable before the exchange answers
        return DurableWait(ticket)


# --- ITI-8 -----------------------------------------------------------------------------
def feed_outcome(
    outcome: FeedOutcome,
    receiver: Endpoint,
    event_date_time: datetime | None = None,
    peer_subject: str | None = None,
) -> TransactionOutcome:
    """ITI TF-2 3.8.5.1.2: the registry's record of one feed message.  The source is
    named MSH-3|MSH-4; an A40 lists (surviving, subsumed) pairs: the surviving patient
    is updated, the subsumed one deleted (``atna.events.HL7_TRIGGER_ACTION``)."""
    ids = outcome.patient_ids
    merge = outcome.trigger_event == "A40"
    extra: dict[str, Any] = {}
    if event_date_time is not None:
        extra["event_date_time"] = event_date_time
    return TransactionOutcome(
        transaction=Transaction.ITI8,
        side=Side.RESPONDER,
        requester=Endpoint(
            f"{outcome.sending_application}|{outcome.sending_facility}",
            alternative_user_id=peer_subject,
        ),
        responder=receiver,
        outcome=ACK_OUTCOME.get(outcome.ack_code, _O.SERIOUS_FAILURE),
        outcome_description=(outcome.text or None) if outcome.ack_code != AckCode.ACCEPT else None,
        patient_ids=tuple(dict.fromkeys(ids[0::2] if merge else ids)),
        merged_patient_ids=tuple(dict.fromkeys(ids[1::2])) if merge else (),
        hl7_message_control_id=outcome.control_id or None,
        hl7_trigger_event=outcome.trigger_event or None,
        **extra,
    )


class FeedAuditObserver:
    """``FeedProcessor(on_outcome=...)``: records each feed message's outcome."""

    def __init__(self, record: Record, receiver: Endpoint, *, peer: PeerSubject | None = None):
        self._record = record
        self._receiver = receiver
        self._peer = peer

    def __call__(self, outcome: FeedOutcome) -> None:
        subject = self._peer() if self._peer is not None else None
        # the feed answers from a worker thread: its ACK waits for a durable record
        wait_durable(self._record(feed_outcome(outcome, self._receiver, peer_subject=subject)))


# --- the repository's registry seam --------------------------------------------------
class AuditingRegistryClient:
    """A ``RegistryClient`` that audits what goes through it.

    ``register``: the repository's ITI-42 (ITI TF-2 3.42.5.1.1, 110106 Export) and, when
    ``in_process``, the registry's (3.42.5.1.2, 110107 Import).  ``registered_documents``:
    the ITI-18 GetDocuments start-up recovery asks, as a consumer (3.18.5.1.1) and, when
    ``in_process``, as the registry.  Anything else is passed through unchanged.
    """

    def __init__(
        self,
        inner: RegistryClient,
        record: Record,
        *,
        repository: Endpoint,
        registry: Endpoint,
        in_process: bool,
    ) -> None:
        self.inner = inner
        self._record = record
        self._repository = repository
        self._registry = registry
        self._sides = (Side.REQUESTER, Side.RESPONDER) if in_process else (Side.REQUESTER,)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _audit(self, transaction: Transaction, **fields: Any) -> None:
        try:
            for side in self._sides:
                self._record(
                    TransactionOutcome(
                        transaction=transaction,
                        side=side,
                        requester=self._repository,
                        responder=self._registry,
                        **fields,
                    )
                )
        except Exception:
            log.exception("audit record of %s not made", transaction)

    def register(self, submission: Submission) -> RegistryResponse:
        facts = _submission_facts(submission)
        fields = {
            "patient_ids": facts.patient_ids,
            "submission_set_unique_id": facts.submission_set_unique_id,
        }
        try:
            response = self.inner.register(submission)
        except Exception as exc:
            self._audit(
                Transaction.ITI42, outcome=_O.MAJOR_FAILURE, outcome_description=repr(exc), **fields
            )
            raise
        self._audit(
            Transaction.ITI42,
            outcome=_status_outcome(response.status),
            outcome_description=_describe(response.errors),
            **fields,
        )
        return response

    def registered_documents(
        self, unique_ids: Sequence[str], repository_unique_id: str
    ) -> set[str]:
        request = get_documents_request(list(unique_ids))
        fields = {
            "query_id": request.query_id,
            "query_request": etree.tostring(adhoc_query_request(request)),
        }
        try:
            found = self.inner.registered_documents(unique_ids, repository_unique_id)
        except Exception as exc:
            self._audit(
                Transaction.ITI18,
                outcome=_O.SERIOUS_FAILURE,
                outcome_description=str(exc)[:MAX_DESCRIPTION],
                **fields,
            )
            raise
        self._audit(Transaction.ITI18, **fields)
        return found


__all__ = [
    "ACK_OUTCOME",
    "EXCHANGE_AUDITS",
    "FAULT_OUTCOME",
    "QUERY_PATIENT_PARAMETERS",
    "STATUS_OUTCOME",
    "acknowledgement_facts",
    "imaging_retrieve_request_facts",
    "imaging_retrieve_response_facts",
    "patient_feed_request_facts",
    "remove_documents_request_facts",
    "remove_objects_request_facts",
    "AuditingRegistryClient",
    "ExchangeAudit",
    "ITI44_ACTIONS",
    "exchange_audits",
    "patient_feed_reader",
    "DEFERRED_ACTIONS",
    "DEFERRED_MAX_RAD69_REQUEST",
    "DEFERRED_MAX_REQUEST",
    "ObservedExchange",
    "PeerSubject",
    "FeedAuditObserver",
    "Holder",
    "RequestFacts",
    "ResponseFacts",
    "SoapAuditObserver",
    "deferred_record",
    "exchange_outcome",
    "feed_outcome",
    "provide_request_facts",
    "query_request_facts",
    "is_unsettled",
    "render_deferred",
    "settled_record",
    "query_response_facts",
    "register_request_facts",
    "registry_response_facts",
    "retrieve_request_facts",
    "retrieve_response_facts",
]
