"""The Imaging Document Source's local store and DIMSE server as one object.

``ImagingSource`` owns the instance store (files + index) and the DIMSE server; STOW-RS
and C-STORE both add through it, so every received instance raises one ``StudyChanged``
event.  The RAD-68 publisher subscribes, waits for the study to be stable
(``stability_delay``) and publishes or re-publishes its manifest (RAD TF-3 4.68.4.1.2).
Subscribers run in the receiving thread; their exceptions are logged, never passed to
the sender.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pydicom.dataset import Dataset
from sqlalchemy import Engine

from imaging_source.config import ImagingSourceConfig
from imaging_source.dimse import DimseServer
from imaging_source.instances import (
    InstanceChange,
    InstanceStore,
    StoredInstance,
    make_engine,
    upgrade,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StudyChanged:
    """A study received new or changed instances, or lost some."""

    study_instance_uid: str
    added: tuple[str, ...] = ()  # SOP Instance UIDs added or replaced
    removed: tuple[str, ...] = ()
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


Subscriber = Callable[[StudyChanged], None]


class ImagingSource:
    """The local DICOM store and its DIMSE services; ``start()`` opens both."""

    def __init__(
        self,
        config: ImagingSourceConfig,
        *,
        engine: Engine | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config
        self._own_engine = engine is None
        self.engine = engine if engine is not None else make_engine(config.index_url)
        self.store = InstanceStore(config.storage_dir, self.engine)
        self.dimse = DimseServer(self.store, config, on_stored=self.stored, ssl_context=ssl_context)
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    # --- lifecycle ------------------------------------------------------------------
    def start(self, *, dimse: bool = True, sweep: bool = True) -> None:
        """Migrate the index, sweep what an interrupted store left (``sweep``: only
        while no other process stores into it), start listening."""
        Path(self.config.storage_dir).mkdir(parents=True, exist_ok=True)
        upgrade(self.engine)
        if sweep:
            self.store.sweep_incoming()
        if dimse:
            self.dimse.start()

    def stop(self) -> None:
        self.dimse.stop()
        if self._own_engine:
            self.engine.dispose()

    # --- change events --------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` on every StudyChanged; returns the unsubscribe function."""
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def _notify(self, change: StudyChanged) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(change)
            except Exception:
                log.exception("a StudyChanged subscriber failed")

    # --- receiving ------------------------------------------------------------------
    def stored(self, instance: StoredInstance) -> None:
        """Announce an instance the store took (an identical resend changes nothing)."""
        if instance.change is InstanceChange.UNCHANGED:
            return
        self._notify(StudyChanged(instance.study_instance_uid, added=(instance.sop_instance_uid,)))

    def add(self, source: Path | str | Dataset | BinaryIO) -> StoredInstance:
        instance = self.store.add(source)
        self.stored(instance)
        return instance

    def remove(
        self,
        *,
        sop_instance_uids: Iterable[str] = (),
        series_instance_uid: str | None = None,
        study_instance_uid: str | None = None,
    ) -> list[StoredInstance]:
        removed = self.store.remove(
            sop_instance_uids=sop_instance_uids,
            series_instance_uid=series_instance_uid,
            study_instance_uid=study_instance_uid,
        )
        by_study: dict[str, list[str]] = {}
        for instance in removed:
            by_study.setdefault(instance.study_instance_uid, []).append(instance.sop_instance_uid)
        for study, uids in by_study.items():
            self._notify(StudyChanged(study, removed=tuple(uids)))
        return removed


__all__ = ["ImagingSource", "StudyChanged", "Subscriber"]
