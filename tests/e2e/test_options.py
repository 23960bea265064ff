"""The optional transactions `xdsi serve` offers by default, over real HTTP: ITI-44
(HL7 V3 feed, a default-namespace SOAP Body), ITI-86 Remove Documents, ITI-62 Remove
Metadata and ITI-61 Register On-Demand Document Entry reach their handlers."""

from __future__ import annotations

import string
from pathlib import Path

from e2e_support import (
    AFFINITY_DOMAIN,
    REPOSITORY_UNIQUE_ID,
    ServerProcess,
    XdsPeer,
    new_id,
    new_patient_number,
    patient_cx,
)
from lxml import etree

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HL7 = "{urn:hl7-org:v3}"
REMOVE_DOCUMENTS = "urn:ihe:iti:2017:RemoveDocuments"


def envelope(action: str, to: str, body: str) -> bytes:
    """A SOAP 1.2 envelope with the WS-Addressing headers ITI TF-2 V.3.2 requires."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"'
        ' xmlns:wsa="http://www.w3.org/2005/08/addressing"><soap:Header>'
        f'<wsa:Action soap:mustUnderstand="true">{action}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{new_id()}</wsa:MessageID>"
        f"<wsa:To>{to}</wsa:To>"
        "</soap:Header><soap:Body>"
        f"{body}</soap:Body></soap:Envelope>"
    ).encode()


def fixture_body(path: Path, **values: str) -> str:
    text = path.read_text(encoding="utf-8")
    text = text[text.index("-->") + 3 :] if text.lstrip().startswith("<?xml") else text
    return string.Template(text).substitute(values).strip()


def test_hl7v3_patient_added_then_documents_accepted(server: ServerProcess, peer: XdsPeer) -> None:
    number = new_patient_number()
    body = fixture_body(
        FIXTURES / "hl7v3" / "PRPA_IN201301UV02.xml",
        message_id=new_id(),
        patient_id=number,
        authority=AFFINITY_DOMAIN,
    )
    registry = f"{server.base_url}/xds/registry"
    response = peer.http.post(
        registry,
        content=envelope("urn:hl7-org:v3:PRPA_IN201301UV02", registry, body),
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    assert root.find(f".//{HL7}MCCI_IN000002UV01") is not None
    assert root.find(f".//{HL7}acknowledgement/{HL7}typeCode").get("code") == "AA"
    # ITI TF-2 3.44.4.1.3: the patient is known at once
    reply, _ = peer.provide(patient_cx(number), [("text/plain", b"after an HL7 V3 feed\n")])
    assert reply.status.endswith(":Success"), reply.registry_errors()


def test_remove_documents_then_retrieve_fails(server: ServerProcess, peer: XdsPeer) -> None:
    from e2e_support import adt_a01, send_mllp

    number = new_patient_number()
    send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    reply, (uid,) = peer.provide(patient_cx(number), [("text/plain", b"to be removed\n")])
    assert reply.status.endswith(":Success"), reply.registry_errors()
    repository = f"{server.base_url}/xds/repository"
    body = (
        '<rmd:RemoveDocumentsRequest xmlns:rmd="urn:ihe:iti:rmd:2017"'
        ' xmlns:xdsb="urn:ihe:iti:xds-b:2007"><xdsb:DocumentRequest>'
        f"<xdsb:RepositoryUniqueId>{REPOSITORY_UNIQUE_ID}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>{uid}</xdsb:DocumentUniqueId>"
        "</xdsb:DocumentRequest></rmd:RemoveDocumentsRequest>"
    )
    removed = peer.simple(
        repository, envelope(REMOVE_DOCUMENTS, repository, body), REMOVE_DOCUMENTS
    )
    assert removed.status.endswith(":Success"), removed.registry_errors()
    after = peer.retrieve([uid]).body
    codes = after.xpath("//*[local-name()='RegistryError']/@errorCode")
    assert codes == ["XDSDocumentUniqueIdError"]


def test_remove_metadata_of_an_unknown_object(server: ServerProcess, peer: XdsPeer) -> None:
    registry = f"{server.base_url}/xds/registry"
    action = "urn:ihe:iti:2010:DeleteDocumentSet"
    body = (
        '<lcm:RemoveObjectsRequest xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"'
        ' xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"><rim:ObjectRefList>'
        f'<rim:ObjectRef id="urn:uuid:{new_id()}"/></rim:ObjectRefList></lcm:RemoveObjectsRequest>'
    )
    reply = peer.simple(registry, envelope(action, registry, body), action)
    assert reply.registry_errors() == ["UnresolvedReferenceException"]
