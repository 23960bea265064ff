"""The connections xdsi opens, as a Secure Node (ITI TF-2 3.19.1: each end authenticates the other).

To an https WADO-RS PACS (``xdsi.imaging.pacs_ssl_context``): with ``[tls]`` on, xdsi
offers its node certificate and authenticates the PACS against its own CAs;
``[imaging_source] pacs_ca`` names other CAs for the PACS.  QIDO-RS (httpx) and the
Retrieve (``wado_retrieve``) both go through it, against a real TLS listener that
requires a client certificate.  To DICOM peers: ``[imaging_source] tls_peers`` marks the
peers (and the ``pacs_dimse`` PACS) reached over TLS; the associations themselves are
tested in ``tests/imaging_source/test_dimse_tls.py``."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atna.node_authentication import CLOSED_BEFORE_ANSWER, TlsFailure, reporting_context
from imaging_source.instances import InstanceStore, QueryLevel
from imaging_source.pacs import DimseFetcher, PacsError, PacsSource, WadoRsFetcher
from imaging_source.wado_retrieve import RetrieveFailed
from xdsi import certs
from xdsi.config import Config, ConfigError, load_config
from xdsi.imaging import (
    imaging_source_config,
    instance_source,
    make_engine,
    pacs_ssl_context,
    peer_ssl_context,
)
from xdsi.outgoing_tls import registry_ssl_context
from xdsi.tls import client_context

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging_source"))
from http_fixtures import CannedServer  # noqa: E402

STUDY = "1.2.826.0.1.3680043.8.498.1"
QIDO_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: 2\r\n\r\n[]"
)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.TestPki:
    return certs.make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> certs.TestPki:
    return certs.make_test_pki(tmp_path_factory.mktemp("other"), organization="elsewhere")


def _pacs_side(pki: certs.TestPki, *, client_certificate: bool) -> ssl.SSLContext:
    """An https PACS with the node certificate of ``pki`` (valid for localhost) that
    requires, or not, a client certificate of ``pki``'s CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.node_cert, pki.node_key)
    if client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=str(pki.ca))
    return context


@pytest.fixture
def mutual_pacs(pki: certs.TestPki) -> Iterator[CannedServer]:
    server = CannedServer([QIDO_ANSWER, NO_CONTENT], tls=_pacs_side(pki, client_certificate=True))
    yield server
    server.close()


def _fetcher(
    tmp_path: Path, url: str, failures: list[TlsFailure] | None = None, **sections: dict[str, Any]
) -> WadoRsFetcher:
    config = load_config(
        tmp_path, environ={}, overrides={**sections, "imaging_source": {
            "pacs_wado_rs": url, **sections.get("imaging_source", {})}}
    )  # fmt: skip
    fetcher = _pacs_fetcher(tmp_path, config, failures)
    assert isinstance(fetcher, WadoRsFetcher)
    return fetcher


def _pacs_fetcher(
    tmp_path: Path, config: Config, failures: list[TlsFailure] | None = None
) -> WadoRsFetcher | DimseFetcher:
    """The backing PACS's fetcher that ``instance_source`` makes for ``config``."""
    store = InstanceStore(tmp_path / "dicom", make_engine(f"sqlite:///{tmp_path / 'i.db'}"))
    source, _ = instance_source(config, store, None if failures is None else failures.append)
    assert isinstance(source, PacsSource)
    return source.fetcher


def _dimse_fetcher(
    tmp_path: Path, config: Config, failures: list[TlsFailure] | None = None
) -> DimseFetcher:
    fetcher = _pacs_fetcher(tmp_path, config, failures)
    assert isinstance(fetcher, DimseFetcher) and fetcher.ssl_context is not None
    return fetcher


def _query_and_retrieve(fetcher: WadoRsFetcher) -> int:
    """One QIDO-RS through httpx, one Retrieve through wado_retrieve: the latter's status."""
    assert list(fetcher.find(QueryLevel.STUDY, {"StudyInstanceUID": STUDY})) == []
    connection = fetcher.connection()
    try:
        response = connection.get(f"/dicom-web/studies/{STUDY}", {})
        status = response.status
        connection.release(response)
        return status
    finally:
        connection.close()
        fetcher.close()


def _reported(failures: list[TlsFailure]) -> list[tuple[bool, str]]:
    """(refused by the peer, the reason's code) of each failure; a close before any
    answer is how a refusal ends when the reset of the unread request lost its alert,
    so it reads as the alert expected there: ``ALERT``."""
    return [
        (f.refused_by_peer, "ALERT" if f.reason.startswith(CLOSED_BEFORE_ANSWER) else
         f.reason.split(":")[0])
        for f in failures
    ]  # fmt: skip


