"""A repository and a registry in two processes, each a Secure Node (ITI TF-2 3.19.1).

The registry requires mutual TLS.  The repository reaches it at an https
``[repository] registry_url`` with its own node certificate, and authenticates the
registry against its ``[tls] ca``: an ITI-41 is stored and registered.  When the two
nodes do not authenticate each other, the ITI-41 is answered XDSRegistryNotAvailable,
nothing is registered, and the failure is audited as a Security Alert (Node
Authentication, ITI TF-2 3.20.7, DICOM PS3.15 A.5.3.11) naming the registry, with the
side that refused: the repository does not trust the registry's certificate, or the
registry refuses the repository's (then audited by both).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_support import ClusterServer, feed_tls
from e2e_support import (
    AFFINITY_DOMAIN,
    REPOSITORY_UNIQUE_ID,
    Reply,
    ResponseSchemas,
    XdsPeer,
    ack_code,
    adt_a01,
    new_patient_number,
    patient_cx,
)
from lxml import etree

from atna.node_authentication import CLOSED_BEFORE_ANSWER
from atna.spool import AuditSpool
from xdsi import certs

REGISTRY_ONLY = f"""[device]
name = "xdsi-registry"

[registry]
affinity_domain = "{AFFINITY_DOMAIN}"

[repository]
enabled = false

[imaging_source]
enabled = false
"""


def _repository_only(registry_url: str) -> str:
    return f"""[device]
name = "xdsi-repository"

[registry]
enabled = false

[repository]
repository_unique_id = "{REPOSITORY_UNIQUE_ID}"
registry_url = "{registry_url}"

[imaging_source]
enabled = false
"""


def _start(data_dir: Path, config: str, pki: certs.TestPki, *extra: str) -> ClusterServer:
    data_dir.mkdir(parents=True)
    (data_dir / "xdsi.toml").write_text(config, encoding="utf-8")
    return ClusterServer(data_dir, pki=pki, extra_args=list(extra)).start(60.0)


class Nodes:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.pki = certs.make_test_pki(base / "pki")
        self.other = certs.make_test_pki(base / "other", organization="elsewhere")
        self.servers: list[ClusterServer] = []
        self.registry = self.start("registry", REGISTRY_ONLY, self.pki)

    @property
    def registry_url(self) -> str:
        return f"https://localhost:{self.registry.http_port}/xds/registry"

    def start(self, name: str, config: str, pki: certs.TestPki, *extra: str) -> ClusterServer:
        server = _start(self.base / name, config, pki, *extra)
        self.servers.append(server)
        return server

    def repository(self, name: str, pki: certs.TestPki, *extra: str) -> ClusterServer:
        return self.start(name, _repository_only(self.registry_url), pki, *extra)

    def peer(self, server: ClusterServer) -> XdsPeer:
        peer = XdsPeer(server.base_url, ResponseSchemas())
        peer.http.close()
        peer.http = server.http_client(timeout=60.0)
        return peer

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nodes]:
    nodes = Nodes(tmp_path_factory.mktemp("split-tls"))
    try:
        yield nodes
    finally:
        nodes.stop()


@pytest.fixture(scope="module")
def patient(nodes: Nodes) -> str:
    number = new_patient_number()
    assert ack_code(feed_tls(nodes.pki, nodes.registry, adt_a01(number))) == "AA"
    return patient_cx(number)


def _security_alerts(data_dir: Path, timeout: float = 15.0) -> list[etree._Element]:
    """The Security Alerts (110113) in a node's audit spool, waited for."""
    deadline = time.monotonic() + timeout
    while True:
        spool = AuditSpool.open(f"sqlite:///{data_dir / 'audit-spool.sqlite3'}")
        try:
            rows = spool.events()
        finally:
            spool.engine.dispose()
        documents = [etree.fromstring(m[m.index(b"<?xml") :]) for _, m in rows]
        alerts = [
            d
            for d in documents
            if d.find("EventIdentification/EventID").get("csd-code") == "110113"
        ]
        if alerts or time.monotonic() > deadline:
            return alerts
        time.sleep(0.2)


