"""soap/mtom_response.py: a message of many document parts under a server offering Zero
Copy Send - each file handed over open, in order, opened ahead in batches off the event
loop, and every one closed, whether the message goes out whole or the client goes."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from soap import mtom_response
from soap.message import OutgoingAttachment
from soap.mtom import mtom_message, simple_message
from soap.mtom_response import OPEN_AHEAD, ZERO_COPY_SEND, MessageResponse

SCOPE = {"type": "http", "extensions": {ZERO_COPY_SEND: {}}}


def _attachments(tmp_path: Path, sizes: list[int]) -> list[OutgoingAttachment]:
    attachments = []
    for n, size in enumerate(sizes):
        path = tmp_path / f"part{n}"
        path.write_bytes(bytes([n % 256]) * size)
        attachments.append(OutgoingAttachment(f"part{n}@xdsi", "application/dicom", path, size))
    return attachments


class Recorder:
    """An ASGI ``send``: the body as the client would get it, the files handed over;
    nothing may follow the message that ends the body."""

    def __init__(self, fail_after_files: int | None = None) -> None:
        self.body = b""
        self.files: list[Any] = []
        self.fail_after_files = fail_after_files
        self.messages = 0
        self.ended = False

    async def __call__(self, message: dict[str, Any]) -> None:
        assert not self.ended, "a message after the end of the body"
        self.messages += 1
        if message["type"] in ("http.response.body", ZERO_COPY_SEND):
            self.ended = not message.get("more_body", False)
        if message["type"] == "http.response.body":
            self.body += message["body"]
        elif message["type"] == ZERO_COPY_SEND:
            file = message["file"]
            assert not file.closed
            self.files.append(file)
            if self.fail_after_files is not None and len(self.files) > self.fail_after_files:
                raise OSError("the client went away")
            file.seek(message["offset"])
            self.body += file.read(message["count"])


async def _receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def test_every_part_goes_in_order_and_every_file_is_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = [1000 + n for n in range(2 * OPEN_AHEAD + 5)]
    sizes[7] = 0  # an empty document: a part with no file to send
    attachments = _attachments(tmp_path, sizes)
    message = mtom_message(b"<envelope/>", attachments, boundary="b")
    hops: list[int] = []
    real = mtom_response._open_all

    def counted(batch: list[OutgoingAttachment]) -> list[Any]:
        assert threading.current_thread() is not threading.main_thread()
        hops.append(len(batch))
        return real(batch)

    monkeypatch.setattr(mtom_response, "_open_all", counted)
    recorder = Recorder()
    asyncio.run(MessageResponse(message)(SCOPE, _receive, recorder))
    expected = b"".join(
        s if isinstance(s, bytes) else s.path.read_bytes() for s in message.segments
    )
    assert recorder.body == expected
    assert len(recorder.body) == message.content_length
    assert hops == [OPEN_AHEAD, OPEN_AHEAD, 4]  # a thread hop per batch, not per file
    assert len(recorder.files) == len(sizes) - 1
    assert all(file.closed for file in recorder.files)


def test_files_opened_ahead_are_closed_when_the_client_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attachments = _attachments(tmp_path, [100] * (OPEN_AHEAD + 3))
    message = mtom_message(b"<envelope/>", attachments, boundary="b")
    opened: list[Any] = []
    real = mtom_response._open_all

    def recorded(batch: list[OutgoingAttachment]) -> list[Any]:
        files = real(batch)
        opened.extend(files)
        return files

    monkeypatch.setattr(mtom_response, "_open_all", recorded)
    with pytest.raises(OSError, match="went away"):
        asyncio.run(MessageResponse(message)(SCOPE, _receive, Recorder(fail_after_files=3)))
    assert len(opened) == OPEN_AHEAD  # the second batch was never opened
    assert all(file.closed for file in opened)


def test_a_batch_that_cannot_be_opened_leaves_nothing_open(tmp_path: Path) -> None:
    attachments = _attachments(tmp_path, [100] * 5)
    message = mtom_message(b"<envelope/>", attachments, boundary="b")
    attachments[3].path.unlink()  # gone between the answer and the sending
    recorder = Recorder()
    descriptors = len(os.listdir("/proc/self/fd"))
    with pytest.raises(FileNotFoundError):
        asyncio.run(MessageResponse(message)(SCOPE, _receive, recorder))
    assert recorder.files == []  # nothing sent: the batch failed as a whole
    assert len(os.listdir("/proc/self/fd")) == descriptors  # the three opened are closed


@pytest.mark.parametrize("with_file", [False, True])
def test_the_last_bytes_end_the_body(tmp_path: Path, with_file: bool) -> None:
    """A simple message is its start and one body message; an MTOM one's close
    delimiter ends the body, no empty message after it."""
    if with_file:
        message = mtom_message(b"<envelope/>", _attachments(tmp_path, [10]), boundary="b")
    else:
        message = simple_message(b"<envelope/>")
    recorder = Recorder()
    asyncio.run(MessageResponse(message)(SCOPE, _receive, recorder))
    assert recorder.ended
    assert len(recorder.body) == message.content_length
    assert recorder.messages == len(message.segments) + 1  # the start, then each segment