def _node_tls(pki: certs.TestPki, ca: Path | None = None) -> dict[str, Any]:
    return {
        "cert": str(pki.client_cert),
        "key": str(pki.client_key),
        "ca": [str(ca or pki.ca)],
    }


def test_a_secure_node_offers_its_certificate_to_an_https_pacs(
    tmp_path: Path, pki: certs.TestPki, mutual_pacs: CannedServer
) -> None:
    failures: list[TlsFailure] = []
    fetcher = _fetcher(tmp_path, f"{mutual_pacs.url}/dicom-web", failures, tls=_node_tls(pki))
    assert _query_and_retrieve(fetcher) == 204
    assert len(mutual_pacs.requests) == 2 and mutual_pacs.connections == 2
    assert failures == []


def test_without_tls_settings_the_pacs_is_checked_against_the_system_store(
    tmp_path: Path, pki: certs.TestPki, mutual_pacs: CannedServer
) -> None:
    fetcher = _fetcher(tmp_path, f"{mutual_pacs.url}/dicom-web")
    assert fetcher.ssl_context.verify_mode == ssl.CERT_REQUIRED
    with pytest.raises(PacsError, match="CERTIFICATE_VERIFY_FAILED"):
        list(fetcher.find(QueryLevel.STUDY, {"StudyInstanceUID": STUDY}))
    with pytest.raises(RetrieveFailed, match="TLS"):
        fetcher.connection().get("/dicom-web/studies", {})
    fetcher.close()
    assert mutual_pacs.requests == []


def test_pacs_ca_replaces_the_node_cas_for_the_pacs(
    tmp_path: Path, pki: certs.TestPki, other_pki: certs.TestPki, mutual_pacs: CannedServer
) -> None:
    # the node trusts only another CA; pacs_ca names the PACS's
    tls = _node_tls(pki, ca=other_pki.ca)
    failures: list[TlsFailure] = []
    url = f"{mutual_pacs.url}/dicom-web"
    refused = _fetcher(tmp_path / "a", url, failures, tls=tls)
    with pytest.raises(PacsError, match="CERTIFICATE_VERIFY_FAILED"):
        list(refused.find(QueryLevel.STUDY, {"StudyInstanceUID": STUDY}))
    with pytest.raises(RetrieveFailed, match="TLS"):
        refused.connection().get("/dicom-web/studies", {})
    refused.close()
    # each failed authentication is reported once, QIDO-RS's (httpx) and the Retrieve's
    assert [(f.service, f.peer_port, f.refused_by_peer) for f in failures] == [
        (url, mutual_pacs.port, False)
    ] * 2
    assert failures[0].reason.startswith("CERTIFICATE_VERIFY_FAILED: ")
    fetcher = _fetcher(
        tmp_path / "b", f"{mutual_pacs.url}/dicom-web", tls=tls,
        imaging_source={"pacs_ca": [str(pki.ca)]},
    )  # fmt: skip
    assert _query_and_retrieve(fetcher) == 204


def test_pacs_ca_alone_authenticates_the_pacs_without_a_client_certificate(
    tmp_path: Path, pki: certs.TestPki
) -> None:
    server = CannedServer([QIDO_ANSWER, NO_CONTENT], tls=_pacs_side(pki, client_certificate=False))
    try:
        fetcher = _fetcher(
            tmp_path, f"{server.url}/dicom-web", imaging_source={"pacs_ca": [str(pki.ca)]}
        )
        assert _query_and_retrieve(fetcher) == 204
    finally:
        server.close()
    # and a PACS that requires one refuses it: reported as refused by the PACS
    server = CannedServer([QIDO_ANSWER], tls=_pacs_side(pki, client_certificate=True))
    failures: list[TlsFailure] = []
    try:
        fetcher = _fetcher(
            tmp_path / "b", f"{server.url}/dicom-web", failures,
            imaging_source={"pacs_ca": [str(pki.ca)]},
        )  # fmt: skip
        with pytest.raises(PacsError):
            list(fetcher.find(QueryLevel.STUDY, {"StudyInstanceUID": STUDY}))
        fetcher.close()
    finally:
        server.close()
    assert _reported(failures) in ([(True, "TLSV13_ALERT_CERTIFICATE_REQUIRED")], [(True, "ALERT")])


def test_an_http_pacs_gets_no_tls_context(tmp_path: Path, pki: certs.TestPki) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={
            "tls": _node_tls(pki), "imaging_source": {"pacs_wado_rs": "http://pacs/dicom-web"}},
    )  # fmt: skip
    assert pacs_ssl_context(config) is None


