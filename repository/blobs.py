"""Content-addressed document store: one file per distinct content, named by its SHA-1.

A blob lives at ``<root>/<sha1[:2]>/<sha1[2:4]>/<sha1>``.  It is written to a temp file
in the same filesystem (named ``TEMP_PREFIX...`` so :meth:`BlobStore.remove_temp_files`
can sweep what a crash left), fsynced, renamed into place and the directory fsynced:
a reader sees the whole file or none.  Storing identical content twice is a no-op.
Several processes may share one root; nothing is held in memory between calls.

ITI TF-3 4.2.3.2.9 (hash) and 4.2.3.2.19 (size): the SHA-1, hex, and the byte count of
the document as stored.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 64 * 1024
TEMP_PREFIX = ".xdsi-tmp-"
_SHA1 = re.compile(r"[0-9a-f]{40}")


class BlobIntegrityError(ValueError):
    """The content does not have the size or SHA-1 it was announced with."""

    def __init__(self, field: str, expected: str | int, actual: str | int) -> None:
        self.field = field
        self.expected = expected
        self.actual = actual
        super().__init__(f"{field}: expected {expected}, got {actual}")


class BlobStoreFull(OSError):
    """The store's filesystem has no room left (ENOSPC) or the quota is spent (EDQUOT):
    ITI TF-3 Table 4.2.4.1-2 XDSRepositoryOutOfResources.  Nothing of the write is kept."""


# the errnos that mean "no room", not "something is wrong with the store"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """The outcome of a store: ``created`` is False when identical content was there."""

    sha1: str
    size: int
    path: Path
    created: bool


def sha1_of_file(path: Path) -> tuple[str, int]:
    """SHA-1 (hex) and size of a file, read in chunks."""
    digest = hashlib.sha1()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check(field: str, expected: str | int | None, actual: str | int) -> None:
    if expected is not None and expected != actual:
        raise BlobIntegrityError(field, expected, actual)


class BlobStore:
    """Blobs under ``root``; ``root`` is created on first use."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # --- reading ---------------------------------------------------------------------
    def path(self, sha1: str) -> Path:
        if not _SHA1.fullmatch(sha1):
            raise ValueError(f"not a lower-case hex SHA-1: {sha1!r}")
        return self.root / sha1[:2] / sha1[2:4] / sha1

    def exists(self, sha1: str) -> bool:
        return self.path(sha1).is_file()

    def open(self, sha1: str) -> BinaryIO:
        return open(self.path(sha1), "rb")

    def delete(self, sha1: str) -> bool:
        """Remove a blob; False when it was not there."""
        target = self.path(sha1)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(target.parent)
        return True

    # --- writing ---------------------------------------------------------------------
    def store_stream(
        self, stream: BinaryIO, *, sha1: str | None = None, size: int | None = None
    ) -> StoredBlob:
        """Copy ``stream`` into the store, hashing while writing.  ``sha1``/``size``, when
        given, must match what was read (else :class:`BlobIntegrityError`, nothing kept)."""
        with self._temp_file() as temp:
            digest = hashlib.sha1()
            written = 0
            with open(temp, "wb") as out:
                while chunk := stream.read(CHUNK_SIZE):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            _check("size", size, written)
            _check("hash", sha1.lower() if sha1 else None, actual)
            return self._place(temp, actual, written)

    def store_file(
        self,
        source: Path | str,
        *,
        sha1: str | None = None,
        size: int | None = None,
        verify_hash: bool = True,
    ) -> StoredBlob:
        """Store a file (e.g. a spooled MTOM part).  On the same filesystem it is hard-linked
        instead of copied; the source stays where it is for its owner to remove.

        The size is always checked against the file; the hash is recomputed unless
        ``verify_hash`` is False and ``sha1`` is given (a hash computed while spooling).
        """
        source = Path(source)
        with self._temp_file() as temp:
            try:
                os.link(source, temp)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                with open(source, "rb") as stream:
                    return self.store_stream(stream, sha1=sha1, size=size)
            actual_size = temp.stat().st_size
            _check("size", size, actual_size)
            if verify_hash or not sha1:
                actual, _ = sha1_of_file(temp)
                _check("hash", sha1.lower() if sha1 else None, actual)
            else:
                actual = sha1.lower()
            # the spooler may not have fsynced: make the linked inode durable
            with open(temp, "rb") as f:
                os.fsync(f.fileno())
            return self._place(temp, actual, actual_size)

    def _place(self, temp: Path, sha1: str, size: int) -> StoredBlob:
        target = self.path(sha1)
        if target.is_file():
            # identical content is already stored; content addressing makes this idempotent.
            # Touched, so a sweep of unreferenced blobs older than a grace period
            # (``repository.check``) does not take it from the row about to use it.
            with contextlib.suppress(FileNotFoundError):
                os.utime(target)
                return StoredBlob(sha1, size, target, created=False)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        _fsync_dir(target.parent)
        return StoredBlob(sha1, size, target, created=True)

    @contextlib.contextmanager
    def _temp_file(self) -> Iterator[Path]:
        """A fresh temp name in the store's root; removed on exit if still there."""
        temp = self.root / f"{TEMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            yield temp
        except BlobStoreFull:
            raise
        except OSError as exc:
            # every write of the store happens here: one place tells "full" apart
            if exc.errno not in _FULL_ERRNOS:
                raise
            raise BlobStoreFull(exc.errno, exc.strerror, exc.filename) from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    # --- recovery --------------------------------------------------------------------
    def blob_files(self) -> Iterator[tuple[str, Path]]:
        """Every stored blob as (SHA-1, path), read from the directory layout; files
        that are not named like a blob in its place are not listed."""
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            sha1 = path.name
            if (
                _SHA1.fullmatch(sha1)
                and path.parent.parent.name == sha1[:2]
                and (path.parent.name == sha1[2:4] and path.is_file())
            ):
                yield sha1, path

    def temp_files(self) -> Iterator[Path]:
        if self.root.is_dir():
            yield from self.root.glob(f"{TEMP_PREFIX}*")

    def remove_temp_files(self, older_than: float = 0.0, now: float | None = None) -> int:
        """Remove temp files last modified more than ``older_than`` seconds ago (other
        processes sharing the store may be writing the younger ones).  Returns the count."""
        limit = (time.time() if now is None else now) - older_than
        removed = 0
        for temp in self.temp_files():
            with contextlib.suppress(FileNotFoundError):
                if temp.stat().st_mtime <= limit:
                    temp.unlink()
                    removed += 1
        return removed


__all__ = [
    "CHUNK_SIZE",
    "TEMP_PREFIX",
    "BlobIntegrityError",
    "BlobStore",
    "BlobStoreFull",
    "StoredBlob",
    "sha1_of_file",
]
