"""ebRIM/ebRS 2.1 metadata files -> ebRIM 3.0, as the toolkit converts them before sending.

Older testkit metadata is written in the 2.1 namespaces (``<XDSb/>`` in the plan asks
for XDS.b, which is 3.0 only).  The changes are the ones between the two schema
versions that XDS.b metadata touches (ebRIM 3.0 rim.xsd, ebRS 3.0 lcm.xsd):

- namespaces: ``rim:xsd:2.1`` -> ``xsd:rim:3.0``; ``registry:xsd:2.1`` SubmitObjectsRequest
  -> ``xsd:lcm:3.0``;
- ``LeafRegistryObjectList`` -> ``RegistryObjectList``;
- child order of a RegistryObject: 3.0 is Slot*, Name?, Description?, VersionInfo?,
  Classification*, ExternalIdentifier* (2.1 put Name and Description first);
- every Identifiable has an ``id`` (3.0 makes it required): missing ones get a UUID;
- ExternalIdentifier names its ``registryObject`` and a nested Classification its
  ``classifiedObject`` (required in 3.0), taken from the enclosing object;
- ``associationType`` short names become the 3.0 / ITI TF-3 4.2.2 URNs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from lxml import etree

from ebxml.vocabulary import NS_LCM, NS_RIM, UUID_PREFIX, AssociationType

NS_RIM21 = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
NS_RS21 = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
NAMESPACES_21 = frozenset({NS_RIM21, NS_RS21})

# ebRIM 2.1 association type names (ebRIM 2.1 table "Pre-defined Association Types",
# ITI TF-2 (2007) XDS.a) -> the ebRIM 3.0 / ITI TF-3 4.2.2 URNs
ASSOCIATION_TYPES: dict[str, str] = {
    "HasMember": AssociationType.HAS_MEMBER,
    "RPLC": AssociationType.RPLC,
    "XFRM": AssociationType.XFRM,
    "APND": AssociationType.APND,
    "XFRM_RPLC": AssociationType.XFRM_RPLC,
    "signs": AssociationType.SIGNS,
}
# rim.xsd 3.0 RegistryObjectType content, in order; other children follow these
_HEAD_ORDER = ("Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier")
_IDENTIFIABLES = frozenset(
    {
        "ExtrinsicObject",
        "RegistryPackage",
        "Association",
        "Classification",
        "ExternalIdentifier",
        "ObjectRef",
    }
)
_REGISTRY_OBJECTS = _IDENTIFIABLES - {"ObjectRef"}
# 2.1 element name -> (3.0 namespace, 3.0 name); anything else keeps its local name
_RENAMES: dict[tuple[str, str], tuple[str, str]] = {
    (NS_RS21, "SubmitObjectsRequest"): (NS_LCM, "SubmitObjectsRequest"),
    (NS_RIM21, "LeafRegistryObjectList"): (NS_RIM, "RegistryObjectList"),
}
_TARGET_NS = {NS_RIM21: NS_RIM, NS_RS21: NS_LCM}


def is_ebrim21(root: etree._Element) -> bool:
    """True when the document is written in the ebXML RegRep 2.1 namespaces."""
    return etree.QName(root).namespace in NAMESPACES_21


def _rename(elem: etree._Element) -> etree._Element:
    qname = etree.QName(elem)
    namespace, name = _RENAMES.get(
        (qname.namespace or "", qname.localname),
        (_TARGET_NS.get(qname.namespace or "", qname.namespace or ""), qname.localname),
    )
    nsmap = {"rim": NS_RIM} if namespace == NS_RIM else {"lcm": NS_LCM, "rim": NS_RIM}
    new = etree.Element(f"{{{namespace}}}{name}" if namespace else name, nsmap=nsmap)
    for key, value in elem.attrib.items():
        new.set(key, value)
    new.text = elem.text
    return new


def _convert(
    elem: etree._Element, parent_id: str | None, new_id: Callable[[], str]
) -> etree._Element:
    new = _rename(elem)
    name = etree.QName(new).localname
    if name in _IDENTIFIABLES and not new.get("id"):
        new.set("id", new_id())
    if name == "ExternalIdentifier" and parent_id and not new.get("registryObject"):
        new.set("registryObject", parent_id)
    if name == "Classification" and parent_id and not new.get("classifiedObject"):
        new.set("classifiedObject", parent_id)
    if name == "Association":
        kind = new.get("associationType", "")
        new.set("associationType", ASSOCIATION_TYPES.get(kind, kind))
    own_id = new.get("id") if name in _REGISTRY_OBJECTS else parent_id
    children = [_convert(child, own_id, new_id) for child in elem if isinstance(child.tag, str)]
    if name in _REGISTRY_OBJECTS:
        rank = {n: i for i, n in enumerate(_HEAD_ORDER)}
        children.sort(key=lambda c: rank.get(etree.QName(c).localname, len(_HEAD_ORDER)))
    for child in children:
        child.tail = None
        new.append(child)
    return new


def to_ebrim30(root: etree._Element, new_id: Callable[[], str] | None = None) -> etree._Element:
    """The ebRIM 3.0 form of a 2.1 SubmitObjectsRequest (or LeafRegistryObjectList);
    a 3.0 document is returned unchanged."""
    if not is_ebrim21(root):
        return root
    factory = new_id or (lambda: f"{UUID_PREFIX}{uuid.uuid4()}")
    return _convert(root, None, factory)


__all__ = ["ASSOCIATION_TYPES", "NAMESPACES_21", "is_ebrim21", "to_ebrim30"]