def test_an_unreadable_pacs_ca_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    config = load_config(
        tmp_path, environ={}, overrides={"imaging_source": {
            "pacs_wado_rs": "https://pacs/dicom-web", "pacs_ca": [str(missing)]}},
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[imaging_source\] pacs_ca: .*missing\.pem"):
        pacs_ssl_context(config)


def test_pacs_ca_needs_an_https_pacs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pacs_ca"):
        load_config(
            tmp_path, environ={}, overrides={"imaging_source": {
                "pacs_wado_rs": "http://pacs/dicom-web", "pacs_ca": ["/etc/ca.pem"]}},
        )  # fmt: skip


# --- DICOM peers --------------------------------------------------------------------------
PEERS = ["VIEWER@viewer.example:2762", "ARCHIVE@archive.example:104"]


def test_tls_peers_marks_the_peers_reached_over_tls(tmp_path: Path, pki: certs.TestPki) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={
            "tls": _node_tls(pki), "imaging_source": {"peers": PEERS, "tls_peers": ["VIEWER"]}},
    )  # fmt: skip
    actor = imaging_source_config(config)
    assert {(p.ae_title, p.tls) for p in actor.peers} == {("VIEWER", True), ("ARCHIVE", False)}
    assert isinstance(actor.peer_tls, ssl.SSLContext)
    assert actor.peer_tls.verify_mode == ssl.CERT_REQUIRED and actor.peer_tls.check_hostname


def test_a_dimse_pacs_in_tls_peers_is_fetched_over_tls(tmp_path: Path, pki: certs.TestPki) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {
            "pacs_dimse": "PACS@pacs.example:2762", "tls_peers": ["PACS"]}},
    )  # fmt: skip
    assert _dimse_fetcher(tmp_path, config).pacs.tls


def test_without_tls_peers_no_peer_is_reached_over_tls(tmp_path: Path, pki: certs.TestPki) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {"peers": PEERS}}
    )
    assert not any(p.tls for p in imaging_source_config(config).peers)
    assert peer_ssl_context(config) is None


def test_tls_peers_needs_the_node_certificate_and_known_peers(
    tmp_path: Path, pki: certs.TestPki
) -> None:
    with pytest.raises(ConfigError, match=r"tls_peers: .*\[tls\] cert"):
        load_config(
            tmp_path, environ={}, overrides={
                "imaging_source": {"peers": PEERS, "tls_peers": ["VIEWER"]}},
        )  # fmt: skip
    with pytest.raises(ConfigError, match="tls_peers: 'NOBODY' is neither"):
        load_config(
            tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {
                "peers": PEERS, "tls_peers": ["NOBODY"]}},
        )  # fmt: skip


# --- the registry, and failures on asyncio streams ------------------------------------------
def test_an_https_registry_is_reached_with_the_node_certificate(
    tmp_path: Path, pki: certs.TestPki
) -> None:
    url = "https://registry.example:8443/xds/registry"
    config = load_config(
        tmp_path, environ={}, overrides={"tls": _node_tls(pki), "repository": {"registry_url": url}}
    )
    context = registry_ssl_context(config)
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # no [tls], or an http registry: the system's CAs, no certificate (as before)
    plain = load_config(tmp_path, environ={}, overrides={"repository": {"registry_url": url}})
    assert registry_ssl_context(plain) is None
    http = load_config(
        tmp_path, environ={}, overrides={
            "tls": _node_tls(pki), "repository": {"registry_url": "http://registry:8080/x"}},
    )  # fmt: skip
    assert registry_ssl_context(http) is None


async def _open(port: int, context: ssl.SSLContext, *, request: bool) -> bytes:
    """What a connection through asyncio's streams (a memory-BIO ``SSLObject``) reads:
    after a request, or (``request`` False) before sending anything, so that a service
    refusing the certificate closes a connection with nothing unread and its alert
    arrives (not lost to a reset)."""
    reader, writer = await asyncio.open_connection(
        "localhost", port, ssl=context, server_hostname="localhost"
    )
    try:
        if request:
            writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()


