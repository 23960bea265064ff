"""Builders shared by the repository tests: DocumentEntries, ITI-41 requests and a
scripted registry standing in for the registry actor's Python interface."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ebxml.errors import RegistryError
from ebxml.messages import DocumentContent, ProvideAndRegisterRequest, RegistryResponse
from ebxml.model import DocumentEntry, Submission, SubmissionSet
from ebxml.vocabulary import ResponseStatus
from repository.registry_client import RegistryNotAvailable

REPOSITORY_ID = "1.2.3.4.5.6.1"
OTHER_REPOSITORY_ID = "1.2.3.4.5.6.99"
HOME = "urn:oid:1.2.3.4.5.6.2"


def document_entry(
    symbolic: str = "Document01", unique_id: str | None = None, **fields: object
) -> DocumentEntry:
    return DocumentEntry(
        entry_uuid=f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, symbolic + str(unique_id))}",
        unique_id=unique_id or f"1.2.3.4.5.6.5.{uuid.uuid4().int % 10**12}",
        patient_id="P1^^^&1.2.3.4.5.6.1&ISO",
        mime_type="text/plain",
        **fields,  # type: ignore[arg-type]
    )


def provide_request(
    *pairs: tuple[DocumentEntry, DocumentContent | None], extra: tuple[DocumentContent, ...] = ()
) -> ProvideAndRegisterRequest:
    """A request whose Documents carry the symbolic ids their entries were sent with."""
    symbolic: dict[str, str] = {}
    documents: list[DocumentContent] = []
    for index, (entry, content) in enumerate(pairs, start=1):
        name = f"Document{index:02d}"
        symbolic[name] = entry.entry_uuid
        if content is not None:
            documents.append(
                DocumentContent(
                    name,
                    content.path,
                    content.size,
                    content.sha1,
                    content.content_type,
                    content.content_id,
                )
            )
    submission = Submission(
        submission_set=SubmissionSet(
            entry_uuid=f"urn:uuid:{uuid.uuid4()}", unique_id="1.2.3.4.5.6.6.1"
        ),
        document_entries=tuple(entry for entry, _ in pairs),
        symbolic_ids=symbolic,
    )
    return ProvideAndRegisterRequest(submission, tuple(documents) + extra)


@dataclass
class ScriptedRegistry:
    """Stands in for the registry actor's Python interface: records each submission and
    answers with the scripted response (Success unless told).  ``listed`` maps the
    uniqueIds it lists to their repositoryUniqueId; ``unreachable`` makes it unable to
    tell."""

    response: RegistryResponse = field(
        default_factory=lambda: RegistryResponse(ResponseStatus.SUCCESS)
    )
    raises: BaseException | None = None
    submissions: list[Submission] = field(default_factory=list)
    on_register: Callable[[], None] | None = None
    listed: dict[str, str] = field(default_factory=dict)
    unreachable: bool = False
    asked: list[list[str]] = field(default_factory=list)

    def register(self, submission: Submission) -> RegistryResponse:
        self.submissions.append(submission)
        if self.on_register is not None:
            self.on_register()
        if self.raises is not None:
            raise self.raises
        return self.response

    def close(self) -> None:
        pass

    def registered_documents(
        self, unique_ids: Sequence[str], repository_unique_id: str
    ) -> set[str]:
        self.asked.append(list(unique_ids))
        if self.unreachable:
            raise RegistryNotAvailable("registry.test not reachable")
        return {u for u in unique_ids if self.listed.get(u) == repository_unique_id}

    def fail_with(self, *errors: RegistryError) -> None:
        self.response = RegistryResponse.from_errors(list(errors))
