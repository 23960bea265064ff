"""soap/mtom.py: Content-Type parsing, the streaming reader, XOP checks, the writer."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from soap_echo import DATA, NS, UPLOAD
from soap_wire import XOP_ROOT_CT, envelope, mtom_content_type, multipart

from soap.envelope import XOP_INCLUDE
from soap.faults import SoapFault
from soap.limits import Limits
from soap.message import OutgoingAttachment
from soap.mtom import (
    FEED_BATCH,
    FILE_CHUNK_SIZE,
    MessageReader,
    MessageThread,
    _split_params,
    _unescape,
    feed_reader,
    mtom_message,
    new_content_ids,
    parse_content_type,
    simple_message,
)

XOP = "http://www.w3.org/2004/08/xop/include"
CONTENT = bytes(range(256)) * 40 + b"\r\n--b0undar"  # near-boundary bytes inside a part


def upload_root(*hrefs: str) -> bytes:
    includes = "".join(
        f'<e:Data><xop:Include xmlns:xop="{XOP}" href="{href}"/></e:Data>' for href in hrefs
    )
    return envelope(f'<e:Upload xmlns:e="{NS}">{includes}</e:Upload>', action=UPLOAD)


def package(root: bytes, *parts: tuple[str, bytes], root_first: bool = True) -> bytes:
    root_part = ({"Content-Type": XOP_ROOT_CT, "Content-ID": "<root@test>"}, root)
    others = [({"Content-Type": "application/pdf", "Content-ID": f"<{c}>"}, b) for c, b in parts]
    return multipart([root_part, *others] if root_first else [*others, root_part])


def read(body: bytes, content_type: str, limits: Limits, chunks: list[int] | None = None, **kw):
    reader = MessageReader(content_type, limits, **kw)
    sizes = iter(chunks or [len(body)])
    position = 0
    while position < len(body):
        size = next(sizes, len(body))
        reader.feed(body[position : position + size])
        position += size
    try:
        return reader.finish()
    except SoapFault:
        reader.discard()
        raise


# --- Content-Type -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [
        'multipart/related; type="application/xop+xml"; boundary="b0undary"; start="<r@t>"',
        "multipart/related;boundary=b0undary;start=\"<r@t>\";type='x';type=application/xop+xml",
        'Multipart/Related; start="<r@t>"; BOUNDARY=b0undary; start-info="application/soap+xml"',
    ],
)
def test_content_type_params_in_any_order_quoted_or_not(value):
    ctype = parse_content_type(value)
    assert (ctype.media_type, ctype.params["boundary"], ctype.params["start"]) == (
        "multipart/related",
        "b0undary",
        "<r@t>",
    )


def test_content_type_quoted_value_may_hold_semicolon():
    assert parse_content_type('a/b; x="1;2"; y=3').params == {"x": "1;2", "y": "3"}


def _split_by_character(value: str) -> list[str]:
    """RFC 2045 5.1 read one character at a time, the reading ``_split_params`` must
    match: ';' ends a parameter outside quotes; inside them '\\' quotes the next
    character."""
    parts, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _unescape_by_character(quoted: str) -> str:
    """A quoted-string's content one character at a time, the reading ``_unescape``
    must match: each '\\' dropped and the character after it kept as it is (a lone
    one at the end: dropped)."""
    out, escaped = [], False
    for char in quoted:
        if char == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        out.append(char)
    return "".join(out)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='ab=; "\\\n', max_size=40))
def test_content_type_read_as_character_by_character(value: str) -> None:
    assert _split_params(value) == _split_by_character(value)
    assert _unescape(value) == _unescape_by_character(value)


@pytest.mark.parametrize(
    "value",
    [
        'a/b; x="q\\"uote"; y=1',  # an escaped quote does not end the string
        'a/b; x="back\\\\slash"',  # an escaped backslash
        'a/b; x="open; y=2',  # never closed: the rest is the value
        'a/b; x="ends\\"',  # an escaped quote last: still open
        'a/b; x="lone\\',  # a lone backslash last
    ],
)
def test_content_type_quoting_edges(value: str) -> None:
    parts = _split_params(value)
    assert parts == _split_by_character(value)
    quoted = parts[1].partition("=")[2].strip()[1:-1]
    assert _unescape(quoted) == _unescape_by_character(quoted)


# --- reading ------------------------------------------------------------------------------
def test_attachment_sha1_and_size(limits):
    message = read(
        package(upload_root("cid:doc@1"), ("doc@1", CONTENT)), mtom_content_type(), limits
    )
    attachment = message.attachments["doc@1"]
    assert (attachment.size, attachment.sha1) == (len(CONTENT), hashlib.sha1(CONTENT).hexdigest())
    assert attachment.path.read_bytes() == CONTENT


def test_attachment_spooled_in_spool_dir(limits):
    message = read(
        package(upload_root("cid:doc@1"), ("doc@1", CONTENT)), mtom_content_type(), limits
    )
    assert message.attachments["doc@1"].path.parent == limits.spool_dir


def test_parts_split_into_one_byte_chunks(limits):
    body = package(upload_root("cid:doc@1"), ("doc@1", CONTENT))
    message = read(body, mtom_content_type(), limits, chunks=[1] * len(body))
    assert message.attachments["doc@1"].path.read_bytes() == CONTENT


@pytest.mark.parametrize("seed", range(5))
def test_parts_split_into_random_chunks(limits, seed):
    body = package(upload_root("cid:a@1", "cid:b@1"), ("a@1", CONTENT), ("b@1", CONTENT[::-1]))
    rng = random.Random(seed)
    chunks = [rng.randint(1, 700) for _ in range(len(body))]
    message = read(body, mtom_content_type(), limits, chunks=chunks)
    assert message.attachments["b@1"].path.read_bytes() == CONTENT[::-1]


def test_unquoted_boundary(limits):
    ctype = 'multipart/related; boundary=b0undary; type="application/xop+xml"; start="<root@test>"'
    message = read(package(upload_root("cid:doc@1"), ("doc@1", b"x")), ctype, limits)
    assert message.mtom and "doc@1" in message.attachments


def test_root_selected_by_start_when_not_first(limits):
    body = package(upload_root("cid:doc@1"), ("doc@1", b"x"), root_first=False)
    message = read(body, mtom_content_type(), limits)
    assert message.envelope.find(".//" + XOP_INCLUDE) is not None


def test_first_part_is_root_without_start(limits):
    body = package(upload_root("cid:doc@1"), ("doc@1", b"x"))
    message = read(body, mtom_content_type(start=None), limits)
    assert set(message.attachments) == {"doc@1"}


def test_url_encoded_cid_href_matches_content_id(limits):
    # RFC 2392: the cid: URL is URL-encoded, the Content-ID header is not
    body = package(upload_root("cid:doc%401.example"), ("doc@1.example", b"x"))
    message = read(body, mtom_content_type(), limits)
    assert "doc@1.example" in message.attachments


def test_unreferenced_part_stays_available(limits):
    body = package(upload_root("cid:doc@1"), ("doc@1", b"x"), ("extra@1", b"y"))
    message = read(body, mtom_content_type(), limits)
    assert message.attachments["extra@1"].path.read_bytes() == b"y"


def test_missing_referenced_part_is_fault(limits):
    with pytest.raises(SoapFault, match="names no MIME part"):
        read(package(upload_root("cid:nope@1"), ("doc@1", b"x")), mtom_content_type(), limits)


def test_part_referenced_twice_is_fault(limits):
    body = package(upload_root("cid:doc@1", "cid:doc@1"), ("doc@1", b"x"))
    with pytest.raises(SoapFault, match="referenced twice"):
        read(body, mtom_content_type(), limits)


def test_missing_root_is_fault(limits):
    body = multipart([({"Content-Type": "text/plain", "Content-ID": "<a@1>"}, b"x")])
    with pytest.raises(SoapFault, match="root part"):
        read(body, mtom_content_type(), limits)


def test_truncated_body_is_fault(limits):
    body = package(upload_root("cid:doc@1"), ("doc@1", CONTENT))
    with pytest.raises(SoapFault, match="truncated"):
        read(body[:-30], mtom_content_type(), limits)


def test_truncated_body_leaves_no_spooled_file(limits):
    body = package(upload_root("cid:doc@1"), ("doc@1", CONTENT))
    with pytest.raises(SoapFault):
        read(body[:-30], mtom_content_type(), limits)
    assert list(Path(limits.spool_dir).iterdir()) == []


def test_wrong_content_type_is_fault(limits):
    with pytest.raises(SoapFault) as caught:
        MessageReader("text/plain", limits)
    assert caught.value.http_status == 415


def test_multipart_without_boundary_is_fault(limits):
    with pytest.raises(SoapFault):
        MessageReader('multipart/related; type="application/xop+xml"', limits)


def test_too_many_attachments_is_fault(limits):
    few = Limits(spool_dir=limits.spool_dir, max_attachments=1)
    body = package(upload_root("cid:a@1"), ("a@1", b"x"), ("b@1", b"y"))
    with pytest.raises(SoapFault, match="more than 1 attachments"):
        read(body, mtom_content_type(), few)


def _part_with_headers(extra: dict[str, str]) -> bytes:
    root_part = ({"Content-Type": XOP_ROOT_CT, "Content-ID": "<root@test>"}, upload_root("cid:a@1"))
    headers = {"Content-Type": "application/pdf", "Content-ID": "<a@1>", **extra}
    return multipart([root_part, (headers, b"x")])


def test_part_with_many_headers_is_read(limits):
    # the cap is limits.max_part_header_bytes, not a count of header lines
    extra = {f"X-Header-{n}": "v" for n in range(20)}
    message = read(_part_with_headers(extra), mtom_content_type(), limits)
    assert list(message.attachments) == ["a@1"]


def test_part_header_line_longer_than_4_kib_is_read(limits):
    message = read(_part_with_headers({"X-Long": "v" * 8000}), mtom_content_type(), limits)
    assert list(message.attachments) == ["a@1"]


@pytest.mark.parametrize(
    "extra",
    [{"X-Long": "v" * 20_000}, {f"X-Header-{n}": "v" * 60 for n in range(400)}],
    ids=["one_long_line", "many_lines"],
)
def test_part_headers_over_their_cap_are_413(limits, extra):
    with pytest.raises(SoapFault) as caught:
        read(_part_with_headers(extra), mtom_content_type(), limits)
    assert caught.value.http_status == 413


def test_simple_soap_message_is_read(limits):
    message = read(envelope(), "application/soap+xml; charset=UTF-8", limits)
    assert (message.mtom, message.attachments) == (False, {})


def test_request_over_total_cap_is_413(limits):
    small = Limits(spool_dir=limits.spool_dir, max_request_bytes=100)
    with pytest.raises(SoapFault) as caught:
        read(envelope(), "application/soap+xml", small)
    assert caught.value.http_status == 413


# --- inline base64 (ITI TF-2 V.8.2) ------------------------------------------------------------
def inline_root(data: bytes) -> bytes:
    encoded = base64.encodebytes(data).decode()  # 76-character lines, as senders wrap them
    return envelope(
        f'<e:Upload xmlns:e="{NS}"><e:Data>{encoded}</e:Data></e:Upload>', action=UPLOAD
    )


def test_inline_base64_over_10_mb_becomes_an_attachment(limits):
    data = random.Random(1).randbytes(8 * 1024 * 1024)  # 10.7 MiB of base64 text
    body = package(inline_root(data))
    message = read(
        body, mtom_content_type(), limits, chunks=[1 << 20] * 64, binary_elements=frozenset({DATA})
    )
    (attachment,) = message.attachments.values()
    assert (attachment.size, attachment.sha1) == (len(data), hashlib.sha1(data).hexdigest())


def test_inline_base64_replaced_by_xop_include(limits):
    body = package(inline_root(b"hello world"))
    message = read(body, mtom_content_type(), limits, binary_elements=frozenset({DATA}))
    include = message.envelope.find(f".//{DATA}/{XOP_INCLUDE}")
    (cid,) = message.attachments
    assert include.get("href") == "cid:" + cid.replace("@", "%40")


def test_inline_base64_in_simple_soap_is_decoded(limits):
    message = read(
        inline_root(b"abc"), "application/soap+xml", limits, binary_elements=frozenset({DATA})
    )
    (attachment,) = message.attachments.values()
    assert attachment.path.read_bytes() == b"abc"


def test_inline_base64_split_into_one_byte_chunks(limits):
    body = inline_root(b"0123456789abcdef")
    message = read(
        body,
        "application/soap+xml",
        limits,
        chunks=[1] * len(body),
        binary_elements=frozenset({DATA}),
    )
    (attachment,) = message.attachments.values()
    assert attachment.path.read_bytes() == b"0123456789abcdef"


def test_invalid_inline_base64_is_fault(limits):
    body = envelope(f'<e:Upload xmlns:e="{NS}"><e:Data>ab$d</e:Data></e:Upload>', action=UPLOAD)
    with pytest.raises(SoapFault, match="base64"):
        read(body, "application/soap+xml", limits, binary_elements=frozenset({DATA}))


def test_inline_base64_over_cap_is_413(limits):
    small = Limits(spool_dir=limits.spool_dir, max_inline_binary_bytes=10)
    with pytest.raises(SoapFault) as caught:
        read(
            inline_root(b"x" * 100),
            "application/soap+xml",
            small,
            binary_elements=frozenset({DATA}),
        )
    assert caught.value.http_status == 413


def test_inline_text_not_counted_against_envelope_cap(limits):
    small = Limits(spool_dir=limits.spool_dir, max_envelope_bytes=4096)
    message = read(
        inline_root(b"x" * 100_000),
        "application/soap+xml",
        small,
        binary_elements=frozenset({DATA}),
    )
    (attachment,) = message.attachments.values()
    assert attachment.size == 100_000


def test_element_not_listed_keeps_its_text(limits):
    message = read(inline_root(b"abc"), "application/soap+xml", limits)
    assert message.envelope.findtext(f".//{DATA}").strip() == "YWJj"


# --- writing ------------------------------------------------------------------------------
def test_mtom_message_exact_bytes(tmp_path):
    part = tmp_path / "part"
    part.write_bytes(b"%PDF")
    message = mtom_message(
        b"<env/>", [OutgoingAttachment("doc@1", "application/pdf", part, 4)], boundary="BND"
    )
    assert b"".join(message.iter_bytes()) == (
        b"--BND\r\n"
        b'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <root.message@xdsi>\r\n"
        b"\r\n"
        b"<env/>\r\n"
        b"--BND\r\n"
        b"Content-Type: application/pdf\r\n"
        b"Content-Transfer-Encoding: binary\r\n"
        b"Content-ID: <doc@1>\r\n"
        b"\r\n"
        b"%PDF\r\n"
        b"--BND--\r\n"
    )


def test_mtom_message_content_type(tmp_path):
    message = mtom_message(b"<env/>", boundary="BND")
    assert message.content_type == (
        'multipart/related; type="application/xop+xml"; start="<root.message@xdsi>"; '
        'start-info="application/soap+xml"; boundary=BND'
    )


def test_mtom_message_content_length_is_exact(tmp_path):
    part = tmp_path / "part"
    part.write_bytes(b"z" * 200_000)
    message = mtom_message(b"<env/>", [OutgoingAttachment("a@1", "x/y", part, 200_000)])
    assert message.content_length == len(b"".join(message.iter_bytes()))


def test_mtom_message_streams_in_1_mib_chunks(tmp_path):
    part = tmp_path / "part"
    part.write_bytes(b"z" * 2_500_000)
    message = mtom_message(b"<env/>", [OutgoingAttachment("a@1", "x/y", part, 2_500_000)])
    assert max(len(chunk) for chunk in message.iter_bytes()) == FILE_CHUNK_SIZE == 1024 * 1024


async def test_mtom_message_streams_async_in_1_mib_chunks(tmp_path):
    # one worker-thread hop per read: a large document must not cost one per 64 KiB
    part = tmp_path / "part"
    part.write_bytes(b"z" * 2_500_000)
    message = mtom_message(b"<env/>", [OutgoingAttachment("a@1", "x/y", part, 2_500_000)])
    sizes = [len(chunk) async for chunk in message.aiter_bytes()]
    assert sizes[2:5] == [FILE_CHUNK_SIZE, FILE_CHUNK_SIZE, 2_500_000 - 2 * FILE_CHUNK_SIZE]


def test_mtom_message_refuses_wrong_declared_size(tmp_path):
    part = tmp_path / "part"
    part.write_bytes(b"abc")
    with pytest.raises(ValueError):
        mtom_message(b"<env/>", [OutgoingAttachment("a@1", "x/y", part, 4)])


def test_written_package_reads_back(tmp_path, limits):
    part = tmp_path / "part"
    part.write_bytes(CONTENT)
    root = etree.tostring(etree.fromstring(upload_root("cid:doc%401")))
    message = mtom_message(
        root, [OutgoingAttachment("doc@1", "application/pdf", part, len(CONTENT))]
    )
    read_back = read(b"".join(message.iter_bytes()), message.content_type, limits)
    assert read_back.attachments["doc@1"].sha1 == hashlib.sha1(CONTENT).hexdigest()


def test_simple_message():
    message = simple_message(b"<env/>")
    assert (message.content_type, message.content_length) == (
        "application/soap+xml; charset=UTF-8",
        6,
    )


class _SlowFirstFeed:
    """Stands in for a MessageReader: its first feed waits until the next batch came."""

    def __init__(self) -> None:
        self.next_batch_received = threading.Event()
        self.overlapped: bool | None = None
        self.fed: list[int] = []
        self.threads: list[int] = []

    def feed(self, chunk: bytes) -> None:
        self.threads.append(threading.get_ident())
        if self.overlapped is None:
            self.overlapped = self.next_batch_received.wait(5.0)
        self.fed.append(len(chunk))


def _thread() -> MessageThread:
    return MessageThread()


async def test_feed_parses_a_batch_while_the_next_is_received():
    reader = _SlowFirstFeed()

    async def body():
        yield b"a" * FEED_BATCH
        yield b"b" * FEED_BATCH
        reader.next_batch_received.set()  # asked for more while batch 1 was being parsed
        yield b"c"

    await feed_reader(reader, body(), _thread())  # type: ignore[arg-type]
    assert reader.overlapped is True
    assert reader.fed == [FEED_BATCH, FEED_BATCH, 1]
    assert len(set(reader.threads)) == 1  # every batch on the body's one thread


async def test_feed_raises_the_readers_fault_unwrapped(limits):
    async def body():
        for _ in range(4):
            yield b"x" * FEED_BATCH  # not a multipart body: the reader faults

    reader = MessageReader("multipart/related; boundary=b", limits)
    with pytest.raises(SoapFault, match="malformed multipart"):
        await feed_reader(reader, body(), _thread())


async def test_feed_raises_the_bodys_error_unwrapped(limits):
    reader = MessageReader("multipart/related; boundary=b", limits)

    async def body():
        yield b"--b\r\n"
        raise ConnectionResetError("peer gone")

    with pytest.raises(ConnectionResetError):
        await feed_reader(reader, body(), _thread())


def test_content_ids_are_unique_within_and_across_messages() -> None:
    first, second = new_content_ids("instance", 500), new_content_ids("instance", 500)
    assert len(set(first)) == len(set(second)) == 500
    assert not set(first) & set(second)
    # RFC 2392 / RFC 5322 msg-id: id-left "@" id-right, nothing a cid: URL must escape
    assert all(re.fullmatch(r"instance\d+\.[0-9a-f]{32}@xdsi", cid) for cid in first)
