"""soap/addressing.py: reading request headers and writing reply headers."""

from __future__ import annotations

import pytest
from lxml import etree
from soap_wire import ANONYMOUS, envelope

from soap.addressing import read_addressing, request_headers, response_headers
from soap.envelope import read_envelope
from soap.faults import SoapFault

WSA = "http://www.w3.org/2005/08/addressing"
MU = "{http://www.w3.org/2003/05/soap-envelope}mustUnderstand"


def header(**kw) -> etree._Element:
    return read_envelope(etree.fromstring(envelope(**kw))).header


def test_reads_action_and_message_id():
    addressing = read_addressing(header(action="urn:a", message_id="urn:uuid:1"))
    assert (addressing.action, addressing.message_id) == ("urn:a", "urn:uuid:1")


def test_missing_action_fault_names_the_header():
    with pytest.raises(SoapFault) as caught:
        read_addressing(header(action=None))
    assert (caught.value.subcode.localname, caught.value.detail.text) == (
        "MessageAddressingHeaderRequired",
        "wsa:Action",
    )


def test_two_actions_is_invalid_cardinality():
    extra = f'<wsa:Action xmlns:wsa="{WSA}">urn:b</wsa:Action>'
    with pytest.raises(SoapFault) as caught:
        read_addressing(header(extra_headers=extra))
    assert caught.value.subsubcode.localname == "InvalidCardinality"


def test_non_anonymous_fault_to_is_refused():
    extra = f'<wsa:FaultTo xmlns:wsa="{WSA}"><wsa:Address>http://x</wsa:Address></wsa:FaultTo>'
    with pytest.raises(SoapFault) as caught:
        read_addressing(header(extra_headers=extra))
    assert caught.value.subsubcode.localname == "OnlyAnonymousAddressSupported"


def test_anonymous_reply_to_is_read():
    assert read_addressing(header(reply_to=ANONYMOUS)).reply_to == ANONYMOUS


def test_response_headers_in_order():
    tags = [etree.QName(h).localname for h in response_headers("urn:r", "urn:uuid:1")]
    assert tags == ["Action", "MessageID", "RelatesTo", "To"]


def test_response_action_must_understand():
    # ITI TF-2 V.3.2 (IHE-WSA101)
    assert response_headers("urn:r", None)[0].get(MU) == "true"


def test_response_without_request_message_id_has_no_relates_to():
    tags = [etree.QName(h).localname for h in response_headers("urn:r", None)]
    assert "RelatesTo" not in tags


def test_request_headers_reply_to_anonymous():
    reply_to = request_headers("urn:a", "http://x/y", "urn:uuid:1")[3]
    assert reply_to.findtext(f"{{{WSA}}}Address") == ANONYMOUS
