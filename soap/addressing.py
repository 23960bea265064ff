"""WS-Addressing 1.0 message addressing headers, read from requests and written to replies.

WS-Addressing 1.0 Core 3 (message addressing properties), SOAP Binding 6.4 (faults);
ITI TF-2 V.3.2 (IHE-WSA101: wsa:Action is sent with mustUnderstand="true").
xdsi offers only the synchronous, anonymous reply: a non-anonymous ReplyTo or FaultTo
is refused.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping

from lxml import etree

from soap.envelope import MUST_UNDERSTAND, header_blocks, is_for_us
from soap.faults import SoapFault, addressing_fault
from soap.message import Addressing
from soap.namespaces import NS_SOAP12, NS_WSA, UUID_PREFIX, WSA_ANONYMOUS

_WSA = f"{{{NS_WSA}}}"
ACTION = _WSA + "Action"
MESSAGE_ID = _WSA + "MessageID"
TO = _WSA + "To"
REPLY_TO = _WSA + "ReplyTo"
FAULT_TO = _WSA + "FaultTo"
FROM = _WSA + "From"
RELATES_TO = _WSA + "RelatesTo"
ADDRESS = _WSA + "Address"

# Headers this node processes, so a mustUnderstand on them is honoured (SOAP 1.2 5.2.3)
UNDERSTOOD_HEADERS = frozenset({ACTION, MESSAGE_ID, TO, REPLY_TO, FAULT_TO, FROM, RELATES_TO})
# Headers whose [address] must be anonymous, the only reply xdsi can give
_ANONYMOUS_ONLY = (REPLY_TO, FAULT_TO)
_NSMAP = {"wsa": NS_WSA, "env": NS_SOAP12}


def understands(block: etree._Element) -> bool:
    return block.tag in UNDERSTOOD_HEADERS


def new_message_id() -> str:
    return UUID_PREFIX + str(uuid.uuid4())


def _problem_header(tag: str) -> etree._Element:
    """SOAP Binding 6.4: [Detail] wsa:ProblemHeaderQName naming the header at fault."""
    element = etree.Element(_WSA + "ProblemHeaderQName", nsmap={"wsa": NS_WSA})
    element.text = f"wsa:{etree.QName(tag).localname}"
    return element


def _single(blocks: Mapping[str, list[etree._Element]], tag: str) -> etree._Element | None:
    found = blocks.get(tag, ())
    if len(found) > 1:
        raise addressing_fault(
            "InvalidAddressingHeader",
            f"more than one {etree.QName(tag).localname} header",
            subsubcode="InvalidCardinality",
            detail=_problem_header(tag),
        )
    return found[0] if found else None


def _text(block: etree._Element | None) -> str | None:
    if block is None:
        return None
    return (block.text or "").strip()


def _address(block: etree._Element | None) -> str | None:
    if block is None:
        return None
    return _text(block.find(ADDRESS)) or ""


def read_addressing(header: etree._Element | None, *, require_action: bool = True) -> Addressing:
    """Read the WS-A headers addressed to this node; fault on a missing or bad one."""
    # the WS-A blocks addressed to us by tag, each tag read once (lxml builds the string
    # anew at every reading)
    blocks: dict[str, list[etree._Element]] = {}
    for block in header_blocks(header):
        tag = block.tag
        if tag.startswith(_WSA) and is_for_us(block):
            blocks.setdefault(tag, []).append(block)
    action = _text(_single(blocks, ACTION))
    if not action and require_action:
        raise addressing_fault(
            "MessageAddressingHeaderRequired",
            "a required header representing a message addressing property is absent",
            detail=_problem_header(ACTION),
        )
    for tag in _ANONYMOUS_ONLY:
        address = _address(_single(blocks, tag))
        if address is not None and address != WSA_ANONYMOUS:
            raise addressing_fault(
                "InvalidAddressingHeader",
                "only the anonymous address is supported for responses",
                subsubcode="OnlyAnonymousAddressSupported",
                detail=_problem_header(tag),
            )
    return Addressing(
        action=action or "",
        message_id=_text(_single(blocks, MESSAGE_ID)),
        to=_text(_single(blocks, TO)),
        reply_to=_address(_single(blocks, REPLY_TO)),
        relates_to=_text(_single(blocks, RELATES_TO)),
    )


def message_id_of(header: etree._Element | None) -> str | None:
    """Best effort, for faults: the request's MessageID even if other headers are bad."""
    for block in header_blocks(header):
        if block.tag == MESSAGE_ID:
            return _text(block)
    return None


def _blank(tag: str, must_understand: bool) -> etree._Element:
    element = etree.Element(tag, nsmap=_NSMAP)
    if must_understand:
        element.set(MUST_UNDERSTAND, "true")
    return element


# The header blocks xdsi writes, made once on import: a copy costs a quarter of making
# an element with its namespace map, and every exchange writes three or four of them.
# (Made here, on the importing thread, never later on a worker: see soap.mtom.MessageThread.)
_BLANKS = {
    (tag, must_understand): _blank(tag, must_understand)
    for tag in (ACTION, MESSAGE_ID, TO, RELATES_TO)
    for must_understand in (False, True)
}


def _element(tag: str, text: str, *, must_understand: bool = False) -> etree._Element:
    blank = _BLANKS.get((tag, must_understand))
    element = copy.copy(blank) if blank is not None else _blank(tag, must_understand)
    element.text = text
    return element


def response_headers(action: str, relates_to: str | None) -> list[etree._Element]:
    """Headers of a reply: Action (mustUnderstand, IHE-WSA101), MessageID, RelatesTo, To."""
    headers = [
        _element(ACTION, action, must_understand=True),
        _element(MESSAGE_ID, new_message_id()),
    ]
    if relates_to:
        headers.append(_element(RELATES_TO, relates_to))
    headers.append(_element(TO, WSA_ANONYMOUS))
    return headers


def request_headers(action: str, to: str, message_id: str) -> list[etree._Element]:
    """Headers of a request: Action (mustUnderstand), MessageID, To, ReplyTo anonymous."""
    reply_to = etree.Element(REPLY_TO, nsmap=_NSMAP)
    etree.SubElement(reply_to, ADDRESS).text = WSA_ANONYMOUS
    return [
        _element(ACTION, action, must_understand=True),
        _element(MESSAGE_ID, message_id),
        _element(TO, to),
        reply_to,
    ]


def action_not_supported(action: str) -> SoapFault:
    """SOAP Binding 6.4.4: wsa:ActionNotSupported, [Detail] wsa:ProblemAction."""
    problem = etree.Element(_WSA + "ProblemAction", nsmap={"wsa": NS_WSA})
    etree.SubElement(problem, ACTION).text = action
    return addressing_fault(
        "ActionNotSupported", f"the [action] {action} is not supported", detail=problem
    )


__all__ = [
    "ACTION",
    "MESSAGE_ID",
    "RELATES_TO",
    "REPLY_TO",
    "TO",
    "UNDERSTOOD_HEADERS",
    "action_not_supported",
    "message_id_of",
    "new_message_id",
    "read_addressing",
    "request_headers",
    "response_headers",
    "understands",
]
