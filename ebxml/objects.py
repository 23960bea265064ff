"""One ebRIM 3.0 RegistryObject element -> one XDS model object.

``ObjectReader`` reads the objects of one RegistryObjectList: it resolves ids through
the symbolic-id map, attaches top-level Classifications/ExternalIdentifiers to the
object they name, places slots, classifications and identifiers by the tables in
``ebxml.mapping`` and keeps the rest as ``Extras``.  Problems the model cannot hold are
collected as RegistryErrors with the caller's error code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields
from functools import cache
from typing import Any, NamedTuple, TypeVar

from lxml import etree

from ebxml import mapping
from ebxml.errors import ErrorCode, RegistryError
from ebxml.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    ExtraClassification,
    ExtraExternalIdentifier,
    Extras,
    ExtraSlot,
    Folder,
    RegistryObject,
    SubmissionSet,
)
from ebxml.tags import RIM
from ebxml.vocabulary import FOLDER_NODE, SUBMISSION_SET_NODE, Slot

T = TypeVar("T")


# --- raw ebRIM pieces ------------------------------------------------------------------


# Read once per nested element and dropped when the object is built: tuples, which
# cost a third of a frozen dataclass to make (a DocumentEntry holds a dozen of them)
class _Classification(NamedTuple):
    scheme: str
    node: str
    node_representation: str
    name: str
    slots: tuple[ExtraSlot, ...]


class _Identifier(NamedTuple):
    scheme: str
    value: str
    name: str


def child_elements(parent: etree._Element, tag: str | None = None) -> Iterator[etree._Element]:
    """Child elements (comments and processing instructions skipped)."""
    for child in parent.iterchildren(tag):
        if isinstance(child.tag, str):
            yield child


def _first_child(elem: etree._Element, tag: str) -> etree._Element | None:
    # iterchildren runs in lxml's C code; find() would go through its Python ElementPath
    return next(elem.iterchildren(tag), None)


def _localized(elem: etree._Element, tag: str) -> str | None:
    """Name/Description: the first LocalizedString/@value, None when absent or empty."""
    holder = _first_child(elem, tag)
    if holder is None:
        return None
    string = _first_child(holder, RIM.LocalizedString)
    value = None if string is None else string.get("value")
    return value or None


def _slots(elem: etree._Element) -> tuple[ExtraSlot, ...]:
    """Each Slot child: its name and the text of every ValueList/Value."""
    # loops, not nested generators: a DocumentEntry has some forty slots in all
    slots = []
    for slot in elem.iterchildren(_SLOT):
        values = []
        for value_list in slot.iterchildren(_VALUE_LIST):
            for value in value_list.iterchildren(_VALUE):
                text = value.text
                values.append(text.strip() if text else "")
        slots.append(ExtraSlot(slot.get("name", ""), tuple(values)))
    return tuple(slots)


_SLOT, _VALUE_LIST, _VALUE = RIM.Slot, RIM.ValueList, RIM.Value


def read_classification(elem: etree._Element) -> _Classification:
    return _Classification(
        scheme=elem.get("classificationScheme", ""),
        node=elem.get("classificationNode", ""),
        node_representation=elem.get("nodeRepresentation", ""),
        name=_localized(elem, RIM.Name) or "",
        slots=_slots(elem),
    )


def read_identifier(elem: etree._Element) -> _Identifier:
    return _Identifier(
        elem.get("identificationScheme", ""),
        elem.get("value", ""),
        _localized(elem, RIM.Name) or "",
    )


# --- building model objects ----------------------------------------------------------------


@cache
def _field_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in fields(cls))  # type: ignore[arg-type]


class ObjectReader:
    """Reads one RegistryObjectList: id mapping, detached children, collected errors."""

    def __init__(self, code: ErrorCode, ids: dict[str, str]) -> None:
        self.code = code
        self.ids = ids
        self.errors: list[RegistryError] = []
        self.detached_classifications: dict[str, list[_Classification]] = {}
        self.detached_identifiers: dict[str, list[_Identifier]] = {}
        self.package_nodes: dict[str, str] = {}

    def ref(self, value: str | None) -> str | None:
        return None if value is None else self.ids.get(value, value)

    def error(self, context: str, location: str) -> None:
        self.errors.append(RegistryError(self.code, context, location))

    def not_saved(self, context: str, location: str) -> None:
        """ITI TF-3 Table 4.2.4.1-2: metadata xdsi has no place for is answered with the
        XDSExtraMetadataNotSaved warning; the submission still succeeds."""
        self.errors.append(
            RegistryError.warning(ErrorCode.XDSExtraMetadataNotSaved, context, location)
        )

    def common(self, elem: etree._Element) -> dict[str, Any]:
        """Attributes every RegistryObject shares (ebRIM 3.0 RegistryObjectType)."""
        version = _first_child(elem, RIM.VersionInfo)
        return {
            "entry_uuid": self.ref(elem.get("id", "")),
            "availability_status": elem.get("status"),
            "logical_id": self.ref(elem.get("lid")),
            "version": None if version is None else version.get("versionName"),
            "home": elem.get("home"),
            "title": _localized(elem, RIM.Name),
            "comments": _localized(elem, RIM.Description),
        }

    def build(
        self, cls: type[T], table: mapping.ObjectMapping, elem: etree._Element, **attrs: Any
    ) -> T:
        """One model object from its element, placing slots/classifications/identifiers
        by ``table`` and keeping what the table does not know in ``Extras``."""
        return self.make(cls, self.values(cls, table, elem, **attrs), elem.get("id", ""))

    def values(
        self, cls: type[T], table: mapping.ObjectMapping, elem: etree._Element, **attrs: Any
    ) -> dict[str, Any]:
        """What :meth:`build` makes ``cls`` of, by field name (more keys than fields when
        the element holds what ``cls`` does not keep; :meth:`make` tells)."""
        sent_id = elem.get("id", "")
        values = self.common(elem) | attrs
        entry_uuid = values["entry_uuid"]
        classifications = [read_classification(c) for c in child_elements(elem, RIM.Classification)]
        classifications += self.detached_classifications.get(entry_uuid, [])
        identifiers = [read_identifier(e) for e in child_elements(elem, RIM.ExternalIdentifier)]
        identifiers += self.detached_identifiers.get(entry_uuid, [])

        extra_slots = self._place_slots(values, table, _slots(elem), sent_id)
        extra_classifications = self._place_classifications(values, table, classifications, sent_id)
        extra_identifiers = self._place_identifiers(values, table, identifiers, sent_id)
        values["extras"] = Extras(extra_slots, extra_classifications, extra_identifiers)
        return values

    def make(self, cls: type[T], values: dict[str, Any], sent_id: str) -> T:
        """``cls`` of ``values``, each key it has no field for reported as not kept."""
        names = _field_names(cls)
        for key, value in values.items():
            if key not in names and value is not None:
                self.not_saved(f"{cls.__name__} {key} is not kept", sent_id)
        return cls(**{k: v for k, v in values.items() if k in names})

    def _place_slots(
        self,
        values: dict[str, Any],
        table: mapping.ObjectMapping,
        slots: Iterable[ExtraSlot],
        location: str,
    ) -> tuple[ExtraSlot, ...]:
        extras: list[ExtraSlot] = []
        seen: set[str] = set()
        for slot in slots:
            if slot.name in seen:
                # ebRIM 3.0 2.8.2: slot names are unique within a RegistryObject
                self.error(f"Slot {slot.name} is repeated", location)
                continue
            seen.add(slot.name)
            target = table.slot_field(slot.name)
            if target is None:
                extras.append(slot)
            elif target.multi:
                values[target.field] = slot.values
            else:
                values[target.field] = self._single(slot, location)
        return tuple(extras)

    def _single(self, slot: ExtraSlot, location: str) -> str | None:
        if len(slot.values) <= 1:
            return slot.values[0] if slot.values else None
        if slot.name == Slot.URI:
            return _join_uri(slot.values, lambda msg: self.error(msg, location))
        self.error(f"Slot {slot.name} must have a single value", location)
        return slot.values[0]

    def _place_classifications(
        self,
        values: dict[str, Any],
        table: mapping.ObjectMapping,
        classifications: Iterable[_Classification],
        location: str,
    ) -> tuple[ExtraClassification, ...]:
        extras: list[ExtraClassification] = []
        authors: list[Author] = []
        for c in classifications:
            if table.limited_metadata_node and table.limited_metadata_node in (c.node, c.scheme):
                values["limited_metadata"] = True
            elif c.node in (SUBMISSION_SET_NODE, FOLDER_NODE):
                continue  # what the package is; read by _package_kind
            elif table.author_scheme is not None and c.scheme == table.author_scheme:
                authors.append(self._author(c, location))
            elif (target := table.code_field(c.scheme)) is not None:
                code = Code(c.node_representation, _first(c.slots, Slot.CODING_SCHEME), c.name)
                if target.multi:
                    values[target.field] = (*values.get(target.field, ()), code)
                elif target.field in values:
                    self.error(f"{target.field} must be given once", location)
                else:
                    values[target.field] = code
            elif c.scheme:
                extras.append(ExtraClassification(c.scheme, c.node_representation, c.name, c.slots))
            else:
                self.not_saved(f"Classification to node {c.node or '(none)'} is not kept", location)
        if authors:
            values["authors"] = tuple(authors)
        return tuple(extras)

    def _author(self, c: _Classification, location: str) -> Author:
        values: dict[str, Any] = {}
        for slot in c.slots:
            target = next((f for f in mapping.AUTHOR_FIELDS if f.slot == slot.name), None)
            if target is None:
                self.not_saved(f"author slot {slot.name} is not kept", location)
                continue
            if target.field in values:
                self.error(f"Author slot {slot.name} is repeated", location)
            elif target.multi:
                values[target.field] = slot.values
            else:
                values[target.field] = self._single(slot, location)
        return Author(**values)

    def _place_identifiers(
        self,
        values: dict[str, Any],
        table: mapping.ObjectMapping,
        identifiers: Iterable[_Identifier],
        location: str,
    ) -> tuple[ExtraExternalIdentifier, ...]:
        extras: list[ExtraExternalIdentifier] = []
        for i in identifiers:
            target = table.identifier_field(i.scheme)
            if target is None:
                extras.append(ExtraExternalIdentifier(i.scheme, i.value, i.name))
            elif target.field in values:
                self.error(f"ExternalIdentifier {i.name or i.scheme} must be given once", location)
            else:
                values[target.field] = i.value
        return tuple(extras)


def _first(slots: Iterable[ExtraSlot], name: str) -> str:
    slot = next((s for s in slots if s.name == name), None)
    return slot.values[0] if slot is not None and slot.values else ""


def _join_uri(parts: tuple[str, ...], report: Callable[[str], None]) -> str | None:
    """ITI TF-3 4.2.3.2.24: a URI longer than a slot value is sent as "1|...", "2|..."."""
    numbered: dict[int, str] = {}
    for part in parts:
        index, sep, text = part.partition("|")
        if not sep or not index.isdigit():
            report("URI slot with several values must number them as n|text")
            return parts[0]
        numbered[int(index)] = text
    if sorted(numbered) != list(range(1, len(parts) + 1)):
        report("URI slot parts must be numbered 1..n")
    return "".join(numbered[i] for i in sorted(numbered))


def _document_entry(reader: ObjectReader, elem: etree._Element) -> DocumentEntry:
    values = reader.values(
        DocumentEntry,
        mapping.DOCUMENT_ENTRY,
        elem,
        object_type=elem.get("objectType", ""),
        mime_type=elem.get("mimeType"),
    )
    size = values.get("size")
    if size is not None:
        text = str(size)  # the slot value, a str until here
        # ITI TF-3 4.2.3.2.20: size is an integer number of octets; anything else is
        # kept as sent (size_text) for validation to report
        if text.isascii() and text.isdigit():
            values["size"] = int(text)
        else:
            values["size"], values["size_text"] = None, text
    return reader.make(DocumentEntry, values, elem.get("id", ""))


def _association(reader: ObjectReader, elem: etree._Element) -> Association:
    return reader.build(
        Association,
        mapping.ASSOCIATION,
        elem,
        association_type=elem.get("associationType", ""),
        source=reader.ref(elem.get("sourceObject", "")),
        target=reader.ref(elem.get("targetObject", "")),
    )


def _package_kind(reader: ObjectReader, elem: etree._Element) -> str | None:
    """ITI TF-3 4.2.3.3 / 4.2.3.4: a RegistryPackage is a SubmissionSet or a Folder by its
    classificationNode, nested or given as a separate Classification in the list."""
    for c in child_elements(elem, RIM.Classification):
        node = c.get("classificationNode")
        if node in (SUBMISSION_SET_NODE, FOLDER_NODE):
            return node
    return reader.package_nodes.get(reader.ref(elem.get("id", "")) or "")


def _package(reader: ObjectReader, elem: etree._Element) -> SubmissionSet | Folder | None:
    kind = _package_kind(reader, elem)
    if kind == SUBMISSION_SET_NODE:
        return reader.build(SubmissionSet, mapping.SUBMISSION_SET, elem)
    if kind == FOLDER_NODE:
        return reader.build(Folder, mapping.FOLDER, elem)
    return None


BUILDERS: dict[str, Callable[[ObjectReader, etree._Element], RegistryObject | None]] = {
    RIM.ExtrinsicObject: _document_entry,
    RIM.RegistryPackage: _package,
    RIM.Association: _association,
}


__all__ = [
    "BUILDERS",
    "ObjectReader",
    "child_elements",
    "read_classification",
    "read_identifier",
]
