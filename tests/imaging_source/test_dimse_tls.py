"""The DICOM associations xdsi opens, over TLS to peers marked so (ITI-19, PS3.15 B.1):
a C-MOVE's sub-association to dcmtk's storescp running TLS with a required client
certificate, and C-FIND to a PACS (pynetdicom) that requires one.  Mutual: a peer that
does not trust xdsi's certificate, or a peer xdsi does not trust, gets nothing."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import shutil
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from dicom_studies import make_study, write_files
from dimse_fixtures import (
    MOVE_DESTINATION,
    destination_port,
    free_port,
    move_study,
    running_source,
    running_storescp,
)
from instance_fixtures import migrated_sqlite, require_interop, sqlite_index_engine
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind
from sqlalchemy import Engine

from atna.node_authentication import TlsFailure, reporting_context
from imaging_source.config import ImagingSourceConfig
from imaging_source.instances import QueryLevel
from imaging_source.pacs import DimseFetcher, PacsError
from imaging_source.peers import DicomPeer
from imaging_source.service import ImagingSource
from xdsi import certs
from xdsi.tls import client_context

SUCCESS, PENDING = 0x0000, 0xFF00


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> certs.TestPki:
    return certs.make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> certs.TestPki:
    """A PKI the peers do not know."""
    return certs.make_test_pki(tmp_path_factory.mktemp("stranger"), organization="stranger")


def _xdsi_tls(pki: certs.TestPki) -> ssl.SSLContext:
    """xdsi's client side: its (client) certificate of ``pki``, trusting ``pki``'s CA."""
    return client_context(pki.client_cert, pki.client_key, (pki.ca,))


def _need_dcmtk() -> None:
    """dcmtk's storescp and echoscu, or the test is skipped (failed under CI)."""
    if shutil.which("storescp") is None or shutil.which("echoscu") is None:
        if require_interop():
            pytest.fail("dcmtk not installed")
        pytest.skip("dcmtk not installed")


@pytest.fixture
def tls_storescp(pki: certs.TestPki, tmp_path: Path, destination_port: int) -> Iterator[Path]:
    """dcmtk's storescp over TLS (its node certificate of ``pki``), requiring a client
    certificate that chains to ``pki``'s CA (dcmtk's default, --require-peer-cert)."""
    _need_dcmtk()
    tls = ["+tls", str(pki.node_key), str(pki.node_cert), "+cf", str(pki.ca)]
    client = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)]
    with running_storescp(tmp_path / "moved", destination_port, tls=tls, echo_tls=client) as out:
        yield out


def _stored_study(imaging: ImagingSource, tmp_path: Path) -> list[Path]:
    files = write_files(make_study(patient_id="TLS-1"), tmp_path / "study")
    for path in files:
        imaging.store.add(path)
    return files


def test_a_c_move_reaches_a_tls_destination_with_xdsi_certificate(
    sqlite_index_engine: Engine,
    tmp_path: Path,
    pki: certs.TestPki,
    destination_port: int,
    tls_storescp: Path,
) -> None:
    peer = DicomPeer(MOVE_DESTINATION, "localhost", destination_port, tls=True)
    with running_source(
        sqlite_index_engine, tmp_path, destination_port, peer=peer, peer_tls=_xdsi_tls(pki)
    ) as imaging:
        files = _stored_study(imaging, tmp_path)
        responses = move_study(imaging, dcmread(files[0]).StudyInstanceUID)
    assert responses[-1][0].Status == SUCCESS
    assert responses[-1][0].NumberOfCompletedSuboperations == len(files)
    moved = {ds.SOPInstanceUID: ds.PixelData for ds in map(dcmread, tls_storescp.iterdir())}
    assert moved == {ds.SOPInstanceUID: ds.PixelData for ds in map(dcmread, files)}


