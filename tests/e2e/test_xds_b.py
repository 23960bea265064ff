"""XDS.b end to end: a real ``xdsi serve`` driven over HTTP and MLLP by an independent peer.

Each scenario runs against SQLite and against PostgreSQL (see conftest.py).  Every
response body is checked against the ebRS/IHE XSDs by the peer.
"""

from __future__ import annotations

import httpx
from e2e_support import (
    APPROVED,
    DEPRECATED,
    FAILURE,
    NS,
    PDF_BYTES,
    SUCCESS,
    TEXT_BYTES,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    ack_code,
    adt_a01,
    body_element,
    document_bytes,
    entries_by_unique_id,
    new_id,
    new_patient_number,
    parse_response,
    patient_cx,
    render,
    send_mllp,
)


def fed_patient(server: ServerProcess) -> str:
    number = new_patient_number()
    reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    assert ack_code(reply) == "AA", reply
    return patient_cx(number)


def test_patient_feed_is_acknowledged_with_aa(server: ServerProcess) -> None:
    reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(new_patient_number()))
    assert ack_code(reply) == "AA"


def test_provide_one_document_succeeds(server: ServerProcess, peer: XdsPeer) -> None:
    reply, _ = peer.provide(fed_patient(server), [("application/pdf", PDF_BYTES)])
    assert reply.status == SUCCESS, reply.registry_errors()


def test_two_documents_are_found_as_leaf_class(server: ServerProcess, peer: XdsPeer) -> None:
    patient = fed_patient(server)
    reply, uids = peer.provide(
        patient, [("application/pdf", PDF_BYTES), ("text/plain", TEXT_BYTES)]
    )
    assert reply.status == SUCCESS, reply.registry_errors()
    found = peer.find_documents(patient)
    assert found.status == SUCCESS
    assert set(entries_by_unique_id(found)) == set(uids)


def test_find_documents_object_ref_returns_ids_only(server: ServerProcess, peer: XdsPeer) -> None:
    patient = fed_patient(server)
    peer.provide(patient, [("application/pdf", PDF_BYTES), ("text/plain", TEXT_BYTES)])
    found = peer.find_documents(patient, return_type="ObjectRef")
    refs = found.body.findall("rim:RegistryObjectList/rim:ObjectRef", NS)
    assert len(refs) == 2
    assert not found.body.findall(".//rim:ExtrinsicObject", NS)


def test_retrieve_returns_byte_identical_documents(server: ServerProcess, peer: XdsPeer) -> None:
    patient = fed_patient(server)
    _, uids = peer.provide(patient, [("application/pdf", PDF_BYTES), ("text/plain", TEXT_BYTES)])
    reply = peer.retrieve(uids)
    assert reply.package.is_mtom
    documents = {
        d.findtext("xdsb:DocumentUniqueId", namespaces=NS): d
        for d in reply.body.findall("xdsb:DocumentResponse", NS)
    }
    # the peer's body_element inlined the parts (XOP infoset); compare decoded content
    import base64

    assert (
        base64.b64decode(documents[uids[0]].findtext("xdsb:Document", namespaces=NS)) == PDF_BYTES
    )
    assert (
        base64.b64decode(documents[uids[1]].findtext("xdsb:Document", namespaces=NS)) == TEXT_BYTES
    )
    assert documents[uids[0]].findtext("xdsb:mimeType", namespaces=NS) == "application/pdf"


def test_retrieve_response_is_mtom_with_xop_parts(server: ServerProcess, peer: XdsPeer) -> None:
    patient = fed_patient(server)
    _, uids = peer.provide(patient, [("application/pdf", PDF_BYTES)])
    reply = peer.retrieve(uids)
    parts = list(reply.package.parts.values())
    assert [data for _, data in parts] == [PDF_BYTES]


def test_register_document_set_directly(server: ServerProcess, peer: XdsPeer) -> None:
    patient = fed_patient(server)
    reply, uid = peer.register(patient, TEXT_BYTES)
    assert reply.status == SUCCESS, reply.registry_errors()
    assert uid in entries_by_unique_id(peer.find_documents(patient))


def test_unknown_patient_is_refused(peer: XdsPeer) -> None:
    reply, _ = peer.provide(patient_cx(new_patient_number()), [("text/plain", TEXT_BYTES)])
    assert reply.status == FAILURE
    assert "XDSUnknownPatientId" in reply.registry_errors()


