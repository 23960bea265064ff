"""The fuzzing harness: the real application of ``xdsi serve`` (built by
``xdsi.serve.build_application`` over a temp data directory, SQLite) reached in process
through ``httpx.ASGITransport``, and the real ITI-8 handler (``FeedProcessor.handle``).

Each example is checked the same way: the answer is a well-formed SOAP 1.2 envelope
(the response a transaction names, or a Fault with the HTTP status of SOAP 1.2 Part 2
7.5.1.2 and ITI TF-2 Appendix V: 400, 413, 415 or 500), never an exception out of the
application; and a request answered with Failure or a Fault stored nothing (registry
and repository row counts, blob files and spooled parts unchanged).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import (  # noqa: E402
    TEST_CONFIG,
    adt_a01,
    new_patient_number,
    patient_cx,
)
from soap_answers import Answer, well_formed  # noqa: E402

from registry.tables import AssociationRow, DocumentEntryRow, FolderRow, SubmissionSetRow  # noqa: E402
from repository.tables import RepositoryDocument  # noqa: E402
from xdsi.config import load_config  # noqa: E402
from xdsi.serve import Application, build_application  # noqa: E402

FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
_COUNTED = (DocumentEntryRow, SubmissionSetRow, FolderRow, AssociationRow)


@dataclass(frozen=True)
class Snapshot:
    """What a transaction may store: row counts, blob files, spooled parts."""

    registry_rows: tuple[int, ...]
    repository_rows: int
    files: frozenset[str]


class Harness:
    def __init__(self, application: Application, patient: str) -> None:
        self.application = application
        self.patient = patient
        self.data_dir = application.config.data_dir

    def post(self, path: str, content: bytes, content_type: str) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.application.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.fuzz") as c:
                return await c.post(path, content=content, headers={"Content-Type": content_type})

        return asyncio.run(send())

    def snapshot(self) -> Snapshot:
        registry = self.application.registry
        repository = self.application.repository
        assert registry is not None and repository is not None
        with registry.sessions() as session:
            rows = tuple(session.scalar(select(func.count()).select_from(t)) or 0 for t in _COUNTED)
        with repository.sessions() as session:
            documents = session.scalar(select(func.count()).select_from(RepositoryDocument)) or 0
        files = frozenset(
            str(p.relative_to(self.data_dir))
            for folder in ("blobs", "spool")
            for p in (self.data_dir / folder).rglob("*")
            if p.is_file()
        )
        return Snapshot(rows, documents, files)

    def exchange(self, path: str, content: bytes, content_type: str) -> Answer:
        """Send one request; assert the answer is well formed and, when it is a Failure
        or a Fault, that nothing was stored."""
        before = self.snapshot()
        response = self.post(path, content, content_type)
        answer = well_formed(response)
        if answer.is_fault or answer.registry_status == FAILURE:
            assert self.snapshot() == before, f"stored something, answered {response.status_code}"
        return answer


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "data"
    data_dir.mkdir()
    (data_dir / "xdsi.toml").write_text(TEST_CONFIG, encoding="utf-8")
    config = load_config(data_dir, environ={})
    application = build_application(config)
    try:
        assert application.feed is not None
        number = new_patient_number()
        ack = application.feed.handle(adt_a01(number))
        assert b"MSA|AA" in ack, ack
        yield Harness(application, patient_cx(number))
    finally:
        application.close()
