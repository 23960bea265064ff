"""Client commands for people: feed a patient, submit, query and retrieve documents.

Each targets any XDS.b endpoint by URL (defaults: the local server of the loaded
Config) and uses the same ``ebxml`` and ``soap`` code as the server.  Exit codes:
0 success, 1 an XDS Failure (its errors printed), 2 a usage or transport error.

Given ``record`` (``xdsi.client_audit``), each command audits its transaction as the
requesting actor, failures included (``atna.requester``): ITI-8 as the Patient
Identity Source, ITI-41 as the Document Source, ITI-18 and ITI-43 as the Document
Consumer.
"""

from __future__ import annotations

import json
import mimetypes
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from atna.codes import EventOutcomeIndicator
from atna.events import AuditEvent, DocumentReference, Endpoint
from atna.node_authentication import (
    OnTlsFailure,
    TlsFailure,
    outgoing_authentication_alert,
    reporting_context,
)
from atna.observe import ACK_OUTCOME
from atna.requester import (
    describe_errors,
    error_outcome,
    local_address,
    query_facts,
    requester_outcome,
    status_outcome,
    submission_facts,
)
from ebxml.errors import RegistryError
from ebxml.messages import (
    AdhocQueryRequest,
    DocumentRequest,
    RegistryResponse,
    RetrieveDocumentSetRequest,
)
from ebxml.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
)
from ebxml.retrieve import parse_retrieve_document_set_response, retrieve_document_set_request
from ebxml.serialize import provide_and_register_request
from ebxml.vocabulary import (
    SUBMISSION_SET_STATUS_ORIGINAL,
    Action,
    AssociationType,
    AvailabilityStatus,
    QueryParameter,
    ResponseStatus,
    ReturnType,
    StoredQuery,
    Transaction,
)
from ebxml.wire import adhoc_query_request, parse_adhoc_query_response, parse_registry_response
from registry.hl7v2 import build_adt_a01
from registry.mllp import MllpError, send_mllp
from soap.faults import SoapFault
from soap.message import OutgoingAttachment
from xdsi.config import ARC_DOCUMENT, ARC_SUBMISSION_SET, Config
from xdsi.tls import TlsConfigError, client_context

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

Record = Callable[[AuditEvent], None]

# A small default code set (from the IHE Connectathon affinity domain, codes.xml)
DEFAULT_CLASS_CODE = Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports")
DEFAULT_TYPE_CODE = Code("11488-4", "2.16.840.1.113883.6.1", "Consultation Note")
DEFAULT_CONFIDENTIALITY = Code("N", "2.16.840.1.113883.5.25", "normal")
DEFAULT_FACILITY_TYPE = Code("22232009", "2.16.840.1.113883.6.96", "Hospital")
DEFAULT_PRACTICE_SETTING = Code(
    "309927009", "2.16.840.1.113883.6.96", "General medical department (environment)"
)
DEFAULT_CONTENT_TYPE = Code(
    "UNSPECIFIED-CONTENT-TYPE", "1.3.6.1.4.1.21367.2017.3", "Unspecified Clinical Activity"
)
FORMAT_SCHEME = "1.3.6.1.4.1.19376.1.2.3"
# ITI TF-3 4.2.3.2.9 formatCode by mimeType: XDS-SD for PDF and text, else mimeTypeSufficient
FORMAT_BY_MIME = {
    "application/pdf": Code("urn:ihe:iti:xds-sd:pdf:2008", FORMAT_SCHEME, "ITI XDS-SD PDF"),
    "text/plain": Code("urn:ihe:iti:xds-sd:text:2008", FORMAT_SCHEME, "ITI XDS-SD TEXT"),
}
MIME_TYPE_SUFFICIENT = Code(
    "urn:ihe:iti:xds:2017:mimeTypeSufficient", FORMAT_SCHEME, "mimeType Sufficient"
)


class UsageError(ValueError):
    """A command-line value that cannot be used; exit code 2."""


def parse_code(text: str, what: str) -> Code:
    """``code^scheme^display`` (display optional)."""
    parts = text.split("^")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise UsageError(f"{what}: expected code^scheme[^display], got {text!r}")
    return Code(parts[0], parts[1], parts[2] if len(parts) > 2 else "")


def patient_cx(patient: str, config: Config) -> str:
    """A patient id as XDS needs it (CX ``ID^^^&OID&ISO``, ITI TF-3 4.2.3.2.16); a bare
    id is qualified with the configured affinity domain."""
    if "^^^" in patient:
        return patient
    return f"{patient}^^^&{config.registry.affinity_domain}&ISO"


