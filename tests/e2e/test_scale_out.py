"""Scale-out: three ``xdsi serve`` processes, one PostgreSQL, one blob store, nginx in front.

Races go through the balancer from 20 client threads at once, so the contenders land
on different processes and only the database can decide between them (ARCHITECTURE:
uniqueness lives in the database).  Expected outcomes, ITI TF-2 3.42.4.1.3.3.1 and
ITI TF-3 Table 4.2.4.1-2:

- one DocumentEntry uniqueId, different content: one registered, the others
  XDSNonIdenticalHash / XDSNonIdenticalSize;
- the same uniqueId with identical content: all accepted;
- one SubmissionSet uniqueId: one set registered, the others
  XDSDuplicateUniqueIdInRegistry;
- concurrent RPLCs of one document (ITI TF-3 4.2.2.2.2): one succeeds, the others
  XDSRegistryDeprecatedDocumentError;
- ITI-86 Remove Documents on one process while ITI-41s of the same content run on
  another: the shared blob stays while any document references it (RMD 3.86.4.1.3,
  ITI TF-2 3.41.4.1.3.2), so every remaining document is retrieved with its hash.

Serialization failures and deadlocks are retried inside the registry, never answered
(no XDSRegistryError anywhere), and the rows in the database match the answers.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cluster_support import Cluster, ClusterServer, client_ssl_context, nginx_missing
from e2e_support import (
    DEPRECATED,
    FAILURE,
    NS,
    REPOSITORY_UNIQUE_ID,
    SUCCESS,
    Reply,
    ResponseSchemas,
    XdsPeer,
    ack_code,
    adt_a01,
    create_pg_database,
    document_bytes,
    drop_pg_database,
    entries_by_unique_id,
    missing,
    new_id,
    new_patient_number,
    patient_cx,
    unique_oid,
)

pytestmark = pytest.mark.slow

RACERS = 20


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = nginx_missing()
    if reason is not None:
        missing(reason)
    database_url = create_pg_database()
    if database_url is None:
        missing("no PostgreSQL at 127.0.0.1:5432 (set XDSI_TEST_POSTGRES to point elsewhere)")
    assert database_url is not None
    cluster = Cluster(tmp_path_factory.mktemp("scale-out"), database_url)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        drop_pg_database(database_url)


@pytest.fixture(scope="module")
def balanced(cluster: Cluster) -> Iterator[XdsPeer]:
    """An XDS peer talking plain HTTP to nginx's http block."""
    peer = XdsPeer(cluster.base_url, ResponseSchemas())
    peer.http = httpx.Client(timeout=60.0, limits=httpx.Limits(max_connections=RACERS))
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def patient(cluster: Cluster) -> str:
    """Fed once, over MLLP with TLS, to the first process only."""
    number = new_patient_number()
    assert ack_code(cluster.feed_tls(cluster.servers[0], adt_a01(number))) == "AA"
    return patient_cx(number)


def _rows(cluster: Cluster, sql: str, *params: object) -> int:
    import psycopg

    url = cluster.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return int(row[0])


def _race(work: Callable[[int], Reply]) -> list[Reply]:
    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(work, range(RACERS)))


def _codes(replies: list[Reply]) -> list[str]:
    return [code for reply in replies for code in reply.registry_errors()]


def _no_registry_error(replies: list[Reply]) -> None:
    assert all(reply.status_code == 200 for reply in replies)
    assert "XDSRegistryError" not in _codes(replies)
    assert "XDSRepositoryError" not in _codes(replies)


def _entry_uuid(peer: XdsPeer, patient: str, unique_id: str) -> str:
    reply = peer.find_documents(patient)
    return entries_by_unique_id(reply)[unique_id].get("id", "")


def test_feed_to_one_process_is_seen_by_every_process(cluster: Cluster, patient: str) -> None:
    for server in cluster.servers:
        peer = XdsPeer(server.base_url, ResponseSchemas())
        peer.http = server.http_client()
        try:
            reply, _ = peer.provide(
                patient, [("text/plain", b"seen by " + server.base_url.encode())]
            )
        finally:
            peer.close()
        assert reply.status == SUCCESS, reply.registry_errors()


def test_stream_passthrough_lets_xdsi_authenticate_the_client(cluster: Cluster) -> None:
    assert cluster.pki is not None
    with httpx.Client(verify=client_ssl_context(cluster.pki), timeout=10.0) as client:
        assert client.get(f"{cluster.tls_base_url}/health").status_code == 200


def test_stream_passthrough_refuses_a_client_without_certificate(cluster: Cluster) -> None:
    assert cluster.pki is not None
    context = client_ssl_context(cluster.pki, with_certificate=False)
    with httpx.Client(verify=context, timeout=10.0) as client, pytest.raises(httpx.TransportError):
        client.get(f"{cluster.tls_base_url}/health")


