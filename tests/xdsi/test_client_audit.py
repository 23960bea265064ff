"""Commands that are not ``xdsi serve`` audit on the node's spool (xdsi.client_audit):
what they record is durable before they exit, the wait for an unreachable audit
repository is bounded, and the administrative commands record their DICOM events."""

from __future__ import annotations

import io
import ssl
import sys
import time
from pathlib import Path

import pytest
from lxml import etree

from atna.spool import AuditSpool
from xdsi.certs import make_test_pki
from xdsi.cli import main
from xdsi.client_audit import open_client_auditor
from xdsi.client_commands import patients_add, query
from xdsi.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from http_fixtures import CannedServer  # noqa: E402


def _spooled(data_dir: Path) -> list[etree._Element]:
    spool = AuditSpool.open(f"sqlite:///{data_dir / 'audit-spool.sqlite3'}")
    try:
        rows = spool.events()
    finally:
        spool.engine.dispose()
    return [etree.fromstring(message[message.index(b"<?xml") :]) for _, message in rows]


def _events(data_dir: Path) -> list[tuple[str, str, str]]:
    found = []
    for document in _spooled(data_dir):
        event = document.find("EventIdentification")
        event_type = event.find("EventTypeCode")
        found.append(
            (
                event.find("EventID").get("csd-code"),
                "" if event_type is None else event_type.get("csd-code"),
                event.get("EventOutcomeIndicator"),
            )
        )
    return found


def test_check_repair_is_audited_as_a_use_of_a_restricted_function(tmp_path: Path) -> None:
    assert main(["check", "--repair", "--data-dir", str(tmp_path)]) == 0
    assert ("110113", "110132", "0") in _events(tmp_path)


def test_a_plain_check_records_nothing(tmp_path: Path) -> None:
    assert main(["check", "--data-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "audit-spool.sqlite3").exists() or not _events(tmp_path)


def test_reading_the_audit_trail_is_audited(tmp_path: Path) -> None:
    assert main(["audit", "search", "--patient", "P1", "--data-dir", str(tmp_path)]) == 1
    (document,) = _spooled(tmp_path)
    assert document.find("EventIdentification/EventID").get("csd-code") == "110101"
    assert document.findtext("ParticipantObjectIdentification/ParticipantObjectName") == (
        "Security Audit Log"
    )


def test_an_unreachable_repository_leaves_the_events_spooled_after_a_bounded_wait(
    tmp_path: Path,
) -> None:
    pki = make_test_pki(tmp_path / "pki")
    config = load_config(
        tmp_path,
        overrides={
            "audit": {
                "destinations": ["tls://127.0.0.1:9"],  # nobody listens there
                "tls_cert": str(pki.client_cert),
                "tls_key": str(pki.client_key),
                "tls_ca": str(pki.ca),
            }
        },
    )
    audit = open_client_auditor(config, ship_seconds=0.5)
    started = time.monotonic()
    code = query(
        config, "P1", ["approved"], [], "http://127.0.0.1:9/xds/registry",
        as_json=False, out=io.StringIO(), err=io.StringIO(), record=audit.record,
    )  # fmt: skip
    assert code == 2
    assert audit.close() is False
    assert time.monotonic() - started < 15
    assert _events(tmp_path) == [("110112", "ITI-18", "12")]  # Query, major failure
    spool = AuditSpool.open(config.audit.spool_url)
    try:
        assert spool.pending_count("tls://127.0.0.1:9") == 1  # for the next xdsi serve
    finally:
        spool.engine.dispose()


@pytest.mark.parametrize("command", ["query", "patients add"])
def test_a_server_the_command_cannot_authenticate_is_a_security_alert(
    tmp_path: Path, command: str
) -> None:
    pki = make_test_pki(tmp_path / "pki")
    other = make_test_pki(tmp_path / "other", organization="elsewhere")
    # a server with a certificate of a CA the node does not trust
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(other.node_cert, other.node_key)
    server = CannedServer([], tls=server_side)
    tls = {"cert": str(pki.client_cert), "key": str(pki.client_key), "ca": [str(pki.ca)]}
    config = load_config(tmp_path, overrides={"tls": tls})
    audit = open_client_auditor(config, ship_seconds=0.5)
    try:
        if command == "query":
            service = f"https://localhost:{server.port}/xds/registry"
            code = query(
                config, "P1", ["approved"], [], service,
                as_json=False, out=io.StringIO(), err=io.StringIO(), record=audit.record,
            )  # fmt: skip
        else:
            service = f"mllp://localhost:{server.port}"
            code = patients_add(
                config, "P1", f"localhost:{server.port}", name="Doe^Jane",
                out=io.StringIO(), err=io.StringIO(), record=audit.record,
            )  # fmt: skip
    finally:
        audit.close()
        server.close()
    assert code == 2
    events = _events(tmp_path)
    assert ("110113", "110126", "4") in events  # Security Alert, Node Authentication
    (alert,) = [d for d in _spooled(tmp_path) if d.find("EventIdentification/EventID").get(
        "csd-code") == "110113"]  # fmt: skip
    subject = alert.find("ParticipantObjectIdentification").get("ParticipantObjectID")
    assert subject == service
    assert "not authenticated: CERTIFICATE_VERIFY_FAILED" in alert.findtext(
        "EventIdentification/EventOutcomeDescription"
    )
