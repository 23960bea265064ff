"""The runner judged against deliberately broken servers.

A small Starlette proxy stands in front of a real ``xdsi serve`` and, per URL prefix,
passes answers through or breaks them: wrong error codes, a wrong status, a dropped
document, changed document bytes and hash, a wrong fault subcode.  Each assertion kind
must turn such an answer into a FAILED case; the unbroken proxy must pass.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conformance.plan import PLANS_DIR, load_plans
from conformance.result import CaseResult, Endpoints, Outcome
from conformance.runner import run_cases
from conformance.selfserver import SelfServer, free_port

# WS-Addressing 1.0 SOAP Binding 6.4.4: what an endpoint without the operation answers
ACTION_NOT_SUPPORTED_FAULT = b"""<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
    xmlns:a="http://www.w3.org/2005/08/addressing">
  <s:Body><s:Fault>
    <s:Code><s:Value>s:Sender</s:Value>
      <s:Subcode><s:Value>a:ActionNotSupported</s:Value></s:Subcode></s:Code>
    <s:Reason><s:Text xml:lang="en">not offered here</s:Text></s:Reason>
  </s:Fault></s:Body>
</s:Envelope>"""


def _sub(pattern: bytes, replacement: bytes) -> Callable[[bytes], bytes]:
    return lambda body: re.sub(pattern, replacement, body)


BREAKAGES: dict[str, Callable[[bytes], bytes]] = {
    "ok": lambda body: body,
    "wrong-code": _sub(rb'errorCode="[A-Za-z]+"', b'errorCode="XDSRegistryError"'),
    "wrong-status": _sub(rb"ResponseStatusType:Success", b"ResponseStatusType:Failure"),
    "drop-document": _sub(rb"DocumentResponse>", b"DroppedResponse>"),
    "mangle-document": _sub(rb"Findings: no acute", b"Findings: an acute"),
    "mangle-hash": _sub(rb'(name="hash"><rim:ValueList><rim:Value>)[0-9a-f]', rb"\g<1>z"),
    "wrong-subcode": _sub(rb"ActionNotSupported", b"InvalidAddressingHeader"),
    "no-results": _sub(rb"rim:ExtrinsicObject\b", b"rim:Ignored"),
    "wrong-ack-v3": _sub(rb'(<(?:\w+:)?typeCode code=")AA"', rb'\g<1>AE"'),
    "wrong-ack-detail": _sub(rb'code="[12]0[0-9]"', b'code="207"'),
    "wrong-partial": _sub(rb"ResponseStatusType:PartialSuccess", b"ResponseStatusType:Success"),
    "not-offered": lambda _body: ACTION_NOT_SUPPORTED_FAULT,
    "wrong-response-action": _sub(rb"UpdateDocumentSetResponse", b"RegisterDocumentSet-bResponse"),
    # the same length, so the MIME part stays well formed: only the DICOM bytes differ
    "mangle-dicom": _sub(rb"Conformance\^main", b"Conformance^MAIN"),
    # a registry without the Metadata Update option: ITI-57 is answered ActionNotSupported
    "no-update": lambda body: (
        ACTION_NOT_SUPPORTED_FAULT if b"UpdateDocumentSetResponse" in body else body
    ),
}


# a FindDocuments for a patient without documents, polled for one second
POLLED_PLAN = """
[[case]]
id = "poll-nothing"
title = "FindDocuments never finds anything"
[[case.steps]]
name = "find"
kind = "query"
params = { "$XDSDocumentEntryPatientId" = "'{{patient_id}}'", "$XDSDocumentEntryStatus" = "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')" }
poll = { seconds = 1, every = 0.2 }
assert = [ { xpath = "//rim:ExtrinsicObject", count = 1 } ]
"""


def proxy_app(upstream: str) -> Starlette:
    client = httpx.AsyncClient(timeout=30.0)

    async def forward(request: Request) -> Response:
        mode, path = request.path_params["mode"], request.path_params["path"]
        headers = {"content-type": request.headers.get("content-type", "")}
        answer = await client.post(
            f"{upstream}/{path}", content=await request.body(), headers=headers
        )
        body = BREAKAGES[mode](answer.content)
        return Response(body, answer.status_code, media_type=answer.headers.get("content-type"))

    return Starlette(routes=[Route("/{mode}/{path:path}", forward, methods=["POST"])])


@pytest.fixture(scope="module")
def xdsi() -> Iterator[tuple[SelfServer, Endpoints]]:
    server = SelfServer()
    try:
        yield server, server.start()
    finally:
        server.close()


@pytest.fixture(scope="module")
def proxy(xdsi: tuple[SelfServer, Endpoints]) -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(
        proxy_app(xdsi[0].base_url), host="127.0.0.1", port=port, log_level="error"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def run(case_id: str, endpoints: Endpoints) -> CaseResult:
    [result] = run_cases(load_plans(), endpoints, only=case_id)
    return result


def broken(xdsi: tuple[SelfServer, Endpoints], proxy: str, mode: str) -> Endpoints:
    """The SOAP endpoints through the proxy; STOW-RS goes straight to the server."""
    real = xdsi[1]
    return Endpoints(
        registry_url=f"{proxy}/{mode}/xds/registry",
        repository_url=f"{proxy}/{mode}/xds/repository",
        imaging_source_url=f"{proxy}/{mode}/xdsi/imaging-source",
        mllp=real.mllp,
        repository_unique_id=real.repository_unique_id,
        affinity_domain=real.affinity_domain,
        imaging_source_id=real.imaging_source_id,
        dicomweb_url=real.dicomweb_url,
    )


def failed_checks(result: CaseResult) -> list[str]:
    return [c.description for s in result.steps for c in s.checks if not c.passed]


@pytest.mark.parametrize(
    "case_id",
    ["iti41-provide-one-document", "iti42-non-identical-hash", "soap-unknown-action-registry"],
)
def test_the_unbroken_proxy_passes(xdsi, proxy, case_id: str) -> None:  # type: ignore[no-untyped-def]
    result = run(case_id, broken(xdsi, proxy, "ok"))
    assert result.outcome is Outcome.PASSED, result.reason


@pytest.mark.parametrize(
    ("mode", "case_id", "failing"),
    [
        ("wrong-code", "iti42-non-identical-hash", "error XDSNonIdenticalHash reported"),
        ("wrong-code", "iti43-unknown-repository", "error XDSUnknownRepositoryId reported"),
        ("wrong-code", "iti41-missing-documententry-classCode", "one of the error codes reported"),
        ("wrong-code", "iti41-extra-metadata-not-saved", "warning XDSExtraMetadataNotSaved reported"),
        ("wrong-status", "iti41-provide-one-document", "response status"),
        ("drop-document", "iti41-provide-one-document", "document"),
        ("mangle-document", "iti41-provide-one-document", "document"),
        ("mangle-hash", "iti41-provide-one-document", "equals of //rim:ExtrinsicObject/rim:Slot[@name='hash']/rim:ValueList/rim:Value"),
        ("wrong-subcode", "soap-unknown-action-registry", "fault subcode"),
        ("no-results", "iti18-find-documents-leafclass", "count of //rim:ExtrinsicObject"),
        ("no-results", "iti41-provide-two-documents", "values of"),
        ("wrong-ack-v3", "iti44-patient-added", "HL7 V3 acknowledgement typeCode"),
        ("wrong-ack-detail", "iti44-merge-into-unknown", "acknowledgementDetail code 204"),
        ("wrong-status", "iti62-remove-submission", "response status"),
        ("wrong-code", "iti62-unknown-object", "error codes are exactly"),
        ("wrong-code", "iti62-references-exist-document-alone", "error codes are exactly"),
        ("wrong-code", "iti86-unknown-repository", "error codes are exactly"),
        ("wrong-partial", "iti86-partial-success", "response status"),
        ("no-results", "iti61-register-on-demand", "values of"),
        ("no-results", "iti51-find-documents-two-patients", "values of"),
        ("wrong-status", "iti18-get-all", "response status"),
        ("wrong-status", "iti57-update-document-entry", "response status"),
        ("wrong-code", "iti57-previous-version-not-latest", "error XDSMetadataVersionError reported"),
        ("wrong-code", "iti57-changed-patient", "error XDSPatientIDReconciliationError reported"),
        ("wrong-code", "iti57-unresolved-reference", "error UnresolvedReferenceException reported"),
        ("wrong-response-action", "iti57-update-document-entry", "equals of //wsa:Action"),
        ("wrong-code", "iti57-wrong-original-status", "error XDSMetadataUpdateError reported"),
        ("wrong-code", "rad69-unknown-repository", "error codes are exactly"),
        ("wrong-partial", "rad69-partial-success", "response status"),
        ("drop-document", "rad69-partial-success", "document"),
        ("mangle-dicom", "rad69-partial-success", "document"),
    ],
)  # fmt: skip
def test_a_broken_answer_fails_the_case(xdsi, proxy, mode: str, case_id: str, failing: str) -> None:  # type: ignore[no-untyped-def]
    result = run(case_id, broken(xdsi, proxy, mode))
    assert result.outcome is Outcome.FAILED, result.reason
    assert any(d.startswith(failing) for d in failed_checks(result)), failed_checks(result)


def test_a_wrong_document_fails_byte_equality(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    result = run("iti41-provide-one-document", broken(xdsi, proxy, "mangle-document"))
    checks = failed_checks(result)
    assert any(d.endswith("bytes equal the submitted") for d in checks)
    assert any(d.endswith("SHA-1 equals the submitted") for d in checks)


def test_a_changed_instance_fails_rad69_byte_equality(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    result = run("rad69-partial-success", broken(xdsi, proxy, "mangle-dicom"))
    checks = failed_checks(result)
    assert any(d.endswith("bytes equal the submitted") for d in checks), checks
    assert result.steps[-1].name == "rad69"


def test_a_polled_step_fails_once_its_time_is_up(xdsi, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``poll`` repeats a step until its checks pass, for a bounded time only."""
    (tmp_path / "templates").mkdir()
    shutil.copy(PLANS_DIR / "templates" / "iti18_stored_query.xml", tmp_path / "templates")
    (tmp_path / "poll.toml").write_text(POLLED_PLAN, encoding="utf-8")
    started = time.monotonic()
    [result] = run_cases(load_plans(tmp_path), xdsi[1])
    assert result.outcome is Outcome.FAILED
    assert 1.0 <= time.monotonic() - started < 5.0
    assert failed_checks(result) == ["count of //rim:ExtrinsicObject"]


