"""repository/check.py and ``xdsi check``: registry, index and blob store agree, on
every database; ``--repair`` settles what a crash left and nothing else."""

from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from registry_actor import registrable_entry, registrable_request
from repository_fixtures import REPOSITORY_ID, ScriptedRegistry, document_entry, provide_request
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from ebxml.messages import DocumentContent
from ebxml.vocabulary import ResponseStatus
from registry.service import DocumentRegistry
from repository.blobs import TEMP_PREFIX, BlobStore
from repository.check import (
    Finding,
    Problem,
    RegistryTables,
    check,
    check_and_repair,
    remove_unreferenced_blobs,
)
from repository.provide import plan_documents, provide_and_register, store_documents
from repository.registry_client import InProcessRegistryClient
from repository.tables import DocumentState, RepositoryDocument, utcnow
from soap.mtom import SPOOL_PREFIX
from xdsi.cli import main

Spool = Callable[..., DocumentContent]
TEXT = b"Radiology report: no acute findings.\n" * 200
SHA1 = hashlib.sha1(TEXT).hexdigest()
HOUR = timedelta(hours=1)


def _age(path: Path, seconds: float = 7200) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _age_rows(sessions: sessionmaker[Session], age: timedelta) -> None:
    with sessions.begin() as session:
        session.execute(update(RepositoryDocument).values(created=utcnow() - age))


def _problems(findings: tuple[Finding, ...]) -> list[tuple[Problem, str]]:
    return [(f.problem, f.subject) for f in findings]


def _provide(sessions, blobs, registry, *contents: DocumentContent) -> list[str]:
    entries = [document_entry(f"Document{n:02d}") for n in range(1, len(contents) + 1)]
    response = provide_and_register(
        provide_request(*zip(entries, contents, strict=True)),
        (),
        sessions=sessions,
        blobs=blobs,
        registry=registry,
        repository_unique_id=REPOSITORY_ID,
    )
    assert response.status == ResponseStatus.SUCCESS
    for entry in entries:
        registry.listed[entry.unique_id] = REPOSITORY_ID  # type: ignore[index]
    return [e.unique_id for e in entries]  # type: ignore[misc]


def _check(sessions, blobs, registry, **options):
    return check(sessions, blobs, registry, REPOSITORY_ID, grace=HOUR, **options)


# --- index row <-> blob ---------------------------------------------------------------------


def test_stored_and_registered_documents_are_consistent(
    sessions, blobs, registry: ScriptedRegistry, spool: Spool
) -> None:
    _provide(sessions, blobs, registry, spool(TEXT), spool(b"second document"))
    report = _check(sessions, blobs, registry)
    assert report.findings == () and report.consistent
    assert (report.documents, report.blobs) == (2, 2)


def test_row_without_its_blob_is_blob_missing(sessions, blobs, registry, spool: Spool) -> None:
    [unique_id] = _provide(sessions, blobs, registry, spool(TEXT))
    blobs.delete(SHA1)
    assert _problems(_check(sessions, blobs, registry).findings) == [
        (Problem.BLOB_MISSING, unique_id)
    ]


def test_blob_with_other_content_of_the_same_size_is_blob_hash(
    sessions, blobs, registry, spool: Spool
) -> None:
    [unique_id] = _provide(sessions, blobs, registry, spool(TEXT))
    blobs.path(SHA1).write_bytes(TEXT.upper())
    assert _problems(_check(sessions, blobs, registry).findings) == [(Problem.BLOB_HASH, unique_id)]


def test_truncated_blob_is_blob_size(sessions, blobs, registry, spool: Spool) -> None:
    [unique_id] = _provide(sessions, blobs, registry, spool(TEXT))
    blobs.path(SHA1).write_bytes(TEXT[:100])
    findings = _check(sessions, blobs, registry, verify_hashes=False).findings
    assert _problems(findings) == [(Problem.BLOB_SIZE, unique_id)]


# --- registry <-> index ---------------------------------------------------------------------


def test_committed_row_the_registry_does_not_list_is_not_in_registry(
    sessions, blobs, registry, spool: Spool
) -> None:
    [unique_id] = _provide(sessions, blobs, registry, spool(TEXT))
    registry.listed.clear()
    assert _problems(_check(sessions, blobs, registry).findings) == [
        (Problem.NOT_IN_REGISTRY, unique_id)
    ]


def test_registry_that_cannot_tell_is_registry_unavailable(
    sessions, blobs, registry, spool: Spool
) -> None:
    _provide(sessions, blobs, registry, spool(TEXT))
    registry.unreachable = True
    assert [f.problem for f in _check(sessions, blobs, registry).findings] == [
        Problem.REGISTRY_UNAVAILABLE
    ]


