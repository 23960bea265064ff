"""MLLP framing, server and client (registry/mllp.py).

The scripted peer is a raw asyncio connection that writes exactly the bytes a test
chooses, including broken ones.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from registry.mllp import (
    Frame,
    FrameDecoder,
    FramingError,
    MllpError,
    MllpLimits,
    send_mllp,
    send_mllp_async,
    serve_mllp,
    wrap,
)

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
MSG = b"MSH|^~\\&|A|B|C|D|2026||ADT^A01|1|P|2.3.1\rPID|||1\r"


# --- FrameDecoder ---------------------------------------------------------------------------


def test_wrap_frames_with_vt_fs_cr() -> None:
    assert wrap(b"abc") == b"\x0babc\x1c\r"


def test_one_frame() -> None:
    assert FrameDecoder().feed(wrap(MSG)) == [Frame(MSG, False, len(MSG))]


def test_frame_split_across_reads_byte_by_byte() -> None:
    decoder = FrameDecoder()
    frames = [f for byte in wrap(MSG) for f in decoder.feed(bytes([byte]))]
    assert [f.payload for f in frames] == [MSG]


def test_several_frames_in_one_read() -> None:
    frames = FrameDecoder().feed(wrap(b"one") + wrap(b"two") + wrap(b"three"))
    assert [f.payload for f in frames] == [b"one", b"two", b"three"]


def test_missing_cr_after_end_block_is_tolerated() -> None:
    frames = FrameDecoder().feed(VT + b"one" + FS + VT + b"two" + FS + CR)
    assert [f.payload for f in frames] == [b"one", b"two"]


def test_garbage_between_frames_is_discarded() -> None:
    frames = FrameDecoder().feed(b"noise\r\n" + wrap(b"one") + b"\n\n" + wrap(b"two"))
    assert [f.payload for f in frames] == [b"one", b"two"]


def test_garbage_over_the_cap_is_unframeable() -> None:
    decoder = FrameDecoder(MllpLimits(max_garbage_bytes=10))
    with pytest.raises(FramingError):
        decoder.feed(b"x" * 11)


def test_garbage_cap_counts_across_reads() -> None:
    decoder = FrameDecoder(MllpLimits(max_garbage_bytes=10))
    decoder.feed(b"x" * 6)
    with pytest.raises(FramingError):
        decoder.feed(b"x" * 6)


def test_start_block_inside_a_frame_starts_over() -> None:
    frames = FrameDecoder().feed(VT + b"lost" + VT + b"kept" + FS + CR)
    assert [f.payload for f in frames] == [b"kept"]


def test_oversized_frame_is_truncated_to_its_head() -> None:
    decoder = FrameDecoder(MllpLimits(max_message_bytes=100, head_bytes=10))
    payload = b"H" * 10 + b"x" * 200
    frames = [f for i in range(0, 300, 7) for f in decoder.feed(wrap(payload)[i : i + 7])]
    assert frames == [Frame(b"H" * 10, True, 210)]


def test_decoder_recovers_after_an_oversized_frame() -> None:
    decoder = FrameDecoder(MllpLimits(max_message_bytes=5, head_bytes=2))
    frames = decoder.feed(wrap(b"123456") + wrap(b"ok"))
    assert [(f.payload, f.truncated) for f in frames] == [(b"12", True), (b"ok", False)]


def test_in_frame_reports_a_partial_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(VT + b"part")
    assert decoder.in_frame
    decoder.feed(FS + CR)
    assert not decoder.in_frame


# --- server ----------------------------------------------------------------------------------

FAST = MllpLimits(idle_timeout=0.5, frame_timeout=0.3, max_message_bytes=1000, head_bytes=16)


def echo(payload: bytes) -> bytes:
    return b"ACK:" + payload


async def start(
    handler: Callable[[bytes], object] = echo,
    limits: MllpLimits = FAST,
    refuse: Callable[[bytes, str], bytes] | None = None,
) -> tuple[asyncio.Server, int]:
    server = await serve_mllp("127.0.0.1", 0, handler, limits=limits, refuse=refuse)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def echo_server() -> AsyncIterator[int]:
    server, port = await start()
    async with server:
        yield port


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    data = await asyncio.wait_for(reader.readuntil(FS + CR), 2)
    assert data.startswith(VT)
    return data[1:-2]


async def test_server_answers_each_message_on_one_connection(echo_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    for n in range(3):
        writer.write(wrap(b"msg%d" % n))
        assert await read_frame(reader) == b"ACK:msg%d" % n
    writer.close()


async def test_server_answers_pipelined_messages_in_order(echo_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    writer.write(wrap(b"a") + wrap(b"b"))
    assert [await read_frame(reader), await read_frame(reader)] == [b"ACK:a", b"ACK:b"]
    writer.close()


async def test_server_reassembles_a_frame_split_across_writes(echo_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    for piece in (VT + b"MSH|", b"split", FS, CR):
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(0.01)
    assert await read_frame(reader) == b"ACK:MSH|split"
    writer.close()


async def test_server_skips_garbage_between_frames(echo_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    writer.write(b"hello?\r\n" + wrap(b"x"))
    assert await read_frame(reader) == b"ACK:x"
    writer.close()


async def test_server_closes_an_unframeable_stream() -> None:
    server, port = await start(limits=MllpLimits(max_garbage_bytes=16, idle_timeout=2))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()


async def test_server_keeps_serving_after_bad_input() -> None:
    server, port = await start(limits=MllpLimits(max_garbage_bytes=16, idle_timeout=2))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\xff" * 100)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        assert await send_mllp_async("127.0.0.1", port, b"next", timeout=2) == b"ACK:next"


async def test_server_refuses_an_oversized_message_and_keeps_the_connection() -> None:
    server, port = await start(refuse=lambda head, reason: b"REFUSED:" + head)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(wrap(b"MSH|HEAD" + b"x" * 5000))
        assert await read_frame(reader) == b"REFUSED:MSH|HEADxxxxxxxx"
        writer.write(wrap(b"small"))
        assert await read_frame(reader) == b"ACK:small"
        writer.close()


async def test_server_without_refuse_closes_on_an_oversized_message(echo_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    writer.write(wrap(b"x" * 5000))
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_idle_connection_is_closed(echo_server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", echo_server)
    started = asyncio.get_running_loop().time()
    assert await asyncio.wait_for(reader.read(), 3) == b""
    assert asyncio.get_running_loop().time() - started >= 0.4
    writer.close()


async def test_unfinished_frame_is_closed_after_the_frame_timeout() -> None:
    server, port = await start(limits=MllpLimits(idle_timeout=5, frame_timeout=0.2))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(VT + b"never ends")
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()


async def test_trickled_frame_cannot_outlive_the_frame_timeout() -> None:
    server, port = await start(limits=MllpLimits(idle_timeout=5, frame_timeout=0.3))
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(VT)
        with pytest.raises(ConnectionError):
            for _ in range(40):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.05)
        writer.close()


async def test_sync_handler_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    def handler(payload: bytes) -> bytes:
        threads.append(threading.get_ident())
        return payload

    server, port = await start(handler)
    async with server:
        await send_mllp_async("127.0.0.1", port, b"x", timeout=2)
    assert threads and threads[0] != threading.get_ident()


async def test_async_handler_runs_in_the_loop() -> None:
    async def handler(payload: bytes) -> bytes:
        return payload.upper()

    server, port = await start(handler)
    async with server:
        assert await send_mllp_async("127.0.0.1", port, b"abc", timeout=2) == b"ABC"


async def test_failing_handler_is_answered_by_refuse() -> None:
    def handler(payload: bytes) -> bytes:
        raise RuntimeError("boom")

    server, port = await start(handler, refuse=lambda head, reason: reason.encode())
    async with server:
        assert await send_mllp_async("127.0.0.1", port, b"x", timeout=2) == b"internal error"


async def test_connections_over_the_cap_are_closed() -> None:
    server, port = await start(limits=MllpLimits(max_connections=1, idle_timeout=2))
    async with server:
        first_reader, first = await asyncio.open_connection("127.0.0.1", port)
        first.write(wrap(b"hold"))
        assert await read_frame(first_reader) == b"ACK:hold"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        first.close()


# --- client ----------------------------------------------------------------------------------


async def test_send_mllp_sync(echo_server: int) -> None:
    reply = await asyncio.to_thread(send_mllp, "127.0.0.1", echo_server, MSG, 2)
    assert reply == b"ACK:" + MSG


async def test_send_mllp_times_out_without_a_reply() -> None:
    async def silent(payload: bytes) -> bytes:
        await asyncio.sleep(5)
        return payload

    server, port = await start(silent, limits=MllpLimits(idle_timeout=5))
    async with server:
        with pytest.raises(MllpError):
            await send_mllp_async("127.0.0.1", port, b"x", timeout=0.2)
        with pytest.raises(MllpError):
            await asyncio.to_thread(send_mllp, "127.0.0.1", port, b"x", 0.2)


async def test_send_mllp_reports_a_closed_connection() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    closing = await asyncio.start_server(close_at_once, "127.0.0.1", 0)
    closing_port = closing.sockets[0].getsockname()[1]
    async with closing:
        with pytest.raises(MllpError):
            await send_mllp_async("127.0.0.1", closing_port, b"x", timeout=2)
        with pytest.raises(MllpError):
            await asyncio.to_thread(send_mllp, "127.0.0.1", closing_port, b"x", 2)


async def test_send_mllp_reports_a_refused_connection() -> None:
    server, port = await start()
    server.close()
    await server.wait_closed()
    with pytest.raises(MllpError):
        await send_mllp_async("127.0.0.1", port, b"x", timeout=2)