def test_the_unbroken_proxy_passes_rad69(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    result = run("rad69-retrieve-imaging-document-set", broken(xdsi, proxy, "ok"))
    assert result.outcome is Outcome.PASSED, result.reason


def test_a_wrong_ack_fails_the_case(xdsi) -> None:  # type: ignore[no-untyped-def]
    """A patient feed that answers AE to everything."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\x1c\r" not in data:
                data += conn.recv(65536)
            conn.sendall(b"\x0bMSH|^~\\&|X|X|Y|Y|20240101||ACK|1|P|2.3.1\rMSA|AE|1\r\x1c\r")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    endpoints = Endpoints(mllp=listener.getsockname(), affinity_domain="1.2.3")
    result = run("iti8-adt-a08-update", endpoints)
    listener.close()
    assert result.outcome is Outcome.FAILED
    assert failed_checks(result) == ["HL7 acknowledgement code (MSA-1)"]


def test_an_unreachable_endpoint_is_an_error() -> None:
    endpoints = Endpoints(registry_url=f"http://127.0.0.1:{free_port()}/xds/registry")
    result = run("iti18-get-documents-no-ids", endpoints)
    assert result.outcome is Outcome.ERROR


def test_a_missing_actor_is_not_runnable() -> None:
    result = run("rad69-retrieve-imaging-document-set", Endpoints(registry_url="http://x"))
    assert result.outcome is Outcome.NOT_RUNNABLE
    assert "--imaging-source" in result.reason


@pytest.mark.parametrize(
    "case_id",
    [
        "iti44-patient-added",
        "iti62-remove-submission",
        "iti86-partial-success",
        "iti57-update-document-entry",
        "iti57-update-folder",
    ],
)
def test_the_unbroken_proxy_passes_the_optional_transactions(xdsi, proxy, case_id: str) -> None:  # type: ignore[no-untyped-def]
    result = run(case_id, broken(xdsi, proxy, "ok"))
    assert result.outcome is Outcome.PASSED, result.reason


def test_an_option_answered_action_not_supported_is_not_runnable(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    result = run("iti51-unbounded-query", broken(xdsi, proxy, "not-offered"))
    assert result.outcome is Outcome.NOT_RUNNABLE, result.reason
    assert "ITI-51" in result.reason and "ActionNotSupported" in result.reason


def test_a_registry_without_metadata_update_is_not_runnable(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    result = run("iti57-update-document-entry", broken(xdsi, proxy, "no-update"))
    assert result.outcome is Outcome.NOT_RUNNABLE, result.reason
    assert "metadata-update" in result.reason and "ActionNotSupported" in result.reason


def test_action_not_supported_on_a_required_transaction_fails(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    """ITI-42 answered ActionNotSupported in an ITI-51 case: the registry lacks ITI-42."""
    result = run("iti51-find-documents-two-patients", broken(xdsi, proxy, "not-offered"))
    assert result.outcome is Outcome.FAILED
    assert result.steps[-1].name == "register"


def test_action_not_supported_without_an_option_fails(xdsi, proxy) -> None:  # type: ignore[no-untyped-def]
    result = run("iti18-get-documents-no-ids", broken(xdsi, proxy, "not-offered"))
    assert result.outcome is Outcome.FAILED
