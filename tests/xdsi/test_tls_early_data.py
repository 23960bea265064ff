"""HttpsProtocol keeps request bytes that arrive before its connection_made."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from xdsi.tls import HttpsProtocol


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 443)}.get(name, default)

    def write(self, data: bytes) -> None:  # type: ignore[override]
        self.written += data

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_bytes_before_connection_made_are_served_after_it() -> None:
    async def scenario() -> bytes:
        config = Config(app=_app, lifespan="off")
        config.load()
        protocol = HttpsProtocol(config=config, server_state=ServerState(), app_state={})
        transport = _Transport()
        # start_tls delivered the request before the handshake task called connection_made
        protocol.data_received(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        protocol.connection_made(transport)
        for _ in range(20):
            await asyncio.sleep(0)
        return transport.written

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 204")
