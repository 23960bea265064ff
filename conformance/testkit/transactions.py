"""One executor per testplan transaction element, looked up by the element's name.

An executor sends what the plan describes to the system under test, logs what the
toolkit logs (ids assigned, reports, metadata sent, response) and returns the exchange;
the runner then applies the step's expectations.  Elements for actors or data this run
does not have raise ``NotRunnable`` with the precise reason.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from conformance.result import Check, Endpoints
from conformance.testkit.assertions import MissingData
from conformance.testkit.ebrim21 import to_ebrim30
from conformance.testkit.logs import RunLogs, SectionLog, StepLog
from conformance.testkit.metadata import prepare_submission, substitute
from conformance.testkit.plan import Report, TestStep, Transaction
from conformance.testkit.wire import Attachment, SoapClient, SoapReply, send_mllp
from ebxml.tags import LCM, RIM, XDSB
from ebxml.vocabulary import NS_LCM, NS_RIM, NS_XDSB, NS_XOP, Action, ResponseStatus

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)

# transaction element -> the IHE transaction it stands for
TRANSACTION_NAMES: dict[str, str] = {
    "PatientIdentityFeedTransaction": "ITI-8",
    "RegisterTransaction": "ITI-42",
    "ProvideAndRegisterTransaction": "ITI-41",
    "StoredQueryTransaction": "ITI-18",
    "RetrieveTransaction": "ITI-43",
    "ImagingDocSetRetrieveTransaction": "RAD-69",
    "ImgDetailTransaction": "RAD-68",
    "XmlDetailTransaction": "",
    "NullTransaction": "",
}


class NotRunnable(Exception):
    """The step needs data or an actor that is absent."""


class StepFailed(Exception):
    """The step could not be carried out (bad plan, missing file, unresolved id)."""


@dataclass
class StepContext:
    step: TestStep
    transaction: Transaction
    section_dir: Path
    test_dir: Path
    endpoints: Endpoints
    client: SoapClient
    logs: RunLogs
    section_log: SectionLog
    log: StepLog
    symbols: dict[str, str]
    patient_id: str | None  # the test's patient (ITI-8 feeds it; submissions carry it)
    alt_patient_id: str  # a patient the registry has never been fed
    new_uid: Callable[[], str]


@dataclass
class Exchange:
    request: bytes | None = None
    response: bytes | None = None
    body: etree._Element | None = None
    checks: list[Check] = field(default_factory=list)


def _file(ctx: StepContext, name: str) -> Path:
    path = ctx.section_dir / name
    if not path.is_file():
        raise StepFailed(f"{ctx.section_dir.name}/{name} is missing")
    return path


def _load(ctx: StepContext) -> etree._Element:
    if not ctx.transaction.metadata_file:
        raise StepFailed(f"{ctx.transaction.kind} without MetadataFile")
    path = _file(ctx, ctx.transaction.metadata_file)
    try:
        root = etree.parse(str(path), _PARSER).getroot()
    except etree.XMLSyntaxError as exc:
        raise StepFailed(f"{path.name}: {exc}") from exc
    return substitute(root, ctx.symbols)


def _url(value: str | None, what: str) -> str:
    if not value:
        raise NotRunnable(f"no {what} endpoint is configured")
    return value


def _report(ctx: StepContext, report: Report, sent: etree._Element | None) -> None:
    """Report name="..." section="InputMetadata|Result": the XPath's first value."""
    doc = sent if report.section == "InputMetadata" else ctx.log.result
    if doc is None:
        raise StepFailed(f"Report {report.name}: no {report.section} to read")
    found = doc.xpath(report.xpath)
    items = found if isinstance(found, list) else [found]
    if not items:
        raise StepFailed(f"Report {report.name}: {report.xpath} selects nothing")
    first = items[0]
    value = first if isinstance(first, str) else "".join(first.itertext())
    ctx.log.reports[report.name] = str(value).strip()


def _log_submission(ctx: StepContext, prepared_root: etree._Element, ids: dict) -> None:
    ctx.log.input_metadata = prepared_root
    for section, values in ids.items():
        for symbol, value in values.items():
            ctx.log.assign(section, symbol, value)
    # the toolkit also reports each assigned id as <symbol>_uid / <symbol>_uuid
    for symbol, value in ids["AssignedUids"].items():
        ctx.log.reports[f"{symbol}_uid"] = value
    for symbol, value in ids["AssignedUuids"].items():
        ctx.log.reports[f"{symbol}_uuid"] = value


def _submission(ctx: StepContext) -> etree._Element:
    """The MetadataFile as an lcm:SubmitObjectsRequest ready to send, logged."""
    root = to_ebrim30(_load(ctx))
    if root.tag != LCM.SubmitObjectsRequest:
        raise StepFailed(f"{ctx.transaction.metadata_file} is not a SubmitObjectsRequest")
    patient = None
    if not ctx.transaction.no_patient_id:
        patient = ctx.alt_patient_id if ctx.step.alt_patient_id else ctx.patient_id
    prepared = prepare_submission(
        root,
        assign_uuids=ctx.transaction.assign_uuids,
        assign_uids=ctx.transaction.assign_uids,
        patient_id=patient,
        new_uid=ctx.new_uid,
    )
    ids = {
        "AssignedUids": prepared.assigned_uids,
        "AssignedUuids": prepared.assigned_uuids,
        "AssignedPatientId": prepared.assigned_patient_ids,
    }
    _log_submission(ctx, prepared.element, ids)
    return prepared.element


