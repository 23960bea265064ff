"""Data survives a restart, and SIGTERM ends the server with exit code 0."""

from __future__ import annotations

from pathlib import Path

from e2e_support import (
    SUCCESS,
    TEXT_BYTES,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    ack_code,
    adt_a01,
    entries_by_unique_id,
    new_patient_number,
    patient_cx,
    send_mllp,
)


def test_restart_finds_the_data_again(tmp_path: Path, schemas: ResponseSchemas) -> None:
    server = ServerProcess(tmp_path / "data").start()
    number = new_patient_number()
    try:
        assert ack_code(send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))) == "AA"
        peer = XdsPeer(server.base_url, schemas)
        reply, uids = peer.provide(patient_cx(number), [("text/plain", TEXT_BYTES)])
        assert reply.status == SUCCESS, reply.registry_errors()
        peer.close()
    finally:
        assert server.stop() == 0
    server.start()
    try:
        peer = XdsPeer(server.base_url, schemas)
        assert set(entries_by_unique_id(peer.find_documents(patient_cx(number)))) == set(uids)
        retrieved = peer.retrieve(uids)
        assert len(retrieved.package.parts) == 1
        peer.close()
    finally:
        server.stop()
