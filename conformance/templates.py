"""Placeholders of conformance plans and message templates.

A template is raw text (an XML message or an HL7 v2 message) with ``{{kind}}`` or
``{{kind:name}}`` placeholders.  Every case gets its own :class:`Scope`, so patient ids
and uniqueIds are fresh in each case and a run can be repeated against a live system:

==========================  ==============================================================
``{{patient_id}}``          CX ``ID^^^&<affinity domain>&ISO`` of the case's main patient
``{{patient_id:other}}``    another patient of the same case (fresh, per name)
``{{patient_number:x}}``    the ID part alone (for HL7 v2 PID-3 / MRG-1)
``{{affinity_domain}}``     the assigning authority OID
``{{uid:doc1}}``            a fresh OID uniqueId under the run root, stable per name
``{{uuid:ss}}``             a fresh ``urn:uuid:`` id, stable per name
``{{message_id}}``          a fresh ``urn:uuid:`` id at every use (wsa:MessageID)
``{{control_id}}``          a fresh HL7 v2 MSH-10 (20 characters, ST in HL7 v2.3.1)
``{{now}}``                 DTM (UTC, to the second; ITI TF-3 Table 4.2.3.1.7-2)
``{{ref:step.name}}``       a value captured by an earlier step
``{{sha1:doc}}``            SHA-1 (hex) of a case document (ITI TF-3 4.2.3.2.18)
``{{size:doc}}``            its size in bytes (ITI TF-3 4.2.3.2.19)
``{{content_id:doc}}``      the MIME Content-ID the document is sent with
``{{mime_type:doc}}``       its mime type
``{{repository_id}}``       repositoryUniqueId of the system under test
``{{home_community_id}}``   its homeCommunityId (empty when not given)
``{{imaging_source_id}}``   the Imaging Document Source's repositoryUniqueId
``{{registry_url}}``, ``{{repository_url}}``, ``{{imaging_source_url}}``  endpoint URLs
``{{source_id}}``           sourceId of the submissions (the run root)
``{{row:name}}``            (families only) replaced when the plan is loaded
==========================  ==============================================================

Values are XML-escaped when filled into an XML template (``escape=True``).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.sax.saxutils import escape as xml_escape

from conformance.result import Endpoints

PLACEHOLDER = re.compile(r"\{\{\s*([a-z0-9_]+)(?::([^{}]*?))?\s*\}\}")
UUID_OID_ARC = "2.25"  # ISO/IEC 9834-8 / ITU-T X.667: OIDs from UUIDs
# ITI TF-3 4.2.3.2.26: an OID uniqueId is at most 64 characters
MAX_UNIQUE_ID_LENGTH = 64


class TemplateError(ValueError):
    """A placeholder that cannot be filled: unknown kind, unknown document, no capture."""


def new_run_root() -> str:
    """An OID root for one run: ``2.25.<48 random bits>.<seconds>``, short enough that
    ``<root>.<case>.<n>`` stays well under 64 characters."""
    return f"{UUID_OID_ARC}.{uuid.uuid4().int >> 80}.{int(time.time())}"


def dtm_now() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


@dataclass(frozen=True, slots=True)
class Document:
    """A document a case submits: its bytes and mime type."""

    name: str
    content: bytes
    mime_type: str = "text/plain"

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class PostedInstance:
    """A DICOM instance a ``stow`` step sent: where it sits and its Part 10 bytes."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    content: bytes


