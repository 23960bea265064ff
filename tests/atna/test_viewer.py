"""atna.viewer: spooled audit messages read back for people."""

from __future__ import annotations

from datetime import UTC, datetime

from atna_support import stored_query

from atna.events import AuditContext, Endpoint, Side, audit_messages
from atna.message import to_xml
from atna.node_authentication import node_authentication_alert
from atna.syslog import frame
from atna.viewer import format_record, matches, read_record


def _spooled(event) -> bytes:  # noqa: ANN001
    message = audit_messages(event, AuditContext("xdsi-test", "site"))[0]
    return frame(
        to_xml(message),
        timestamp=message.event_identification.event_date_time,
        hostname="node",
        app_name="xdsi",
        procid="1",
    )


def test_a_query_record_names_transaction_patient_and_requester() -> None:
    outcome = stored_query(Side.RESPONDER)
    record = read_record(7, _spooled(outcome))
    assert record.transaction == "ITI-18"
    assert record.patients == outcome.patient_ids
    assert any(p.is_requestor for p in record.participants)


def test_search_matches_the_patient_by_its_id_alone() -> None:
    outcome = stored_query(Side.RESPONDER)
    record = read_record(1, _spooled(outcome))
    bare = outcome.patient_ids[0].split("^", 1)[0]
    assert matches(record, patient=bare)
    assert not matches(record, patient="nobody")


def test_search_filters_by_transaction_and_time() -> None:
    record = read_record(1, _spooled(stored_query(Side.RESPONDER)))
    assert matches(record, transaction="iti-18")
    assert not matches(record, transaction="ITI-43")
    assert not matches(record, since=datetime(2999, 1, 1, tzinfo=UTC))


def test_a_refused_tls_peer_prints_its_address_and_reason() -> None:
    alert = node_authentication_alert(
        Endpoint("xdsi"), "https://node:8443", "192.0.2.7", 50123, "certificate unknown"
    )
    text = format_record(read_record(3, _spooled(alert)))
    assert "Security Alert" in text
    assert "192.0.2.7" in text
    assert "certificate unknown" in text