def dtm_now() -> str:
    """ITI TF-3 Table 4.2.3.1.7-2: DTM in UTC, to the second."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


@dataclass(slots=True)
class UniqueIds:
    """OIDs under the installation root: <root>.<arc>.<microseconds since the epoch>,
    strictly increasing within one process so two ids never collide."""

    root: str
    last: int = 0

    def next(self, arc: int) -> str:
        self.last = max(self.last + 1, time.time_ns() // 1000)
        return f"{self.root}.{arc}.{self.last}"


def _print_errors(errors: Sequence[RegistryError], out: TextIO) -> None:
    for error in errors:
        severity = "warning" if not error.is_error else "error"
        location = f" [{error.location}]" if error.location else ""
        print(f"{severity}: {error.code}: {error.context}{location}", file=out)


def _fault_exit(fault: SoapFault, err: TextIO) -> int:
    print(f"SOAP fault: {fault}", file=err)
    return EXIT_USAGE


def _audit(
    record: Record | None,
    transaction: Transaction,
    url: str,
    outcome: EventOutcomeIndicator,
    description: str | None = None,
    **facts: Any,
) -> None:
    """The requester's audit record of ``transaction`` with ``url`` (``atna.requester``)."""
    if record is not None:
        record(requester_outcome(transaction, url, outcome, description, **facts))


def _audit_error(
    record: Record | None, transaction: Transaction, url: str, error: BaseException, **facts: Any
) -> None:
    outcome, description = error_outcome(error)
    _audit(record, transaction, url, outcome, description, **facts)


# --- xdsi patients add -------------------------------------------------------------------


@dataclass(frozen=True)
class ClientTls:
    """``--tls-cert/--tls-key/--tls-ca`` of a client command (ITI-19, client side); a
    value left out falls back to the node's ``[tls]`` configuration."""

    cert: Path | None = None
    key: Path | None = None
    ca: tuple[Path, ...] = ()


def client_ssl_context(
    config: Config,
    tls: ClientTls | None = None,
    record: Record | None = None,
    service: str | None = None,
) -> ssl.SSLContext | None:
    """The TLS context of a client command, or None when neither flags nor ``[tls]``
    ask for TLS (then the server URL decides: an https URL uses the system's CAs).
    Given ``record``, a failed node authentication with ``service`` (its URL) is
    audited as a Security Alert."""
    tls = tls or ClientTls()
    node = config.tls
    cert = tls.cert or (Path(node.cert) if node.cert else None)
    key = tls.key or (Path(node.key) if node.key else None)
    ca = tls.ca or tuple(Path(p) for p in (*node.ca, *node.trusted_certs))
    if cert is None and not tls.ca:
        return None
    try:
        context = client_context(cert, key, ca)
    except TlsConfigError as exc:
        raise UsageError(str(exc)) from exc
    scheme = (service or "https:").split(":", 1)[0]
    return reporting_context(context, _alert(config, record), scheme=scheme, service=service)


def _alert(config: Config, record: Record | None) -> OnTlsFailure | None:
    """ITI TF-2 3.20.7: a failed node authentication, recorded as this node's alert."""
    if record is None:
        return None

    def alert(failure: TlsFailure) -> None:
        reporter = Endpoint(
            config.device.name,
            network_access_point=local_address(failure.peer_host, failure.peer_port),
        )
        record(outgoing_authentication_alert(reporter, failure))

    return alert


def _tls_options(
    config: Config, tls: ClientTls | None, record: Record | None = None, url: str | None = None
) -> dict[str, ssl.SSLContext]:
    context = client_ssl_context(config, tls, record, url)
    return {"verify": context} if context is not None else {}


