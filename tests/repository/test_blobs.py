"""repository/blobs.py: content addressing, atomic placement, verification, recovery."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from repository.blobs import TEMP_PREFIX, BlobIntegrityError, BlobStore, BlobStoreFull

DATA = b"<ClinicalDocument/>" * 10_000  # several chunks
SHA1 = hashlib.sha1(DATA).hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_blob_lives_at_sha1_path(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob = store.store_stream(io.BytesIO(DATA))
    assert blob.path == tmp_path / SHA1[:2] / SHA1[2:4] / SHA1
    assert (blob.sha1, blob.size, blob.created) == (SHA1, len(DATA), True)
    assert blob.path.read_bytes() == DATA


def test_open_reads_the_stored_content(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.store_stream(io.BytesIO(DATA))
    with store.open(SHA1) as f:
        assert f.read() == DATA


def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    first = store.store_stream(io.BytesIO(DATA))
    second = store.store_stream(io.BytesIO(DATA), sha1=SHA1, size=len(DATA))
    assert (first.created, second.created) == (True, False)
    assert files_under(tmp_path) == [first.path]


def test_announced_hash_must_match(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(BlobIntegrityError) as caught:
        store.store_stream(io.BytesIO(DATA), sha1="0" * 40)
    assert caught.value.field == "hash"
    assert files_under(tmp_path) == []


def test_announced_size_must_match(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(BlobIntegrityError) as caught:
        store.store_stream(io.BytesIO(DATA), size=len(DATA) + 1)
    assert caught.value.field == "size"
    assert files_under(tmp_path) == []


class _BreaksAfter(io.RawIOBase):
    """A stream that fails after some data, like a client that disconnects."""

    def __init__(self, data: bytes, fail_at: int) -> None:
        self._data = io.BytesIO(data)
        self._fail_at = fail_at

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._data.tell() >= self._fail_at:
            raise ConnectionResetError("peer went away")
        return self._data.read(n)


def test_no_partial_blob_is_visible_after_a_failed_write(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(ConnectionResetError):
        store.store_stream(_BreaksAfter(DATA, fail_at=len(DATA) // 2))  # type: ignore[arg-type]
    assert not store.exists(SHA1)
    assert files_under(tmp_path) == []


def _failing_fsync(code: int) -> Callable[[int], None]:
    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    return fsync


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_filesystem_is_blob_store_full_and_nothing_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    store = BlobStore(tmp_path)
    monkeypatch.setattr(os, "fsync", _failing_fsync(code))
    with pytest.raises(BlobStoreFull) as raised:
        store.store_stream(io.BytesIO(DATA))
    assert raised.value.errno == code
    assert files_under(tmp_path) == []


def test_a_full_filesystem_while_copying_a_spooled_file_is_blob_store_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "spooled"
    source.write_bytes(DATA)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    monkeypatch.setattr(os, "fsync", _failing_fsync(errno.ENOSPC))
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(BlobStoreFull):
        store.store_file(source, sha1=SHA1, size=len(DATA))
    assert files_under(tmp_path / "blobs") == []


def test_other_write_errors_are_not_blob_store_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fsync", _failing_fsync(errno.EIO))
    with pytest.raises(OSError) as raised:
        BlobStore(tmp_path).store_stream(io.BytesIO(DATA))
    assert not isinstance(raised.value, BlobStoreFull)
    assert raised.value.errno == errno.EIO


def test_blob_is_not_visible_while_being_written(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    seen: list[bool] = []

    class Watching(io.BytesIO):
        def read(self, n: int = -1) -> bytes:
            seen.append(store.exists(SHA1))
            return super().read(n)

    store.store_stream(Watching(DATA))
    assert seen and not any(seen)
    assert store.exists(SHA1)


def test_spooled_file_on_same_filesystem_is_linked_not_copied(tmp_path: Path) -> None:
    source = tmp_path / "spooled"
    source.write_bytes(DATA)
    store = BlobStore(tmp_path / "blobs")
    blob = store.store_file(source, sha1=SHA1, size=len(DATA))
    assert blob.path.stat().st_ino == source.stat().st_ino
    assert source.exists()  # the spool's owner removes it


def test_spooled_file_is_copied_across_filesystems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "spooled"
    source.write_bytes(DATA)

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    blob = BlobStore(tmp_path / "blobs").store_file(source, sha1=SHA1, size=len(DATA))
    assert blob.path.read_bytes() == DATA
    assert blob.path.stat().st_ino != source.stat().st_ino


def test_spooled_file_hash_is_verified(tmp_path: Path) -> None:
    source = tmp_path / "spooled"
    source.write_bytes(DATA)
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(BlobIntegrityError):
        store.store_file(source, sha1=hashlib.sha1(b"other").hexdigest(), size=len(DATA))
    assert files_under(tmp_path / "blobs") == []


def test_spooled_file_size_is_verified(tmp_path: Path) -> None:
    source = tmp_path / "spooled"
    source.write_bytes(DATA)
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(BlobIntegrityError):
        store.store_file(source, sha1=SHA1, size=1)
    assert files_under(tmp_path / "blobs") == []


def test_delete_removes_the_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    store.store_stream(io.BytesIO(DATA))
    assert store.delete(SHA1) is True
    assert not store.exists(SHA1)
    assert store.delete(SHA1) is False


def test_path_refuses_what_is_not_a_sha1(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        BlobStore(tmp_path).path("../../etc/passwd")


def test_recovery_removes_old_temp_files_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    old = tmp_path / f"{TEMP_PREFIX}1-old"
    young = tmp_path / f"{TEMP_PREFIX}2-young"
    old.write_bytes(b"half")
    young.write_bytes(b"being written")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    assert store.remove_temp_files(older_than=600) == 1
    assert not old.exists()
    assert young.exists()
