"""TCP_NODELAY on the DIMSE connections xdsi accepts and on the C-MOVE sub-association it
requests, read back from the real sockets while a C-MOVE is served over them."""

# ruff: noqa: F401, F811 - pytest fixtures imported by name

from __future__ import annotations

import socket

from dicom_studies import make_study
from dimse_fixtures import MOVE_DESTINATION, destination_port, source, sub_associations
from instance_fixtures import migrated_sqlite, sqlite_index_engine
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    SecondaryCaptureImageStorage,
    StudyRootQueryRetrieveInformationModelMove,
)

from imaging_source.requestor import REQUESTOR_HANDLERS
from imaging_source.service import ImagingSource
from imaging_source.sub_association import StorageSubAssociation

STORAGE = (CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage)


def _no_delay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_associations_send_without_nagle_delay(
    source: ImagingSource, destination_port: int, sub_associations: list[StorageSubAssociation]
) -> None:
    study = make_study()
    for ds in study:
        source.add(ds)
    scu = AE(ae_title="TESTSCU")
    scu.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    xdsi_ae = source.dimse._server.ae
    seen: dict[str, int] = {}

    def on_store(_event: evt.Event) -> int:
        for association in xdsi_ae.active_associations:  # the C-MOVE's, pynetdicom's
            seen["acceptor"] = _no_delay(association.dul.socket.socket)
        for sub_association in sub_associations:  # the sub-association, xdsi's own
            seen["requestor"] = _no_delay(sub_association._socket)
        return 0x0000

    receiver = AE(ae_title=MOVE_DESTINATION)
    for sop_class in STORAGE:
        receiver.add_supported_context(sop_class, [ExplicitVRLittleEndian, RLELossless])
    server = receiver.start_server(
        ("127.0.0.1", destination_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    assoc = scu.associate(
        "127.0.0.1", source.dimse.port, ae_title="XDSI", evt_handlers=REQUESTOR_HANDLERS
    )
    try:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study[0].StudyInstanceUID
        responses = list(
            assoc.send_c_move(query, MOVE_DESTINATION, StudyRootQueryRetrieveInformationModelMove)
        )
    finally:
        assoc.release()
        server.shutdown()
    assert responses[-1][0].Status == 0x0000
    assert seen == {"acceptor": 1, "requestor": 1}
