"""Expectations and assertions of a step, each judged into one :class:`Check`.

``expect`` keys are looked up in :data:`EXPECTATIONS` (one function each); XPath
assertions in :data:`XPATH_ASSERTIONS`.  A function gets the exchange and what the plan
expects (already rendered) and returns its checks; nothing here raises for a wrong
answer - a wrong answer is a failed check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lxml import etree

from conformance.plan import Assertion
from conformance.result import Check
from conformance.templates import Document
from conformance.transport import (
    NS,
    Exchange,
    ack_code,
    ack_code_v3,
    ack_details_v3,
    resolve_document,
)

# ebRS 3.0 / ITI TF-3 4.2.4.2 response status URNs end in these names
STATUS_SOURCE = "ITI TF-3 4.2.4.2"
ERROR_SOURCE = "ITI TF-3 Table 4.2.4.1-2"
FAULT_SOURCE = "SOAP 1.2 Part 1 5.4; WS-Addressing 1.0 SOAP Binding 6"
ACK_SOURCE = "ITI TF-2x C.2.3"
ACK_V3_SOURCE = "ITI TF-2 3.44.4.2.3; HL7 Table 0357"
RETRIEVE_SOURCE = "ITI TF-2 3.43.4.2.3"
_ERROR_SEVERITY = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"


def _fmt(values: Sequence[str] | set[str]) -> str:
    return ", ".join(sorted(values)) or "(none)"


def registry_errors(exchange: Exchange) -> list[tuple[str, bool]]:
    """(errorCode, is_error) of every rs:RegistryError of the response."""
    if exchange.envelope is None:
        return []
    return [
        (e.get("errorCode", ""), e.get("severity", _ERROR_SEVERITY).endswith("Error"))
        for e in exchange.envelope.iter(f"{{{NS['rs']}}}RegistryError")
    ]


def response_status(exchange: Exchange) -> str:
    """The short name of the response's status attribute ('' when there is none)."""
    body = exchange.body
    if body is None:
        return ""
    status = body.get("status")
    if status is None:
        found = body.find(".//rs:RegistryResponse", NS)
        status = found.get("status") if found is not None else None
    return (status or "").rsplit(":", 1)[-1]


