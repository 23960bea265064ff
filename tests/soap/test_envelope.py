"""soap/envelope.py: hardened parsing, the SOAP 1.2 envelope, mustUnderstand."""

from __future__ import annotations

import pytest
from lxml import etree
from soap_wire import envelope

from soap.addressing import understands
from soap.envelope import (
    StreamingEnvelopeParser,
    check_must_understand,
    parse_xml,
    read_envelope,
    secure_parser,
)
from soap.faults import FaultCode, SoapFault

ENV = "http://www.w3.org/2003/05/soap-envelope"
BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz ['
    b'<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
    b"]><lolz>&lol3;</lolz>"
)
XXE = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'


def test_secure_parser_does_not_expand_entities():
    root = etree.fromstring(b'<!DOCTYPE r [<!ENTITY a "expanded">]><r>&a;</r>', secure_parser())
    assert "expanded" not in etree.tostring(root).decode()


def test_secure_parser_does_not_read_external_entities():
    root = etree.fromstring(XXE, secure_parser())
    assert "root:" not in etree.tostring(root).decode()


@pytest.mark.parametrize("document", [BOMB, XXE], ids=["bomb", "xxe"])
def test_parse_xml_refuses_doctype(document):
    with pytest.raises(SoapFault, match="DOCTYPE") as caught:
        parse_xml(document)
    assert caught.value.code is FaultCode.SENDER


@pytest.mark.parametrize("document", [BOMB, XXE], ids=["bomb", "xxe"])
def test_streaming_parser_refuses_doctype(document):
    parser = StreamingEnvelopeParser(max_bytes=1 << 20)
    with pytest.raises(SoapFault, match="DOCTYPE"):
        parser.feed(document)
        parser.close()


def test_parse_xml_malformed_is_sender_fault():
    with pytest.raises(SoapFault, match="malformed"):
        parse_xml(b"<a><b></a>")


def test_parse_xml_over_cap_is_413():
    with pytest.raises(SoapFault) as caught:
        parse_xml(b"<a>" + b"x" * 100 + b"</a>", max_bytes=50)
    assert caught.value.http_status == 413


def test_streaming_parser_refuses_processing_instruction():
    parser = StreamingEnvelopeParser(max_bytes=1 << 20)
    with pytest.raises(SoapFault, match="processing instruction"):
        parser.feed(b"<a><?evil x?></a>")
        parser.close()


def test_streaming_parser_over_cap_is_413():
    parser = StreamingEnvelopeParser(max_bytes=100)
    with pytest.raises(SoapFault) as caught:
        parser.feed(b"<a>" + b"x" * 500 + b"</a>")
    assert caught.value.http_status == 413


def test_empty_message_is_fault():
    with pytest.raises(SoapFault, match="empty"):
        StreamingEnvelopeParser(max_bytes=100).close()


def test_read_envelope_returns_header_and_first_body_child():
    parsed = read_envelope(etree.fromstring(envelope()))
    assert (etree.QName(parsed.header).localname, etree.QName(parsed.body).localname) == (
        "Header",
        "Echo",
    )


def test_soap11_envelope_is_version_mismatch():
    soap11 = (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>'
    )
    with pytest.raises(SoapFault) as caught:
        read_envelope(etree.fromstring(soap11))
    assert caught.value.code is FaultCode.VERSION_MISMATCH
    # SOAP 1.2 Part 1 Appendix A: answered in the SOAP/1.1 form
    assert caught.value.soap11


def test_non_envelope_root_is_sender_fault():
    with pytest.raises(SoapFault) as caught:
        read_envelope(etree.fromstring(b"<Echo/>"))
    assert caught.value.code is FaultCode.SENDER


def test_empty_body_is_sender_fault():
    with pytest.raises(SoapFault, match="empty"):
        read_envelope(etree.fromstring(f'<e:Envelope xmlns:e="{ENV}"><e:Body/></e:Envelope>'))


def header_with(block: str) -> etree._Element:
    return read_envelope(etree.fromstring(envelope(extra_headers=block))).header


def test_must_understand_unknown_block_is_fault():
    header = header_with('<x:T xmlns:x="urn:x" env:mustUnderstand="1"/>')
    with pytest.raises(SoapFault) as caught:
        check_must_understand(header, understands, accept_unvalidated_wsse_security=True)
    assert caught.value.not_understood == (etree.QName("urn:x", "T"),)