@pytest.fixture
def registered(
    sessions, blobs, document_registry: DocumentRegistry, spool: Spool
) -> tuple[str, str, InProcessRegistryClient]:
    """One document provided through the real registry, under a repository id of its
    own (the PostgreSQL registry tables outlive a test)."""
    repository_id = f"1.2.3.4.5.6.{uuid.uuid4().int % 10**9}"
    client = InProcessRegistryClient(document_registry)
    entry = registrable_entry()
    response = provide_and_register(
        registrable_request((entry, spool(TEXT))),
        (),
        sessions=sessions,
        blobs=blobs,
        registry=client,
        repository_unique_id=repository_id,
    )
    assert response.status == ResponseStatus.SUCCESS, response.errors
    assert entry.unique_id is not None
    return repository_id, entry.unique_id, client


def test_registry_tables_list_what_was_registered(
    sessions, blobs, document_registry, registered
) -> None:
    repository_id, unique_id, client = registered
    listed = list(RegistryTables(document_registry.sessions).listed_documents(repository_id))
    assert [(d.unique_id, d.sha1, d.size) for d in listed] == [(unique_id, SHA1, len(TEXT))]
    report = check(
        sessions,
        blobs,
        client,
        repository_id,
        inventory=RegistryTables(document_registry.sessions),
    )
    assert report.findings == () and report.registry_listed


def test_entry_the_registry_lists_without_index_row_is_not_in_repository(
    sessions, blobs, document_registry, registered
) -> None:
    repository_id, unique_id, client = registered
    with sessions.begin() as session:
        session.execute(delete(RepositoryDocument))
    report = check(
        sessions, blobs, client, repository_id, inventory=RegistryTables(document_registry.sessions)
    )
    assert _problems(report.findings)[0] == (Problem.NOT_IN_REPOSITORY, unique_id)


def test_registry_hash_other_than_the_row_is_registry_mismatch(
    sessions, blobs, document_registry, registered
) -> None:
    repository_id, unique_id, client = registered
    with sessions.begin() as session:
        session.execute(update(RepositoryDocument).values(size=len(TEXT) + 1))
    report = check(
        sessions,
        blobs,
        client,
        repository_id,
        inventory=RegistryTables(document_registry.sessions),
        verify_hashes=False,
    )
    assert (Problem.REGISTRY_MISMATCH, unique_id) in _problems(report.findings)


# --- the store: unreferenced blobs, temp files, pending rows ----------------------------------


def _orphan(blobs: BlobStore, data: bytes = b"left by a crash") -> str:
    stored = blobs.store_stream(io.BytesIO(data))
    return stored.sha1


def test_unreferenced_blob_older_than_the_grace_is_reported(sessions, blobs, registry) -> None:
    sha1 = _orphan(blobs)
    _age(blobs.path(sha1))
    assert _problems(_check(sessions, blobs, registry).findings) == [
        (Problem.UNREFERENCED_BLOB, sha1)
    ]


def test_young_unreferenced_blob_is_not_reported(sessions, blobs, registry) -> None:
    _orphan(blobs)
    assert _check(sessions, blobs, registry).consistent


def test_temp_file_older_than_the_grace_is_reported(sessions, blobs, registry) -> None:
    blobs.root.mkdir(parents=True)
    leftover = blobs.root / f"{TEMP_PREFIX}4242-crashed"
    leftover.write_bytes(b"half a document")
    _age(leftover)
    assert _problems(_check(sessions, blobs, registry).findings) == [
        (Problem.TEMP_FILE, str(leftover))
    ]


def _crashed_after_store(sessions, blobs, spool: Spool) -> str:
    """Rows pending and blobs stored, the Register never answered (a crash in (c))."""
    entry = document_entry()
    planned, errors = plan_documents(provide_request((entry, spool(TEXT))), (), REPOSITORY_ID)
    assert errors == []
    store_documents(sessions, blobs, planned)
    assert entry.unique_id is not None
    return entry.unique_id


def test_pending_row_older_than_the_grace_is_reported(
    sessions, blobs, registry, spool: Spool
) -> None:
    unique_id = _crashed_after_store(sessions, blobs, spool)
    assert _check(sessions, blobs, registry).consistent  # young: an ITI-41 in progress
    _age_rows(sessions, timedelta(hours=2))
    assert _problems(_check(sessions, blobs, registry).findings) == [(Problem.PENDING, unique_id)]


# --- repair ----------------------------------------------------------------------------------


def _repair(sessions, blobs, registry):
    return check_and_repair(sessions, blobs, registry, REPOSITORY_ID, grace=HOUR)


