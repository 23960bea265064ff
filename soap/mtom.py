"""MTOM/XOP both ways: a streaming reader for SOAP messages and a streaming writer.

W3C XOP 1.0, SOAP MTOM (W3C Rec. 2005), RFC 2387 (multipart/related), RFC 2392 (cid:
URLs), ITI TF-2 Appendix V (V.3: MTOM for ITI-41/43, simple SOAP for ITI-18/42; V.8.2:
inline base64 accepted inside MTOM).  Non-root parts are written to spooled temp files
while SHA-1 and size are computed; the root part is parsed as it arrives.
"""

from __future__ import annotations

import _thread
import asyncio
import binascii
import contextlib
import contextvars
import errno
import hashlib
import os
import queue
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio
from lxml import etree
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser

from soap.envelope import XOP_INCLUDE, StreamingEnvelopeParser
from soap.faults import SoapFault, sender_fault
from soap.limits import Limits
from soap.message import Attachment, OutgoingAttachment

CHUNK_SIZE = 64 * 1024
# Bytes read from a part's file at a time when it is sent.  Each read of the async
# writer is one worker-thread hop, so a larger read is what keeps a 1 GiB document
# near disk speed; what is held in memory stays one chunk.
FILE_CHUNK_SIZE = 1024 * 1024
XOP_MEDIA_TYPE = "application/xop+xml"
SOAP12_MEDIA_TYPE = "application/soap+xml"
MULTIPART_RELATED = "multipart/related"
SIMPLE_SOAP_CONTENT_TYPE = f"{SOAP12_MEDIA_TYPE}; charset=UTF-8"
SOAP11_CONTENT_TYPE = "text/xml; charset=UTF-8"
ROOT_CONTENT_ID = "root.message@xdsi"
INLINE_CONTENT_TYPE = "application/octet-stream"
T = TypeVar("T")
# Media types a root part may carry: the XOP package form, or a plain SOAP 1.2 envelope
_ROOT_MEDIA_TYPES = frozenset({XOP_MEDIA_TYPE, SOAP12_MEDIA_TYPE})
# RFC 2045 6.1: encodings that leave the octets as they are
_IDENTITY_ENCODINGS = frozenset({"", "binary", "8bit", "7bit"})
# Media types of a simple (non-MTOM) SOAP message; text/xml is SOAP 1.1 and is let
# through so that the envelope check answers it with VersionMismatch
_SIMPLE_MEDIA_TYPES = frozenset({SOAP12_MEDIA_TYPE, "text/xml"})
# python-multipart's errors for its own per-part header caps, which are set to
# limits.max_part_header_bytes so that exceeding them is that cap (413), not malformation
_HEADER_CAP_ERRORS = frozenset({"Maximum header count exceeded", "Maximum header size exceeded"})


# --- Content-Type ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ContentType:
    media_type: str  # lower case, e.g. "multipart/related"
    params: dict[str, str] = field(default_factory=dict)  # names lower case, unquoted


def parse_content_type(value: str) -> ContentType:
    """RFC 2045 5.1: ``type/subtype *(; name=value)``, values token or quoted-string."""
    parts = _split_params(value)
    media_type = parts[0].strip().lower()
    params: dict[str, str] = {}
    for part in parts[1:]:
        name, sep, raw = part.partition("=")
        if not sep:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = _unescape(raw[1:-1])
        params[name.strip().lower()] = raw
    return ContentType(media_type, params)