def _status(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    """``expected`` is one status, or a list of the statuses a conformant actor may give."""
    allowed = expected if isinstance(expected, list) else [expected]
    actual = response_status(exchange) or _fault_summary(exchange) or "(no status)"
    return [
        Check("response status", actual in allowed, " or ".join(allowed), actual, STATUS_SOURCE)
    ]


def _codes(exchange: Exchange, errors: bool) -> list[str]:
    return [code for code, is_error in registry_errors(exchange) if is_error == errors]


def _exact(errors: bool, what: str) -> Callable[..., list[Check]]:
    def check(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
        actual = set(_codes(exchange, errors))
        return [
            Check(
                f"{what} codes are exactly",
                actual == set(expected),
                _fmt(expected),
                _fmt(actual),
                ERROR_SOURCE,
            )
        ]

    return check


def _contain(errors: bool, what: str) -> Callable[..., list[Check]]:
    def check(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
        actual = set(_codes(exchange, errors))
        return [
            Check(f"{what} {code} reported", code in actual, code, _fmt(actual), ERROR_SOURCE)
            for code in expected
        ]

    return check


def _any(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    """At least one of the codes (where the standard lets either actor report it)."""
    actual = set(_codes(exchange, True))
    found = actual & set(expected)
    return [
        Check(
            "one of the error codes reported",
            bool(found),
            " or ".join(expected),
            _fmt(actual),
            ERROR_SOURCE,
        )
    ]


def _absent(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    actual = {code for code, _ in registry_errors(exchange)}
    return [
        Check(f"{code} not reported", code not in actual, f"no {code}", _fmt(actual), ERROR_SOURCE)
        for code in expected
    ]


def _fault_summary(exchange: Exchange) -> str:
    body = exchange.body
    if body is None or etree.QName(body).localname != "Fault":
        return ""
    code, subcode = fault_codes(body)
    return f"Fault {code}" + (f"/{subcode}" if subcode else "")


def fault_codes(fault: etree._Element) -> tuple[str, str]:
    """(code, subcode) of a SOAP 1.2 Fault as ``localname`` and ``prefix:localname``
    with the prefixes of :data:`NS` (SOAP 1.1 faultcode is returned as code)."""
    values = fault.findall("soap:Code//soap:Value", NS)
    if not values:
        faultcode = fault.findtext("faultcode") or ""
        return faultcode.rsplit(":", 1)[-1], ""
    names = []
    for value in values:
        text = (value.text or "").strip()
        prefix, _, local = text.rpartition(":")
        namespace = value.nsmap.get(prefix or None, "")
        ours = next((p for p, uri in NS.items() if uri == namespace), prefix)
        names.append(f"{ours}:{local}" if ours else local)
    code = names[0].rsplit(":", 1)[-1]
    return code, names[1] if len(names) > 1 else ""


def _fault(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    body = exchange.body
    is_fault = body is not None and etree.QName(body).localname == "Fault"
    seen = response_status(exchange) or f"HTTP {exchange.http_status}, no fault"
    checks = [
        Check(
            "SOAP fault returned", is_fault, "Fault", _fault_summary(exchange) or seen, FAULT_SOURCE
        )
    ]
    if not is_fault:
        return checks
    assert body is not None
    code, subcode = fault_codes(body)
    checks.append(
        Check("fault code", code == expected["code"], expected["code"], code, FAULT_SOURCE)
    )
    if "subcode" in expected:
        want = expected["subcode"]
        ok = subcode == want or (":" not in want and subcode.rsplit(":", 1)[-1] == want)
        checks.append(Check("fault subcode", ok, want, subcode or "(none)", FAULT_SOURCE))
    return checks


def _ack(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    """MSA-1 of an HL7 v2 ACK, or acknowledgement/typeCode of an HL7 V3 MCCI_IN000002UV01."""
    if exchange.hl7 is None and exchange.envelope is not None:
        actual = (
            ack_code_v3(exchange.envelope) or _fault_summary(exchange) or "(no acknowledgement)"
        )
        return [
            Check(
                "HL7 V3 acknowledgement typeCode",
                actual == expected,
                expected,
                actual,
                ACK_V3_SOURCE,
            )
        ]
    actual = ack_code(exchange.hl7 or b"") or "(no MSA)"
    return [
        Check("HL7 acknowledgement code (MSA-1)", actual == expected, expected, actual, ACK_SOURCE)
    ]


def _ack_details(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    """Each HL7 Table 0357 code is in an acknowledgementDetail of the V3 acknowledgement."""
    actual = set(ack_details_v3(exchange.envelope))
    return [
        Check(
            f"acknowledgementDetail code {code}",
            str(code) in actual,
            str(code),
            _fmt(actual),
            ACK_V3_SOURCE,
        )
        for code in expected
    ]


def _http_status(exchange: Exchange, expected: Any, _docs: Mapping[str, Document]) -> list[Check]:
    actual = str(exchange.http_status)
    return [
        Check("HTTP status", actual == str(expected), str(expected), actual, "SOAP 1.2 Part 2 7.5")
    ]


def retrieved_documents(exchange: Exchange) -> dict[str, tuple[bytes | None, str]]:
    """DocumentUniqueId -> (bytes, mimeType) of every DocumentResponse."""
    found: dict[str, tuple[bytes | None, str]] = {}
    if exchange.envelope is None:
        return found
    for response in exchange.envelope.iter(f"{{{NS['xdsb']}}}DocumentResponse"):
        uid = (response.findtext("xdsb:DocumentUniqueId", "", NS) or "").strip()
        document = response.find("xdsb:Document", NS)
        content = resolve_document(exchange, document) if document is not None else None
        found[uid] = (content, (response.findtext("xdsb:mimeType", "", NS) or "").strip())
    return found


def _documents(exchange: Exchange, expected: Any, docs: Mapping[str, Document]) -> list[Check]:
    """Each ``{uid, document}``: returned, byte for byte, with the same SHA-1 and mime type."""
    import hashlib

    got = retrieved_documents(exchange)
    checks: list[Check] = []
    for item in expected:
        uid, doc = item["uid"], docs[item["document"]]
        content, mime = got.get(uid, (None, ""))
        checks.append(
            Check(
                f"document {uid} returned",
                content is not None,
                "a Document",
                "missing" if content is None else f"{len(content)} bytes",
                RETRIEVE_SOURCE,
            )
        )
        if content is None:
            continue
        sha1 = hashlib.sha1(content).hexdigest()
        checks.append(
            Check(
                f"document {uid} SHA-1 equals the submitted",
                sha1 == doc.sha1,
                doc.sha1,
                sha1,
                "ITI TF-3 4.2.3.2.18",
            )
        )
        checks.append(
            Check(
                f"document {uid} bytes equal the submitted",
                content == doc.content,
                f"{len(doc.content)} bytes",
                f"{len(content)} bytes",
                RETRIEVE_SOURCE,
            )
        )
        checks.append(
            Check(
                f"document {uid} mimeType",
                mime == doc.mime_type,
                doc.mime_type,
                mime,
                RETRIEVE_SOURCE,
            )
        )
    return checks


Expectation = Callable[[Exchange, Any, Mapping[str, Document]], list[Check]]

# expect key -> its judge; the order is the order checks are reported in
EXPECTATIONS: dict[str, Expectation] = {
    "http_status": _http_status,
    "fault": _fault,
    "ack": _ack,
    "ack_details": _ack_details,
    "status": _status,
    "errors": _exact(True, "error"),
    "errors_contain": _contain(True, "error"),
    "errors_any": _any,
    "errors_absent": _absent,
    "warnings": _exact(False, "warning"),
    "warnings_contain": _contain(False, "warning"),
    "documents": _documents,
}


def check_expectations(
    exchange: Exchange,
    expect: Mapping[str, Any],
    documents: Mapping[str, Document],
    source: str = "",
) -> list[Check]:
    checks: list[Check] = []
    for key, judge in EXPECTATIONS.items():
        if key in expect:
            checks += [
                c if c.source or not source else _with_source(c, source)
                for c in judge(exchange, expect[key], documents)
            ]
    return checks


def _with_source(check: Check, source: str) -> Check:
    return Check(check.description, check.passed, check.expected, check.actual, source)


# --- XPath ---------------------------------------------------------------------------------


def evaluate(exchange: Exchange, xpath: str) -> list[str] | float | str | bool:
    """An XPath over the response, the first child of the SOAP Body as context node
    (``//`` searches the whole envelope); node-sets become their string values."""
    context = exchange.body if exchange.body is not None else exchange.envelope
    if context is None:
        return []
    result = context.xpath(xpath, namespaces=NS)
    if isinstance(result, list):
        return [_string_value(node) for node in result]
    return result  # type: ignore[return-value]


def _string_value(node: Any) -> str:
    if isinstance(node, etree._Element):
        return "".join(node.itertext()).strip()
    return str(node)


def _count(values: Any, expected: Any) -> tuple[bool, str]:
    actual = len(values) if isinstance(values, list) else int(values)
    return actual == int(expected), str(actual)


def _equals(values: Any, expected: Any) -> tuple[bool, str]:
    actual = values[0] if isinstance(values, list) and values else values
    actual = "(nothing)" if actual == [] else str(actual)
    return actual == str(expected), actual


def _exists(values: Any, expected: Any) -> tuple[bool, str]:
    present = bool(values)
    return present == bool(expected), "present" if present else "absent"


def _values(values: Any, expected: Any) -> tuple[bool, str]:
    actual = set(values if isinstance(values, list) else [str(values)])
    return actual == {str(v) for v in expected}, _fmt(actual)


def _contains(values: Any, expected: Any) -> tuple[bool, str]:
    actual = set(values if isinstance(values, list) else [str(values)])
    wanted = expected if isinstance(expected, list) else [expected]
    return all(str(v) in actual for v in wanted), _fmt(actual)


XPATH_ASSERTIONS: dict[str, Callable[[Any, Any], tuple[bool, str]]] = {
    "count": _count,
    "equals": _equals,
    "exists": _exists,
    "values": _values,
    "contains": _contains,
}


def check_assertion(
    exchange: Exchange, assertion: Assertion, value: Any, source: str = ""
) -> Check:
    """``value`` is the assertion's expected value with placeholders filled."""
    try:
        result = evaluate(exchange, assertion.xpath)
    except etree.XPathError as exc:
        return Check(f"XPath {assertion.xpath}", False, str(value), f"bad XPath: {exc}", source)
    passed, actual = XPATH_ASSERTIONS[assertion.kind](result, value)
    expected = _fmt(value) if isinstance(value, list) else str(value)
    return Check(f"{assertion.kind} of {assertion.xpath}", passed, expected, actual, source)


def capture(exchange: Exchange, name: str, xpath: str) -> tuple[str | None, Check]:
    """The first value of ``xpath`` (or None) and the check that it was there."""
    try:
        result = evaluate(exchange, xpath)
    except etree.XPathError as exc:
        return None, Check(f"capture {name}", False, xpath, f"bad XPath: {exc}")
    value = (result[0] if result else None) if isinstance(result, list) else str(result)
    return value, Check(
        f"capture {name} = {xpath}", value is not None, "a value", value or "(nothing)"
    )


__all__ = [
    "EXPECTATIONS",
    "XPATH_ASSERTIONS",
    "capture",
    "check_assertion",
    "check_expectations",
    "evaluate",
    "fault_codes",
    "registry_errors",
    "response_status",
    "retrieved_documents",
]
