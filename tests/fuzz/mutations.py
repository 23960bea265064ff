"""Hypothesis strategies that break a valid message: its XML structure and values, its
MTOM/XOP framing, its encoding.  Each mutation is a small frozen value applied by a
function, so a failing example prints as what was done."""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import strategies as st
from lxml import etree

WRONG_NAMESPACE = "urn:xdsi:fuzz:not-the-namespace"

# values that break the data types of ITI TF-3 4.2.3 (OID, UUID, DTM, CX, hash, size)
odd_values = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "1..2",
            "urn:uuid:not-a-uuid",
            "2024",
            "20241301250000",
            "-1",
            "99999999999999999999999999",
            "^^^&&ISO",
            "x" * 300,
            "\u00e9\u00e8\u4e2d\u6587",
            "'",
            "('a','b'",
            "$XDSDocumentEntryPatientId",
        ]
    ),
    st.text(max_size=40).filter(lambda t: all(c.isprintable() for c in t)),
)


@dataclass(frozen=True)
class XmlMutation:
    kind: str  # drop, duplicate, swap, namespace, text, attribute, remove-attribute
    target: int  # index into the document's elements (modulo their number)
    value: str = ""


xml_mutations = st.builds(
    XmlMutation,
    kind=st.sampled_from(
        ["drop", "duplicate", "swap", "namespace", "text", "attribute", "remove-attribute"]
    ),
    target=st.integers(min_value=1, max_value=10_000),
    value=odd_values,
)


def apply_xml(document: bytes, mutation: XmlMutation) -> bytes | None:
    """``document`` with ``mutation`` applied; None when it does not apply (e.g. a value
    XML cannot carry, or no attribute to change)."""
    root = etree.fromstring(document)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    element = elements[mutation.target % len(elements)]
    parent = element.getparent()
    try:
        if mutation.kind == "drop":
            if parent is None:
                return None
            parent.remove(element)
        elif mutation.kind == "duplicate":
            if parent is None:
                return None
            element.addnext(etree.fromstring(etree.tostring(element)))
        elif mutation.kind == "swap":
            following = element.getnext()
            if following is None:
                return None
            following.addnext(element)
        elif mutation.kind == "namespace":
            local = etree.QName(element).localname
            element.tag = f"{{{WRONG_NAMESPACE}}}{local}"
        elif mutation.kind == "text":
            element.text = mutation.value
        elif mutation.kind in ("attribute", "remove-attribute"):
            if not element.attrib:
                return None
            name = sorted(element.attrib)[mutation.target % len(element.attrib)]
            if mutation.kind == "attribute":
                element.set(name, mutation.value)
            else:
                del element.attrib[name]
    except ValueError:  # a control character lxml refuses
        return None
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True)
class FramingMutation:
    kind: str  # truncate, insert, boundary, drop-header, content-id, content-type, crlf
    position: float  # where in the body, 0..1
    data: bytes = b""


framing_mutations = st.builds(
    FramingMutation,
    kind=st.sampled_from(
        ["truncate", "insert", "boundary", "drop-header", "content-id", "content-type", "crlf"]
    ),
    position=st.floats(min_value=0.0, max_value=1.0),
    data=st.binary(min_size=1, max_size=64),
)

_CONTENT_TYPES = [
    "multipart/related",
    'multipart/related; boundary=""',
    'multipart/related; boundary="nope"; type="application/xop+xml"',
    "multipart/mixed; boundary=x",
    "application/soap+xml",
    "text/plain",
    "",
    'multipart/related; boundary="{b}"; type="text/xml"; start="<missing@x>"',
    'multipart/related; boundary="{b}"',
]


def apply_framing(content_type: str, body: bytes, mutation: FramingMutation) -> tuple[str, bytes]:
    """An MTOM package (Content-Type, body) with ``mutation`` applied to its framing."""
    at = int(len(body) * mutation.position)
    boundary = re.search(r'boundary="([^"]+)"', content_type)
    assert boundary is not None
    b = boundary.group(1)
    if mutation.kind == "truncate":
        return content_type, body[:at]
    if mutation.kind == "insert":
        return content_type, body[:at] + mutation.data + body[at:]
    if mutation.kind == "boundary":
        # one delimiter (RFC 2046 5.1.1) changed: parts merge or the close is missing
        delimiters = [m.start() for m in re.finditer(re.escape(b"--" + b.encode()), body)]
        index = delimiters[int(mutation.position * (len(delimiters) - 1))]
        return content_type, body[:index] + b"--X" + body[index + 3 :]
    if mutation.kind == "drop-header":
        headers = [m for m in re.finditer(rb"\r\n(Content-[A-Za-z-]+: [^\r]*)", body)]
        if not headers:
            return content_type, body
        header = headers[int(mutation.position * (len(headers) - 1))]
        return content_type, body[: header.start()] + body[header.end() :]
    if mutation.kind == "content-id":
        ids = list(re.finditer(rb"Content-ID: <([^>]*)>", body))
        chosen = ids[int(mutation.position * (len(ids) - 1))]
        return content_type, body[: chosen.start(1)] + mutation.data.hex().encode() + body[
            chosen.end(1) :
        ]
    if mutation.kind == "content-type":
        choice = _CONTENT_TYPES[int(mutation.position * (len(_CONTENT_TYPES) - 1))]
        return choice.replace("{b}", b), body
    # crlf: bare LF line ends instead of CRLF (RFC 2046 requires CRLF)
    return content_type, body.replace(b"\r\n", b"\n")


@dataclass(frozen=True)
class Encoding:
    codec: str
    declared: str  # the charset the Content-Type and XML declaration claim
    bom: bool


encodings = st.builds(
    Encoding,
    codec=st.sampled_from(["utf-8", "utf-16", "utf-16-le", "latin-1", "utf-32"]),
    declared=st.sampled_from(["UTF-8", "UTF-16", "ISO-8859-1", "EBCDIC", ""]),
    bom=st.booleans(),
)


def apply_encoding(document: bytes, encoding: Encoding) -> tuple[bytes, str]:
    """``document`` re-encoded, with the charset it claims; (body, charset parameter)."""
    text = document.decode("utf-8")
    text = re.sub(r"^<\?xml[^>]*\?>", "", text).lstrip()
    if encoding.declared:
        text = f'<?xml version="1.0" encoding="{encoding.declared}"?>' + text
    data = text.encode(encoding.codec, errors="replace")
    if encoding.bom:
        data = b"\xef\xbb\xbf" + data
    return data, encoding.declared


__all__ = [
    "Encoding",
    "FramingMutation",
    "XmlMutation",
    "apply_encoding",
    "apply_framing",
    "apply_xml",
    "encodings",
    "framing_mutations",
    "odd_values",
    "xml_mutations",
]