# A piece of a parameter list up to the next ';' that is not quoted: a run without
# quotes or ';', or a quoted-string (RFC 822 3.3: '\\' quotes the next character) up to
# its closing quote, or to the end if it has none.
_PARAMETER_PIECE = re.compile(r'[^;"]++|"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_QUOTED_PAIR = re.compile(r"\\(.?)", re.DOTALL)  # a lone one at the end: dropped


def _split_params(value: str) -> list[str]:
    """``value`` cut at each ';' outside a quoted-string."""
    parts: list[str] = []
    current: list[str] = []
    at, end = 0, len(value)
    while at < end:
        if value[at] == ";":
            parts.append("".join(current))
            current = []
            at += 1
            continue
        piece = _PARAMETER_PIECE.match(value, at)
        assert piece is not None  # one of the alternatives matches any character
        current.append(piece.group())
        at = piece.end()
    parts.append("".join(current))
    return parts


def _unescape(quoted: str) -> str:
    """A quoted-string's content with each quoted-pair replaced by its character."""
    return _QUOTED_PAIR.sub(r"\1", quoted) if "\\" in quoted else quoted


def strip_angle(content_id: str) -> str:
    """RFC 2392: a Content-ID header is ``<addr-spec>``; keep the addr-spec."""
    content_id = content_id.strip()
    if content_id.startswith("<") and content_id.endswith(">"):
        return content_id[1:-1]
    return content_id


def cid_of_href(href: str) -> str | None:
    """RFC 2392: ``cid:`` URL -> Content-ID (URL-decoded), None for any other URL."""
    if href[:4].lower() != "cid:":
        return None
    return unquote(href[4:])


# --- spooling --------------------------------------------------------------------------
SPOOL_PREFIX = "xdsi-part-"
# the errnos that mean "no room in the spool", not "something is wrong with it"
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class SpoolFull(OSError):
    """The spool directory's filesystem has no room (ENOSPC) or the quota is spent
    (EDQUOT): the server's resources, not the message, are at fault.  Nothing of the
    part is kept."""


@contextlib.contextmanager
def _spooling() -> Iterator[None]:
    """Every write of the spool happens here: one place tells "full" apart."""
    try:
        yield
    except SpoolFull:
        raise
    except OSError as exc:
        if exc.errno not in _FULL_ERRNOS:
            raise
        raise SpoolFull(exc.errno, exc.strerror, exc.filename) from exc


def spooled_parts(directory: Path) -> Iterator[Path]:
    """The spooled part files in ``directory`` (a killed process leaves its own)."""
    if directory.is_dir():
        yield from directory.glob(f"{SPOOL_PREFIX}*")


class SpoolWriter:
    """A temp file in the spool directory, hashed (SHA-1) and sized while written."""

    def __init__(self, limits: Limits, *, max_bytes: int, what: str) -> None:
        with _spooling():
            fd, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=limits.spool_directory())
        self.path = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._sha1 = hashlib.sha1()
        self._max_bytes = max_bytes
        self._what = what
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        if self.size > self._max_bytes:
            raise sender_fault(f"{self._what} exceeds {self._max_bytes} bytes", http_status=413)
        self._sha1.update(data)
        with _spooling():
            self._file.write(data)

    def close(self, content_id: str, content_type: str) -> Attachment:
        with _spooling():
            self._file.close()
        # ITI TF-3 4.2.3.2.9: the document hash is the SHA-1, hex encoded
        return Attachment(content_id, content_type, self.path, self.size, self._sha1.hexdigest())

    def discard(self) -> None:
        # closing flushes what is buffered, which fails on a full disk: the file goes anyway
        with contextlib.suppress(OSError):
            self._file.close()
        self.path.unlink(missing_ok=True)


class Base64Sink:
    """Streams inline base64 text (ITI TF-2 V.8.2) into a spooled, capped attachment."""

    def __init__(self, limits: Limits, attachments: dict[str, Attachment]) -> None:
        self._writer = SpoolWriter(
            limits, max_bytes=limits.max_inline_binary_bytes, what="inline base64 content"
        )
        self._attachments = attachments
        self._pending = ""
        self._content_id = f"{uuid.uuid4().hex}@inline.xdsi"

    def write_text(self, text: str) -> None:
        text = self._pending + "".join(text.split())
        usable = len(text) - len(text) % 4
        self._pending = text[usable:]
        if usable:
            self._writer.write(_decode_base64(text[:usable]))

    def close(self) -> str:
        if self._pending:
            raise sender_fault("inline base64 content is not a multiple of 4 characters")
        self._attachments[self._content_id] = self._writer.close(
            self._content_id, INLINE_CONTENT_TYPE
        )
        return self._content_id

    def discard(self) -> None:
        self._writer.discard()


def _decode_base64(text: str) -> bytes:
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        raise sender_fault("invalid base64 content") from None


def discard_attachments(attachments: Sequence[Attachment]) -> None:
    """Delete spooled parts; a handler may have moved a file away already."""
    for attachment in attachments:
        with contextlib.suppress(FileNotFoundError):
            attachment.path.unlink()


