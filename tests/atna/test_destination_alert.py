"""An audit repository that fails node authentication (ITI TF-2 3.20.7): the auditor
records a Security Alert naming it, once per ``DESTINATION_ALERT_INTERVAL`` while the
shipper's reconnections keep failing, not once per attempt; the events wait for it."""

from __future__ import annotations

import ssl
import sys
import time
from pathlib import Path

from atna_support import stored_query
from lxml import etree

from atna.auditor import Auditor
from atna.events import Side
from atna.spool import AuditSpool
from atna.syslog import TlsConfig
from xdsi import certs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from http_fixtures import CannedServer  # noqa: E402


def _alerts(spool: AuditSpool) -> list[etree._Element]:
    documents = [etree.fromstring(m[m.index(b"<?xml") :]) for _, m in spool.events()]
    return [
        d for d in documents if d.find("EventIdentification/EventID").get("csd-code") == "110113"
    ]


def test_an_audit_repository_it_cannot_authenticate_is_alerted_once(tmp_path: Path) -> None:
    pki = certs.make_test_pki(tmp_path / "pki")
    other = certs.make_test_pki(tmp_path / "other", organization="elsewhere")
    repository_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    repository_side.load_cert_chain(other.node_cert, other.node_key)  # a CA the node does not trust
    repository = CannedServer([], tls=repository_side)
    destination = f"tls://localhost:{repository.port}"
    spool = AuditSpool.open(f"sqlite:///{tmp_path / 'spool.sqlite3'}")
    audit = Auditor(
        spool,
        [destination],
        "xdsi@node1",
        tls=TlsConfig(pki.client_cert, pki.client_key, pki.ca),
        hostname="node1.example.org",
        shipper_options={"poll_interval": 0.02},
    )
    audit.start()
    try:
        audit.record(stored_query(Side.RESPONDER))
        assert audit.flush(10)
        # the shipper retries (1 s, then 2 s): three connections, one alert
        deadline = time.monotonic() + 30
        while repository.connections < 3:
            assert time.monotonic() < deadline, "the shipper did not retry"
            time.sleep(0.1)
        assert audit.flush(10)
        alerts = _alerts(spool)
    finally:
        audit.stop()
        repository.close()
        spool.engine.dispose()
    (alert,) = alerts
    event = alert.find("EventIdentification")
    assert event.find("EventTypeCode").get("csd-code") == "110126"
    assert alert.find("ParticipantObjectIdentification").get("ParticipantObjectID") == destination
    assert event.findtext("EventOutcomeDescription").startswith(
        f"TLS to {destination} failed, not authenticated: CERTIFICATE_VERIFY_FAILED"
    )
    # both wait in the spool for the repository
    assert spool.pending_count(destination) == 2
