"""Pre-serialised XML written into an outgoing message without parsing it again.

A handler that already holds well-formed XML fragments as bytes (a registry's stored
metadata) hands them over as an :class:`XmlSplice`: the encoder serialises the tree
with a marker comment as the last child of ``parent`` and writes the fragments in the
marker's place.  The fragments, written one after the other, must be well-formed
elements whose prefixes are declared in scope of ``parent`` (or on themselves), in the
message's encoding (UTF-8 or ASCII); any one of them may be a piece of an element, and
any bytes-like object (a ``memoryview`` of stored bytes, say).  They are copied once,
into the message.  Knows no XDS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lxml import etree


@dataclass(frozen=True, slots=True)
class XmlSplice:
    """``fragments`` to write, in order, as the last children of ``parent``."""

    parent: etree._Element
    fragments: Sequence[bytes | memoryview]


def spliced_bytes(
    root: etree._Element,
    splices: Sequence[XmlSplice],
    serialize: Callable[[etree._Element], bytes],
) -> bytes:
    """``serialize(root)`` with every splice's fragments written in; the tree is left
    as it was."""
    markers: list[tuple[etree._Element, bytes, Sequence[bytes | memoryview]]] = []
    try:
        for splice in splices:
            token = f"splice-{uuid.uuid4().hex}"
            marker = etree.Comment(token)
            splice.parent.append(marker)
            markers.append((marker, f"<!--{token}-->".encode(), splice.fragments))
        data = serialize(root)
    finally:
        for marker, _, _ in markers:
            parent = marker.getparent()
            if parent is not None:
                parent.remove(marker)
    # the serialised tree cut at each marker, the fragments in between, joined once
    found = sorted((data.find(token), token, fragments) for _, token, fragments in markers)
    if found and found[0][0] < 0:
        raise ValueError("a splice's parent is not part of the serialised tree")
    view, at = memoryview(data), 0
    pieces: list[bytes | memoryview] = []
    for position, token, fragments in found:
        pieces.append(view[at:position])
        pieces.extend(fragments)
        at = position + len(token)
    pieces.append(view[at:])
    return b"".join(pieces)


__all__ = ["XmlSplice", "spliced_bytes"]
