"""Caps on what one SOAP message may cost; exceeding any of them is a Sender fault."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class Limits:
    """Explicit, configurable caps for one request (or one response read by the client).

    ``max_envelope_bytes`` counts the bytes of the root part held in memory as a tree;
    the text of inline base64 elements (``Operation.binary_elements``) is streamed to
    disk instead and counts against ``max_inline_binary_bytes`` (decoded size).
    """

    max_envelope_bytes: int = 64 * MiB
    max_attachments: int = 1000
    max_request_bytes: int = 4 * GiB
    max_inline_binary_bytes: int = 2 * GiB
    max_part_header_bytes: int = 16 * 1024
    spool_dir: Path | None = None  # None: the system temp directory
    read_timeout: float = 300.0  # seconds to wait for the next chunk of a body
    # seconds a client may take to send a request line and headers (slowloris)
    header_timeout: float = 30.0
    # requests one endpoint handles at once in this process; beyond it a request is
    # answered "busy" at once instead of queueing without bound (0: no bound)
    max_concurrent_requests: int = 64

    def spool_directory(self) -> Path:
        return self.spool_dir if self.spool_dir is not None else Path(tempfile.gettempdir())


__all__ = ["GiB", "Limits", "MiB"]
