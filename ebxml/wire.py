"""ITI-18 and registry responses on the wire: AdhocQueryRequest / AdhocQueryResponse both
ways, and reading an rs:RegistryResponse (the client side of ITI-41/42).

Stored-query parameters stay raw here (``ebxml.query`` types them): one list entry per
Slot element, each the list of its Value strings, so repeated slots keep their AND
meaning (ITI TF-2 3.18.4.1.2.3.5).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache
from itertools import chain
from xml.sax.saxutils import escape

from lxml import etree

from ebxml.messages import AdhocQueryRequest, AdhocQueryResponse, StoredObject
from ebxml.model import ObjectRef, RegistryObject
from ebxml.parse import (
    enum_or_text,
    parse_registry_errors,
    parse_registry_object_list,
    parse_registry_response,
)
from ebxml.serialize import leaf_class, object_ref, registry_error_list
from ebxml.tags import QUERY, RIM
from ebxml.vocabulary import NSMAP, ResponseStatus, ReturnType

# query.xsd ResponseOptionType: returnType defaults to RegistryObject
_DEFAULT_RETURN_TYPE = "RegistryObject"
_TRUE = frozenset({"true", "1"})


# --- query:AdhocQueryRequest --------------------------------------------------------------


def parse_adhoc_query_request(elem: etree._Element) -> AdhocQueryRequest:
    """query:AdhocQueryRequest (ITI TF-2 3.18.4.1.2), parameter values kept as sent."""
    option = elem.find(QUERY.ResponseOption)
    query = elem.find(RIM.AdhocQuery)
    parameters: dict[str, list[list[str]]] = {}
    if query is not None:
        for slot in query.iterfind(RIM.Slot):
            values = [v.text or "" for v in slot.iterfind(f"{RIM.ValueList}/{RIM.Value}")]
            parameters.setdefault(slot.get("name", ""), []).append(values)
    return_type = _DEFAULT_RETURN_TYPE if option is None else option.get("returnType")
    composed = "" if option is None else option.get("returnComposedObjects", "")
    return AdhocQueryRequest(
        query_id="" if query is None else query.get("id", ""),
        parameters=parameters,
        return_type=enum_or_text(ReturnType, return_type or _DEFAULT_RETURN_TYPE),
        return_composed_objects=composed.strip().lower() in _TRUE,
        home=None if query is None else query.get("home"),
        request_id=elem.get("id"),
    )


def adhoc_query_request(request: AdhocQueryRequest) -> etree._Element:
    """query:AdhocQueryRequest for a stored query (ITI TF-2 3.18.4.1.2)."""
    nsmap = {"query": NSMAP["query"], "rim": NSMAP["rim"]}
    elem = etree.Element(QUERY.AdhocQueryRequest, nsmap=nsmap)
    if request.request_id:
        elem.set("id", request.request_id)
    option = etree.SubElement(elem, QUERY.ResponseOption)
    option.set("returnComposedObjects", "true" if request.return_composed_objects else "false")
    option.set("returnType", str(request.return_type))
    query = etree.SubElement(elem, RIM.AdhocQuery, id=request.query_id)
    if request.home:
        query.set("home", request.home)
    for name, slots in request.parameters.items():
        for values in slots:
            slot = etree.SubElement(query, RIM.Slot, name=name)
            value_list = etree.SubElement(slot, RIM.ValueList)
            for value in values:
                etree.SubElement(value_list, RIM.Value).text = value
    return elem


# --- query:AdhocQueryResponse -------------------------------------------------------------


def _stored_leaf(stored: StoredObject, parser: etree.XMLParser) -> etree._Element:
    """A registry's canonical XML with its current availabilityStatus written over."""
    elem = etree.fromstring(stored.xml, parser)
    elem.set("status", stored.availability_status)
    home = getattr(stored, "home", None)
    if home:
        elem.set("home", home)
    return elem


def _refs(response: AdhocQueryResponse) -> Iterable[ObjectRef]:
    seen: set[str] = set()
    objects = (ObjectRef(o.entry_uuid, getattr(o, "home", None)) for o in response.objects)
    for ref in (*response.object_refs, *objects):
        if ref.id not in seen:
            seen.add(ref.id)
            yield ref


def adhoc_query_response(
    response: AdhocQueryResponse, return_type: ReturnType | str
) -> etree._Element:
    """query:AdhocQueryResponse (ITI TF-2 3.18.4.1.3).

    LeafClass: model objects via ``leaf_class``, StoredObjects from their stored XML;
    ObjectRef: one rim:ObjectRef per object (``object_refs``, then ``objects``' ids).
    """
    nsmap = {"query": NSMAP["query"], "rs": NSMAP["rs"], "rim": NSMAP["rim"]}
    elem = etree.Element(QUERY.AdhocQueryResponse, nsmap=nsmap)
    elem.set("status", str(response.status))
    registry_error_list(elem, response.errors)
    # query.xsd: RegistryObjectList is required, empty on failure
    object_list = etree.SubElement(elem, RIM.RegistryObjectList)
    if return_type == ReturnType.OBJECT_REF:
        object_list.extend(object_ref(ref) for ref in _refs(response))
        return elem
    # Stored XML is parsed as untrusted input would be: no entities, no network
    parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
    for obj in response.objects:
        if isinstance(obj, StoredObject):
            object_list.append(_stored_leaf(obj, parser))
        else:
            object_list.append(leaf_class(obj))
    object_list.extend(object_ref(ref) for ref in response.object_refs)
    return elem