def patients_add(
    config: Config,
    patient: str,
    mllp: str | None,
    *,
    name: str,
    out: TextIO,
    err: TextIO,
    tls: ClientTls | None = None,
    record: Record | None = None,
) -> int:
    """Send one ITI-8 ADT^A01 and report the acknowledgement code."""
    host, port = (
        _host_port(mllp)
        if mllp
        else (
            _local_host(config.connection.mllp.host),
            config.connection.mllp.port,
        )
    )
    cx = patient_cx(patient, config)
    control_id = uuid.uuid4().hex[:20]
    facility = config.device.name.upper()
    message = build_adt_a01(
        cx,
        control_id=control_id,
        timestamp=dtm_now(),
        name=name,
        sending_application=SENDING_APPLICATION,
        sending_facility=facility,
    )
    # ITI TF-2 3.8.5.1.1: the source is MSH-3|MSH-4; the destination MSH-5|MSH-6, left
    # empty in the message, so the feed is named by its address
    feed = {
        "requester": Endpoint(
            f"{SENDING_APPLICATION}|{facility}", network_access_point=local_address(host, port)
        ),
        "responder": Endpoint(f"mllp://{host}:{port}", network_access_point=host),
        "patient_ids": (cx,),
        "hl7_message_control_id": control_id,
        "hl7_trigger_event": "A01",
    }
    url = f"mllp://{host}:{port}"
    try:
        reply = send_mllp(host, port, message, ssl=client_ssl_context(config, tls, record, url))
    except (MllpError, OSError) as exc:
        _audit_error(record, Transaction.ITI8, url, exc, **feed)
        print(f"cannot reach the patient feed at {host}:{port}: {exc}", file=err)
        return EXIT_USAGE
    ack = _ack_code(reply)
    # HL7 Table 0008: the enhanced-mode codes (CA/CE/CR) as their original-mode twins
    outcome = ACK_OUTCOME.get(f"A{ack[1:]}", EventOutcomeIndicator.SERIOUS_FAILURE)
    description = None if outcome is EventOutcomeIndicator.SUCCESS else f"MSA-1 {ack or '?'}"
    _audit(record, Transaction.ITI8, url, outcome, description, **feed)
    if ack in ("AA", "CA"):
        print(f"patient {cx} accepted ({ack})", file=out)
        return EXIT_OK
    print(f"patient {cx} not accepted ({ack}): {reply.decode('utf-8', 'replace')}", file=err)
    return EXIT_FAILURE


SENDING_APPLICATION = "XDSI-CLI"  # MSH-3 of the feed messages the command sends


def _ack_code(reply: bytes) -> str:
    for segment in reply.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            fields = segment.decode("utf-8", "replace").split(segment.decode()[3])
            return fields[1] if len(fields) > 1 else ""
    return ""


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--mllp: expected HOST:PORT, got {text!r}")
    return host, int(port)


def _local_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


# --- xdsi submit ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitOptions:
    patient: str
    class_code: Code = DEFAULT_CLASS_CODE
    type_code: Code = DEFAULT_TYPE_CODE
    format_code: Code | None = None  # None: by mime type
    confidentiality: Code = DEFAULT_CONFIDENTIALITY
    mime_type: str | None = None  # None: guessed from each file name
    title: str | None = None  # None: each file name


def build_submission(
    config: Config, files: Sequence[Path], options: SubmitOptions, ids: UniqueIds
) -> tuple[Submission, list[tuple[str, str, str]]]:
    """An ITI-41 Submission for ``files`` and, per file, (entry id, uniqueId, mime type)."""
    cx = patient_cx(options.patient, config)
    now = dtm_now()
    author = Author(institutions=(f"{config.device.name}^^^^^^^^^{config.oid_root}",))
    entries: list[DocumentEntry] = []
    documents: list[tuple[str, str, str]] = []
    for n, path in enumerate(files, 1):
        mime = options.mime_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        entry_id = f"Document{n:02d}"
        unique_id = ids.next(ARC_DOCUMENT)
        entries.append(
            DocumentEntry(
                entry_uuid=entry_id,
                unique_id=unique_id,
                patient_id=cx,
                mime_type=mime,
                title=options.title or path.name,
                class_code=options.class_code,
                type_code=options.type_code,
                format_code=options.format_code or FORMAT_BY_MIME.get(mime, MIME_TYPE_SUFFICIENT),
                healthcare_facility_type_code=DEFAULT_FACILITY_TYPE,
                practice_setting_code=DEFAULT_PRACTICE_SETTING,
                confidentiality_codes=(options.confidentiality,),
                authors=(author,),
                creation_time=now,
                language_code="en-US",
                source_patient_id=cx,
                source_patient_info=(f"PID-3|{cx}",),
            )
        )
        documents.append((entry_id, unique_id, mime))
    submission_set = SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=ids.next(ARC_SUBMISSION_SET),
        source_id=config.source_id,
        patient_id=cx,
        submission_time=now,
        content_type_code=DEFAULT_CONTENT_TYPE,
        authors=(author,),
        title="xdsi submit",
    )
    associations = tuple(
        Association(
            entry_uuid=f"HasMember{n:02d}",
            association_type=AssociationType.HAS_MEMBER,
            source=submission_set.entry_uuid,
            target=entry.entry_uuid,
            submission_set_status=SUBMISSION_SET_STATUS_ORIGINAL,
        )
        for n, entry in enumerate(entries, 1)
    )
    return Submission(submission_set, tuple(entries), associations=associations), documents