# --- reading -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReadMessage:
    envelope: etree._Element
    attachments: dict[str, Attachment]  # by Content-ID; inline base64 parts included
    mtom: bool


class _Part:
    """The part being read: its headers, then where its bytes go."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.field = bytearray()
        self.value = bytearray()
        self.content_id = ""
        self.content_type = ""
        self.writer: SpoolWriter | None = None  # None: this is the root part


class MessageReader:
    """Reads one SOAP message body fed in chunks: MTOM/XOP or simple SOAP 1.2.

    Synchronous and CPU-bound; callers feed it from a worker thread.  On any fault the
    caller calls ``discard()`` and nothing spooled survives.
    """

    def __init__(
        self,
        content_type: str,
        limits: Limits,
        *,
        binary_elements: frozenset[str] = frozenset(),
    ) -> None:
        self._limits = limits
        self._attachments: dict[str, Attachment] = {}
        self._envelope = StreamingEnvelopeParser(
            max_bytes=limits.max_envelope_bytes,
            binary_elements=binary_elements,
            open_sink=lambda: Base64Sink(limits, self._attachments),
        )
        self._total = 0
        ctype = parse_content_type(content_type)
        self.mtom = ctype.media_type == MULTIPART_RELATED
        self._multipart: MultipartParser | None = None
        if self.mtom:
            self._init_multipart(ctype)
        elif ctype.media_type not in _SIMPLE_MEDIA_TYPES:
            raise sender_fault(f"unsupported Content-Type {ctype.media_type!r}", http_status=415)

    def _init_multipart(self, ctype: ContentType) -> None:
        boundary = ctype.params.get("boundary")
        if not boundary:
            raise sender_fault("multipart/related without a boundary", http_status=415)
        package_type = ctype.params.get("type", XOP_MEDIA_TYPE).lower()
        if package_type != XOP_MEDIA_TYPE:
            raise sender_fault(f"multipart/related of type {package_type!r}", http_status=415)
        start = ctype.params.get("start")
        self._start = strip_angle(start) if start else None
        self._part: _Part | None = None
        self._root_seen = False
        self._root_done = False
        self._ended = False
        self._open: SpoolWriter | None = None
        self._multipart = MultipartParser(
            boundary.encode("latin-1"),
            {
                "on_part_begin": self._on_part_begin,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_end": self._on_end,
            },
            # without these, python-multipart's defaults (8 lines, 4 KiB a line) would
            # refuse parts that max_part_header_bytes allows
            max_header_count=self._limits.max_part_header_bytes,
            max_header_size=self._limits.max_part_header_bytes,
        )

    # -- feeding
    def feed(self, chunk: bytes) -> None:
        self._total += len(chunk)
        if self._total > self._limits.max_request_bytes:
            raise sender_fault(
                f"message exceeds {self._limits.max_request_bytes} bytes", http_status=413
            )
        if self._multipart is None:
            self._envelope.feed(chunk)
            return
        try:
            self._multipart.write(chunk)
        except (SoapFault, OSError):
            raise  # an OSError is the spool's (SpoolFull), not the message's
        except MultipartParseError as exc:
            if str(exc) in _HEADER_CAP_ERRORS:
                raise self._headers_too_large() from None
            raise sender_fault(f"malformed multipart/related body: {exc}") from None
        except Exception as exc:  # python-multipart's other errors
            raise sender_fault(f"malformed multipart/related body: {exc}") from None

    def finish(self) -> ReadMessage:
        if self._multipart is not None:
            if not self._ended:
                raise sender_fault("truncated multipart/related body (no close delimiter)")
            if not self._root_done:
                raise sender_fault("the root part of the MTOM package is missing")
        envelope = self._envelope.close()
        if len(self._attachments) > self._limits.max_attachments:
            raise self._too_many()
        check_xop_includes(envelope, self._attachments)
        return ReadMessage(envelope, dict(self._attachments), self.mtom)

    def discard(self) -> None:
        if self._multipart is not None and self._open is not None:
            self._open.discard()
            self._open = None
        self._envelope.discard()
        discard_attachments(list(self._attachments.values()))
        self._attachments.clear()

    def _too_many(self) -> SoapFault:
        return sender_fault(
            f"more than {self._limits.max_attachments} attachments", http_status=413
        )

    def _headers_too_large(self) -> SoapFault:
        return sender_fault(
            f"MIME part headers exceed {self._limits.max_part_header_bytes} bytes",
            http_status=413,
        )

    # -- python-multipart callbacks
    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _count_header(self, n: int) -> _Part:
        part = self._part
        assert part is not None
        part.header_bytes += n
        if part.header_bytes > self._limits.max_part_header_bytes:
            raise self._headers_too_large()
        return part

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start).field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start).value += data[start:end]

    def _on_header_end(self) -> None:
        part = self._count_header(0)
        name = part.field.decode("latin-1").strip().lower()
        part.headers[name] = part.value.decode("latin-1").strip()
        part.field.clear()
        part.value.clear()

    def _on_headers_finished(self) -> None:
        part = self._count_header(0)
        part.content_id = strip_angle(part.headers.get("content-id", ""))
        part.content_type = part.headers.get("content-type", "application/octet-stream")
        encoding = part.headers.get("content-transfer-encoding", "").lower()
        if encoding not in _IDENTITY_ENCODINGS:
            raise sender_fault(f"Content-Transfer-Encoding {encoding!r} in an MTOM part")
        is_root = not self._root_seen and (part.content_id == self._start if self._start else True)
        if is_root:
            self._root_seen = True
            media = parse_content_type(part.content_type).media_type
            if media not in _ROOT_MEDIA_TYPES:
                raise sender_fault(f"root part of type {media!r}, expected {XOP_MEDIA_TYPE}")
            return
        if not part.content_id:
            raise sender_fault("MTOM part without a Content-ID")
        if part.content_id in self._attachments or part.content_id == self._start:
            raise sender_fault(f"duplicate Content-ID <{part.content_id}>")
        if len(self._attachments) >= self._limits.max_attachments:
            raise self._too_many()
        part.writer = SpoolWriter(
            self._limits, max_bytes=self._limits.max_request_bytes, what="MIME part"
        )
        self._open = part.writer

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        assert part is not None
        if part.writer is None:
            self._envelope.feed(bytes(data[start:end]))
        else:
            part.writer.write(memoryview(data)[start:end])

    def _on_part_end(self) -> None:
        part = self._part
        assert part is not None
        if part.writer is None:
            self._root_done = True
        else:
            attachment = part.writer.close(part.content_id, part.content_type)
            self._attachments[part.content_id] = attachment
            self._open = None
        self._part = None

    def _on_end(self) -> None:
        self._ended = True


FEED_BATCH = 1024 * 1024  # bytes handed to the parsing thread at a time
FEED_DEPTH = 1  # batches received ahead of the one being parsed
# A body no larger than this is parsed in one go once received; a larger one batch by
# batch (FEED_BATCH) while the rest arrives.
INLINE_BODY = 16 * 1024


class MessageThread:
    """The thread of one message: its body parsed there, every batch and the close, and
    whatever else of the exchange should run on it (``run``); it ends with ``close``.

    libxml2 keeps element and attribute names in string dictionaries; lxml gives each
    thread one of its own (a sub-dictionary of the main thread's), and a parse or a new
    element adds to the dictionary of the thread it runs on.  A tree read in one thread
    while another adds to the dictionary it uses crashes the process: a parser fed from
    several worker threads (``free(): invalid pointer``), or trees of the event loop
    read in workers while the loop parses a message of new names (a segmentation
    fault): ``tests/soap/test_parse_threads.py``.  Here a message's names go into the
    dictionary of a thread that does nothing else meanwhile and then ends, so its tree
    can be read anywhere; the event loop parses no message at all, so the main
    dictionary, the parent of every other, stops growing once the server is warm.

    ``run`` waits for its call to end even when cancelled: the reader is never
    discarded under a running feed."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # the low-level start: Thread.start() waits for the new thread to run, a
        # hand-off the event loop would pay on every exchange
        _thread.start_new_thread(self._serve, ())

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            context, function, args, future = job
            try:
                outcome: tuple[object, BaseException | None] = (context.run(function, *args), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: no one waits
                self._loop.call_soon_threadsafe(_settle, future, *outcome)

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` on this thread, in a copy of the caller's context."""
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((contextvars.copy_context(), function, args, future))
        with anyio.CancelScope(shield=True):
            await asyncio.wait((future,))
        return future.result()

    def close(self) -> None:
        """End the thread once what it was given is done."""
        self._jobs.put(None)


_Job = tuple[contextvars.Context, Callable[..., Any], tuple[object, ...], "asyncio.Future[Any]"]


def _settle(future: asyncio.Future[Any], result: object, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


async def read_message(
    reader: MessageReader, chunks: AsyncIterator[bytes], thread: MessageThread | None = None
) -> ReadMessage:
    """The whole message of a body, parsed on ``thread`` (else on a thread of its own,
    ended before returning): a small one (``INLINE_BODY``) once received, a larger one
    through :func:`feed_reader` while it arrives."""
    return await read_message_then(reader, chunks, _itself, thread)


async def read_message_then(
    reader: MessageReader,
    chunks: AsyncIterator[bytes],
    then: Callable[[ReadMessage], T],
    thread: MessageThread | None = None,
) -> T:
    """As :func:`read_message`, and ``then(message)`` on the same thread in the same
    hand-off (an exchange's dispatch and blocking handler, say): what it returns."""
    own = thread is None
    on = MessageThread() if thread is None else thread
    try:
        head: list[bytes] = []
        size = 0
        async for chunk in chunks:
            head.append(chunk)
            size += len(chunk)
            if size > INLINE_BODY:
                await feed_reader(reader, _chained(head, chunks), on)
                return await on.run(_finish_then, reader, [], then)
        return await on.run(_finish_then, reader, head, then)
    finally:
        if own:
            on.close()


def _finish_then(reader: MessageReader, chunks: list[bytes], then: Callable[[ReadMessage], T]) -> T:
    for chunk in chunks:
        reader.feed(chunk)
    return then(reader.finish())


def _itself(message: ReadMessage) -> ReadMessage:
    return message


async def _chained(head: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in head:
        yield chunk
    async for chunk in rest:
        yield chunk


async def feed_reader(
    reader: MessageReader, chunks: AsyncIterator[bytes], thread: MessageThread
) -> None:
    """Feed a body to ``reader`` in batches of FEED_BATCH bytes, each parsed (hashed,
    spooled) on ``thread`` - always the same one - while the next one is received.  At
    most FEED_DEPTH + 2 batches are held; an exception of either side is raised as it
    is."""
    send, receive = anyio.create_memory_object_stream[list[bytes]](FEED_DEPTH)

    def feed_all(batch: list[bytes]) -> None:
        for chunk in batch:
            reader.feed(chunk)

    async def parse() -> None:
        async with receive:
            async for batch in receive:
                await thread.run(feed_all, batch)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(parse)
            async with send:
                # the chunks as received, not joined: no copy of the body on the loop
                batch: list[bytes] = []
                size = 0
                async for chunk in chunks:
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= FEED_BATCH:
                        await send.send(batch)
                        batch, size = [], 0
                if batch:
                    await send.send(batch)
    except BaseExceptionGroup as failed:
        raise _cause(failed) from None


def _cause(group: BaseExceptionGroup) -> BaseException:
    """The exception that ended a feed: not the closed stream it left the other side."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    causes = [
        e
        for e in leaves
        if not isinstance(e, anyio.BrokenResourceError | anyio.ClosedResourceError)
    ]
    return (causes or leaves)[0]


def check_xop_includes(envelope: etree._Element, attachments: dict[str, Attachment]) -> None:
    """XOP 1.0 3.1: each xop:Include names, by a cid: URL, one part; each part once."""
    seen: set[str] = set()
    for include in envelope.iter(XOP_INCLUDE):
        href = include.get("href", "")
        cid = cid_of_href(href)
        if cid is None or cid not in attachments:
            raise sender_fault(f"xop:Include href {href!r} names no MIME part")
        if cid in seen:
            raise sender_fault(f"MIME part <{cid}> is referenced twice")
        seen.add(cid)


# --- writing -----------------------------------------------------------------------------
def new_boundary() -> str:
    return f"MIMEBoundary_{uuid.uuid4().hex}"


def new_content_ids(kind: str, count: int) -> list[str]:
    """Content-IDs for ``count`` parts of one message: ``{kind}{n}.{token}@xdsi``, one
    random token per message - unique within it, and beyond it by the token (RFC 2392),
    for one uuid4 rather than one per part (a RAD-69 of a study sends hundreds)."""
    token = uuid.uuid4().hex
    return [f"{kind}{n}.{token}@xdsi" for n in range(1, count + 1)]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message ready to send: headers known, body streamed from memory and disk."""

    content_type: str
    content_length: int
    segments: tuple[bytes | OutgoingAttachment, ...]

    def iter_bytes(self) -> Iterator[bytes]:
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            with segment.path.open("rb") as file:
                while chunk := file.read(FILE_CHUNK_SIZE):
                    yield chunk

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for segment in self.segments:
            if isinstance(segment, bytes):
                yield segment
                continue
            file = await anyio.open_file(segment.path, "rb")
            async with file:
                while chunk := await file.read(FILE_CHUNK_SIZE):
                    yield chunk


def simple_message(envelope: bytes) -> OutgoingMessage:
    """ITI TF-2 V.3: a simple SOAP 1.2 message."""
    return OutgoingMessage(SIMPLE_SOAP_CONTENT_TYPE, len(envelope), (envelope,))


def soap11_message(envelope: bytes) -> OutgoingMessage:
    """A SOAP 1.1 message over the SOAP 1.1 HTTP binding (SOAP 1.1 6.1.1: text/xml);
    xdsi sends one only as the version mismatch fault of SOAP 1.2 Part 1 Appendix A."""
    return OutgoingMessage(SOAP11_CONTENT_TYPE, len(envelope), (envelope,))


def mtom_message(
    envelope: bytes,
    attachments: Sequence[OutgoingAttachment] = (),
    *,
    boundary: str | None = None,
) -> OutgoingMessage:
    """An XOP package: root part, then one binary part per attachment (ITI TF-2 V.3).

    Each attachment's file must exist with its declared size: the Content-Length is
    computed before the first byte is sent.
    """
    boundary = boundary or new_boundary()
    for attachment in attachments:
        actual = attachment.path.stat().st_size
        if actual != attachment.size:
            raise ValueError(
                f"attachment <{attachment.content_id}> is {actual} bytes, declared {attachment.size}"
            )
    segments: list[bytes | OutgoingAttachment] = [
        _part_head(
            boundary,
            f'{XOP_MEDIA_TYPE}; charset=UTF-8; type="{SOAP12_MEDIA_TYPE}"',
            ROOT_CONTENT_ID,
            first=True,
        )
        + envelope
    ]
    for attachment in attachments:
        segments.append(_part_head(boundary, attachment.content_type, attachment.content_id))
        segments.append(attachment)
    segments.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    length = sum(len(s) if isinstance(s, bytes) else s.size for s in segments)
    content_type = (
        f'{MULTIPART_RELATED}; type="{XOP_MEDIA_TYPE}"; start="<{ROOT_CONTENT_ID}>"; '
        f'start-info="{SOAP12_MEDIA_TYPE}"; boundary={boundary}'
    )
    return OutgoingMessage(content_type, length, tuple(segments))


def _part_head(boundary: str, content_type: str, content_id: str, *, first: bool = False) -> bytes:
    lead = "" if first else "\r\n"
    return (
        f"{lead}--{boundary}\r\n"
        f"Content-Type: {content_type}\r\n"
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{content_id}>\r\n"
        "\r\n"
    ).encode()


__all__ = [
    "CHUNK_SIZE",
    "FEED_BATCH",
    "FEED_DEPTH",
    "FILE_CHUNK_SIZE",
    "SIMPLE_SOAP_CONTENT_TYPE",
    "SPOOL_PREFIX",
    "Base64Sink",
    "ContentType",
    "MessageReader",
    "OutgoingMessage",
    "ReadMessage",
    "SpoolWriter",
    "check_xop_includes",
    "cid_of_href",
    "discard_attachments",
    "MessageThread",
    "feed_reader",
    "read_message",
    "read_message_then",
    "mtom_message",
    "new_boundary",
    "new_content_ids",
    "parse_content_type",
    "simple_message",
    "soap11_message",
    "SpoolFull",
    "spooled_parts",
    "strip_angle",
]
