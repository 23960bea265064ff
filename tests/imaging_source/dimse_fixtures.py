"""An ImagingSource listening on a free port (index on SQLite: the protocol is tested here,\nthe storage on both databases in test_instances)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelMove,
)
from sqlalchemy import Engine

from imaging_source.config import ImagingSourceConfig
from imaging_source.peers import DicomPeer
from imaging_source.requestor import REQUESTOR_HANDLERS
from imaging_source.service import ImagingSource
from imaging_source.sub_association import StorageSubAssociation

MOVE_DESTINATION = "MOVEDEST"
STORAGE = (CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def destination_port() -> int:
    return free_port()


@pytest.fixture
def sub_associations(monkeypatch: pytest.MonkeyPatch) -> list[StorageSubAssociation]:
    """The C-MOVE sub-associations xdsi requests, in order, as they are made."""
    made: list[StorageSubAssociation] = []
    request = StorageSubAssociation.request

    def recorded(*args: Any, **kwargs: Any) -> StorageSubAssociation:
        association = request(*args, **kwargs)
        made.append(association)
        return association

    monkeypatch.setattr(StorageSubAssociation, "request", staticmethod(recorded))
    return made


def move_study(
    source: ImagingSource, study_uid: str, *, dimse_timeout: float = 30
) -> list[tuple[Dataset, Any]]:
    """A Study Root C-MOVE of the study to the Move Destination, asked by TESTSCU: every
    (status, identifier) response."""
    scu = AE(ae_title="TESTSCU")
    scu.dimse_timeout = dimse_timeout
    scu.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = scu.associate(
        "127.0.0.1", source.dimse.port, ae_title="XDSI", evt_handlers=REQUESTOR_HANDLERS
    )
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    try:
        return list(
            assoc.send_c_move(query, MOVE_DESTINATION, StudyRootQueryRetrieveInformationModelMove)
        )
    finally:
        assoc.release()


@contextmanager
def move_destination(
    port: int, syntaxes: list[str], on_store: Callable[[evt.Event], int]
) -> Iterator[None]:
    """A Move Destination on ``port`` taking every storage class in ``syntaxes``,
    answering each C-STORE with ``on_store``."""
    ae = AE(ae_title=MOVE_DESTINATION)
    for sop_class in STORAGE:
        ae.add_supported_context(sop_class, syntaxes)
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    try:
        yield
    finally:
        server.shutdown()


@contextmanager
def running_source(
    engine: Engine,
    tmp_path: Path,
    destination_port: int,
    *,
    dimse_timeout: float = 10,
    network_timeout: float = 10,
    peer: DicomPeer | None = None,
    peer_tls: ssl.SSLContext | None = None,
    peer_tls_by_title: Mapping[str, ssl.SSLContext] | None = None,
) -> Iterator[ImagingSource]:
    """An ImagingSource on a free port whose one peer is the Move Destination (``peer``:
    another one, reached over TLS with ``peer_tls`` if it is marked so)."""
    config = ImagingSourceConfig(
        storage_dir=tmp_path / "store",
        dicom_host="127.0.0.1",
        dicom_port=0,
        peers=(peer or DicomPeer(MOVE_DESTINATION, "127.0.0.1", destination_port),),
        acse_timeout=5,
        dimse_timeout=dimse_timeout,
        network_timeout=network_timeout,
        peer_tls=peer_tls,
        peer_tls_by_title=peer_tls_by_title or {},
    )
    imaging = ImagingSource(config, engine=engine)
    imaging.start()
    try:
        yield imaging
    finally:
        imaging.stop()


@contextmanager
def running_storescp(
    out: Path, port: int, *, tls: Sequence[str] = (), echo_tls: Sequence[str] = ()
) -> Iterator[Path]:
    """dcmtk's storescp as the Move Destination on ``port``, writing into ``out`` (made
    here), with its ``tls`` options; running once echoscu (with ``echo_tls``) is answered."""
    out.mkdir()
    process = subprocess.Popen(
        ["storescp", "-aet", MOVE_DESTINATION, "-od", str(out), "+xa", *tls, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    echo = ["echoscu", *echo_tls, "-aec", MOVE_DESTINATION, "127.0.0.1", str(port)]
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(echo, capture_output=True, timeout=60).returncode:
            assert time.monotonic() < deadline, "storescp did not start"
            time.sleep(0.1)
        yield out
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def source(
    sqlite_index_engine: Engine, tmp_path: Path, destination_port: int
) -> Iterator[ImagingSource]:
    with running_source(sqlite_index_engine, tmp_path, destination_port) as imaging:
        yield imaging