def _finish(ctx: StepContext, request: bytes, reply: SoapReply, sent=None) -> Exchange:
    ctx.log.result = reply.body
    for report in ctx.transaction.reports:
        _report(ctx, report, sent)
    return Exchange(request, reply.raw, reply.body)


def register(ctx: StepContext) -> Exchange:
    """ITI-42 (ITI TF-2 3.42): the MetadataFile to the registry, simple SOAP."""
    url = _url(ctx.endpoints.registry_url, "registry")
    sent = _submission(ctx)
    request, reply = ctx.client.simple(url, Action.ITI42, sent)
    return _finish(ctx, request, reply, sent)


def provide_and_register(ctx: StepContext) -> Exchange:
    """ITI-41 (ITI TF-2 3.41): the metadata and each Document as an MTOM part."""
    url = _url(ctx.endpoints.repository_url, "repository")
    sent = _submission(ctx)
    request_elem = etree.Element(
        XDSB.ProvideAndRegisterDocumentSetRequest,
        nsmap={"xdsb": NS_XDSB, "lcm": NS_LCM, "rim": NS_RIM, "xop": NS_XOP},
    )
    request_elem.append(sent)
    mime_types = {e.get("id"): e.get("mimeType", "") for e in sent.iter(RIM.ExtrinsicObject)}
    uuid_of = ctx.log.ids["AssignedUuids"]
    uid_of = ctx.log.ids["AssignedUids"]
    parts = []
    for doc_id, name in ctx.transaction.documents:
        data = _document_file(ctx, name).read_bytes()
        sent_id = uuid_of.get(doc_id, doc_id)
        cid = f"doc{len(parts) + 1}.{uuid.uuid4().hex}@xdsi.testkit"
        document = etree.SubElement(request_elem, XDSB.Document, id=sent_id)
        etree.SubElement(document, f"{{{NS_XOP}}}Include", href=f"cid:{cid}")
        parts.append(Attachment(cid, mime_types.get(sent_id) or "application/octet-stream", data))
        if doc_id in uid_of:
            ctx.log.documents[uid_of[doc_id]] = data
    request, reply = ctx.client.mtom(url, Action.ITI41, request_elem, parts)
    return _finish(ctx, request, reply, sent)


def _document_file(ctx: StepContext, name: str) -> Path:
    """A Document file of the section; the subset left out per-section readmes, so a
    file missing there is taken from the test folder when it exists (see README)."""
    path = ctx.section_dir / name
    if path.is_file():
        return path
    fallback = ctx.test_dir / name
    if fallback.is_file():
        return fallback
    raise StepFailed(f"Document file {ctx.section_dir.name}/{name} is missing")


def stored_query(ctx: StepContext) -> Exchange:
    """ITI-18 (ITI TF-2 3.18): the MetadataFile is the AdhocQueryRequest."""
    url = _url(ctx.endpoints.registry_url, "registry")
    query = _load(ctx)
    request, reply = ctx.client.simple(url, Action.ITI18, query)
    return _finish(ctx, request, reply, query)


def retrieve(ctx: StepContext) -> Exchange:
    """ITI-43 (ITI TF-2 3.43): MTOM both ways; the content is compared with the
    ReferenceDocument and the mimeType with the ReferenceMetadata where the plan says."""
    url = _url(ctx.endpoints.repository_url, "repository")
    query = _load(ctx)
    request, reply = ctx.client.mtom(url, Action.ITI43, query, [])
    exchange = _finish(ctx, request, reply, query)
    returned = {
        (r.findtext(XDSB.DocumentUniqueId) or "").strip(): r
        for r in reply.body.iter(XDSB.DocumentResponse)
    }
    for uid_text, path_text in ctx.transaction.reference_documents:
        uid = substitute(etree.Element("v", v=uid_text), ctx.symbols).get("v", "")
        exchange.checks.append(_content_check(ctx, uid, path_text, returned.get(uid), reply))
    if ctx.transaction.reference_metadata:
        exchange.checks += _mime_type_checks(ctx, returned)
    return exchange


def _sent_document(ctx: StepContext, uid: str) -> bytes | None:
    for section in ctx.test_dir.iterdir():
        log = ctx.logs.find(section) if section.is_dir() else None
        for step in log.steps.values() if log else ():
            if uid in step.documents:
                return step.documents[uid]
    return None


