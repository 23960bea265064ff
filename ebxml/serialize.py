"""XDS model -> ebRIM 3.0 elements: LeafClass objects, SubmitObjectsRequest,
ProvideAndRegister, RegistryResponse.

Elements are written in rim.xsd order (Slot*, Name?, Description?, VersionInfo?,
Classification*, ExternalIdentifier*) with slots, classifications and identifiers in
the order of the ``ebxml.mapping`` tables, followed by the object's Extras.  Nested
Classification/ExternalIdentifier ids are UUIDs derived from the parent id (uuid5), so
the canonical XML of an object is the same every time it is written.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from lxml import etree

from ebxml import mapping
from ebxml.errors import RegistryError
from ebxml.messages import RegistryResponse
from ebxml.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Extras,
    Folder,
    ObjectRef,
    RegistryObject,
    Submission,
    SubmissionSet,
)
from ebxml.tags import LCM, RIM, RS, XDSB, XOP
from ebxml.vocabulary import (
    EI_NAME,
    FOLDER_NODE,
    NSMAP,
    OBJECT_TYPE_ASSOCIATION,
    OBJECT_TYPE_CLASSIFICATION,
    OBJECT_TYPE_EXTERNAL_IDENTIFIER,
    OBJECT_TYPE_REGISTRY_PACKAGE,
    SUBMISSION_SET_NODE,
    UUID_PREFIX,
    DocumentEntryIdentifier,
    ErrorSeverity,
    FolderIdentifier,
    Slot,
    SubmissionSetIdentifier,
)
from ebxml.xml_text import ATTRIBUTE_ESCAPES, NOT_XML_CHAR, TEXT_ESCAPES

# rim.xsd LongName: a slot value holds at most 256 characters
_LONG_NAME = 256
_SubElement = etree.SubElement


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


# RFC 4122 4.1.1: the variant's two high bits, 10, set in the 17th hex digit
_VARIANT_DIGIT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}


def child_id(parent_id: str, scheme: str, index: int) -> str:
    """A stable UUID for the index-th nested object of ``scheme`` under ``parent_id``:
    ``uuid.uuid5(NAMESPACE_URL, "<parent>#<scheme>#<index>")`` (RFC 4122 4.3), computed
    on the digest's hex digits, without the ``uuid.UUID`` object."""
    name = f"{parent_id}#{scheme}#{index}".encode()
    x = hashlib.sha1(_URL_NAMESPACE + name).hexdigest()
    # the 13th hex digit is the version (5), the 17th carries the variant
    variant = _VARIANT_DIGIT[x[16]]
    return f"{UUID_PREFIX}{x[:8]}-{x[8:12]}-5{x[13:16]}-{variant}{x[17:20]}-{x[20:32]}"


def _set(elem: etree._Element, name: str, value: str | None) -> None:
    if value:
        elem.set(name, value)


# --- the canonical LeafClass bytes -------------------------------------------------------
#
# Written as text, not built as an lxml tree: the bytes are exactly what
# ``etree.tostring`` writes for the tree of the same elements (an object's ~90 elements
# cost lxml a namespace lookup each), and ``leaf_class`` parses them where a tree is
# wanted.  libxml2's serialisation, which these follow: the rim declaration first on
# the root and nowhere else; attributes in the order set, name="value"; in attribute
# values '&', '<', '>', '"', TAB, LF and CR escaped, in text '&', '<', '>' and CR;
# every non-ASCII character as a decimal character reference; an element without
# children or text as "<x/>", one whose text is empty as "<x></x>".

_ROOT_DECLARATION = f' xmlns:rim="{NSMAP["rim"]}"'
_ATTRIBUTE_SPECIALS = re.compile('[&<>"\t\n\r]')


def _attribute(name: str, value: str) -> str:
    if _ATTRIBUTE_SPECIALS.search(value):
        value = value.translate(ATTRIBUTE_ESCAPES)
    return f' {name}="{value}"'


# attributes whose values come back again and again (slot names, schemes, object
# types): escaped once
_known_attribute = lru_cache(maxsize=1024)(_attribute)


def _optional(name: str, value: str | None) -> str:
    return _attribute(name, value) if value else ""


def _element(tag: str, attributes: str, content: str) -> str:
    """``<rim:tag attributes>content</rim:tag>``, or ``<rim:tag attributes/>``."""
    if content:
        return f"<rim:{tag}{attributes}>{content}</rim:{tag}>"
    return f"<rim:{tag}{attributes}/>"


def _value(value: str | None) -> str:
    if value is None:
        return "<rim:Value/>"
    # four substring tests cost half a regular expression's search, and nearly every
    # value (codes, OIDs, times, ids) holds none of these
    if "&" in value or "<" in value or ">" in value or "\r" in value:
        value = value.translate(TEXT_ESCAPES)
    return f"<rim:Value>{value}</rim:Value>"