@dataclass(slots=True)
class Scope:
    """The values of one case: fresh ids, its documents, what its steps captured."""

    endpoints: Endpoints
    run_root: str
    case_number: int
    documents: Mapping[str, Document] = field(default_factory=dict)
    captured: dict[str, str] = field(default_factory=dict)
    # instance name -> what a stow step posted, in posting order
    posted: dict[str, PostedInstance] = field(default_factory=dict)
    _patients: dict[str, str] = field(default_factory=dict)
    _uids: dict[str, str] = field(default_factory=dict)
    _uuids: dict[str, str] = field(default_factory=dict)
    _content_ids: dict[str, str] = field(default_factory=dict)

    # -- the values --

    def patient_number(self, name: str) -> str:
        if name not in self._patients:
            self._patients[name] = f"XC{uuid.uuid4().hex[:12].upper()}"
        return self._patients[name]

    def patient_id(self, name: str) -> str:
        # ITI TF-3 4.2.3.2.16: CX with only ID and assigning authority (ISO OID)
        return f"{self.patient_number(name)}^^^&{self.affinity_domain()}&ISO"

    def affinity_domain(self) -> str:
        if not self.endpoints.affinity_domain:
            raise TemplateError("no affinity domain given (--affinity-domain)")
        return self.endpoints.affinity_domain

    def uid(self, name: str) -> str:
        if name not in self._uids:
            value = f"{self.run_root}.{self.case_number}.{len(self._uids) + 1}"
            if len(value) > MAX_UNIQUE_ID_LENGTH:
                raise TemplateError(f"uniqueId {value} longer than 64 characters")
            self._uids[name] = value
        return self._uids[name]

    def uuid(self, name: str) -> str:
        if name not in self._uuids:
            self._uuids[name] = f"urn:uuid:{uuid.uuid4()}"
        return self._uuids[name]

    def document(self, name: str) -> Document:
        try:
            return self.documents[name]
        except KeyError:
            raise TemplateError(f"no document {name!r} in this case") from None

    def content_id(self, name: str) -> str:
        self.document(name)
        if name not in self._content_ids:
            self._content_ids[name] = f"{name}.{uuid.uuid4().hex}@conformance.xdsi"
        return self._content_ids[name]

    def ref(self, name: str) -> str:
        try:
            return self.captured[name]
        except KeyError:
            raise TemplateError(f"nothing captured as {name!r} by an earlier step") from None

    def endpoint(self, value: str | None, what: str) -> str:
        if not value:
            raise TemplateError(f"no {what} given")
        return value


def _named(method: Callable[[Scope, str], str]) -> Callable[[Scope, str | None], str]:
    def fill(scope: Scope, name: str | None) -> str:
        return method(scope, name or "main")

    return fill


def _plain(read: Callable[[Scope], str]) -> Callable[[Scope, str | None], str]:
    return lambda scope, _name: read(scope)


# placeholder kind -> how to fill it
FILLERS: dict[str, Callable[[Scope, str | None], str]] = {
    "patient_id": _named(Scope.patient_id),
    "patient_number": _named(Scope.patient_number),
    "affinity_domain": _plain(Scope.affinity_domain),
    "uid": _named(Scope.uid),
    "uuid": _named(Scope.uuid),
    "message_id": _plain(lambda s: f"urn:uuid:{uuid.uuid4()}"),
    "now": _plain(lambda s: dtm_now()),
    "control_id": _plain(lambda s: uuid.uuid4().hex[:20]),
    "ref": _named(Scope.ref),
    "sha1": _named(lambda s, n: s.document(n).sha1),
    "size": _named(lambda s, n: str(len(s.document(n).content))),
    "content_id": _named(Scope.content_id),
    "mime_type": _named(lambda s, n: s.document(n).mime_type),
    "repository_id": _plain(
        lambda s: s.endpoint(s.endpoints.repository_unique_id, "repositoryUniqueId")
    ),
    "imaging_source_id": _plain(
        lambda s: s.endpoint(s.endpoints.imaging_source_id, "imaging source repositoryUniqueId")
    ),
    "home_community_id": _plain(lambda s: s.endpoints.home_community_id or ""),
    "registry_url": _plain(lambda s: s.endpoint(s.endpoints.registry_url, "registry URL")),
    "repository_url": _plain(lambda s: s.endpoint(s.endpoints.repository_url, "repository URL")),
    "imaging_source_url": _plain(
        lambda s: s.endpoint(s.endpoints.imaging_source_url, "imaging source URL")
    ),
    "source_id": _plain(lambda s: s.run_root),
}


def render(text: str, scope: Scope, *, escape: bool = False) -> str:
    """Fill every placeholder of ``text``; XML-escape the values when ``escape``."""

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        try:
            filler = FILLERS[kind]
        except KeyError:
            raise TemplateError(f"unknown placeholder {match.group(0)}") from None
        value = filler(scope, name.strip() if name is not None else None)
        return xml_escape(value, {'"': "&quot;", "'": "&apos;"}) if escape else value

    return PLACEHOLDER.sub(fill, text)


def placeholders(text: str) -> list[tuple[str, str | None]]:
    """The (kind, name) of every placeholder in ``text``, for plan validation."""
    return [(m.group(1), m.group(2)) for m in PLACEHOLDER.finditer(text)]


__all__ = [
    "FILLERS",
    "Document",
    "PostedInstance",
    "Scope",
    "TemplateError",
    "dtm_now",
    "new_run_root",
    "placeholders",
    "render",
]
