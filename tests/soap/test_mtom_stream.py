"""soap/mtom_stream.py: a message whose last parts come while it is sent - the same bytes
as ``mtom_message`` of all its parts, chunked; cut short (no close delimiter, no end of
body) when its parts fail."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from soap.message import OutgoingAttachment
from soap.mtom import mtom_message
from soap.mtom_response import ZERO_COPY_SEND
from soap.mtom_stream import StreamedMessageResponse, streamed_mtom_message

ENVELOPE = b"<env:Envelope/>"
BOUNDARY = "MIMEBoundary_test"


class PartsFailed(Exception):
    pass


def _attachments(tmp_path: Path, count: int) -> list[OutgoingAttachment]:
    parts = []
    for n in range(count):
        path = tmp_path / f"part{n}"
        path.write_bytes(bytes([n]) * (1000 + n))
        parts.append(OutgoingAttachment(f"p{n}@test", "application/dicom", path, 1000 + n))
    return parts


async def _yielding(
    parts: list[OutgoingAttachment], fail_after: int | None = None
) -> AsyncIterator[OutgoingAttachment]:
    for n, part in enumerate(parts):
        if n == fail_after:
            raise PartsFailed("the source of the parts failed")
        yield part


async def _sent(response: StreamedMessageResponse, scope: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == ZERO_COPY_SEND:  # stands for the file's bytes
            file = message["file"]
            file.seek(message["offset"])
            message = {"type": "http.response.body", "body": file.read(message["count"]),
                       "more_body": message["more_body"]}  # fmt: skip
        messages.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    await response(scope, receive, send)
    return messages


def _body(messages: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


@pytest.mark.parametrize("extensions", [{}, {ZERO_COPY_SEND: {}}], ids=["read", "zero-copy"])
async def test_streamed_parts_make_the_bytes_of_the_whole_message_without_a_length(
    tmp_path: Path, extensions: dict[str, Any]
) -> None:
    parts = _attachments(tmp_path, 3)
    whole = mtom_message(ENVELOPE, parts, boundary=BOUNDARY)
    head = mtom_message(ENVELOPE, parts[:1], boundary=BOUNDARY)
    message = streamed_mtom_message(head, BOUNDARY, _yielding(parts[1:]))

    sent = await _sent(StreamedMessageResponse(message), {"type": "http", "extensions": extensions})

    headers = dict(sent[0]["headers"])
    assert b"content-length" not in headers
    assert headers[b"content-type"] == whole.content_type.encode()
    assert _body(sent) == b"".join(whole.iter_bytes())
    assert sent[-1] == {
        "type": "http.response.body",
        "body": whole.segments[-1],
        "more_body": False,
    }


async def test_failing_parts_cut_the_message_short(tmp_path: Path) -> None:
    parts = _attachments(tmp_path, 3)
    message = streamed_mtom_message(
        mtom_message(ENVELOPE, boundary=BOUNDARY), BOUNDARY, _yielding(parts, fail_after=2)
    )
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    with pytest.raises(PartsFailed):
        await StreamedMessageResponse(message)({"type": "http"}, receive, send)

    body = _body(sent)
    assert body.endswith(parts[1].path.read_bytes())  # the parts that came went out
    assert f"--{BOUNDARY}--".encode() not in body  # but not the close delimiter
    assert all(m.get("more_body", True) for m in sent[1:])  # nor the end of the body


def test_a_message_not_ending_with_its_close_delimiter_is_refused() -> None:
    with pytest.raises(ValueError, match="close delimiter"):
        streamed_mtom_message(mtom_message(ENVELOPE), BOUNDARY, _yielding([]))


@pytest.mark.parametrize("fail_after", [None, 1], ids=["complete", "cut-short"])
async def test_the_outcome_is_told_and_awaited_before_the_close_delimiter(
    tmp_path: Path, fail_after: int | None
) -> None:
    # an observer (auditing) records the real outcome, durable before the message ends
    parts = _attachments(tmp_path, 2)
    events: list[object] = []

    async def durable() -> None:
        events.append("durable")

    def finished(failure: BaseException | None) -> object:
        events.append(failure)
        return durable()

    message = replace(
        streamed_mtom_message(
            mtom_message(ENVELOPE, boundary=BOUNDARY), BOUNDARY, _yielding(parts, fail_after)
        ),
        finished=finished,
    )
    sent: list[dict[str, Any]] = []

    async def send(item: dict[str, Any]) -> None:
        if item.get("more_body") is False:
            events.append("end")
        sent.append(item)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    response = StreamedMessageResponse(message)
    if fail_after is None:
        await response({"type": "http"}, receive, send)
        assert events == [None, "durable", "end"]
    else:
        with pytest.raises(PartsFailed):
            await response({"type": "http"}, receive, send)
        assert len(events) == 2 and isinstance(events[0], PartsFailed)
        assert events[1] == "durable"


@pytest.mark.parametrize("extensions", [{}, {ZERO_COPY_SEND: {}}], ids=["read", "zero-copy"])
async def test_a_part_opened_by_its_producer_is_sent_from_its_file_and_closed(
    tmp_path: Path, extensions: dict[str, Any]
) -> None:
    parts = _attachments(tmp_path, 3)
    opened = [replace(part, file=part.path.open("rb")) for part in parts]
    for part in parts:
        part.path.unlink()  # what goes out is what the open file holds, not the path
    message = streamed_mtom_message(
        mtom_message(ENVELOPE, boundary=BOUNDARY), BOUNDARY, _yielding(opened)
    )
    sent = await _sent(StreamedMessageResponse(message), {"type": "http", "extensions": extensions})
    body = _body(sent)
    for n, part in enumerate(parts):
        assert bytes([n]) * part.size in body
    assert body.endswith(f"\r\n--{BOUNDARY}--\r\n".encode())
    assert all(part.file is not None and part.file.closed for part in opened)


async def test_a_part_opened_by_its_producer_is_closed_when_sending_fails(tmp_path: Path) -> None:
    part = _attachments(tmp_path, 1)[0]
    opened = replace(part, file=part.path.open("rb"))
    message = streamed_mtom_message(
        mtom_message(ENVELOPE, boundary=BOUNDARY), BOUNDARY, _yielding([opened])
    )

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and b"<p0@test>" in message["body"]:
            raise OSError("the client went away")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    with pytest.raises(OSError, match="went away"):
        await StreamedMessageResponse(message)({"type": "http"}, receive, send)
    assert opened.file is not None and opened.file.closed
