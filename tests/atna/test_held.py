"""Deferred and held audit records: an exchange's record is spooled as it was seen
(read when shipped), written while the exchange runs (held, fsynced meanwhile) and
settled with its outcome before the answer; a record never settled is released with
its outcome unknown.  Through a real SOAP route (soap.app) and a real SQLite spool."""

from __future__ import annotations

import asyncio
import base64
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from atna_support import ScriptedSender
from lxml import etree
from sqlalchemy import update
from starlette.applications import Starlette

from atna.auditor import Auditor, framed_messages
from atna.codes import EventOutcomeIndicator
from atna.events import AuditContext
from atna.observe import (
    DEFERRED_MAX_RAD69_REQUEST,
    DEFERRED_MAX_REQUEST,
    EXCHANGE_AUDITS,
    ObservedExchange,
    SoapAuditObserver,
    deferred_record,
    exchange_audits,
    is_unsettled,
    render_deferred,
    settled_record,
)
from atna.spool import (
    FAILED,
    HELD,
    PENDING,
    UNSETTLED_AFTER,
    AuditSpool,
    SpoolEvent,
    default_url,
    make_engine,
    messages_of,
)
from ebxml.messages import (
    DocumentRequest,
    RegistryResponse,
    RetrieveDocumentSetResponse,
    RetrieveImagingDocumentSetRequest,
    SeriesRequest,
    StudyRequest,
)
from ebxml.remove import RemoveObjectsRequest, remove_objects_request
from ebxml.retrieve import retrieve_document_set_response, retrieve_imaging_document_set_request
from ebxml.serialize import registry_response
from ebxml.tags import XDSB
from ebxml.vocabulary import RESPONSE_ACTION, Action, ResponseStatus
from soap.addressing import read_addressing
from soap.app import ExchangeInfo, build_soap_routes
from soap.envelope import read_envelope
from soap.faults import FaultCode, SoapFault
from soap.limits import Limits
from soap.message import Operation, Service, SoapRequest, SoapResponse

DEST = "tls://audit.example.org:6514"
ENTRY_UUID = "urn:uuid:7c1fa7a6-0a5c-4f4b-8f3e-1b2f0f6a9a01"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
PATIENT = "543797436^^^&1.2.840.113619.6.197&ISO"
CONTEXT = AuditContext("xdsi@node1", "1.2.3", process_id="4242")
UNSETTLED = b"outcome not recorded"


def _envelope(action: str, body: bytes) -> bytes:
    return (
        (
            f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
            f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>'
            "<wsa:MessageID>urn:uuid:00000000-0000-4000-8000-000000000018</wsa:MessageID>"
            "</env:Header><env:Body>"
        ).encode()
        + body
        + b"</env:Body></env:Envelope>"
    )


def _find_documents(padding: str = "") -> bytes:
    return (
        f'<query:AdhocQueryRequest xmlns:query="{QUERY}" xmlns:rim="{RIM}">'
        '<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>'
        '<rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">'
        '<rim:Slot name="$XDSDocumentEntryPatientId">'
        f"<rim:ValueList><rim:Value>'{PATIENT.replace('&', '&amp;')}'</rim:Value></rim:ValueList></rim:Slot>"
        '<rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList>'
        "<rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value>"
        f"</rim:ValueList></rim:Slot>{padding}</rim:AdhocQuery></query:AdhocQueryRequest>"
    ).encode()


def _imaging_retrieve(instances: int) -> bytes:
    """A RAD-69 request for ``instances`` instances of one series of one study."""
    documents = tuple(
        DocumentRequest("1.3.6.1.4.1.21367.13.40.3901", f"1.2.826.0.1.3680043.8.498.{n + 1}")
        for n in range(instances)
    )
    request = RetrieveImagingDocumentSetRequest(
        (StudyRequest("1.2.826.0.1.3680043.8.498.7", (SeriesRequest("1.2.3.4.5", documents),)),),
        ("1.2.840.10008.1.2.1",),
    )
    return etree.tostring(retrieve_imaging_document_set_request(request))


