"""Configuration of the Imaging Document Source (IHE RAD TF-1 18, XDS-I.b).

The Imaging Document Source has its own repositoryUniqueId, distinct from the Document
Repository's: RAD TF-3 4.68.4.1.2.3 puts it in the KOS as Retrieve Location UID and a
consumer sends RAD-69 with it.  The composition root builds one of these from the TOML
file, ``XDSI_`` variables and ``--ae-title``/``--dicom-port``/``--dicom-peer`` flags.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imaging_source.peers import DicomPeer, PeerDirectory, check_ae_title

DEFAULT_AE_TITLE = "XDSI"
DEFAULT_DICOM_PORT = 11112


@dataclass(frozen=True, slots=True)
class ImagingSourceConfig:
    """Everything the local DICOM store and its DIMSE/STOW-RS services need."""

    storage_dir: Path = Path("imaging")
    # SQLAlchemy URL of the instance index; None: SQLite in storage_dir
    database_url: str | None = None
    ae_title: str = DEFAULT_AE_TITLE
    dicom_host: str = "0.0.0.0"
    dicom_port: int = DEFAULT_DICOM_PORT
    peers: tuple[DicomPeer, ...] = ()
    # False: only the configured peers may open an association
    allow_unknown_callers: bool = True
    # the Imaging Document Source's repositoryUniqueId (RAD TF-3 4.68.4.1.2.3)
    repository_unique_id: str = ""
    # seconds without new instances before a study counts as stable (and is published)
    stability_delay: float = 60.0
    # upper bound of the local cache of instances fetched from a backing PACS (bytes)
    cache_max_bytes: int = 10 * 1024**3
    # WADO-RS base URL announced as Retrieve URL (STOW-RS responses, KOS)
    wado_rs_base_url: str | None = None
    # largest DICOM instance accepted by STOW-RS, bytes
    max_instance_bytes: int = 4 * 1024**3
    # DIMSE timeouts, seconds
    acse_timeout: float = 30.0
    dimse_timeout: float = 60.0
    network_timeout: float = 60.0
    # the client side of TLS for the associations xdsi opens to peers marked ``tls``,
    # and, by AE title, the peers that have one of their own (other CAs trusted)
    peer_tls: ssl.SSLContext | None = None
    peer_tls_by_title: Mapping[str, ssl.SSLContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", check_ae_title(self.ae_title))
        object.__setattr__(self, "storage_dir", Path(self.storage_dir))
        object.__setattr__(self, "peers", tuple(self.peers))
        if not 0 <= self.dicom_port < 65536:
            raise ValueError(f"dicom_port out of range: {self.dicom_port}")
        if self.peer_tls is None and any(peer.tls for peer in self.peers):
            raise ValueError("peers reached over TLS need peer_tls")

    def tls_for(self, peer: DicomPeer) -> ssl.SSLContext | None:
        """The client context of an association to ``peer``; None: in the clear."""
        if not peer.tls:
            return None
        return self.peer_tls_by_title.get(peer.ae_title, self.peer_tls)

    @property
    def index_url(self) -> str:
        return self.database_url or f"sqlite:///{self.storage_dir / 'instances.sqlite'}"

    def peer_directory(self) -> PeerDirectory:
        return PeerDirectory(self.peers, allow_unknown_callers=self.allow_unknown_callers)


__all__ = ["DEFAULT_AE_TITLE", "DEFAULT_DICOM_PORT", "ImagingSourceConfig"]