def _registered(nodes: Nodes, patient: str) -> int:
    peer = nodes.peer(nodes.registry)
    try:
        reply = peer.find_documents(patient)
    finally:
        peer.close()
    return len(reply.body.findall(".//{*}ExtrinsicObject"))


def test_the_repository_registers_with_its_node_certificate(nodes: Nodes, patient: str) -> None:
    repository = nodes.repository("repository", nodes.pki)
    peer = nodes.peer(repository)
    try:
        reply, _ = peer.provide(patient, [("text/plain", b"split deployment over TLS")])
    finally:
        peer.close()
    assert reply.status and reply.status.endswith(":Success"), etree.tostring(reply.body)
    assert _registered(nodes, patient) == 1
    assert _security_alerts(repository.data_dir, timeout=0.0) == []


def test_a_registry_it_cannot_authenticate_is_not_available_and_a_security_alert(
    nodes: Nodes, patient: str
) -> None:
    before = _registered(nodes, patient)
    # a certificate of another CA, trusting only that CA
    repository = nodes.repository("registry-not-trusted", nodes.other)
    reply = _provide(nodes, repository, patient)
    assert reply.registry_errors() == ["XDSRegistryNotAvailable"]
    assert _registered(nodes, patient) == before
    (alert,) = _security_alerts(repository.data_dir)
    event = alert.find("EventIdentification")
    assert event.find("EventTypeCode").get("csd-code") == "110126"  # Node Authentication
    subject = alert.find("ParticipantObjectIdentification")
    assert subject.get("ParticipantObjectID") == nodes.registry_url
    description = event.findtext("EventOutcomeDescription")
    assert description.startswith(
        f"TLS to {nodes.registry_url} failed, not authenticated: CERTIFICATE_VERIFY_FAILED"
    ), description
    performer = alert.find("ActiveParticipant[@UserIsRequestor='false']")
    assert performer is not None and performer.get("NetworkAccessPointID") in {
        "localhost", "127.0.0.1", "::1"
    }  # fmt: skip


def test_a_repository_the_registry_refuses_is_not_available_and_audited_there(
    nodes: Nodes, patient: str
) -> None:
    before = _registered(nodes, patient)
    refusals = len(_security_alerts(nodes.registry.data_dir, timeout=0.0))
    # trusts the registry's CA, but its own certificate is of another CA
    repository = nodes.repository("refused", nodes.other, "--tls-ca", str(nodes.pki.ca))
    reply = _provide(nodes, repository, patient)
    assert reply.registry_errors() == ["XDSRegistryNotAvailable"]
    assert _registered(nodes, patient) == before
    # the registry refused it on its listener (TLS 1.3: after the repository's side of
    # the handshake, so the repository may see only the connection reset)
    deadline = time.monotonic() + 15
    while len(alerts := _security_alerts(nodes.registry.data_dir)) == refusals:
        assert time.monotonic() < deadline, "the registry audited no refusal"
        time.sleep(0.2)
    assert "CERTIFICATE_VERIFY_FAILED" in alerts[-1].findtext(
        "EventIdentification/EventOutcomeDescription"
    )
    # and the repository audited being refused: the alert, or the reset that lost it
    (alert,) = _security_alerts(repository.data_dir)
    description = alert.findtext("EventIdentification/EventOutcomeDescription")
    assert description.startswith(f"TLS to {nodes.registry_url} failed, refused this node: ")
    reason = description.split("refused this node: ", 1)[1]
    assert reason.startswith(CLOSED_BEFORE_ANSWER) or "ALERT" in reason, reason


def _provide(nodes: Nodes, repository: ClusterServer, patient: str) -> Reply:
    peer = nodes.peer(repository)
    try:
        reply, _ = peer.provide(patient, [("text/plain", repository.data_dir.name.encode())])
    finally:
        peer.close()
    return reply
