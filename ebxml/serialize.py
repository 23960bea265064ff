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
import uuid
from collections.abc import Callable, Iterable, Sequence
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

# rim.xsd LongName: a slot value holds at most 256 characters
_LONG_NAME = 256
_SubElement = etree.SubElement


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def child_id(parent_id: str, scheme: str, index: int) -> str:
    """A stable UUID for the index-th nested object of ``scheme`` under ``parent_id``:
    ``uuid.uuid5(NAMESPACE_URL, "<parent>#<scheme>#<index>")`` (RFC 4122 4.3), computed
    without the ``uuid.UUID`` object."""
    name = f"{parent_id}#{scheme}#{index}".encode()
    digest = bytearray(hashlib.sha1(_URL_NAMESPACE + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    x = digest.hex()
    return f"{UUID_PREFIX}{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _set(elem: etree._Element, name: str, value: str | None) -> None:
    if value:
        elem.set(name, value)


def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> None:
    slot = _SubElement(parent, RIM.Slot, name=name)
    value_list = _SubElement(slot, RIM.ValueList)
    for value in values:
        _SubElement(value_list, RIM.Value).text = value


def _localized(parent: etree._Element, tag: str, value: str | None) -> None:
    if value:
        _SubElement(_SubElement(parent, tag), RIM.LocalizedString, value=value)


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


class _Writer:
    """Writes one RegistryObject's children in rim.xsd order."""

    def __init__(self, elem: etree._Element, obj_id: str) -> None:
        self.elem = elem
        self.obj_id = obj_id
        self.counts: dict[str, int] = {}

    def next_id(self, scheme: str) -> str:
        index = self.counts.get(scheme, 0)
        self.counts[scheme] = index + 1
        return child_id(self.obj_id, scheme, index)

    def classification(
        self,
        scheme: str | None = None,
        node: str | None = None,
        node_representation: str | None = None,
    ) -> etree._Element:
        c = _SubElement(self.elem, RIM.Classification)
        _set(c, "classificationScheme", scheme)
        _set(c, "classificationNode", node)
        c.set("classifiedObject", self.obj_id)
        c.set("id", self.next_id(scheme or node or ""))
        c.set("objectType", OBJECT_TYPE_CLASSIFICATION)
        if node_representation is not None:
            c.set("nodeRepresentation", node_representation)
        return c

    def code(self, scheme: str, code: Code) -> None:
        c = self.classification(scheme, node_representation=code.code)
        _slot(c, Slot.CODING_SCHEME, [code.scheme])
        _localized(c, RIM.Name, code.display)

    def author(self, scheme: str, author: Author) -> None:
        # ITI TF-3 4.2.3.1.4: nodeRepresentation is the empty string
        c = self.classification(scheme, node_representation="")
        for field in mapping.AUTHOR_FIELDS:
            value = getattr(author, field.field)
            values = list(value) if field.multi else ([] if value is None else [value])
            if values:
                _slot(c, field.slot, values)

    def identifier(self, scheme: str, value: str, name: str) -> None:
        e = _SubElement(self.elem, RIM.ExternalIdentifier)
        e.set("id", self.next_id(scheme))
        e.set("objectType", OBJECT_TYPE_EXTERNAL_IDENTIFIER)
        e.set("identificationScheme", scheme)
        e.set("value", value)
        e.set("registryObject", self.obj_id)
        _localized(e, RIM.Name, name)


def _write_body(
    elem: etree._Element,
    obj: RegistryObject,
    table: mapping.ObjectMapping,
    package_node: str | None = None,
) -> etree._Element:
    """Slots, Name, Description, VersionInfo, Classifications, ExternalIdentifiers."""
    extras: Extras = obj.extras
    for field in table.slots:
        values = _slot_values(obj, field)
        if values:
            _slot(elem, field.slot, values)
    for slot in extras.slots:
        _slot(elem, slot.name, slot.values)
    _localized(elem, RIM.Name, getattr(obj, "title", None))
    _localized(elem, RIM.Description, getattr(obj, "comments", None))
    version = getattr(obj, "version", None)
    if version:
        _SubElement(elem, RIM.VersionInfo, versionName=version)

    writer = _Writer(elem, obj.entry_uuid)
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
        c = writer.classification(extra.scheme, node_representation=extra.node_representation)
        for slot in extra.slots:
            _slot(c, slot.name, slot.values)
        _localized(c, RIM.Name, extra.name)
    for id_field in table.identifiers:
        value = getattr(obj, id_field.field)
        if value is not None:
            writer.identifier(id_field.scheme, value, EI_NAME.get(id_field.scheme, ""))
    for extra_id in extras.external_identifiers:
        writer.identifier(extra_id.scheme, extra_id.value, extra_id.name)
    return elem


def _common(elem: etree._Element, obj: RegistryObject, object_type: str | None) -> None:
    elem.set("id", obj.entry_uuid)
    _set(elem, "lid", getattr(obj, "logical_id", None))
    _set(elem, "objectType", object_type)
    _set(elem, "status", obj.availability_status)
    _set(elem, "home", obj.home)


def _extrinsic_object(entry: DocumentEntry) -> etree._Element:
    elem = etree.Element(RIM.ExtrinsicObject, nsmap={"rim": NSMAP["rim"]})
    _common(elem, entry, entry.object_type)
    _set(elem, "mimeType", entry.mime_type)
    return _write_body(elem, entry, mapping.DOCUMENT_ENTRY)


def _submission_set(submission_set: SubmissionSet) -> etree._Element:
    elem = etree.Element(RIM.RegistryPackage, nsmap={"rim": NSMAP["rim"]})
    _common(elem, submission_set, OBJECT_TYPE_REGISTRY_PACKAGE)
    # ITI TF-3 4.2.3.3: the SubmissionSet is the RegistryPackage classified by this node
    return _write_body(elem, submission_set, mapping.SUBMISSION_SET, SUBMISSION_SET_NODE)


def _folder(folder: Folder) -> etree._Element:
    elem = etree.Element(RIM.RegistryPackage, nsmap={"rim": NSMAP["rim"]})
    _common(elem, folder, OBJECT_TYPE_REGISTRY_PACKAGE)
    # ITI TF-3 4.2.3.4: the Folder is the RegistryPackage classified by this node
    return _write_body(elem, folder, mapping.FOLDER, FOLDER_NODE)


def _association(association: Association) -> etree._Element:
    elem = etree.Element(RIM.Association, nsmap={"rim": NSMAP["rim"]})
    _common(elem, association, OBJECT_TYPE_ASSOCIATION)
    elem.set("associationType", association.association_type)
    elem.set("sourceObject", association.source)
    elem.set("targetObject", association.target)
    return _write_body(elem, association, mapping.ASSOCIATION)


_LEAF_CLASS: dict[type, Callable[[Any], etree._Element]] = {
    DocumentEntry: _extrinsic_object,
    SubmissionSet: _submission_set,
    Folder: _folder,
    Association: _association,
}


def leaf_class(obj: RegistryObject) -> etree._Element:
    """The canonical ebRIM element of one object (ITI TF-3 4.2.3), as LeafClass returns it."""
    return _LEAF_CLASS[type(obj)](obj)


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


def cid_href(content_id: str) -> str:
    """RFC 2392: a cid: URL is the Content-ID with URL-unsafe characters %-encoded."""
    return "cid:" + quote(content_id, safe="@!$&'()*+,;=:~-._")


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
    "object_ref",
    "provide_and_register_request",
    "registry_error_list",
    "registry_response",
    "submit_objects_request",
]