def test_one_unique_id_with_different_content_registers_exactly_one(
    cluster: Cluster, balanced: XdsPeer, patient: str
) -> None:
    uid = unique_oid()
    contents = [f"different content {n} ".encode() * (n + 1) for n in range(RACERS)]

    def submit(n: int) -> Reply:
        return balanced.provide(patient, [("text/plain", contents[n])], doc_unique_id=uid)[0]

    replies = _race(submit)
    _no_registry_error(replies)
    winners = [n for n, reply in enumerate(replies) if reply.status == SUCCESS]
    assert len(winners) == 1
    for n, reply in enumerate(replies):
        if n != winners[0]:
            assert reply.status == FAILURE
            assert set(reply.registry_errors()) <= {"XDSNonIdenticalHash", "XDSNonIdenticalSize"}
            assert reply.registry_errors()
    assert _rows(cluster, "SELECT count(*) FROM document_entry WHERE unique_id = %s", uid) == 1
    winner = contents[winners[0]]
    assert (
        _rows(
            cluster,
            "SELECT count(*) FROM document_entry WHERE unique_id = %s AND hash = %s",
            uid,
            hashlib.sha1(winner).hexdigest(),
        )
        == 1
    )
    retrieved = balanced.retrieve([uid])
    assert retrieved.body.find("rs:RegistryResponse", NS).get("status") == SUCCESS
    document = next(retrieved.body.iter(f"{{{NS['xdsb']}}}Document"))
    assert document_bytes(retrieved.package, document) == winner


def test_one_unique_id_with_identical_content_is_accepted_every_time(
    cluster: Cluster, balanced: XdsPeer, patient: str
) -> None:
    uid = unique_oid()
    content = b"identical content, submitted by every racer\n"

    def submit(_: int) -> Reply:
        return balanced.provide(patient, [("text/plain", content)], doc_unique_id=uid)[0]

    replies = _race(submit)
    _no_registry_error(replies)
    assert [reply.status for reply in replies] == [SUCCESS] * RACERS
    stored = _rows(
        cluster,
        "SELECT count(*) FROM document_entry WHERE unique_id = %s AND hash = %s",
        uid,
        hashlib.sha1(content).hexdigest(),
    )
    assert stored == _rows(cluster, "SELECT count(*) FROM document_entry WHERE unique_id = %s", uid)
    assert stored >= 1


def test_one_submission_set_unique_id_registers_exactly_one_set(
    cluster: Cluster, balanced: XdsPeer, patient: str
) -> None:
    ss_uid = unique_oid()
    doc_uids = [unique_oid() for _ in range(RACERS)]

    def submit(n: int) -> Reply:
        return balanced.provide(
            patient,
            [("text/plain", f"set race {n}".encode())],
            ss_unique_id=ss_uid,
            doc_unique_id=doc_uids[n],
        )[0]

    replies = _race(submit)
    _no_registry_error(replies)
    winners = [n for n, reply in enumerate(replies) if reply.status == SUCCESS]
    assert len(winners) == 1
    losers = [reply for n, reply in enumerate(replies) if n != winners[0]]
    assert all(reply.registry_errors() == ["XDSDuplicateUniqueIdInRegistry"] for reply in losers)
    assert _rows(cluster, "SELECT count(*) FROM submission_set WHERE unique_id = %s", ss_uid) == 1
    registered = _rows(
        cluster, "SELECT count(*) FROM document_entry WHERE unique_id = ANY(%s)", doc_uids
    )
    assert registered == 1
    # nothing of a refused submission stays in the repository
    kept = _rows(
        cluster,
        "SELECT count(*) FROM repository_document WHERE document_unique_id = ANY(%s)",
        doc_uids,
    )
    assert kept == 1


def test_concurrent_replacements_of_one_document_let_exactly_one_succeed(
    cluster: Cluster, balanced: XdsPeer, patient: str
) -> None:
    original, (original_uid,) = balanced.provide(patient, [("text/plain", b"to be replaced")])
    assert original.status == SUCCESS
    original_uuid = _entry_uuid(balanced, patient, original_uid)
    replacement_uids = [unique_oid() for _ in range(RACERS)]

    def replace(n: int) -> Reply:
        return balanced.provide(
            patient,
            [("text/plain", f"replacement {n}".encode())],
            fixture="iti41_replace.xml",
            original_entry_uuid=original_uuid,
            doc_unique_id=replacement_uids[n],
        )[0]

    replies = _race(replace)
    _no_registry_error(replies)
    winners = [n for n, reply in enumerate(replies) if reply.status == SUCCESS]
    assert len(winners) == 1
    losers = [reply for n, reply in enumerate(replies) if n != winners[0]]
    assert all(
        reply.registry_errors() == ["XDSRegistryDeprecatedDocumentError"] for reply in losers
    )
    statuses = balanced.find_documents(patient, statuses=(DEPRECATED,))
    assert original_uid in entries_by_unique_id(statuses)
    approved = _rows(
        cluster,
        "SELECT count(*) FROM document_entry WHERE unique_id = ANY(%s) AND status LIKE %s",
        replacement_uids,
        "%Approved",
    )
    assert approved == 1
    assert (
        _rows(
            cluster,
            "SELECT count(*) FROM association WHERE target_uuid = %s AND association_type LIKE %s",
            original_uuid,
            "%RPLC",
        )
        == 1
    )