def _imaging_response(status: str = ResponseStatus.SUCCESS) -> etree._Element:
    return retrieve_document_set_response(RetrieveDocumentSetResponse(status), ())


def _query_response(status: str = ResponseStatus.SUCCESS) -> etree._Element:
    return etree.fromstring(f'<query:AdhocQueryResponse xmlns:query="{QUERY}" status="{status}"/>')


def _observed(
    body: bytes | None = None,
    *,
    action: str = Action.ITI18,
    response: etree._Element | None = None,
    fault: SoapFault | None = None,
    audits: dict | None = None,
) -> ObservedExchange:
    envelope = read_envelope(etree.fromstring(_envelope(action, body or _find_documents())))
    request = SoapRequest(
        "/xds/registry",
        read_addressing(envelope.header),
        envelope.body,
        header=envelope.header,
        client_host="10.1.2.3",
        client_port=4711,
    )
    info = ExchangeInfo(
        "/xds/registry",
        "https://xdsi.example.org/xds/registry",
        datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=UTC),
        200,
        action,
        "10.1.2.3",
        4711,
    )
    return ObservedExchange(
        request, response, fault, info, EXCHANGE_AUDITS if audits is None else audits, "CN=c"
    )


def _xml(message: bytes) -> etree._Element:
    return etree.fromstring(message.split(b"\xef\xbb\xbf", 1)[1])


def _outcome(message: bytes) -> tuple[str, str | None]:
    identification = _xml(message).find("EventIdentification")
    return identification.get("EventOutcomeIndicator"), identification.findtext(
        "EventOutcomeDescription"
    )


# --- the record itself: pure -------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "fault"),
    [
        (_query_response(), None),
        (_query_response(ResponseStatus.FAILURE), None),
        (None, SoapFault(FaultCode.SENDER, "no such stored query")),
    ],
)
def test_a_deferred_record_renders_to_the_messages_built_at_once(
    response: etree._Element | None, fault: SoapFault | None
) -> None:
    observed = _observed(response=response, fault=fault)
    record = deferred_record(observed, CONTEXT, "node1.example.org", "xdsi")
    assert record is not None and record.startswith(b"{")
    assert render_deferred(record) == framed_messages(
        observed, CONTEXT, "node1.example.org", "xdsi"
    )
    assert messages_of(record) == render_deferred(record)


@pytest.mark.parametrize(
    "response", [_imaging_response(), _imaging_response(ResponseStatus.PARTIAL_SUCCESS)]
)
def test_a_rad69_record_of_a_study_is_deferred_and_held(response: etree._Element) -> None:
    """RAD-69's message names each instance asked for (RAD TF-3 4.69.4.1.4): the record
    of a 500-instance study carries its request, over the limit of the others."""
    request = _imaging_retrieve(500)
    assert DEFERRED_MAX_REQUEST < len(request) <= DEFERRED_MAX_RAD69_REQUEST
    observed = _observed(request, action=Action.RAD69, response=response)
    record = deferred_record(observed, CONTEXT, "node1", "xdsi")
    assert record is not None
    (message,) = render_deferred(record)
    assert message == framed_messages(observed, CONTEXT, "node1", "xdsi")[0]
    instances = _xml(message).findall(".//SOPClass/Instance")
    assert len(instances) == 500 and instances[-1].get("UID") == "1.2.826.0.1.3680043.8.498.500"
    held = deferred_record(observed, CONTEXT, "node1", "xdsi", held=True)
    assert held is not None and settled_record(held, observed) == record


