"""Valid requests for the fuzzers to mutate: ITI-41 (MTOM), ITI-42 and ITI-18 (simple
SOAP), ITI-43 (MTOM), from the annotated templates in ``tests/fixtures/e2e``."""

from __future__ import annotations

from xml.sax.saxutils import escape

from e2e_support import (
    REPOSITORY_UNIQUE_ID,
    TEST_OID_ROOT,
    dtm_now,
    mtom_request,
    new_id,
    render,
    unique_oid,
)

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
REGISTRY = "/xds/registry"
REPOSITORY = "/xds/repository"
DOCUMENT = b"Findings: no acute cardiopulmonary process.\r\nImpression: normal.\n"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"


def simple_content_type(action: str) -> str:
    return f'application/soap+xml; charset=UTF-8; action="{action}"'


def iti41_envelope(patient: str, content_id: str) -> bytes:
    return render(
        "iti41_one_document.xml",
        message_id=new_id(),
        to="http://xdsi.fuzz/xds/repository",
        patient_id=patient,
        ss_unique_id=unique_oid(),
        source_id=TEST_OID_ROOT,
        creation_time=dtm_now(),
        doc_unique_id=unique_oid(),
        mime_type="text/plain",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Fuzzed document",
        content_id=content_id,
    )


def iti41(patient: str, envelope: bytes | None = None) -> tuple[str, bytes]:
    """(Content-Type, body) of a valid ITI-41 with one text document."""
    content_id = f"doc1.{new_id()}@xdsi.fuzz"
    root = envelope if envelope is not None else iti41_envelope(patient, content_id)
    if envelope is not None:
        content_id = "doc1@xdsi.fuzz"
    return mtom_request(root, [(content_id, "text/plain", DOCUMENT)], ITI41)


def iti41_fixed_cid(patient: str) -> bytes:
    """An ITI-41 envelope whose Document refers to ``cid:doc1@xdsi.fuzz``."""
    return iti41_envelope(patient, "doc1@xdsi.fuzz")


def iti42(patient: str) -> bytes:
    return render(
        "iti42_register.xml",
        message_id=new_id(),
        to="http://xdsi.fuzz/xds/registry",
        patient_id=patient,
        ss_unique_id=unique_oid(),
        source_id=TEST_OID_ROOT,
        creation_time=dtm_now(),
        doc_unique_id=unique_oid(),
        mime_type="text/plain",
        format_code="urn:ihe:iti:xds-sd:text:2008",
        title="Fuzzed registration",
        hash="da39a3ee5e6b4b0d3255bfef95601890afd80709",
        size=0,
        repository_unique_id=REPOSITORY_UNIQUE_ID,
    )


def iti18(patient: str) -> bytes:
    return render(
        "iti18_find_documents.xml",
        message_id=new_id(),
        to="http://xdsi.fuzz/xds/registry",
        return_type="LeafClass",
        patient_id=patient,
        statuses=f"'{APPROVED}'",
    )


def iti43_envelope(unique_ids: list[str]) -> bytes:
    requests = "\n".join(
        "      <xdsb:DocumentRequest>\n"
        f"        <xdsb:RepositoryUniqueId>{escape(REPOSITORY_UNIQUE_ID)}</xdsb:RepositoryUniqueId>\n"
        f"        <xdsb:DocumentUniqueId>{escape(uid)}</xdsb:DocumentUniqueId>\n"
        "      </xdsb:DocumentRequest>"
        for uid in unique_ids
    )
    return render(
        "iti43_retrieve.xml",
        raw={"document_requests": requests},
        message_id=new_id(),
        to="http://xdsi.fuzz/xds/repository",
    )


def iti43(unique_ids: list[str]) -> tuple[str, bytes]:
    return mtom_request(iti43_envelope(unique_ids), [], ITI43)


__all__ = [
    "DOCUMENT",
    "ITI18",
    "ITI41",
    "ITI42",
    "ITI43",
    "REGISTRY",
    "REPOSITORY",
    "iti18",
    "iti41",
    "iti41_fixed_cid",
    "iti42",
    "iti43",
    "iti43_envelope",
    "simple_content_type",
]