def _slot(name: str, values: Iterable[str]) -> str:
    value_list = "".join([_value(v) for v in values])
    if not value_list:
        return f"<rim:Slot{_known_attribute('name', name)}><rim:ValueList/></rim:Slot>"
    return (
        f"<rim:Slot{_known_attribute('name', name)}>"
        f"<rim:ValueList>{value_list}</rim:ValueList></rim:Slot>"
    )


def _localized(tag: str, value: str | None) -> str:
    if not value:
        return ""
    return f"<rim:{tag}><rim:LocalizedString{_attribute('value', value)}/></rim:{tag}>"


def _uri_values(uri: str) -> list[str]:
    """ITI TF-3 4.2.3.2.24: a URI longer than one slot value is split as "n|part"."""
    if len(uri) <= _LONG_NAME:
        return [uri]
    width = _LONG_NAME - 4
    return [f"{n}|{uri[i : i + width]}" for n, i in enumerate(range(0, len(uri), width), 1)]


def _slot_values(obj: Any, field: mapping.SlotField) -> list[str]:
    value = getattr(obj, field.field)
    if field.slot == Slot.SIZE and value is None:
        value = getattr(obj, "size_text", None)  # an unparseable size goes back as sent
    if value is None or value == ():
        return []
    if field.multi:
        return list(value)
    if field.slot == Slot.URI:
        return _uri_values(value)
    return [str(value)]


_CLASSIFICATION_TYPE = _attribute("objectType", OBJECT_TYPE_CLASSIFICATION)
_IDENTIFIER_TYPE = _attribute("objectType", OBJECT_TYPE_EXTERNAL_IDENTIFIER)


class _Writer:
    """Writes one RegistryObject's nested Classifications and ExternalIdentifiers."""

    def __init__(self, obj_id: str) -> None:
        self.obj_id = obj_id
        self.counts: dict[str, int] = {}
        self.parts: list[str] = []
        self._classified = _attribute("classifiedObject", obj_id)
        self._registry_object = _attribute("registryObject", obj_id)

    def next_id(self, scheme: str) -> str:
        index = self.counts.get(scheme, 0)
        self.counts[scheme] = index + 1
        return child_id(self.obj_id, scheme, index)

    def classification(
        self,
        scheme: str | None = None,
        node: str | None = None,
        node_representation: str | None = None,
        content: str = "",
    ) -> None:
        attributes = "".join(
            (
                _known_attribute("classificationScheme", scheme) if scheme else "",
                _known_attribute("classificationNode", node) if node else "",
                self._classified,
                f' id="{self.next_id(scheme or node or "")}"',  # a UUID URN: nothing to escape
                _CLASSIFICATION_TYPE,
                ""
                if node_representation is None
                else _attribute("nodeRepresentation", node_representation),
            )
        )
        self.parts.append(_element("Classification", attributes, content))

    def code(self, scheme: str, code: Code) -> None:
        content = _slot(Slot.CODING_SCHEME, [code.scheme]) + _localized("Name", code.display)
        self.classification(scheme, node_representation=code.code, content=content)

    def author(self, scheme: str, author: Author) -> None:
        slots = []
        for field in mapping.AUTHOR_FIELDS:
            value = getattr(author, field.field)
            values = list(value) if field.multi else ([] if value is None else [value])
            if values:
                slots.append(_slot(field.slot, values))
        # ITI TF-3 4.2.3.1.4: nodeRepresentation is the empty string
        self.classification(scheme, node_representation="", content="".join(slots))

    def identifier(self, scheme: str, value: str, name: str) -> None:
        attributes = "".join(
            (
                f' id="{self.next_id(scheme)}"',  # a UUID URN: nothing to escape
                _IDENTIFIER_TYPE,
                _known_attribute("identificationScheme", scheme),
                _attribute("value", value),
                self._registry_object,
            )
        )
        self.parts.append(_element("ExternalIdentifier", attributes, _localized("Name", name)))