def test_missing_document_is_refused(server: ServerProcess, peer: XdsPeer) -> None:
    reply, _ = peer.provide(
        fed_patient(server), [("text/plain", TEXT_BYTES)], fixture="iti41_missing_document.xml"
    )
    assert reply.status == FAILURE
    assert "XDSMissingDocument" in reply.registry_errors()


def test_replacement_deprecates_the_original(server: ServerProcess, peer: XdsPeer) -> None:
    patient = fed_patient(server)
    _, (original_uid,) = peer.provide(patient, [("text/plain", TEXT_BYTES)])
    original = entries_by_unique_id(peer.find_documents(patient))[original_uid]
    reply, (new_uid,) = peer.provide(
        patient,
        [("text/plain", b"corrected report\n")],
        fixture="iti41_replace.xml",
        original_entry_uuid=original.get("id"),
    )
    assert reply.status == SUCCESS, reply.registry_errors()
    found = entries_by_unique_id(peer.find_documents(patient, statuses=(APPROVED, DEPRECATED)))
    assert found[original_uid].get("status") == DEPRECATED
    assert found[new_uid].get("status") == APPROVED


def _assert_fault(response: httpx.Response, schemas: ResponseSchemas) -> None:
    assert response.status_code in (400, 415, 500), response.status_code
    package = parse_response(response.headers.get("content-type", ""), response.content)
    assert body_element(package).tag == f"{{{NS['soap']}}}Fault"


def _still_serves(server: ServerProcess, peer: XdsPeer) -> None:
    assert httpx.get(f"{server.base_url}/health").status_code == 200
    assert peer.find_documents(patient_cx(new_patient_number())).status == SUCCESS


def test_malformed_xml_is_a_fault_and_server_still_serves(
    server: ServerProcess, peer: XdsPeer, schemas: ResponseSchemas
) -> None:
    response = httpx.post(
        peer.registry_url,
        content=render("malformed.xml"),
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
    )
    _assert_fault(response, schemas)
    _still_serves(server, peer)


def test_dtd_bomb_is_a_fault_and_server_still_serves(
    server: ServerProcess, peer: XdsPeer, schemas: ResponseSchemas
) -> None:
    response = httpx.post(
        peer.registry_url,
        content=render("dtd_bomb.xml", message_id=new_id()),
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
        timeout=10.0,
    )
    _assert_fault(response, schemas)
    _still_serves(server, peer)


def test_wrong_content_type_is_a_fault(
    server: ServerProcess, peer: XdsPeer, schemas: ResponseSchemas
) -> None:
    envelope = render(
        "iti18_find_documents.xml",
        message_id=new_id(),
        to=peer.registry_url,
        return_type="LeafClass",
        patient_id=patient_cx("X"),
        statuses=f"'{APPROVED}'",
    )
    response = httpx.post(
        peer.registry_url, content=envelope, headers={"Content-Type": "text/plain"}
    )
    _assert_fault(response, schemas)
    _still_serves(server, peer)


def test_each_endpoint_serves_its_wsdl(server: ServerProcess) -> None:
    from lxml import etree

    for path, action in (
        ("/xds/registry", "urn:ihe:iti:2007:RegistryStoredQuery"),
        ("/xds/repository", "urn:ihe:iti:2007:RetrieveDocumentSet"),
    ):
        response = httpx.get(f"{server.base_url}{path}?wsdl")
        assert response.status_code == 200
        wsdl = etree.fromstring(response.content)
        assert wsdl.tag == f"{{{NS['wsdl']}}}definitions"
        assert action.encode() in response.content


def test_document_bytes_helper_reads_parts(server: ServerProcess, peer: XdsPeer) -> None:
    """The peer's own reader: a part referenced by xop:Include is returned as sent."""
    patient = fed_patient(server)
    _, uids = peer.provide(patient, [("text/plain", TEXT_BYTES)])
    reply = peer.retrieve(uids)
    from lxml import etree

    root = etree.fromstring(reply.package.root)
    document = root.find(".//xdsb:DocumentResponse/xdsb:Document", NS)
    assert document_bytes(reply.package, document) == TEXT_BYTES