@pytest.mark.parametrize("case", ["service not trusted", "refused by the service", "accepted"])
def test_failures_on_asyncio_streams_are_reported_once(
    pki: certs.TestPki, other_pki: certs.TestPki, case: str
) -> None:
    server = CannedServer([QIDO_ANSWER], tls=_pacs_side(pki, client_certificate=True))
    identity = other_pki if case == "refused by the service" else pki
    trusted = other_pki if case == "service not trusted" else pki
    failures: list[TlsFailure] = []
    context = reporting_context(
        client_context(identity.client_cert, identity.client_key, (trusted.ca,)),
        failures.append,
        scheme="https",
        service="https://registry.example/xds/registry",
    )
    try:
        if case == "accepted":
            assert asyncio.run(_open(server.port, context, request=True)).startswith(b"HTTP/1.1")
        else:
            with pytest.raises(ssl.SSLError):
                asyncio.run(_open(server.port, context, request=False))
    finally:
        server.close()
    expected = {
        "service not trusted": ([(False, "CERTIFICATE_VERIFY_FAILED")],),
        "refused by the service": ([(True, "TLSV1_ALERT_UNKNOWN_CA")],),
        "accepted": ([],),
    }[case]
    assert _reported(failures) in expected
    assert all(f.service == "https://registry.example/xds/registry" for f in failures)


def _untrusted_handshake(context: ssl.SSLContext, other_pki: certs.TestPki) -> None:
    """A handshake with a service whose certificate is of a CA ``context`` does not trust."""
    server = CannedServer([], tls=_pacs_side(other_pki, client_certificate=False))
    try:
        with (
            socket.create_connection(("localhost", server.port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            context.wrap_socket(raw, server_hostname="localhost")
    finally:
        server.close()


def test_the_dicom_peers_context_reports_failed_authentications(
    tmp_path: Path, pki: certs.TestPki, other_pki: certs.TestPki
) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {
            "peers": PEERS, "pacs_dimse": "PACS@pacs.example:2762",
            "tls_peers": ["VIEWER", "PACS"]}},
    )  # fmt: skip
    failures: list[TlsFailure] = []
    actor = imaging_source_config(config, on_tls_failure=failures.append)
    assert actor.peer_tls is not None
    _untrusted_handshake(actor.peer_tls, other_pki)
    context = _dimse_fetcher(tmp_path, config, failures).ssl_context
    assert context is not None
    _untrusted_handshake(context, other_pki)
    assert [(f.service.split(":")[0], f.refused_by_peer) for f in failures] == [
        ("dicom", False)
    ] * 2


def test_peer_ca_gives_a_peer_its_own_cas(
    tmp_path: Path, pki: certs.TestPki, other_pki: certs.TestPki
) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {
            "peers": PEERS, "pacs_dimse": "PACS@pacs.example:2762",
            "tls_peers": ["VIEWER", "ARCHIVE", "PACS"],
            "peer_ca": [f"VIEWER={other_pki.ca}", f"PACS = {other_pki.ca}"]}},
    )  # fmt: skip
    actor = imaging_source_config(config)
    by_title = {p.ae_title: actor.tls_for(p) for p in actor.peers}
    assert by_title["ARCHIVE"] is actor.peer_tls and by_title["VIEWER"] is not actor.peer_tls
    server = CannedServer([], tls=_pacs_side(other_pki, client_certificate=False))
    try:
        # the VIEWER's context trusts the other CA alone: other_pki's service is accepted
        with socket.create_connection(("localhost", server.port), timeout=10) as raw:
            by_title["VIEWER"].wrap_socket(raw, server_hostname="localhost").close()
    finally:
        server.close()
    _untrusted_handshake(by_title["ARCHIVE"], other_pki)  # [tls] ca only
    context = _dimse_fetcher(tmp_path, config).ssl_context
    assert context is not None and context.get_ca_certs() == by_title["VIEWER"].get_ca_certs()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("ARCHIVE=/etc/ca.pem", "'ARCHIVE=/etc/ca.pem' is not AET=FILE with AET one of tls_peers"),
        ("VIEWER", "'VIEWER' is not AET=FILE"),
        ("VIEWER=", "'VIEWER=' is not AET=FILE"),
    ],
)
def test_peer_ca_names_a_tls_peer_and_a_file(
    tmp_path: Path, pki: certs.TestPki, entry: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(
            tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {
                "peers": PEERS, "tls_peers": ["VIEWER"], "peer_ca": [entry]}},
        )  # fmt: skip


def test_an_unreadable_peer_ca_is_a_configuration_error(tmp_path: Path, pki: certs.TestPki) -> None:
    config = load_config(
        tmp_path, environ={}, overrides={"tls": _node_tls(pki), "imaging_source": {
            "peers": PEERS, "tls_peers": ["VIEWER"],
            "peer_ca": [f"VIEWER={tmp_path / 'missing.pem'}"]}},
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"\[imaging_source\] peer_ca VIEWER: .*missing\.pem"):
        imaging_source_config(config)
