"""Pre-serialised XML written into an outgoing message without parsing it again.

A handler that already holds well-formed XML fragments as bytes (a registry's stored
metadata) hands them over as an :class:`XmlSplice`: the encoder serialises the tree
with a marker comment as the last child of ``parent`` and writes the fragments in the
marker's place.  The fragments must be well-formed elements whose prefixes are
declared in scope of ``parent`` (or on themselves), in the message's encoding (UTF-8
or ASCII).  Knows no XDS.
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
    fragments: Sequence[bytes]


def spliced_bytes(
    root: etree._Element,
    splices: Sequence[XmlSplice],
    serialize: Callable[[etree._Element], bytes],
) -> bytes:
    """``serialize(root)`` with every splice's fragments written in; the tree is left
    as it was."""
    markers: list[tuple[etree._Element, bytes, bytes]] = []
    try:
        for splice in splices:
            token = f"splice-{uuid.uuid4().hex}"
            marker = etree.Comment(token)
            splice.parent.append(marker)
            markers.append((marker, f"<!--{token}-->".encode(), b"".join(splice.fragments)))
        data = serialize(root)
    finally:
        for marker, _, _ in markers:
            parent = marker.getparent()
            if parent is not None:
                parent.remove(marker)
    for _, token, content in markers:
        before, found, after = data.partition(token)
        if not found:
            raise ValueError("a splice's parent is not part of the serialised tree")
        data = b"".join((before, content, after))
    return data


__all__ = ["XmlSplice", "spliced_bytes"]