def _content_check(ctx: StepContext, uid: str, path_text: str, response, reply: SoapReply) -> Check:
    source = f"NIST {ctx.test_dir.name}/{ctx.section_dir.name} ReferenceDocument"
    if response is None:
        return Check(f"document {uid} returned", False, uid, "not in the response", source)
    got = reply.include_bytes(response.find(XDSB.Document))
    path = ctx.section_dir / path_text
    if path.is_file():
        want, what = path.read_bytes(), path_text
    else:
        # the subset does not hold every reference file: compare with what was sent
        want, what = _sent_document(ctx, uid), f"the document sent ({path_text} absent)"
        if want is None:
            raise StepFailed(f"ReferenceDocument {path_text} is missing and {uid} was not sent")
    return Check(
        f"retrieved content equals {what}",
        got == want,
        f"{len(want)} bytes",
        f"{len(got)} bytes",
        source,
    )


def _mime_type_checks(ctx: StepContext, returned: dict) -> list[Check]:
    testdir, step_id = ctx.transaction.reference_metadata or ("", "")
    reference = ctx.logs.step((ctx.section_dir / testdir).resolve(), step_id).result
    checks = []
    for entry in reference.iter(RIM.ExtrinsicObject) if reference is not None else ():
        uids = [
            i.get("value", "")
            for i in entry.iter(RIM.ExternalIdentifier)
            if i.get("value", "") in returned
        ]
        for uid in uids:
            got = (returned[uid].findtext(XDSB.mimeType) or "").strip()
            want = entry.get("mimeType", "")
            checks.append(
                Check(
                    f"mimeType of {uid} as registered",
                    got == want,
                    want,
                    got,
                    "ITI TF-2 3.43.4.2.2",
                )
            )
    return checks


def patient_identity_feed(ctx: StepContext) -> Exchange:
    """ITI-8 (ITI TF-2 3.8): an HL7 v2.3.1 ADT^A01 for the test's patient over MLLP."""
    if ctx.endpoints.mllp is None:
        raise NotRunnable("no MLLP endpoint for the Patient Identity Feed is configured")
    if not ctx.patient_id:
        raise NotRunnable("no affinity domain is configured to make a patient id in")
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    control = uuid.uuid4().hex[:20]
    segments = [
        f"MSH|^~\\&|XDSI-TESTKIT|XDSI|XDSI|XDSI|{stamp}||ADT^A01|{control}|P|2.3.1",
        f"EVN|A01|{stamp}",
        f"PID|||{ctx.patient_id}||Testkit^Patient||19700101|F",
        "PV1||O",
    ]
    message = ("\r".join(segments) + "\r").encode()
    reply = send_mllp(ctx.endpoints.mllp, message)
    code = next(
        (s.split(b"|")[1].decode() for s in reply.split(b"\r") if s.startswith(b"MSA|")), ""
    )
    ctx.log.reports["$patientid$"] = ctx.patient_id
    # ITI-8 ACK: MSA-1 AA (or CA) is Success; the expectation reads it as a status
    result = etree.Element("ACK", status=_ACK_STATUS.get(code, code))
    ctx.log.result = result
    return Exchange(message, reply, result)


# HL7 v2.3.1 2.13.1 MSA-1 acknowledgment code -> the status ExpectedStatus compares
_ACK_STATUS = {
    "AA": ResponseStatus.SUCCESS,
    "CA": ResponseStatus.SUCCESS,
    "AE": ResponseStatus.FAILURE,
    "AR": ResponseStatus.FAILURE,
    "CE": ResponseStatus.FAILURE,
    "CR": ResponseStatus.FAILURE,
}


def no_exchange(ctx: StepContext) -> Exchange:
    """NullTransaction, XmlDetailTransaction: nothing is sent; the Assertions run."""
    return Exchange()


def imaging_retrieve(ctx: StepContext) -> Exchange:
    """RAD-69: needs the ids_2018 study loaded into the Imaging Document Source."""
    query = _load(ctx)
    studies = sorted(
        {s.get("studyInstanceUID", "") for s in query.iter() if s.get("studyInstanceUID")}
    )
    raise NotRunnable(
        "RAD-69 retrieve of study "
        + ", ".join(studies)
        + " needs the Connectathon image set ids_2018.zip loaded into the Imaging "
        "Document Source; it is not present"
        + ("" if ctx.endpoints.imaging_source_url else " (and no imaging source endpoint is set)")
    )


def imaging_detail(ctx: StepContext) -> Exchange:
    """ImgDetailTransaction: every Assert reads a simulator's received RAD-68."""
    return Exchange()


EXECUTORS: dict[str, Callable[[StepContext], Exchange]] = {
    "PatientIdentityFeedTransaction": patient_identity_feed,
    "RegisterTransaction": register,
    "ProvideAndRegisterTransaction": provide_and_register,
    "StoredQueryTransaction": stored_query,
    "RetrieveTransaction": retrieve,
    "NullTransaction": no_exchange,
    "XmlDetailTransaction": no_exchange,
    "ImagingDocSetRetrieveTransaction": imaging_retrieve,
    "ImgDetailTransaction": imaging_detail,
}


__all__ = [
    "EXECUTORS",
    "TRANSACTION_NAMES",
    "Exchange",
    "MissingData",
    "NotRunnable",
    "StepContext",
    "StepFailed",
]