@pytest.mark.parametrize(
    "padding",
    [
        "",
        # a query that holds the unsettled head's text: only the head is written over
        '<rim:Slot name="$x"><rim:ValueList><rim:Value>"outcome":null,"description":null,'
        "</rim:Value></rim:ValueList></rim:Slot>",
    ],
)
def test_a_settled_held_record_is_the_record_written_at_the_end(padding: str) -> None:
    observed = _observed(
        _find_documents(padding), response=_query_response(ResponseStatus.PARTIAL_SUCCESS)
    )
    held = deferred_record(observed, CONTEXT, "node1", "xdsi", held=True)
    assert held is not None
    settled = settled_record(held, observed)
    assert settled == deferred_record(observed, CONTEXT, "node1", "xdsi")
    assert not is_unsettled(settled) and is_unsettled(held)
    # never settled: read with its outcome unknown - a serious failure, and why
    (message,) = render_deferred(held)
    indicator, description = _outcome(message)
    assert indicator == EventOutcomeIndicator.SERIOUS_FAILURE
    assert UNSETTLED.decode() in description
    assert settled_record(b"<14>1 - - - - - -", observed) is None


def test_a_submission_is_built_at_once() -> None:
    """A submission's metadata (names, dates of birth, titles) and inline documents stay
    out of the audit spool: ITI-41 and ITI-42 records are made of the patient and the
    submission set they name (ITI TF-2 3.41.5.1, 3.42.5.1), at once."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_observe import provide_body, submission  # noqa: PLC0415

    body = provide_body(submission())
    etree.SubElement(body, XDSB.Document, id="Document01").text = base64.b64encode(b"x").decode()
    success = registry_response(RegistryResponse(ResponseStatus.SUCCESS))
    provide = _observed(etree.tostring(body), action=Action.ITI41, response=success)
    register = _observed(etree.tostring(body[0]), action=Action.ITI42, response=success)
    for observed in (provide, register):
        for held in (False, True):
            assert deferred_record(observed, CONTEXT, "node1", "xdsi", held=held) is None


def test_records_that_are_built_at_once() -> None:
    retrieve = _observed(action=Action.ITI43)
    # ITI-43 names the documents its answer carries: never held
    assert deferred_record(retrieve, CONTEXT, "n", "xdsi", held=True) is None
    # a request body over the limit
    padding = (
        "<rim:Slot name='x'><rim:ValueList><rim:Value>y</rim:Value></rim:ValueList></rim:Slot>"
    )
    large = _find_documents(padding * (DEFERRED_MAX_REQUEST // len(padding) + 1))
    assert deferred_record(_observed(large), CONTEXT, "n", "xdsi") is None
    study = _imaging_retrieve(DEFERRED_MAX_RAD69_REQUEST // 100)  # > 100 bytes an instance
    assert len(study) > DEFERRED_MAX_RAD69_REQUEST
    assert deferred_record(_observed(study, action=Action.RAD69), CONTEXT, "n", "xdsi") is None
    # an exchange read with a table of its own (ITI-44 with the affinity domain)
    custom = exchange_audits("1.2.3")
    feed = _observed(action=Action.ITI44_ADD, audits=custom)
    assert deferred_record(feed, CONTEXT, "n", "xdsi") is None


def test_an_unreadable_record_is_refused() -> None:
    for record in (b"{not json", b'{"v":99}\n', b'{"v":1,"action":"urn:x"}\n'):
        with pytest.raises(ValueError):
            messages_of(record)


# --- the spool: held, settled, released ---------------------------------------------------
@pytest.fixture
def spool(tmp_path: Path) -> AuditSpool:
    spool = AuditSpool.open(default_url(tmp_path))
    yield spool
    spool.close()


def _statuses(spool: AuditSpool) -> list[str]:
    return [d.status for d in spool.deliveries(DEST)]


def test_a_held_record_is_shipped_only_once_settled(spool: AuditSpool) -> None:
    observed = _observed(response=_query_response())
    held = deferred_record(observed, CONTEXT, "node1", "xdsi", held=True)
    (event_id,) = spool.hold([held], [DEST])
    assert _statuses(spool) == [HELD]
    assert spool.claim(DEST) is None
    assert spool.backlog() == 1  # it counts against the spool limit meanwhile
    assert spool.settle(event_id, settled_record(held, observed), [DEST])
    assert _statuses(spool) == [PENDING]
    claim = spool.claim(DEST)
    assert [_outcome(m) for _, m in claim.rows] == [("0", None)]
    spool.finish(claim)


def test_held_records_of_a_stopped_server_are_released_with_their_outcome_unknown(
    tmp_path: Path,
) -> None:
    first = AuditSpool.open(default_url(tmp_path))
    held = deferred_record(_observed(), CONTEXT, "node1", "xdsi", held=True)
    first.hold([held], [DEST])
    first.close()  # stopped before the exchange answered
    spool = AuditSpool.open(default_url(tmp_path))
    try:
        assert spool.release_held() == 1
        claim = spool.claim(DEST)
        ((_, message),) = claim.rows
        indicator, description = _outcome(message)
        assert indicator == EventOutcomeIndicator.SERIOUS_FAILURE and UNSETTLED.decode() in (
            description
        )
        assert _xml(message).find("EventIdentification/EventTypeCode").get("csd-code") == "ITI-18"
        spool.finish(claim)
    finally:
        spool.close()


def test_a_claim_renders_deferred_records_and_fails_unreadable_ones(spool: AuditSpool) -> None:
    record = deferred_record(_observed(response=_query_response()), CONTEXT, "n", "xdsi")
    spool.enqueue([b"<13>1 rendered", b"{broken", record], [DEST])
    claim = spool.claim(DEST)
    assert [m[:14] for _, m in claim.rows] == [b"<13>1 rendered", b"<85>1 2026-11-"]
    assert list(claim.failed.values())[0].startswith("deferred audit record not readable")
    claim.delivered.extend(event_id for event_id, _ in claim.rows)
    spool.finish(claim)
    assert _statuses(spool) == ["delivered", FAILED, "delivered"]
    # the viewer reads the same messages (the unreadable record as stored)
    assert [m[:14] for _, m in spool.events()] == [
        b"<13>1 rendered",
        b"{broken",
        b"<85>1 2026-11-",
    ]


# --- through a SOAP route: written when the request is read, settled before the answer ----
class _Gate:
    """A handler that waits, so the test can look at the spool while it runs."""

    def __init__(self, fail: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail = fail

    def __call__(self, _request: SoapRequest) -> SoapResponse:
        self.entered.set()
        assert self.release.wait(10)
        if self.fail:
            raise RuntimeError("registry unavailable")
        return SoapResponse(registry_response(RegistryResponse(ResponseStatus.SUCCESS)))


def _app(auditor: Auditor, gate: _Gate) -> Starlette:
    operation = Operation(Action.ITI62, RESPONSE_ACTION[Action.ITI62], gate, blocking=True)
    service = Service("/xds/registry", {Action.ITI62: operation})
    observer = SoapAuditObserver(auditor.record, peer=lambda: "CN=admin", auditor=auditor)
    return Starlette(routes=build_soap_routes([service], Limits(), on_exchange=observer))


@pytest.mark.parametrize(("fail", "indicator"), [(False, "0"), (True, "12")])
async def test_an_exchange_record_is_held_while_it_runs_and_settled_before_the_answer(
    spool: AuditSpool, fail: bool, indicator: str
) -> None:
    auditor = Auditor(spool, [DEST], "xdsi@node1", senders={DEST: ScriptedSender()})
    gate = _Gate(fail)
    body = etree.tostring(remove_objects_request(RemoveObjectsRequest((ENTRY_UUID,))))
    transport = httpx.ASGITransport(app=_app(auditor, gate), client=("10.1.2.3", 4711))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
            answer = asyncio.create_task(
                client.post(
                    "/xds/registry",
                    content=_envelope(Action.ITI62, body),
                    headers={"Content-Type": f'application/soap+xml; action="{Action.ITI62}"'},
                )
            )
            assert await asyncio.to_thread(gate.entered.wait, 10)
            await asyncio.to_thread(auditor.flush, 10)
            # running: the record is durable already, held back from the destination
            assert _statuses(spool) == [HELD]
            ((_, running),) = spool.events()
            assert _outcome(running)[0] == EventOutcomeIndicator.SERIOUS_FAILURE
            gate.release.set()
            response = await answer
        assert response.status_code == (500 if fail else 200)
        # answered: settled with its outcome, to be shipped
        assert _statuses(spool) == [PENDING]
        ((_, message),) = spool.events()
        assert _outcome(message)[0] == indicator
        document = _xml(message)
        assert document.find("EventIdentification/EventTypeCode").get("csd-code") == "ITI-62"
        assert document.xpath("ParticipantObjectIdentification/@ParticipantObjectID") == [
            ENTRY_UUID
        ]
        requester = document.find("ActiveParticipant[@UserIsRequestor='true']")
        assert requester.get("AlternativeUserID") == "CN=admin"
    finally:
        auditor.stop()


def test_only_an_sqlite_spool_holds_records(spool_url: str) -> None:
    """A PostgreSQL spool shared by several processes could not tell a held record of
    a live process from one of a process that died: there, exchanges are recorded at
    their end."""
    spool = AuditSpool(make_engine(spool_url))
    auditor = Auditor(spool, [DEST], "xdsi", senders={DEST: ScriptedSender()})
    try:
        assert spool.holds is spool_url.startswith("sqlite")
        ticket = auditor.hold(_observed())
        assert (ticket is not None) is spool.holds
        if ticket is None:
            observer = SoapAuditObserver(auditor.record, auditor=auditor)
            observed = _observed(response=_query_response())
            observer(observed.request, observed.response_body, None, observed.info, ticket)
            ((_, message),) = spool.events()
            assert _outcome(message) == ("0", None)
    finally:
        auditor.stop()
        spool.close()


def test_a_follower_reads_a_held_record_once_it_is_settled(spool: AuditSpool) -> None:
    observed = _observed(response=_query_response())
    held = deferred_record(observed, CONTEXT, "node1", "xdsi", held=True)
    spool.enqueue([b"<13>1 before"], [DEST])
    (event_id,) = spool.hold([held], [DEST])
    spool.enqueue([b"<13>1 after"], [DEST])
    # being answered: a follower stops before it, and reads it, settled, next time
    assert [m for _, m in spool.events(settled=True)] == [b"<13>1 before"]
    assert len(spool.events()) == 3  # the viewer shows everything
    spool.settle(event_id, settled_record(held, observed), [DEST])
    rows = spool.events(after_id=event_id - 1, settled=True)
    assert [_outcome(m) for _, m in rows[:1]] == [("0", None)] and rows[1][1] == b"<13>1 after"


def test_a_record_left_held_long_ago_is_read_with_its_outcome_unknown(spool: AuditSpool) -> None:
    held = deferred_record(_observed(), CONTEXT, "node1", "xdsi", held=True)
    spool.hold([held], [])
    with spool.engine.begin() as connection:
        connection.execute(
            update(SpoolEvent).values(created_at=datetime.now(UTC) - 2 * UNSETTLED_AFTER)
        )
    ((_, message),) = spool.events(settled=True)
    assert _outcome(message)[0] == EventOutcomeIndicator.SERIOUS_FAILURE


def test_a_spool_without_fsync_does_not_hold(tmp_path: Path) -> None:
    """spool_sync = "normal": nothing to take off the answer's path, so each exchange's
    record is written once, at its end."""
    spool = AuditSpool.open(default_url(tmp_path), synchronous="normal")
    try:
        assert not spool.holds
        assert spool.hold([b"{}\n"], [DEST]) is None
    finally:
        spool.close()
