"""--dicom-peer AET@HOST:PORT parsing and the peer directory."""

from __future__ import annotations

import pytest

from imaging_source.config import ImagingSourceConfig
from imaging_source.peers import DicomPeer, PeerDirectory, PeerError, parse_peer


def test_parse_peer() -> None:
    assert parse_peer("PACS@pacs.example.org:104") == DicomPeer("PACS", "pacs.example.org", 104)


def test_parse_peer_ipv6() -> None:
    assert parse_peer("PACS@[::1]:11112") == DicomPeer("PACS", "::1", 11112)
    assert str(parse_peer("PACS@[::1]:11112")) == "PACS@[::1]:11112"


@pytest.mark.parametrize(
    "text", ["PACS", "PACS@host", "@host:104", "PACS@host:0", "PACS@host:70000", "A\\B@h:1"]
)
def test_malformed_peer_is_refused(text: str) -> None:
    with pytest.raises(PeerError):
        parse_peer(text)


def test_ae_title_longer_than_16_is_refused() -> None:
    with pytest.raises(PeerError):
        parse_peer("ABCDEFGHIJKLMNOPQ@host:104")  # PS3.5 6.2: at most 16


def test_duplicate_ae_title_is_refused() -> None:
    with pytest.raises(PeerError):
        PeerDirectory([parse_peer("A@h:1"), parse_peer("A@g:2")])


def test_destination_by_ae_title() -> None:
    peers = PeerDirectory([parse_peer("VIEWER@10.0.0.5:104")])
    assert peers.destination("VIEWER ") == DicomPeer("VIEWER", "10.0.0.5", 104)
    assert peers.destination("OTHER") is None


def test_unknown_callers_refused_when_configured() -> None:
    peers = PeerDirectory([parse_peer("VIEWER@h:104")], allow_unknown_callers=False)
    assert peers.is_allowed_caller("VIEWER") and not peers.is_allowed_caller("STRANGER")
    assert peers.allowed_callers() == ["VIEWER"]


def test_config_default_ae_title() -> None:
    assert ImagingSourceConfig().ae_title == "XDSI"


def test_config_rejects_bad_ae_title() -> None:
    with pytest.raises(PeerError):
        ImagingSourceConfig(ae_title="")