def _body(
    obj: RegistryObject, table: mapping.ObjectMapping, package_node: str | None = None
) -> str:
    """Slots, Name, Description, VersionInfo, Classifications, ExternalIdentifiers."""
    extras: Extras = obj.extras
    parts = [
        _slot(field.slot, values) for field in table.slots if (values := _slot_values(obj, field))
    ]
    parts.extend(_slot(slot.name, slot.values) for slot in extras.slots)
    parts.append(_localized("Name", getattr(obj, "title", None)))
    parts.append(_localized("Description", getattr(obj, "comments", None)))
    version = getattr(obj, "version", None)
    if version:
        parts.append(_element("VersionInfo", _attribute("versionName", version), ""))

    writer = _Writer(obj.entry_uuid)
    if package_node is not None:
        writer.classification(node=package_node)
    if table.author_scheme is not None:
        for author in obj.authors:  # type: ignore[union-attr]
            writer.author(table.author_scheme, author)
    for code_field in table.codes:
        value = getattr(obj, code_field.field)
        codes = value if code_field.multi else ([] if value is None else [value])
        for code in codes:
            writer.code(code_field.scheme, code)
    if table.limited_metadata_node is not None and getattr(obj, "limited_metadata", False):
        writer.classification(node=table.limited_metadata_node)
    for extra in extras.classifications:
        content = "".join(_slot(slot.name, slot.values) for slot in extra.slots)
        writer.classification(
            extra.scheme,
            node_representation=extra.node_representation,
            content=content + _localized("Name", extra.name),
        )
    for id_field in table.identifiers:
        value = getattr(obj, id_field.field)
        if value is not None:
            writer.identifier(id_field.scheme, value, EI_NAME.get(id_field.scheme, ""))
    for extra_id in extras.external_identifiers:
        writer.identifier(extra_id.scheme, extra_id.value, extra_id.name)
    return "".join(parts) + "".join(writer.parts)


def _common(obj: RegistryObject, object_type: str | None, status: str | None) -> str:
    status = status or obj.availability_status
    return "".join(
        (
            _ROOT_DECLARATION,
            _attribute("id", obj.entry_uuid),
            _optional("lid", getattr(obj, "logical_id", None)),
            _known_attribute("objectType", object_type) if object_type else "",
            _known_attribute("status", status) if status else "",
            _optional("home", obj.home),
        )
    )


def _extrinsic_object(entry: DocumentEntry, status: str | None) -> str:
    attributes = _common(entry, entry.object_type, status) + _optional("mimeType", entry.mime_type)
    return _element("ExtrinsicObject", attributes, _body(entry, mapping.DOCUMENT_ENTRY))


def _submission_set(submission_set: SubmissionSet, status: str | None) -> str:
    # ITI TF-3 4.2.3.3: the SubmissionSet is the RegistryPackage classified by this node
    content = _body(submission_set, mapping.SUBMISSION_SET, SUBMISSION_SET_NODE)
    return _element(
        "RegistryPackage", _common(submission_set, OBJECT_TYPE_REGISTRY_PACKAGE, status), content
    )


def _folder(folder: Folder, status: str | None) -> str:
    # ITI TF-3 4.2.3.4: the Folder is the RegistryPackage classified by this node
    content = _body(folder, mapping.FOLDER, FOLDER_NODE)
    return _element(
        "RegistryPackage", _common(folder, OBJECT_TYPE_REGISTRY_PACKAGE, status), content
    )


def _association(association: Association, status: str | None) -> str:
    attributes = "".join(
        (
            _common(association, OBJECT_TYPE_ASSOCIATION, status),
            _attribute("associationType", association.association_type),
            _attribute("sourceObject", association.source),
            _attribute("targetObject", association.target),
        )
    )
    return _element("Association", attributes, _body(association, mapping.ASSOCIATION))


_LEAF_CLASS: dict[type, Callable[[Any, str | None], str]] = {
    DocumentEntry: _extrinsic_object,
    SubmissionSet: _submission_set,
    Folder: _folder,
    Association: _association,
}


def leaf_class_bytes(obj: RegistryObject, *, status: str | None = None) -> bytes:
    """The canonical ebRIM XML of one object (ITI TF-3 4.2.3), as LeafClass returns it
    and the registry stores it: what ``etree.tostring`` writes for ``leaf_class(obj)``;
    ``status``, when given, in place of the object's own availabilityStatus (the
    registry's, as it stores the object).  ValueError when a value holds a character
    XML cannot (XML 1.0 2.2)."""
    text = _LEAF_CLASS[type(obj)](obj, status)
    bad = NOT_XML_CHAR.search(text)
    if bad is not None:
        raise ValueError(f"a value holds a character XML cannot: {bad.group()!r}")
    return text.encode("ascii", "xmlcharrefreplace")


# the bytes are xdsi's own: nothing to resolve, nothing to fetch
_OWN_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def leaf_class(obj: RegistryObject) -> etree._Element:
    """The canonical ebRIM element of one object (ITI TF-3 4.2.3), as LeafClass returns it."""
    return etree.fromstring(leaf_class_bytes(obj), _OWN_XML)


_PATIENT_ID_SCHEMES = frozenset(
    {
        DocumentEntryIdentifier.PATIENT_ID,
        SubmissionSetIdentifier.PATIENT_ID,
        FolderIdentifier.PATIENT_ID,
    }
)


