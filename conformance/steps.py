"""One executor per step kind, looked up in :data:`EXECUTORS` by the step's ``kind``.

An executor builds the request from the step's raw template (placeholders filled,
``%{var}`` variables substituted, ``edits`` applied with lxml) and sends it; it
returns the :class:`Exchange`.  Judging the answer is ``assertions``' job.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from lxml import etree

from conformance.plan import ROW_VARIABLE, PlanError, Step
from conformance.result import Endpoints
from conformance.templates import Scope, TemplateError, render
from conformance.transport import NS, Exchange, SoapTransport, send_mllp
from ebxml.vocabulary import StoredQuery

# the IHE transaction each step kind carries, for the report
TRANSACTIONS: dict[str, str] = {
    "feed": "ITI-8",
    "submit": "ITI-41",
    "register": "ITI-42",
    "query": "ITI-18",
    "retrieve": "ITI-43",
    "rad69": "RAD-69",
    "soap": "SOAP",
    "wait": "-",
    "feed_v3": "ITI-44",
    "register_on_demand": "ITI-61",
    "remove": "ITI-62",
    "remove_documents": "ITI-86",
    "multi_query": "ITI-51",
    "update": "ITI-57",
    "stow": "STOW-RS",
}
_ENDPOINT_BY_KIND = {
    "submit": "repository",
    "retrieve": "repository",
    "register": "registry",
    "query": "registry",
    "rad69": "imaging_source",
    "feed_v3": "registry",
    "register_on_demand": "registry",
    "remove": "registry",
    "remove_documents": "repository",
    "multi_query": "registry",
    "update": "registry",
}
# ITI TF-2 V.3.2: ITI-41, ITI-43 and RAD-69 are MTOM/XOP; ITI-18 and ITI-42 simple SOAP
DICOMWEB_PATH = "/dicomweb"  # where xdsi serves DICOMweb, the default for others too
_MTOM_KINDS = frozenset({"submit", "retrieve", "rad69"})
# stored query names as ITI TF-2 3.18.4.1.2.3.7 spells them -> their ids
STORED_QUERIES: dict[str, str] = {
    "".join(word.capitalize() for word in member.name.split("_")): member.value
    for member in StoredQuery
}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=False)


class StepError(Exception):
    """The step could not be built from the plan (bad template, edit or placeholder)."""


@dataclass(slots=True)
class StepContext:
    scope: Scope
    endpoints: Endpoints
    transport: SoapTransport


# --- building the request ------------------------------------------------------------


def substitute_vars(text: str, variables: Mapping[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise StepError(f"template variable %{{{key}}} not set by the step")
        return variables[key]

    return ROW_VARIABLE.sub(fill, text)


def build_xml(step: Step, scope: Scope, variables: Mapping[str, str] | None = None) -> bytes:
    """The step's template with variables, placeholders and edits applied."""
    if step.template is None:
        raise StepError(f"step {step.name!r} has no template")
    text = step.template.read_text(encoding="utf-8")
    text = substitute_vars(text, {**step.vars, **(variables or {})})
    try:
        text = render(text, scope, escape=True)
    except TemplateError as exc:
        raise StepError(str(exc)) from exc
    if not step.edits:
        return text.encode("utf-8")
    try:
        root = etree.fromstring(text.encode("utf-8"), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise StepError(f"template {step.template.name} is not XML: {exc}") from exc
    for edit in step.edits:
        apply_edit(root, edit, scope)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _select(root: etree._Element, xpath: str) -> list[Any]:
    try:
        found = root.xpath(xpath, namespaces=NS)
    except etree.XPathError as exc:
        raise StepError(f"edit XPath {xpath!r}: {exc}") from exc
    if not isinstance(found, list) or not found:
        raise StepError(f"edit XPath {xpath!r} matches nothing in the template")
    return found


def _remove(root: etree._Element, edit: Mapping[str, Any], _scope: Scope) -> None:
    for node in _select(root, edit["remove"]):
        if isinstance(node, etree._Element):
            parent = node.getparent()
            if parent is None:
                raise StepError("an edit cannot remove the root element")
            parent.remove(node)
        elif getattr(node, "is_attribute", False):
            del node.getparent().attrib[node.attrname]
        else:
            raise StepError(f"edit remove {edit['remove']!r}: not an element or attribute")


def _set(root: etree._Element, edit: Mapping[str, Any], scope: Scope) -> None:
    """Set text (of elements), an attribute's value (``.../@name``), or with
    ``attribute = "name"`` an attribute of the matched elements (added if absent)."""
    value = _fill(str(edit.get("value", "")), scope)
    for node in _select(root, edit["set"]):
        if getattr(node, "is_attribute", False):
            node.getparent().set(node.attrname, value)
        elif "attribute" in edit:
            node.set(edit["attribute"], value)
        else:
            node.text = value


def _append(root: etree._Element, edit: Mapping[str, Any], scope: Scope) -> None:
    """Append an XML fragment (prefixes of the NS table) to each matched element."""
    declarations = " ".join(f'xmlns:{p}="{uri}"' for p, uri in NS.items())
    fragment = render(str(edit["xml"]), scope, escape=True)
    try:
        wrapper = etree.fromstring(f"<wrap {declarations}>{fragment}</wrap>".encode(), _PARSER)
    except etree.XMLSyntaxError as exc:
        raise StepError(f"edit append: fragment is not XML: {exc}") from exc
    for node in _select(root, edit["append"]):
        for child in wrapper:
            node.append(_copy(child))


def _copy(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


def _fill(value: str, scope: Scope) -> str:
    try:
        return render(value, scope)
    except TemplateError as exc:
        raise StepError(str(exc)) from exc


EDITS: dict[str, Callable[[etree._Element, Mapping[str, Any], Scope], None]] = {
    "remove": _remove,
    "set": _set,
    "append": _append,
}


def apply_edit(root: etree._Element, edit: Mapping[str, Any], scope: Scope) -> None:
    for kind, edit_fn in EDITS.items():
        if kind in edit:
            edit_fn(root, edit, scope)
            return
    raise PlanError(f"unknown edit {edit}")


def _action_of(envelope: bytes) -> str:
    """The wsa:Action of an envelope, for the HTTP Content-Type action parameter."""
    try:
        root = etree.fromstring(envelope, _PARSER)
    except etree.XMLSyntaxError:
        return ""
    return (root.findtext(".//wsa:Action", "", NS) or "").strip()


def _url(ctx: StepContext, step: Step) -> str:
    endpoint = step.options.get("endpoint") or _ENDPOINT_BY_KIND.get(step.kind)
    urls = {
        "registry": ctx.endpoints.registry_url,
        "repository": ctx.endpoints.repository_url,
        "imaging_source": ctx.endpoints.imaging_source_url,
    }
    if endpoint not in urls:
        raise StepError(
            f"step {step.name!r}: endpoint must be registry, repository or imaging_source"
        )
    url = urls[endpoint]
    if not url:
        raise StepError(f"no {endpoint} URL given")
    return url


def _post(
    ctx: StepContext, step: Step, envelope: bytes, parts: list[tuple[str, str, bytes]]
) -> Exchange:
    return ctx.transport.post(
        _url(ctx, step),
        envelope,
        action=_fill(step.options.get("action", ""), ctx.scope) or _action_of(envelope),
        mtom=bool(step.options.get("mtom", step.kind in _MTOM_KINDS)),
        parts=parts,
        content_type=step.options.get("content_type"),
    )


# --- the executors ----------------------------------------------------------------------


def run_feed(step: Step, ctx: StepContext) -> Exchange:
    """ITI-8: an HL7 v2 message from the template, one segment per line, over MLLP."""
    if ctx.endpoints.mllp is None:
        raise StepError("no MLLP endpoint given (--mllp HOST:PORT)")
    variables = {"patient": "main", "event": "A01", **step.vars}
    assert step.template is not None
    text = substitute_vars(step.template.read_text(encoding="utf-8"), variables)
    try:
        text = render(text, ctx.scope)
    except TemplateError as exc:
        raise StepError(str(exc)) from exc
    # HL7 v2.3.1 2.7: segments end with CR
    message = "\r".join(line for line in text.splitlines() if line.strip()) + "\r"
    host, port = ctx.endpoints.mllp
    return send_mllp(host, port, message.encode("utf-8"))


def run_submit(step: Step, ctx: StepContext) -> Exchange:
    """ITI-41: the template as MTOM root, each attached document as a MIME part."""
    envelope = build_xml(step, ctx.scope)
    names = step.attach
    if names is None:  # default: every document the template points to
        text = step.template.read_text(encoding="utf-8") if step.template else ""
        names = tuple(dict.fromkeys(re.findall(r"\{\{\s*content_id:([^}\s]+)\s*\}\}", text)))
    parts = []
    for name in names:
        document = ctx.scope.document(name)
        parts.append((ctx.scope.content_id(name), document.mime_type, document.content))
    return _post(ctx, step, envelope, parts)


def run_soap(step: Step, ctx: StepContext) -> Exchange:
    """ITI-42, or any raw SOAP message (faults, WS-Addressing), from the template."""
    return _post(ctx, step, build_xml(step, ctx.scope), [])


def query_slots(step: Step) -> str:
    """rim:Slot elements of the AdhocQuery from ``params`` (name -> value or list of
    values) and ``slots`` (a list of {name, values}, for repeated parameters)."""
    pairs: list[tuple[str, list[str]]] = []
    for name, value in step.options.get("params", {}).items():
        pairs.append((name, value if isinstance(value, list) else [value]))
    for slot in step.options.get("slots", ()):
        pairs.append((slot["name"], list(slot["values"])))
    # ebRS 3.0 4.3.1: a parameter is a Slot; each value one Value element
    return "\n".join(
        f'        <rim:Slot name="{xml_escape(name)}"><rim:ValueList>'
        + "".join(f"<rim:Value>{xml_escape(str(v))}</rim:Value>" for v in values)
        + "</rim:ValueList></rim:Slot>"
        for name, values in pairs
    )


def run_query(step: Step, ctx: StepContext) -> Exchange:
    """ITI-18: a template of its own, or the generic one filled with the stored query
    id, returnType and parameters of the step."""
    query = step.options.get("stored_query", "FindDocuments")
    variables = {
        "query_id": STORED_QUERIES.get(query, query),
        "return_type": step.options.get("return_type", "LeafClass"),
        "slots": query_slots(step),
    }
    return _post(ctx, step, build_xml(step, ctx.scope, variables), [])


def document_requests(step: Step) -> str:
    """xdsb:DocumentRequest elements, one per ``requests`` item ({uid, repository, home});
    ITI-43 and ITI-86 name documents the same way (ITI TF-2 3.43.4.1.2, RMD 3.86.4.1.2)."""
    lines = []
    for request in step.options.get("requests", ()):
        repository = request.get("repository", "{{repository_id}}")
        home = request.get("home")
        lines.append(
            "      <xdsb:DocumentRequest>\n"
            + (
                f"        <xdsb:HomeCommunityId>{xml_escape(home)}</xdsb:HomeCommunityId>\n"
                if home
                else ""
            )
            + f"        <xdsb:RepositoryUniqueId>{xml_escape(repository)}</xdsb:RepositoryUniqueId>\n"
            + f"        <xdsb:DocumentUniqueId>{xml_escape(request['uid'])}</xdsb:DocumentUniqueId>\n"
            + "      </xdsb:DocumentRequest>"
        )
    return "\n".join(lines)


def run_retrieve(step: Step, ctx: StepContext) -> Exchange:
    """ITI-43: one DocumentRequest per ``requests`` item ({uid, repository, home})."""
    envelope = build_xml(step, ctx.scope, {"requests": document_requests(step)})
    return _post(ctx, step, envelope, [])


def run_remove_documents(step: Step, ctx: StepContext) -> Exchange:
    """ITI-86: an rmd:RemoveDocumentsRequest, one DocumentRequest per ``requests`` item."""
    envelope = build_xml(step, ctx.scope, {"requests": document_requests(step)})
    return _post(ctx, step, envelope, [])


def run_remove(step: Step, ctx: StepContext) -> Exchange:
    """ITI-62: an lcm:RemoveObjectsRequest whose ObjectRefList names ``objects`` (entryUUIDs,
    usually ``{{ref:...}}`` of an earlier query; ITI TF-2 3.62.4.1.2)."""
    refs = "\n".join(
        f'        <rim:ObjectRef id="{xml_escape(str(ident))}"/>'
        for ident in step.options.get("objects", ())
    )
    return _post(ctx, step, build_xml(step, ctx.scope, {"objects": refs}), [])


def run_feed_v3(step: Step, ctx: StepContext) -> Exchange:
    """ITI-44: an HL7 V3 interaction in a SOAP envelope (ITI TF-2 3.44.5); variables
    ``interaction`` (default PRPA_IN201301UV02, its trigger event derived from it) and
    ``patient`` (default main)."""
    interaction = step.vars.get("interaction", "PRPA_IN201301UV02")
    variables = {
        "interaction": interaction,
        "trigger": interaction.replace("_IN", "_TE", 1),
        "patient": step.vars.get("patient", "main"),
    }
    return _post(ctx, step, build_xml(step, ctx.scope, variables), [])


def _rad69_request(request: Mapping[str, Any], scope: Scope) -> tuple[str, str, str, str]:
    """(study, series, SOP instance, repositoryUniqueId) of one ``requests`` item: an
    ``instance`` a stow step posted, or a ``uid`` (with ``study``/``series``, default
    the posted study and its first series)."""
    repository = str(request.get("repository", "{{imaging_source_id}}"))
    if "instance" in request:
        name = str(request["instance"])
        if name not in scope.posted:
            raise StepError(f"no instance {name!r} was posted by an earlier stow step")
        posted = scope.posted[name]
        study, series, uid = (
            posted.study_instance_uid,
            posted.series_instance_uid,
            posted.sop_instance_uid,
        )
    else:
        study = str(request.get("study", "{{uid:study}}"))
        series = str(request.get("series", "{{uid:series1}}"))
        uid = str(request["uid"])
    return study, series, uid, repository


def study_requests(step: Step, scope: Scope) -> str:
    """iherad:StudyRequest / SeriesRequest / xdsb:DocumentRequest elements (RAD TF-3
    4.69.4.1.2) for ``requests``: a list of items, or ``"posted"`` for every instance
    the case's stow steps sent."""
    requests = step.options.get("requests", "posted")
    if requests == "posted":
        requests = [{"instance": name} for name in scope.posted]
    tree: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for request in requests:
        study, series, uid, repository = _rad69_request(request, scope)
        tree.setdefault(study, {}).setdefault(series, []).append((uid, repository))
    return "\n".join(
        f'      <iherad:StudyRequest studyInstanceUID="{xml_escape(study)}">\n'
        + "\n".join(
            f'        <iherad:SeriesRequest seriesInstanceUID="{xml_escape(series)}">\n'
            + "\n".join(
                "          <xdsb:DocumentRequest>"
                f"<xdsb:RepositoryUniqueId>{xml_escape(repository)}</xdsb:RepositoryUniqueId>"
                f"<xdsb:DocumentUniqueId>{xml_escape(uid)}</xdsb:DocumentUniqueId>"
                "</xdsb:DocumentRequest>"
                for uid, repository in documents
            )
            + "\n        </iherad:SeriesRequest>"
            for series, documents in by_series.items()
        )
        + "\n      </iherad:StudyRequest>"
        for study, by_series in tree.items()
    )


def run_rad69(step: Step, ctx: StepContext) -> Exchange:
    """RAD-69: one DocumentRequest per ``requests`` item, grouped by study and series."""
    envelope = build_xml(step, ctx.scope, {"studies": study_requests(step, ctx.scope)})
    return _post(ctx, step, envelope, [])


def dicomweb_root(endpoints: Endpoints) -> str:
    """The DICOMweb root: as given, else ``/dicomweb`` on the imaging source's origin."""
    if endpoints.dicomweb_url:
        return endpoints.dicomweb_url.rstrip("/")
    if not endpoints.imaging_source_url:
        raise StepError("no imaging source URL given (--imaging-source)")
    parts = urlsplit(endpoints.imaging_source_url)
    return f"{parts.scheme}://{parts.netloc}{DICOMWEB_PATH}"


def run_stow(step: Step, ctx: StepContext) -> Exchange:
    """STOW-RS (PS3.18 10.5) of a new study of the case's ``patient`` (default main):
    ``series`` lists the instance count of each series.  The posted instances are kept
    in the scope for RAD-69 steps and the ``instances`` expectation."""
    from conformance.dicom import make_study, stow_request

    try:
        names = make_study(
            ctx.scope, step.options.get("series", [2, 1]), step.options.get("patient", "main")
        )
    except TemplateError as exc:
        raise StepError(str(exc)) from exc
    content_type, body = stow_request([ctx.scope.posted[name] for name in names])
    return ctx.transport.post_raw(f"{dicomweb_root(ctx.endpoints)}/studies", body, content_type)


def run_wait(step: Step, _ctx: StepContext) -> Exchange:
    time.sleep(float(step.options.get("seconds", 1)))
    return Exchange(b"")


Executor = Callable[[Step, StepContext], Exchange]

EXECUTORS: dict[str, Executor] = {
    "feed": run_feed,
    "submit": run_submit,
    "register": run_soap,
    "query": run_query,
    "retrieve": run_retrieve,
    "rad69": run_rad69,
    "soap": run_soap,
    "wait": run_wait,
    "feed_v3": run_feed_v3,
    "register_on_demand": run_soap,
    "remove": run_remove,
    "remove_documents": run_remove_documents,
    "multi_query": run_query,
    "update": run_soap,
    "stow": run_stow,
}


def execute(step: Step, ctx: StepContext) -> Exchange:
    return EXECUTORS[step.kind](step, ctx)


__all__ = [
    "EXECUTORS",
    "STORED_QUERIES",
    "TRANSACTIONS",
    "StepContext",
    "StepError",
    "apply_edit",
    "build_xml",
    "dicomweb_root",
    "document_requests",
    "execute",
    "query_slots",
    "study_requests",
    "substitute_vars",
]
