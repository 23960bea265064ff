"""soap/splice.py: fragments written as the last children of their parent, in order,
the tree left as it was."""

from __future__ import annotations

import pytest
from lxml import etree

from soap.envelope import build_envelope, envelope_bytes
from soap.splice import XmlSplice, spliced_bytes


def test_fragments_are_written_as_the_last_children_of_their_parent() -> None:
    body = etree.fromstring(b'<r xmlns:p="urn:p"><list><first/></list><after/></r>')
    parent = body.find("list")
    fragments = (b'<p:a x="1">&amp;</p:a>', b"<b/>")
    data = spliced_bytes(build_envelope(body), [XmlSplice(parent, fragments)], envelope_bytes)
    assert b'<list><first/><p:a x="1">&amp;</p:a><b/></list><after/>' in data
    parsed = etree.fromstring(data)
    assert [e.tag for e in parsed.iter("{urn:p}a", "b")] == ["{urn:p}a", "b"]
    assert len(parent) == 1  # the marker is gone again


def test_a_parent_outside_the_tree_is_refused() -> None:
    body = etree.fromstring(b"<r/>")
    with pytest.raises(ValueError, match="not part of"):
        spliced_bytes(body, [XmlSplice(etree.Element("other"), (b"<a/>",))], etree.tostring)


def test_splices_and_pieces_of_fragments_are_written_in_place() -> None:
    """Several splices, each at its own parent, whatever their order; fragments may be
    views and pieces of one element."""
    body = etree.fromstring(b"<r><one/><two/></r>")
    one, two = body.find("one"), body.find("two")
    stored = b"<a>stored</a><b/>"
    splices = [
        XmlSplice(two, (b"<c ", b'x="2"/>')),
        XmlSplice(one, (memoryview(stored)[:13], memoryview(stored)[13:])),
    ]
    data = spliced_bytes(body, splices, etree.tostring)
    assert data == b'<r><one><a>stored</a><b/></one><two><c x="2"/></two></r>'
    assert (len(one), len(two)) == (0, 0)