def with_patient_id(canonical_xml: bytes, patient_id: str) -> bytes:
    """The canonical LeafClass XML of a DocumentEntry, SubmissionSet or Folder with its
    patientId ExternalIdentifier set to ``patient_id`` (a patient merge, ITI TF-2
    3.8.4.2.3, moves the object to the surviving id).  The bytes are the registry's own,
    parsed without entity or network access."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    elem = etree.fromstring(canonical_xml, parser)
    for identifier in elem.iterchildren(RIM.ExternalIdentifier):
        if identifier.get("identificationScheme") in _PATIENT_ID_SCHEMES:
            identifier.set("value", patient_id)
    return etree.tostring(elem)


def object_ref(ref: ObjectRef) -> etree._Element:
    elem = etree.Element(RIM.ObjectRef, nsmap={"rim": NSMAP["rim"]}, id=ref.id)
    _set(elem, "home", ref.home)
    return elem


def _registry_object_list(parent: etree._Element, submission: Submission) -> etree._Element:
    object_list = _SubElement(parent, RIM.RegistryObjectList)
    objects: list[RegistryObject] = [*submission.document_entries]
    if submission.submission_set is not None:
        objects.append(submission.submission_set)
    objects += [*submission.folders, *submission.associations]
    object_list.extend(leaf_class(obj) for obj in objects)
    object_list.extend(object_ref(ref) for ref in submission.object_refs)
    return object_list


def submit_objects_request(submission: Submission) -> etree._Element:
    """lcm:SubmitObjectsRequest (ITI TF-2 3.42.4.1.2)."""
    nsmap = {"lcm": NSMAP["lcm"], "rim": NSMAP["rim"]}
    elem = etree.Element(LCM.SubmitObjectsRequest, nsmap=nsmap)
    _registry_object_list(elem, submission)
    return elem


_CID_SAFE = "@!$&'()*+,;=:~-._"
_CID_UNCHANGED = re.compile(r"[A-Za-z0-9@!$&'()*+,;=:~._-]*")  # what quote() leaves


def cid_href(content_id: str) -> str:
    """RFC 2392: a cid: URL is the Content-ID with URL-unsafe characters %-encoded."""
    if _CID_UNCHANGED.fullmatch(content_id):
        return "cid:" + content_id
    return "cid:" + quote(content_id, safe=_CID_SAFE)


def provide_and_register_request(
    submission: Submission, documents: Sequence[tuple[str, str]]
) -> etree._Element:
    """xdsb:ProvideAndRegisterDocumentSetRequest (ITI TF-2 3.41.4.1.2); each document is
    (ExtrinsicObject id, Content-ID of its MTOM part), written as an xop:Include."""
    nsmap = {"xdsb": NSMAP["xdsb"], "lcm": NSMAP["lcm"], "rim": NSMAP["rim"], "xop": NSMAP["xop"]}
    elem = etree.Element(XDSB.ProvideAndRegisterDocumentSetRequest, nsmap=nsmap)
    elem.append(submit_objects_request(submission))
    for doc_id, content_id in documents:
        document = _SubElement(elem, XDSB.Document, id=doc_id)
        _SubElement(document, XOP.Include, href=cid_href(content_id))
    return elem


def highest_severity(errors: Iterable[RegistryError]) -> ErrorSeverity:
    return (
        ErrorSeverity.ERROR
        if any(e.severity == ErrorSeverity.ERROR for e in errors)
        else ErrorSeverity.WARNING
    )


def registry_error_list(parent: etree._Element, errors: Sequence[RegistryError]) -> None:
    """rs:RegistryErrorList (ebRS 3.0; ITI TF-3 4.2.4), only when there are errors."""
    if not errors:
        return
    error_list = _SubElement(parent, RS.RegistryErrorList)
    error_list.set("highestSeverity", highest_severity(errors))
    for error in errors:
        e = _SubElement(error_list, RS.RegistryError)
        e.set("codeContext", error.context)
        e.set("errorCode", str(error.code))
        _set(e, "location", error.location)
        e.set("severity", str(error.severity))


def registry_response(response: RegistryResponse) -> etree._Element:
    """rs:RegistryResponse (ITI TF-2 3.42.4.2, 3.41.4.2)."""
    elem = etree.Element(RS.RegistryResponse, nsmap={"rs": NSMAP["rs"]})
    elem.set("status", str(response.status))
    registry_error_list(elem, response.errors)
    return elem


__all__ = [
    "with_patient_id",
    "child_id",
    "cid_href",
    "highest_severity",
    "leaf_class",
    "leaf_class_bytes",
    "object_ref",
    "provide_and_register_request",
    "registry_error_list",
    "registry_response",
    "submit_objects_request",
]