def test_no_update_is_lost_under_concurrent_submissions(
    cluster: Cluster, balanced: XdsPeer, tmp_path: Path
) -> None:
    number = new_patient_number()
    assert ack_code(cluster.feed_tls(cluster.servers[1], adt_a01(number))) == "AA"
    patient = patient_cx(number)

    def submit(n: int) -> Reply:
        return balanced.provide(patient, [("text/plain", f"update {n}".encode())])[0]

    replies = _race(submit) + _race(submit)
    _no_registry_error(replies)
    assert [reply.status for reply in replies] == [SUCCESS] * (2 * RACERS)
    found = entries_by_unique_id(balanced.find_documents(patient))
    assert len(found) == 2 * RACERS
    assert (
        _rows(cluster, "SELECT count(*) FROM submission_set WHERE patient_id = %s", patient)
        == 2 * RACERS
    )


REMOVE_DOCUMENTS = "urn:ihe:iti:2017:RemoveDocuments"
BLOB_RACE_ROUNDS = 6
BLOB_RACE_SUBMITTERS = 3


def _process_peer(server: ClusterServer) -> XdsPeer:
    peer = XdsPeer(server.base_url, ResponseSchemas())
    peer.http = server.http_client(timeout=60.0)
    return peer


def _remove_documents(peer: XdsPeer, unique_id: str) -> Reply:
    """ITI-86 Remove Documents (RMD 3.86.4.1.2) of one document of this repository."""
    url = peer.repository_url
    envelope = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{NS["soap"]}" xmlns:wsa="{NS["wsa"]}"><soap:Header>'
        f'<wsa:Action soap:mustUnderstand="true">{REMOVE_DOCUMENTS}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{new_id()}</wsa:MessageID><wsa:To>{url}</wsa:To>"
        '</soap:Header><soap:Body><rmd:RemoveDocumentsRequest xmlns:rmd="urn:ihe:iti:rmd:2017"'
        f' xmlns:xdsb="{NS["xdsb"]}"><xdsb:DocumentRequest>'
        f"<xdsb:RepositoryUniqueId>{REPOSITORY_UNIQUE_ID}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{unique_id}</xdsb:DocumentUniqueId>"
        "</xdsb:DocumentRequest></rmd:RemoveDocumentsRequest></soap:Body></soap:Envelope>"
    ).encode()
    return peer.simple(url, envelope, REMOVE_DOCUMENTS)


def test_removal_on_one_process_keeps_the_blob_of_identical_documents_stored_on_another(
    cluster: Cluster, patient: str
) -> None:
    remover = _process_peer(cluster.servers[0])
    submitter = _process_peer(cluster.servers[1])
    kept: dict[str, bytes] = {}  # uniqueId -> content of every document not removed
    try:
        for _ in range(BLOB_RACE_ROUNDS):
            content = os.urandom(64 * 1024)
            first, (removed_uid,) = remover.provide(patient, [("application/pdf", content)])
            assert first.status == SUCCESS, first.registry_errors()

            def act(n: int, uid: str = removed_uid, data: bytes = content) -> tuple[Reply, list]:
                if n == 0:
                    return _remove_documents(remover, uid), []
                return submitter.provide(patient, [("application/pdf", data)])

            with ThreadPoolExecutor(1 + BLOB_RACE_SUBMITTERS) as pool:
                outcomes = list(pool.map(act, range(1 + BLOB_RACE_SUBMITTERS)))
            replies = [reply for reply, _ in outcomes]
            assert [r.status for r in replies] == [SUCCESS] * len(replies), _codes(replies)
            kept |= {uid: content for _, uids in outcomes for uid in uids}

        retrieved = submitter.retrieve(list(kept))
        assert retrieved.body.find("rs:RegistryResponse", NS).get("status") == SUCCESS
        documents = {
            document.findtext("xdsb:DocumentUniqueId", namespaces=NS): document_bytes(
                retrieved.package, document.find("xdsb:Document", NS)
            )
            for document in retrieved.body.iter(f"{{{NS['xdsb']}}}DocumentResponse")
        }
        assert documents == kept
        # ITI TF-3 4.2.3.2.9: every blob is its content's SHA-1
        for path in (cluster.directory / "blobs").glob("??/??/*"):
            assert hashlib.sha1(path.read_bytes()).hexdigest() == path.name
    finally:
        remover.close()
        submitter.close()
