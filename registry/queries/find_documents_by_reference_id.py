"""FindDocumentsByReferenceId (ITI TF-2 3.18.4.1.2.3.7.14): FindDocuments narrowed by
DocumentEntry.referenceIdList - one indexed statement with an EXISTS per ANDed group."""

from __future__ import annotations

from sqlalchemy import Select, exists, select

from ebxml.query import FindDocumentsByReferenceIdQuery
from registry.queries import find_documents
from registry.tables import DocumentEntryReferenceIdRow, DocumentEntryRow


def build(params: FindDocumentsByReferenceIdQuery) -> Select:
    reference = DocumentEntryReferenceIdRow
    # a CXi value matches as a whole string (ITI TF-3 4.2.3.2.28)
    groups = [
        exists(
            select(reference.id).where(
                reference.document_entry_id == DocumentEntryRow.id,
                reference.value.in_(list(group)),
            )
        )
        for group in params.reference_id_list
    ]
    return find_documents.build(params).where(*groups)


__all__ = ["build"]