def test_a_peer_with_its_own_ca_is_authenticated_against_it(
    sqlite_index_engine: Engine,
    tmp_path: Path,
    pki: certs.TestPki,
    stranger: certs.TestPki,
    destination_port: int,
) -> None:
    """``[imaging_source] peer_ca``: the destination's certificate is of a CA the node
    does not trust for its peers (``stranger``'s), named for that peer alone."""
    _need_dcmtk()
    tls = ["+tls", str(stranger.node_key), str(stranger.node_cert), "+cf", str(pki.ca)]
    echo = ["+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(stranger.ca)]
    own = client_context(pki.client_cert, pki.client_key, (stranger.ca,))
    peer = DicomPeer(MOVE_DESTINATION, "localhost", destination_port, tls=True)
    with (
        running_storescp(tmp_path / "moved", destination_port, tls=tls, echo_tls=echo) as out,
        running_source(
            sqlite_index_engine, tmp_path, destination_port, peer=peer,
            peer_tls=_xdsi_tls(pki), peer_tls_by_title={MOVE_DESTINATION: own},
        ) as imaging,
    ):  # fmt: skip
        files = _stored_study(imaging, tmp_path)
        responses = move_study(imaging, dcmread(files[0]).StudyInstanceUID)
        moved = sorted(p.name for p in out.iterdir())
    assert responses[-1][0].Status == SUCCESS
    assert len(moved) == len(files)


@pytest.mark.parametrize("case", ["untrusted certificate", "destination not trusted", "plain"])
def test_without_mutual_authentication_nothing_is_moved(
    sqlite_index_engine: Engine,
    tmp_path: Path,
    pki: certs.TestPki,
    stranger: certs.TestPki,
    destination_port: int,
    tls_storescp: Path,
    case: str,
) -> None:
    context = {
        # xdsi offers a certificate storescp's CA did not sign
        "untrusted certificate": client_context(
            stranger.client_cert, stranger.client_key, (pki.ca,)
        ),
        # xdsi trusts another CA than the one of storescp's certificate
        "destination not trusted": client_context(pki.client_cert, pki.client_key, (stranger.ca,)),
        "plain": None,  # the peer not marked tls: xdsi speaks DICOM in the clear
    }[case]
    failures: list[TlsFailure] = []
    if context is not None:
        reporting_context(context, failures.append, scheme="dicom")
    peer = DicomPeer(MOVE_DESTINATION, "localhost", destination_port, tls=context is not None)
    with running_source(
        sqlite_index_engine, tmp_path, destination_port, peer=peer, peer_tls=context
    ) as imaging:
        files = _stored_study(imaging, tmp_path)
        started = time.monotonic()
        responses = move_study(imaging, dcmread(files[0]).StudyInstanceUID)
    assert time.monotonic() - started < 30
    final = responses[-1][0]
    assert final.Status != SUCCESS
    assert list(tls_storescp.iterdir()) == []
    # each failed authentication is reported (a Security Alert when served), with the side
    # that refused; the clear-text association is not a TLS failure
    refused_by_peer = {"untrusted certificate": True, "destination not trusted": False}
    assert {f.refused_by_peer for f in failures} == (
        {refused_by_peer[case]} if case in refused_by_peer else set()
    )
    assert {f.service for f in failures} <= {f"dicom://localhost:{destination_port}"}


@contextmanager
def _tls_find_scp(pki: certs.TestPki, port: int) -> Iterator[list[str]]:
    """A Q/R SCP (pynetdicom) over TLS requiring a client certificate of ``pki``'s CA;
    answers every C-FIND with one study; yields the calling AE titles it served."""
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    server_side.verify_mode = ssl.CERT_REQUIRED
    server_side.load_cert_chain(pki.node_cert, pki.node_key)
    served: list[str] = []

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        served.append(str(event.assoc.requestor.ae_title).strip())
        answer = Dataset()
        answer.QueryRetrieveLevel = "STUDY"
        answer.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.7"
        yield PENDING, answer

    ae = AE(ae_title="TLSPACS")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        ssl_context=server_side,
        evt_handlers=[(evt.EVT_C_FIND, on_find)],
    )
    try:
        yield served
    finally:
        server.shutdown()


def test_a_dimse_pacs_marked_tls_is_queried_over_tls(
    pki: certs.TestPki, stranger: certs.TestPki
) -> None:
    port = free_port()
    pacs = DicomPeer("TLSPACS", "localhost", port, tls=True)
    with _tls_find_scp(pki, port) as served:
        fetcher = DimseFetcher(pacs, "XDSI", acse_timeout=5, ssl_context=_xdsi_tls(pki))
        matches = list(fetcher.find(QueryLevel.STUDY, {"StudyInstanceUID": ""}))
        assert [m["StudyInstanceUID"] for m in matches] == ["1.2.826.0.1.3680043.8.498.7"]
        assert served == ["XDSI"]
        failures: list[TlsFailure] = []
        strange = reporting_context(
            client_context(stranger.client_cert, stranger.client_key, (pki.ca,)),
            failures.append,
            scheme="dicom",
        )
        refused = DimseFetcher(pacs, "XDSI", acse_timeout=5, ssl_context=strange)
        with pytest.raises(PacsError, match="not established"):
            list(refused.find(QueryLevel.STUDY, {"StudyInstanceUID": ""}))
        assert [(f.service, f.refused_by_peer) for f in failures] == [
            (f"dicom://localhost:{port}", True)
        ]
        plain = DimseFetcher(DicomPeer("TLSPACS", "localhost", port), "XDSI", acse_timeout=5)
        with pytest.raises(PacsError, match="not established"):
            list(plain.find(QueryLevel.STUDY, {"StudyInstanceUID": ""}))
        assert served == ["XDSI"]


def test_a_peer_marked_tls_needs_a_context() -> None:
    with pytest.raises(ValueError, match="ssl_context"):
        DimseFetcher(DicomPeer("P", "localhost", 104, tls=True), "XDSI")
    with pytest.raises(ValueError, match="peer_tls"):
        ImagingSourceConfig(peers=(DicomPeer("P", "localhost", 104, tls=True),))
