"""ebRIM 3.0 -> XDS model: lcm:SubmitObjectsRequest, ProvideAndRegister, LeafClass lists.

Pure: elements come already parsed by soap/'s hardened parser.  Structural problems the
model cannot hold (a single-valued slot sent twice, two classCodes, an unparseable
size) are reported as ``RegistryError``s next to the value; every XDS rule beyond that
is ``ebxml.validate``'s.  Where each attribute lives is the table in ``ebxml.mapping``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import unquote

from lxml import etree

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import DocumentContent, ProvideAndRegisterRequest, RegistryResponse
from ebxml.model import (
    Association,
    DocumentEntry,
    Folder,
    ObjectRef,
    RegistryObject,
    Submission,
    SubmissionSet,
)
from ebxml.objects import (
    BUILDERS,
    ObjectReader,
    child_elements,
    read_classification,
    read_identifier,
)
from ebxml.tags import LCM, RIM, RS, XDSB, XOP
from ebxml.vocabulary import (
    FOLDER_NODE,
    SUBMISSION_SET_NODE,
    UUID_PREFIX,
    ErrorSeverity,
    ResponseStatus,
)

T = TypeVar("T")
UuidFactory = Callable[[], uuid.UUID]


@dataclass(frozen=True, slots=True)
class ParseResult(Generic[T]):
    """A parsed value and the structural errors found while parsing it."""

    value: T
    errors: tuple[RegistryError, ...] = ()

    @property
    def ok(self) -> bool:
        return not any(e.is_error for e in self.errors)


@dataclass(frozen=True, slots=True)
class RegistryObjectList:
    """The contents of one rim:RegistryObjectList, in document order."""

    objects: tuple[RegistryObject, ...] = ()
    object_refs: tuple[ObjectRef, ...] = ()
    unknown_objects: tuple[str, ...] = ()
    symbolic_ids: dict[str, str] = field(default_factory=dict)


class AttachmentLike(Protocol):
    """What parse needs of a soap.message.Attachment."""

    @property
    def content_id(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def path(self) -> Path: ...
    @property
    def size(self) -> int: ...
    @property
    def sha1(self) -> str: ...


def _symbolic_ids(children: list[etree._Element], new_uuid: UuidFactory) -> dict[str, str]:
    """ITI TF-3 4.2.3.1.2 (ebRS 3.0 5.3.1): ids not in urn:uuid form are symbolic and are
    replaced by UUIDs the registry assigns; the same symbolic id maps to one UUID."""
    ids: dict[str, str] = {}
    for child in children:
        sent = child.get("id")
        if child.tag == RIM.ObjectRef or not sent or sent.startswith(UUID_PREFIX):
            continue
        if sent not in ids:
            ids[sent] = f"{UUID_PREFIX}{new_uuid()}"
    return ids


def parse_registry_object_list(
    elem: etree._Element,
    *,
    default_code: ErrorCode = ErrorCode.XDSRegistryMetadataError,
    replace_symbolic_ids: bool = True,
    uuid_factory: UuidFactory = uuid.uuid4,
) -> ParseResult[RegistryObjectList]:
    """Every object of a rim:RegistryObjectList, in document order.

    RegistryPackages with neither SubmissionSet nor Folder classification and other
    identifiables are listed by id in ``unknown_objects``; top-level Classifications and
    ExternalIdentifiers are attached to the object they name.
    """
    children = list(child_elements(elem))
    ids = _symbolic_ids(children, uuid_factory) if replace_symbolic_ids else {}
    reader = ObjectReader(default_code, ids)
    seen: set[str] = set()
    for child in children:
        sent = child.get("id", "")
        if sent and sent in seen and child.tag != RIM.ObjectRef:
            reader.error(f"id {sent} is used by more than one object", sent)
        seen.add(sent)

    object_ids = {reader.ref(c.get("id", "")) for c in children if c.tag in BUILDERS}
    unknown: list[str] = []
    for child in children:
        if child.tag == RIM.Classification:
            target = reader.ref(child.get("classifiedObject", "")) or ""
            node = child.get("classificationNode", "")
            if target in object_ids and node in (SUBMISSION_SET_NODE, FOLDER_NODE):
                reader.package_nodes[target] = node
            elif target in object_ids:
                reader.detached_classifications.setdefault(target, []).append(
                    read_classification(child)
                )
            else:
                unknown.append(child.get("id", ""))
        elif child.tag == RIM.ExternalIdentifier:
            target = reader.ref(child.get("registryObject", "")) or ""
            if target in object_ids:
                reader.detached_identifiers.setdefault(target, []).append(read_identifier(child))
            else:
                unknown.append(child.get("id", ""))

    objects: list[RegistryObject] = []
    refs: list[ObjectRef] = []
    for child in children:
        builder = BUILDERS.get(child.tag)
        if builder is not None:
            built = builder(reader, child)
            if built is None:
                unknown.append(reader.ref(child.get("id", "")) or "")
            else:
                objects.append(built)
        elif child.tag == RIM.ObjectRef:
            refs.append(ObjectRef(child.get("id", ""), child.get("home")))
        elif child.tag not in (RIM.Classification, RIM.ExternalIdentifier):
            unknown.append(reader.ref(child.get("id", "")) or "")
    for unknown_id in unknown:
        reader.not_saved(
            "object is neither a DocumentEntry, SubmissionSet, Folder nor "
            "Association and is not kept",
            unknown_id,
        )
    value = RegistryObjectList(tuple(objects), tuple(refs), tuple(unknown), ids)
    return ParseResult(value, tuple(reader.errors))


def parse_submit_objects_request(
    elem: etree._Element,
    *,
    default_code: ErrorCode = ErrorCode.XDSRegistryMetadataError,
    uuid_factory: UuidFactory = uuid.uuid4,
) -> ParseResult[Submission]:
    """lcm:SubmitObjectsRequest (ITI TF-2 3.42.4.1.2, ITI TF-3 4.2) -> Submission."""
    object_list = elem.find(RIM.RegistryObjectList)
    if elem.tag != LCM.SubmitObjectsRequest or object_list is None:
        error = RegistryError(default_code, "SubmitObjectsRequest/RegistryObjectList is missing")
        return ParseResult(Submission(None), (error,))
    parsed = parse_registry_object_list(
        object_list, default_code=default_code, uuid_factory=uuid_factory
    )
    listed = parsed.value
    errors = list(parsed.errors)
    by_type: dict[type, list[Any]] = {
        SubmissionSet: [],
        DocumentEntry: [],
        Folder: [],
        Association: [],
    }
    for obj in listed.objects:
        by_type[type(obj)].append(obj)
    submission_sets = by_type[SubmissionSet]
    # ITI TF-3 4.1.4: a submission carries exactly one SubmissionSet
    errors += [
        RegistryError(default_code, "More than one SubmissionSet in the submission", s.entry_uuid)
        for s in submission_sets[1:]
    ]
    submission = Submission(
        submission_set=submission_sets[0] if submission_sets else None,
        document_entries=tuple(by_type[DocumentEntry]),
        folders=tuple(by_type[Folder]),
        associations=tuple(by_type[Association]),
        object_refs=listed.object_refs,
        symbolic_ids=listed.symbolic_ids,
        unknown_objects=listed.unknown_objects,
    )
    return ParseResult(submission, tuple(errors))


def include_content_id(document: etree._Element) -> str | None:
    """The Content-ID an xdsb:Document's xop:Include names (XOP 1.0: href="cid:" +
    URL-encoded Content-ID, RFC 2392), or None when the content is not an include."""
    include = document.find(XOP.Include)
    if include is None:
        return None
    href = include.get("href", "")
    return unquote(href[4:]) if href[:4].lower() == "cid:" else unquote(href)


def parse_provide_and_register(
    elem: etree._Element,
    attachments: Mapping[str, AttachmentLike],
    *,
    default_code: ErrorCode = ErrorCode.XDSRepositoryMetadataError,
    uuid_factory: UuidFactory = uuid.uuid4,
) -> ParseResult[ProvideAndRegisterRequest]:
    """xdsb:ProvideAndRegisterDocumentSetRequest (ITI TF-2 3.41.4.1.2).

    Each xdsb:Document becomes a DocumentContent whose ``id`` is the (UUID-resolved)
    ExtrinsicObject id; its content is the attachment its xop:Include names, or
    ``path=None`` when there is none.  Attachments no Document names are listed in
    ``unreferenced_attachments`` (-> XDSMissingDocumentMetadata, ITI TF-2 3.41.4.1.3).
    """
    request = elem.find(LCM.SubmitObjectsRequest)
    if elem.tag != XDSB.ProvideAndRegisterDocumentSetRequest or request is None:
        error = RegistryError(default_code, "ProvideAndRegisterDocumentSetRequest is malformed")
        return ParseResult(ProvideAndRegisterRequest(Submission(None)), (error,))
    parsed = parse_submit_objects_request(
        request, default_code=default_code, uuid_factory=uuid_factory
    )
    ids = parsed.value.symbolic_ids
    errors = list(parsed.errors)
    documents: list[DocumentContent] = []
    referenced: set[str] = set()
    for document in child_elements(elem, XDSB.Document):
        sent = document.get("id", "")
        if not sent:
            errors.append(RegistryError(default_code, "Document without an id attribute"))
        cid = include_content_id(document)
        attachment = attachments.get(cid) if cid is not None else None
        if cid is not None:
            referenced.add(cid)
        documents.append(
            DocumentContent(
                id=ids.get(sent, sent),
                path=None if attachment is None else attachment.path,
                size=0 if attachment is None else attachment.size,
                sha1="" if attachment is None else attachment.sha1,
                content_type=None if attachment is None else attachment.content_type,
                content_id=cid,
            )
        )
    unreferenced = tuple(cid for cid in attachments if cid not in referenced)
    value = ProvideAndRegisterRequest(parsed.value, tuple(documents), unreferenced)
    return ParseResult(value, tuple(errors))


# --- rs:RegistryResponse (the client side of ITI-41/42/43) -------------------------------


def enum_or_text(enum: Any, value: str) -> Any:
    """The enum member for ``value``, or ``value`` itself when the standard's list lacks it
    (a peer may send codes newer than ours; validation decides what to make of them)."""
    try:
        return enum(value)
    except ValueError:
        return value


def parse_registry_errors(elem: etree._Element) -> tuple[RegistryError, ...]:
    """The rs:RegistryError children of ``elem``'s rs:RegistryErrorList."""
    return tuple(
        RegistryError(
            code=enum_or_text(ErrorCode, e.get("errorCode", "")),
            context=e.get("codeContext", ""),
            location=e.get("location", ""),
            # rs.xsd: severity defaults to Error
            severity=enum_or_text(ErrorSeverity, e.get("severity", ErrorSeverity.ERROR)),
        )
        for e in elem.iterfind(f"{RS.RegistryErrorList}/{RS.RegistryError}")
    )


def parse_registry_response(elem: etree._Element) -> RegistryResponse:
    """rs:RegistryResponse (ITI TF-2 3.41.4.2, 3.42.4.2), as a client reads it."""
    return RegistryResponse(
        status=enum_or_text(ResponseStatus, elem.get("status", "")),
        errors=parse_registry_errors(elem),
    )


__all__ = [
    "AttachmentLike",
    "ParseResult",
    "RegistryObjectList",
    "UuidFactory",
    "enum_or_text",
    "include_content_id",
    "parse_provide_and_register",
    "parse_registry_errors",
    "parse_registry_object_list",
    "parse_registry_response",
    "parse_submit_objects_request",
]
