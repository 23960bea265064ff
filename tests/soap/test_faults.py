"""soap/faults.py: codes, HTTP status, Actions, and the env:Fault wire form."""

from __future__ import annotations

import pytest
from lxml import etree

from soap.faults import FaultCode, SoapFault, addressing_fault, sender_fault

WSA = "http://www.w3.org/2005/08/addressing"
ENV = "{http://www.w3.org/2003/05/soap-envelope}"


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (FaultCode.SENDER, 400),
        (FaultCode.RECEIVER, 500),
        (FaultCode.MUST_UNDERSTAND, 500),
        (FaultCode.VERSION_MISMATCH, 500),
    ],
)
def test_http_status_of_fault_code(code, status):
    assert SoapFault(code, "r").http_status == status


def test_http_status_override():
    assert sender_fault("big", http_status=413).http_status == 413


def test_addressing_fault_action():
    assert addressing_fault("ActionNotSupported", "r").action == f"{WSA}/fault"


def test_soap_fault_action():
    assert sender_fault("r").action == f"{WSA}/soap/fault"


def test_to_element_code_and_subcodes():
    fault = addressing_fault(
        "InvalidAddressingHeader", "r", subsubcode="OnlyAnonymousAddressSupported"
    )
    values = [v.text for v in fault.to_element().iter(ENV + "Value")]
    assert values == [
        "env:Sender",
        "wsa:InvalidAddressingHeader",
        "wsa:OnlyAnonymousAddressSupported",
    ]


def test_to_element_reason_is_english_text():
    text = sender_fault("bad thing").to_element().find(f"{ENV}Reason/{ENV}Text")
    assert (text.text, text.get("{http://www.w3.org/XML/1998/namespace}lang")) == (
        "bad thing",
        "en",
    )


def test_round_trip_through_the_wire():
    detail = etree.Element(f"{{{WSA}}}ProblemHeaderQName")
    detail.text = "wsa:Action"
    sent = addressing_fault("MessageAddressingHeaderRequired", "missing", detail=detail)
    wire = etree.fromstring(etree.tostring(sent.to_element()))
    received = SoapFault.from_element(wire, http_status=400)
    assert (received.code, received.subcode, received.reason, received.detail.text) == (
        FaultCode.SENDER,
        etree.QName(WSA, "MessageAddressingHeaderRequired"),
        "missing",
        "wsa:Action",
    )