def test_repair_removes_old_unreferenced_blobs_and_keeps_young_ones(
    sessions, blobs, registry
) -> None:
    old, young = _orphan(blobs, b"old orphan"), _orphan(blobs, b"young orphan")
    _age(blobs.path(old))
    report = _repair(sessions, blobs, registry)
    assert report.consistent and report.repair is not None and report.repair.blobs_removed == 1
    assert not blobs.exists(old) and blobs.exists(young)


def test_repair_keeps_referenced_blobs(sessions, blobs, registry, spool: Spool) -> None:
    _provide(sessions, blobs, registry, spool(TEXT))
    _age(blobs.path(SHA1))
    assert remove_unreferenced_blobs(sessions, blobs, older_than=utcnow()) == 0
    assert blobs.exists(SHA1)


def test_repair_commits_old_pending_rows_the_registry_lists(
    sessions, blobs, registry, spool: Spool
) -> None:
    unique_id = _crashed_after_store(sessions, blobs, spool)
    registry.listed[unique_id] = REPOSITORY_ID
    _age_rows(sessions, timedelta(hours=2))
    report = _repair(sessions, blobs, registry)
    assert report.consistent and report.repair is not None
    assert report.repair.recovery.rows_committed == 1
    with sessions() as session:
        assert session.scalar(select(RepositoryDocument.state)) == DocumentState.COMMITTED


def test_repair_removes_old_pending_rows_the_registry_does_not_list(
    sessions, blobs, registry, spool: Spool
) -> None:
    _crashed_after_store(sessions, blobs, spool)
    _age_rows(sessions, timedelta(hours=2))
    report = _repair(sessions, blobs, registry)
    assert report.consistent and report.documents == 0 and report.blobs == 0
    assert not blobs.exists(SHA1)


def test_repair_removes_old_temp_files(sessions, blobs, registry) -> None:
    blobs.root.mkdir(parents=True)
    leftover = blobs.root / f"{TEMP_PREFIX}4242-crashed"
    leftover.write_bytes(b"half a document")
    _age(leftover)
    report = _repair(sessions, blobs, registry)
    assert report.consistent and not leftover.exists()


def test_repair_leaves_a_missing_blob_reported(sessions, blobs, registry, spool: Spool) -> None:
    [unique_id] = _provide(sessions, blobs, registry, spool(TEXT))
    blobs.delete(SHA1)
    report = _repair(sessions, blobs, registry)
    assert _problems(report.findings) == [(Problem.BLOB_MISSING, unique_id)]


def test_storing_identical_content_again_makes_the_blob_young(blobs) -> None:
    # BlobStore._place touches a blob stored again, so a sweep for unreferenced blobs
    # older than the grace does not remove it under the row about to reference it
    sha1 = _orphan(blobs)
    _age(blobs.path(sha1))
    assert not blobs.store_stream(io.BytesIO(b"left by a crash")).created
    assert blobs.path(sha1).stat().st_mtime > time.time() - 60


# --- xdsi check --------------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "xdsi.toml").write_text(
        f'[repository]\nrepository_unique_id = "{REPOSITORY_ID}"\n', encoding="utf-8"
    )
    return directory


def test_cli_check_of_an_empty_store_is_consistent(data_dir: Path, capsys) -> None:
    assert main(["check", "--data-dir", str(data_dir)]) == 0
    assert "consistent" in capsys.readouterr().out


def test_cli_check_exits_1_on_an_old_unreferenced_blob_and_repair_removes_it(
    data_dir: Path, capsys
) -> None:
    blobs = BlobStore(data_dir / "blobs")
    sha1 = _orphan(blobs)
    _age(blobs.path(sha1))
    assert main(["check", "--data-dir", str(data_dir)]) == 1
    assert f"unreferenced-blob: {sha1}" in capsys.readouterr().out
    assert main(["check", "--data-dir", str(data_dir), "--repair"]) == 0
    assert not blobs.exists(sha1)


def test_cli_check_grace_zero_reports_a_fresh_orphan(data_dir: Path) -> None:
    _orphan(BlobStore(data_dir / "blobs"))
    time.sleep(0.01)
    assert main(["check", "--data-dir", str(data_dir), "--grace", "0"]) == 1


def test_cli_check_refuses_a_negative_grace(data_dir: Path) -> None:
    assert main(["check", "--data-dir", str(data_dir), "--grace", "-1"]) == 2


def test_cli_repair_removes_spooled_parts_a_killed_server_left(data_dir: Path) -> None:
    spool_dir = data_dir / "spool"
    spool_dir.mkdir()
    part = spool_dir / f"{SPOOL_PREFIX}crashed"
    part.write_bytes(b"half an MTOM part")
    _age(part)
    assert main(["check", "--data-dir", str(data_dir)]) == 1
    assert main(["check", "--data-dir", str(data_dir), "--repair"]) == 0
    assert not part.exists()
