"""Provide and Register (ITI-41) checks that need the documents as well as the metadata
(ITI TF-2 3.41.4.1.3): each DocumentEntry has its document, each document and each MIME
part has its DocumentEntry, and a hash or size the Document Source sent matches the
document.  ``validate_submission`` checks the metadata itself; the repository runs both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ebxml.errors import ErrorCode, RegistryError
from ebxml.messages import DocumentContent, ProvideAndRegisterRequest
from ebxml.model import DocumentEntry
from ebxml.validate import rules

# The repository's own error for what ITI TF-2 3.41.4.1.3.1 makes it check
_DEFAULT = ErrorCode.XDSRepositoryMetadataError


def _entry_name(entry: DocumentEntry, sent_as: dict[str, str]) -> str:
    name = sent_as.get(entry.entry_uuid, entry.entry_uuid)
    return f"DocumentEntry {name} (uniqueId {entry.unique_id})"


def validate_provide(
    request: ProvideAndRegisterRequest, unreferenced_cids: Sequence[str]
) -> list[RegistryError]:
    """Every ITI-41 document/metadata mismatch in ``request``.

    ``unreferenced_cids``: content ids of MIME parts no xdsb:Document refers to.
    A Document's id may be the symbolic id or the UUID of its ExtrinsicObject.
    """
    submission = request.submission
    sent_as = {uuid: symbolic for symbolic, uuid in submission.symbolic_ids.items()}
    resolve = submission.symbolic_ids.get
    findings: list[RegistryError] = []

    documents: dict[str, DocumentContent] = {}
    for document_id, count in Counter(resolve(d.id, d.id) for d in request.documents).items():
        if count > 1:
            name = sent_as.get(document_id, document_id)
            findings.append(rules.DOCUMENT_ONCE.finding(_DEFAULT, name, document=name, count=count))
    for document in request.documents:
        documents.setdefault(resolve(document.id, document.id), document)

    entries = {e.entry_uuid: e for e in submission.document_entries}
    for entry_uuid, entry in entries.items():
        location = sent_as.get(entry_uuid, entry_uuid)
        document = documents.get(entry_uuid)
        if document is None or document.path is None:
            findings.append(
                rules.DOCUMENT_FOR_ENTRY.finding(
                    _DEFAULT, location, object=_entry_name(entry, sent_as)
                )
            )
            continue
        findings += _content_matches(entry, document, location, _entry_name(entry, sent_as))

    for document_id in documents.keys() - entries.keys():
        name = sent_as.get(document_id, document_id)
        findings.append(rules.ENTRY_FOR_DOCUMENT.finding(_DEFAULT, name, what=f"document {name}"))
    for cid in unreferenced_cids:
        findings.append(
            rules.ENTRY_FOR_DOCUMENT.finding(_DEFAULT, cid, what=f"MIME part cid:{cid}")
        )
    return findings


def _content_matches(
    entry: DocumentEntry, document: DocumentContent, location: str, name: str
) -> list[RegistryError]:
    # ITI TF-2 3.41.4.1.3.1: a hash or size sent by the Document Source must be right
    findings = []
    if entry.hash is not None and entry.hash.lower() != document.sha1.lower():
        findings.append(
            rules.HASH_MATCHES.finding(
                _DEFAULT, location, object=name, value=entry.hash, actual=document.sha1
            )
        )
    if entry.size is not None and entry.size != document.size:
        findings.append(
            rules.SIZE_MATCHES.finding(
                _DEFAULT, location, object=name, value=entry.size, actual=document.size
            )
        )
    return findings


__all__ = ["validate_provide"]
