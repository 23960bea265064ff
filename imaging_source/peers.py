"""Known DICOM peers: move destinations and allowed callers.

A peer is written ``AET@HOST:PORT`` (``--dicom-peer``, repeatable; an IPv6 host in
brackets: ``AET@[::1]:104``).  The AE title is checked as PS3.5 6.2 defines the AE value
representation: 1 to 16 characters of the default repertoire, no backslash, no control
characters, leading and trailing spaces not significant.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# PS3.5 6.2 (AE): at most 16 characters, default repertoire without "\" and controls
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")
_PEER = re.compile(
    r"(?P<aet>[^@]+)@(?:\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:@\[\]]+)):(?P<port>\d{1,5})"
)


class PeerError(ValueError):
    """A peer or AE title that cannot be used."""


def check_ae_title(value: str) -> str:
    """The AE title without its insignificant spaces; PeerError when not a valid AE."""
    title = value.strip(" ")
    if not title or not _AE_TITLE.fullmatch(title):
        raise PeerError(f"not a DICOM AE title (PS3.5 6.2, 1-16 characters): {value!r}")
    return title


@dataclass(frozen=True, slots=True)
class DicomPeer:
    """A remote application entity: its AE title and network address."""

    ae_title: str
    host: str
    port: int
    # ITI-19: associations xdsi opens to it go over TLS (PS3.15 B.1), this node's
    # certificate offered and the peer's authenticated (ImagingSourceConfig.peer_tls)
    tls: bool = False

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.ae_title}@{host}:{self.port}"


def parse_peer(text: str) -> DicomPeer:
    """``AET@HOST:PORT`` -> DicomPeer (PeerError when malformed)."""
    match = _PEER.fullmatch(text.strip())
    if match is None:
        raise PeerError(f"a DICOM peer is written AET@HOST:PORT, got {text!r}")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise PeerError(f"port out of range in {text!r}")
    return DicomPeer(check_ae_title(match["aet"]), match["ipv6"] or match["host"], port)


class PeerDirectory:
    """The configured peers, looked up by AE title (a move destination is named by it)."""

    def __init__(self, peers: Iterable[DicomPeer] = (), *, allow_unknown_callers: bool = True):
        self._by_title: dict[str, DicomPeer] = {}
        for peer in peers:
            if peer.ae_title in self._by_title:
                raise PeerError(f"AE title configured twice: {peer.ae_title}")
            self._by_title[peer.ae_title] = peer
        self.allow_unknown_callers = allow_unknown_callers

    def __iter__(self) -> Iterator[DicomPeer]:
        return iter(self._by_title.values())

    def __len__(self) -> int:
        return len(self._by_title)

    def destination(self, ae_title: str) -> DicomPeer | None:
        """The peer a C-MOVE names as Move Destination, or None when unknown."""
        return self._by_title.get(ae_title.strip(" "))

    def is_allowed_caller(self, ae_title: str) -> bool:
        """Whether an association from ``ae_title`` (Calling AE Title) is accepted."""
        return self.allow_unknown_callers or ae_title.strip(" ") in self._by_title

    def allowed_callers(self) -> list[str] | None:
        """The calling AE titles to require, or None when any caller is accepted."""
        return None if self.allow_unknown_callers else list(self._by_title)


__all__ = ["DicomPeer", "PeerDirectory", "PeerError", "check_ae_title", "parse_peer"]