def test_must_understand_false_is_ignored():
    header = header_with('<x:T xmlns:x="urn:x" env:mustUnderstand="false"/>')
    check_must_understand(header, understands, accept_unvalidated_wsse_security=True)


def test_must_understand_for_role_none_is_ignored():
    # SOAP 1.2 Part 1 5.2.2: blocks for the "none" role are never processed
    none = "http://www.w3.org/2003/05/soap-envelope/role/none"
    header = header_with(f'<x:T xmlns:x="urn:x" env:mustUnderstand="true" env:role="{none}"/>')
    check_must_understand(header, understands, accept_unvalidated_wsse_security=True)


def test_understood_must_understand_block_passes():
    header = header_with('<x:T xmlns:x="urn:x" env:mustUnderstand="true"/>')
    check_must_understand(header, lambda b: True, accept_unvalidated_wsse_security=False)


def test_streaming_parser_keeps_ampersands_in_attribute_values() -> None:
    # A CX patient id carries '&' in ExternalIdentifier/@value (ITI TF-3 4.2.3.1.7)
    parser = StreamingEnvelopeParser(max_bytes=1 << 20)
    parser.feed(
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
        b'<a v="P1^^^&amp;1.2.3&amp;ISO" w="q&#38;" z="&amp;#38;">t&amp;u</a>'
        b"</e:Body></e:Envelope>"
    )
    a = parser.close().find(".//a")
    assert a.get("v") == "P1^^^&1.2.3&ISO"
    assert a.get("w") == "q&"
    assert a.get("z") == "&#38;"
    assert a.text == "t&u"


def test_streaming_parser_accepts_a_default_namespace_in_the_body() -> None:
    # HL7 v3 (ITI-44) messages put their elements in the default namespace
    parser = StreamingEnvelopeParser(max_bytes=1 << 20)
    parser.feed(
        b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body>'
        b'<PRPA_IN201301UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0"><id root="1.2"/>'
        b"</PRPA_IN201301UV02></e:Body></e:Envelope>"
    )
    body = parser.close()[0][0]
    assert body.tag == "{urn:hl7-org:v3}PRPA_IN201301UV02"
    assert body[0].tag == "{urn:hl7-org:v3}id"
    assert body.nsmap[None] == "urn:hl7-org:v3"


# Without binary elements lxml builds the tree itself; with them a parser target does.
# Both must give the same tree and the same faults.
_ENV = '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>{}</env:Body></env:Envelope>'  # noqa: E501
SAME_EITHER_WAY = {
    "comments dropped": _ENV.format('<a><!-- c --><b x="1&amp;2"/></a>') + "<!-- tail -->",
    "default namespace": _ENV.format('<q xmlns="urn:x"><r/></q>'),
    "ampersands": _ENV.format('<a v="P1^^^&amp;1.2.3&amp;ISO" w="&#38;#38;"/>'),
    "declaration": '<?xml version="1.0" encoding="UTF-8"?>' + _ENV.format("<a/>"),
    "pi inside": _ENV.format("<a><?foo x?></a>"),
    "pi before": "<?foo bar?>" + _ENV.format("<a/>"),
    "pi after": _ENV.format("<a/>") + "<?foo bar?>",
    "doctype": '<!DOCTYPE env:Envelope [<!ENTITY x "y">]>' + _ENV.format("<a>&x;</a>"),
    "malformed": _ENV.format("<a>"),
}


def _parsed_in_chunks(document: str, **options: object) -> bytes | str:
    parser = StreamingEnvelopeParser(max_bytes=100_000, **options)  # type: ignore[arg-type]
    try:
        data = document.encode()
        for start in range(0, len(data), 7):
            parser.feed(data[start : start + 7])
        return etree.tostring(parser.close())
    except SoapFault as fault:
        return f"{fault.code} {fault.reason.split(':')[0]}"


@pytest.mark.parametrize("document", SAME_EITHER_WAY.values(), ids=SAME_EITHER_WAY.keys())
def test_the_tree_lxml_builds_is_the_one_the_parser_target_builds(document: str) -> None:
    with_target = {"binary_elements": frozenset({"{urn:none}x"}), "open_sink": lambda: None}
    assert _parsed_in_chunks(document) == _parsed_in_chunks(document, **with_target)