# The canonical LeafClass bytes the registry stores (``etree.tostring`` of
# ``ebxml.serialize.leaf_class``): one rim: element with the rim namespace declared on
# it first; every attribute written name="value", with '"', '<' and '>' escaped in
# values (XML 1.0 2.4, 3.1), so no value holds a '"' and the first '>' ends the start
# tag.  The whole start tag is matched at once; anything else (another namespace
# declaration, a prolog, other quoting) does not match and is parsed instead.  (The
# quantifiers are possessive: what one repetition matched is never given back.)
_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_CANONICAL_START = re.compile(
    rb'(<rim:[A-Za-z]+) xmlns:rim="'
    + re.escape(NSMAP["rim"].encode())
    + rb'"((?: [A-Za-z_][-\w.]*+="[^"<>]*+")*+)(/?)>'
)


@lru_cache(maxsize=64)  # statuses and homeCommunityIds: a handful of values
def _attribute(name: bytes, value: str) -> bytes:
    escaped = escape(value, _ATTRIBUTE_ESCAPES).encode("ascii", "xmlcharrefreplace")
    return b' %s="%s"' % (name, escaped)


def _written_over(attributes: bytes, name: bytes, attribute: bytes) -> bytes:
    """Canonical ``attributes`` (`` a="x" b="y"``, no '"' inside a value) with
    ``attribute`` in place of the one called ``name``, or added at the end.  An
    attribute starts the string or follows the closing quote of the one before, so
    ``" name="`` cannot be found inside a value."""
    key = b' %s="' % name
    if attributes.startswith(key):
        start = 0
    else:
        start = attributes.find(b'"' + key) + 1
        if start == 0:
            return attributes + attribute
    end = attributes.index(b'"', start + len(key)) + 1
    return b"".join((attributes[:start], attribute, attributes[end:]))


Piece = bytes | memoryview


def stored_leaf_pieces(stored: StoredObject) -> tuple[Piece, ...] | None:
    """What ``adhoc_query_response`` writes for ``stored``, without parsing it, as
    pieces of bytes to write one after the other: the start tag's status (and home)
    written over, its rim declaration left to the enclosing AdhocQueryResponse.  The
    stored bytes are not copied: a piece is a view of them, or a few bytes of a
    rewritten start tag.  None when the bytes are not in the canonical form (then only
    parsing them can tell)."""
    xml = stored.xml
    start = _CANONICAL_START.match(xml)
    if start is None:
        return None
    view = memoryview(xml)
    status = _attribute(b"status", stored.availability_status)
    home = _attribute(b"home", stored.home) if stored.home else None
    # In canonical attributes ' name="' is found only where that attribute starts (no
    # value holds a '"'; see ``_written_over``).
    begin, end = start.span(2)
    if xml.find(status, begin, end) >= 0:  # the stored status is the current one
        if home is None or xml.find(home, begin, end) >= 0:
            return view[: start.end(1)], view[begin:]
        if xml.find(b' home="', begin, end) < 0:  # added after the last attribute
            return view[: start.end(1)], view[begin:end], home, view[end:]
    element, attributes, _ = start.groups()
    attributes = _written_over(attributes, b"status", status)
    if home is not None:
        attributes = _written_over(attributes, b"home", home)
    return element, attributes, view[start.start(3) :]


def adhoc_query_response_parts(
    response: AdhocQueryResponse, return_type: ReturnType | str
) -> tuple[etree._Element, etree._Element | None, tuple[Piece, ...]]:
    """As :func:`adhoc_query_response`, with the StoredObjects of a LeafClass answer left
    as bytes (:func:`stored_leaf_pieces`): (the response, its rim:RegistryObjectList,
    the pieces that, written one after the other, are that list's children).  A
    response that holds anything else is built whole, with no pieces left over."""
    objects = response.objects
    eligible = (
        return_type != ReturnType.OBJECT_REF
        and bool(objects)
        and not response.object_refs
        and all(isinstance(o, StoredObject) for o in objects)
    )
    leaves = [stored_leaf_pieces(o) for o in objects] if eligible else []  # type: ignore[arg-type]
    if not eligible or any(pieces is None for pieces in leaves):
        elem = adhoc_query_response(response, return_type)
        return elem, elem.find(RIM.RegistryObjectList), ()
    elem = adhoc_query_response(replace(response, objects=()), return_type)
    return elem, elem.find(RIM.RegistryObjectList), tuple(chain.from_iterable(leaves))  # type: ignore[arg-type]


def parse_adhoc_query_response(elem: etree._Element) -> AdhocQueryResponse:
    """query:AdhocQueryResponse as a Document Consumer reads it: LeafClass objects back
    into model objects (ids kept as returned), ObjectRefs into ``object_refs``."""
    object_list = elem.find(RIM.RegistryObjectList)
    objects: tuple[RegistryObject, ...] = ()
    refs: tuple[ObjectRef, ...] = ()
    if object_list is not None:
        listed = parse_registry_object_list(object_list, replace_symbolic_ids=False).value
        objects, refs = listed.objects, listed.object_refs
    return AdhocQueryResponse(
        status=enum_or_text(ResponseStatus, elem.get("status", "")),
        objects=objects,
        object_refs=refs,
        errors=parse_registry_errors(elem),
    )


__all__ = [
    "Piece",
    "adhoc_query_request",
    "adhoc_query_response",
    "adhoc_query_response_parts",
    "parse_adhoc_query_request",
    "parse_adhoc_query_response",
    "parse_registry_errors",
    "parse_registry_response",
    "stored_leaf_pieces",
]
