"""SOAP 1.2 faults: the one exception type of soap/, to and from ``env:Fault``.

SOAP 1.2 Part 1 5.4 (Fault), Part 2 7.5.1.2 (HTTP status of a fault), WS-Addressing 1.0
SOAP Binding 6 (WS-A faults and their Action).
"""

from __future__ import annotations

from enum import StrEnum

from lxml import etree

from soap.namespaces import NS_SOAP12, NS_WSA, SOAP_FAULT_ACTION, WSA_FAULT_ACTION

_ENV = f"{{{NS_SOAP12}}}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_SUBCODE_PREFIX = {NS_WSA: "wsa"}


class FaultCode(StrEnum):
    """SOAP 1.2 Part 1 5.4.6: the fault codes (local names in the env namespace)."""

    SENDER = "Sender"
    RECEIVER = "Receiver"
    MUST_UNDERSTAND = "MustUnderstand"
    VERSION_MISMATCH = "VersionMismatch"
    DATA_ENCODING_UNKNOWN = "DataEncodingUnknown"


# SOAP 1.2 Part 2 7.5.1.2: env:Sender -> 400 Bad Request, every other fault -> 500
_HTTP_STATUS = {FaultCode.SENDER: 400}


class SoapFault(Exception):
    """A SOAP fault to send (server) or received (client).

    ``subcode`` (and ``subsubcode``) are qualified names such as
    ``QName(NS_WSA, "ActionNotSupported")``; ``detail`` is an element or text placed
    in ``env:Detail``; ``not_understood`` names header blocks for ``env:NotUnderstood``
    (SOAP 1.2 Part 1 5.4.8); ``http_status`` overrides the status of Part 2 7.5.1.2
    (e.g. 413 for a body over its cap); ``soap11`` marks the VersionMismatch answering a
    SOAP/1.1 message, sent in the SOAP/1.1 form (SOAP 1.2 Part 1 Appendix A).
    """

    def __init__(
        self,
        code: FaultCode,
        reason: str,
        *,
        subcode: etree.QName | None = None,
        subsubcode: etree.QName | None = None,
        detail: etree._Element | str | None = None,
        not_understood: tuple[etree.QName, ...] = (),
        http_status: int | None = None,
        soap11: bool = False,
    ) -> None:
        super().__init__(reason)
        self.code = FaultCode(code)
        self.reason = reason
        self.subcode = subcode
        self.subsubcode = subsubcode
        self.detail = detail
        self.not_understood = not_understood
        self._http_status = http_status
        self.soap11 = soap11

    @property
    def http_status(self) -> int:
        if self._http_status is not None:
            return self._http_status
        return _HTTP_STATUS.get(self.code, 500)

    @property
    def is_addressing_fault(self) -> bool:
        return self.subcode is not None and self.subcode.namespace == NS_WSA

    @property
    def action(self) -> str:
        """WS-Addressing SOAP Binding 6: the wsa:Action of the fault message."""
        return WSA_FAULT_ACTION if self.is_addressing_fault else SOAP_FAULT_ACTION

    def __repr__(self) -> str:
        sub = f", subcode={self.subcode.text!r}" if self.subcode is not None else ""
        return f"SoapFault({self.code.value!r}, {self.reason!r}{sub})"

    def to_element(self) -> etree._Element:
        """The ``env:Fault`` element (SOAP 1.2 Part 1 5.4)."""
        fault = etree.Element(_ENV + "Fault", nsmap={"env": NS_SOAP12})
        code = etree.SubElement(fault, _ENV + "Code")
        etree.SubElement(code, _ENV + "Value").text = f"env:{self.code.value}"
        parent = code
        for qname in (self.subcode, self.subsubcode):
            if qname is None:
                break
            parent = etree.SubElement(parent, _ENV + "Subcode")
            prefix = _SUBCODE_PREFIX.get(qname.namespace or "", "sc")
            value = etree.SubElement(parent, _ENV + "Value", nsmap={prefix: qname.namespace})
            value.text = f"{prefix}:{qname.localname}"
        reason = etree.SubElement(fault, _ENV + "Reason")
        text = etree.SubElement(reason, _ENV + "Text")
        text.set(_XML_LANG, "en")
        text.text = self.reason
        if self.detail is not None:
            detail = etree.SubElement(fault, _ENV + "Detail")
            if isinstance(self.detail, str):
                detail.text = self.detail
            else:
                detail.append(self.detail)
        return fault

    @classmethod
    def from_element(cls, fault: etree._Element, *, http_status: int | None = None) -> SoapFault:
        """Read an ``env:Fault`` received from a peer."""
        values = fault.findall(f"{_ENV}Code/{_ENV}Value") + fault.findall(
            f"{_ENV}Code//{_ENV}Subcode/{_ENV}Value"
        )
        qnames = [_resolve_qname(v) for v in values]
        code_name = qnames[0].localname if qnames else FaultCode.RECEIVER.value
        code = (
            FaultCode(code_name)
            if code_name in FaultCode._value2member_map_
            else FaultCode.RECEIVER
        )
        reason = fault.findtext(f"{_ENV}Reason/{_ENV}Text") or ""
        detail_el = fault.find(f"{_ENV}Detail")
        detail: etree._Element | str | None = None
        if detail_el is not None:
            children = list(detail_el)
            detail = children[0] if children else (detail_el.text or None)
        return cls(
            code,
            reason,
            subcode=qnames[1] if len(qnames) > 1 else None,
            subsubcode=qnames[2] if len(qnames) > 2 else None,
            detail=detail,
            http_status=http_status,
        )


def _resolve_qname(value: etree._Element) -> etree.QName:
    text = (value.text or "").strip()
    prefix, _, local = text.rpartition(":")
    namespace = value.nsmap.get(prefix or None)
    return etree.QName(namespace, local) if namespace else etree.QName(local)


def sender_fault(reason: str, *, http_status: int | None = None) -> SoapFault:
    """The common case: the message itself is at fault (HTTP 400 unless told)."""
    return SoapFault(FaultCode.SENDER, reason, http_status=http_status)


def addressing_fault(
    subcode: str,
    reason: str,
    *,
    subsubcode: str | None = None,
    detail: etree._Element | None = None,
) -> SoapFault:
    """WS-Addressing 1.0 SOAP Binding 6.4: an env:Sender fault with a wsa: subcode."""
    return SoapFault(
        FaultCode.SENDER,
        reason,
        subcode=etree.QName(NS_WSA, subcode),
        subsubcode=etree.QName(NS_WSA, subsubcode) if subsubcode else None,
        detail=detail,
    )


__all__ = ["FaultCode", "SoapFault", "addressing_fault", "sender_fault"]