def submit(
    config: Config,
    files: Sequence[Path],
    options: SubmitOptions,
    repository_url: str | None,
    *,
    out: TextIO,
    err: TextIO,
    tls: ClientTls | None = None,
    record: Record | None = None,
) -> int:
    """ITI-41 Provide and Register (MTOM) of ``files``; prints the uniqueIds."""
    from soap.client import SoapClient

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    ids = UniqueIds(config.oid_root)
    submission, documents = build_submission(config, files, options, ids)
    content_ids = [f"{entry_id}.{uuid.uuid4().hex}@xdsi" for entry_id, _, _ in documents]
    body = provide_and_register_request(
        submission,
        [(entry_id, cid) for (entry_id, _, _), cid in zip(documents, content_ids, strict=True)],
    )
    attachments = [
        OutgoingAttachment(cid, mime, path, path.stat().st_size)
        for cid, (_, _, mime), path in zip(content_ids, documents, files, strict=True)
    ]
    endpoint = repository_url or config.repository_endpoint
    client = SoapClient(endpoint, **_tls_options(config, tls, record, endpoint))
    facts = submission_facts(submission)
    try:
        reply = client.call_sync(Action.ITI41, body, attachments=attachments, mtom=True)
    except SoapFault as fault:
        _audit_error(record, Transaction.ITI41, client.url, fault, **facts)
        return _fault_exit(fault, err)
    except (httpx.HTTPError, OSError) as exc:
        _audit_error(record, Transaction.ITI41, client.url, exc, **facts)
        print(f"cannot reach the repository at {client.url}: {exc}", file=err)
        return EXIT_USAGE
    response = parse_registry_response(reply.body)
    outcome = status_outcome(response.status)
    _audit(record, Transaction.ITI41, client.url, outcome, describe_errors(response), **facts)
    return _report_registry_response(response, submission, documents, out, err)


def _report_registry_response(
    response: RegistryResponse,
    submission: Submission,
    documents: Sequence[tuple[str, str, str]],
    out: TextIO,
    err: TextIO,
) -> int:
    _print_errors(response.errors, err)
    if not response.ok:
        print("submission failed", file=err)
        return EXIT_FAILURE
    assert submission.submission_set is not None
    print(f"submission set {submission.submission_set.unique_id}", file=out)
    for (_, unique_id, mime), entry in zip(documents, submission.document_entries, strict=True):
        print(f"document {unique_id} {mime} {entry.title}", file=out)
    return EXIT_OK


# --- xdsi query -------------------------------------------------------------------------------

STATUS_NAMES = {
    "approved": AvailabilityStatus.APPROVED,
    "deprecated": AvailabilityStatus.DEPRECATED,
}
COLUMNS = ("uniqueId", "title", "class", "created", "mime", "repository", "status")


def _quoted_list(values: Sequence[str]) -> str:
    """ITI TF-2 3.18.4.1.2.3.5: a multi-valued parameter is ('a','b')."""
    return "(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def find_documents_request(
    patient_cx_value: str, statuses: Sequence[str], class_codes: Sequence[Code]
) -> AdhocQueryRequest:
    parameters: dict[str, list[list[str]]] = {
        QueryParameter.DOC_ENTRY_PATIENT_ID: [["'" + patient_cx_value + "'"]],
        QueryParameter.DOC_ENTRY_STATUS: [[_quoted_list(statuses)]],
    }
    if class_codes:
        parameters[QueryParameter.DOC_ENTRY_CLASS_CODE] = [
            [_quoted_list([f"{c.code}^^{c.scheme}" for c in class_codes])]
        ]
    return AdhocQueryRequest(
        query_id=StoredQuery.FIND_DOCUMENTS,
        parameters=parameters,
        return_type=ReturnType.LEAF_CLASS,
        return_composed_objects=True,
    )


def _status_word(status: str | None) -> str:
    for word, value in STATUS_NAMES.items():
        if status == value:
            return word
    return status or ""


def _rows(entries: Sequence[DocumentEntry]) -> list[dict[str, str]]:
    return [
        {
            "uniqueId": entry.unique_id or "",
            "title": entry.title or "",
            "class": entry.class_code.code if entry.class_code else "",
            "created": entry.creation_time or "",
            "mime": entry.mime_type or "",
            "repository": entry.repository_unique_id or "",
            "status": _status_word(entry.availability_status),
            "entryUUID": entry.entry_uuid,
        }
        for entry in entries
    ]


def print_table(rows: Sequence[dict[str, str]], out: TextIO) -> None:
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS).rstrip(), file=out)
    for row in rows:
        print("  ".join(row[c].ljust(widths[c]) for c in COLUMNS).rstrip(), file=out)


