"""bench/documents.py: both downloads land in one file, overwritten in place.

The ITI-43 reader and the nginx sink must write the document into the same file without
replacing it (its page-cache pages are reused, whichever server was read), and must cut
whatever a longer earlier download left beyond the new end.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from documents import LandingFile, LandingParts, ScannedFileSink  # noqa: E402

BOUNDARY = "MIMEBoundary_0123456789abcdef"


def _document(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _mtom_body(document: bytes) -> bytes:
    """An ITI-43 response body: the SOAP root part, then the document part (RFC 2387)."""
    return (
        (
            f"--{BOUNDARY}\r\nContent-Type: application/xop+xml\r\n"
            "Content-ID: <root@bench>\r\n\r\n<Envelope/>"
            f"\r\n--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n"
            "Content-ID: <doc1@bench>\r\n\r\n"
        ).encode()
        + document
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


def _feed_in_pieces(sink: LandingParts | ScannedFileSink, data: bytes, piece: int) -> None:
    for at in range(0, len(data), piece):
        sink.feed(data[at : at + piece])


@pytest.fixture
def landing(tmp_path: Path) -> LandingFile:
    like = tmp_path / "input.bin"
    like.write_bytes(_document(300_000, seed=1))
    return LandingFile(tmp_path / "landing.bin", like=like)


def test_landing_file_starts_as_a_copy_of_the_document(landing: LandingFile) -> None:
    assert landing.path.read_bytes() == _document(300_000, seed=1)


@pytest.mark.parametrize("piece", [1000, 65_536, 1 << 20])
def test_iti43_document_part_is_written_into_the_landing_file_in_place(
    landing: LandingFile, piece: int
) -> None:
    inode = landing.path.stat().st_ino
    document = _document(200_000, seed=2)  # shorter than what the file holds
    reader = LandingParts(BOUNDARY, landing)
    _feed_in_pieces(reader, _mtom_body(document), piece)
    assert reader.complete
    assert reader.root == b"<Envelope/>"
    assert reader.parts == {"doc1@bench": landing.path}
    assert landing.path.read_bytes() == document
    assert landing.path.stat().st_ino == inode


def test_landing_file_is_not_truncated_before_the_document_ends(landing: LandingFile) -> None:
    """Overwritten, not emptied and refilled: the earlier content stays beyond what has
    been written so far (no page of it freed), and is cut only when the part ends."""
    body = _mtom_body(_document(200_000, seed=4))
    reader = LandingParts(BOUNDARY, landing)
    reader.feed(body[:100_000])
    reader._out.flush()  # type: ignore[union-attr]
    assert landing.path.stat().st_size == 300_000
    reader.feed(body[100_000:])
    assert landing.path.stat().st_size == 200_000


def test_a_second_document_part_is_refused(landing: LandingFile) -> None:
    part = (
        f"\r\n--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n"
        "Content-ID: <doc2@bench>\r\n\r\nsecond"
    ).encode()
    body = _mtom_body(b"first").replace(f"\r\n--{BOUNDARY}--".encode(), part, 1)
    with pytest.raises(RuntimeError, match="more than one document part"):
        LandingParts(BOUNDARY, landing).feed(body)


@pytest.mark.parametrize("piece", [1000, 1 << 20])
def test_nginx_body_is_written_into_the_landing_file_in_place(
    landing: LandingFile, piece: int
) -> None:
    inode = landing.path.stat().st_ino
    document = _document(250_000, seed=3)
    sink = ScannedFileSink(landing)
    _feed_in_pieces(sink, document, piece)
    sink.close()
    assert landing.path.read_bytes() == document
    assert landing.path.stat().st_ino == inode