def query(
    config: Config,
    patient: str,
    statuses: Sequence[str],
    class_codes: Sequence[Code],
    registry_url: str | None,
    *,
    as_json: bool,
    out: TextIO,
    err: TextIO,
    tls: ClientTls | None = None,
    record: Record | None = None,
) -> int:
    """ITI-18 FindDocuments for one patient; prints a table or JSON."""
    from soap.client import SoapClient

    status_values = [STATUS_NAMES.get(s.lower(), s) for s in statuses]
    unknown = [s for s in status_values if not s.startswith("urn:")]
    if unknown:
        raise UsageError(f"--status: expected approved, deprecated or a status URN: {unknown}")
    cx = patient_cx(patient, config)
    request = find_documents_request(cx, status_values, class_codes)
    endpoint = registry_url or config.registry_endpoint
    client = SoapClient(endpoint, **_tls_options(config, tls, record, endpoint))
    facts = query_facts(request, (cx,))
    try:
        reply = client.call_sync(Action.ITI18, adhoc_query_request(request), mtom=False)
    except SoapFault as fault:
        _audit_error(record, Transaction.ITI18, client.url, fault, **facts)
        return _fault_exit(fault, err)
    except (httpx.HTTPError, OSError) as exc:
        _audit_error(record, Transaction.ITI18, client.url, exc, **facts)
        print(f"cannot reach the registry at {client.url}: {exc}", file=err)
        return EXIT_USAGE
    response = parse_adhoc_query_response(reply.body)
    description = "; ".join(str(e.code) for e in response.errors) or None
    _audit(
        record, Transaction.ITI18, client.url, status_outcome(response.status), description, **facts
    )
    _print_errors(response.errors, err)
    if response.status == ResponseStatus.FAILURE:
        return EXIT_FAILURE
    entries = [o for o in response.objects if isinstance(o, DocumentEntry)]
    rows = _rows(entries)
    if as_json:
        json.dump(rows, out, indent=2)
        print(file=out)
    else:
        print_table(rows, out)
    return EXIT_OK


# --- xdsi retrieve -----------------------------------------------------------------------------


def retrieve(
    config: Config,
    unique_id: str,
    repository_id: str | None,
    repository_url: str | None,
    output: Path | None,
    *,
    out: TextIO,
    err: TextIO,
    tls: ClientTls | None = None,
    record: Record | None = None,
) -> int:
    """ITI-43 for one document; writes it to ``output`` (or standard output)."""
    from soap.client import SoapClient
    from soap.mtom import discard_attachments

    repository_unique_id = repository_id or config.repository.repository_unique_id
    request = RetrieveDocumentSetRequest((DocumentRequest(repository_unique_id, unique_id),))
    endpoint = repository_url or config.repository_endpoint
    client = SoapClient(endpoint, **_tls_options(config, tls, record, endpoint))
    # ITI TF-2 3.43.6.1.1: the documents asked for, with their repository
    asked = {"documents": (DocumentReference(unique_id, repository_unique_id),)}
    try:
        reply = client.call_sync(Action.ITI43, retrieve_document_set_request(request), mtom=True)
    except SoapFault as fault:
        _audit_error(record, Transaction.ITI43, client.url, fault, **asked)
        return _fault_exit(fault, err)
    except (httpx.HTTPError, OSError) as exc:
        _audit_error(record, Transaction.ITI43, client.url, exc, **asked)
        print(f"cannot reach the repository at {client.url}: {exc}", file=err)
        return EXIT_USAGE
    try:
        response = parse_retrieve_document_set_response(reply.body, reply.attachments)
        description = "; ".join(str(e.code) for e in response.errors) or None
        outcome = status_outcome(response.status)
        _audit(record, Transaction.ITI43, client.url, outcome, description, **asked)
        _print_errors(response.errors, err)
        if not response.documents:
            return EXIT_FAILURE
        document = response.documents[0]
        if output is None:
            with document.path.open("rb") as fh:
                sys.stdout.buffer.write(fh.read())
            sys.stdout.buffer.flush()
        else:
            output.write_bytes(document.path.read_bytes())
            print(
                f"document {document.document_unique_id} ({document.mime_type}, {document.size} bytes) -> {output}",
                file=out,
            )
        return EXIT_OK
    finally:
        discard_attachments(list(reply.attachments.values()))


__all__ = [
    "ClientTls",
    "client_ssl_context",
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "SubmitOptions",
    "UniqueIds",
    "UsageError",
    "build_submission",
    "find_documents_request",
    "parse_code",
    "patient_cx",
    "patients_add",
    "print_table",
    "query",
    "retrieve",
    "submit",
]
