"""Where an instance comes from: the local store, or a backing PACS through a local cache.

RAD-69 and DICOMweb read "instances by UID" through :class:`InstanceSource` and do not
know where they live.  :class:`LocalSource` answers from the local store (studies
received by C-STORE or STOW-RS).  :class:`PacsSource` fronts an existing PACS: queries
go to the PACS, instances are fetched on demand into the local store, which then works
as a cache bounded in size (least recently used instances evicted first).  The PACS is
reached through a :class:`PacsFetcher`:

- :class:`WadoRsFetcher` (``--pacs-wado-rs URL``): QIDO-RS (PS3.18 10.6) to query and
  WADO-RS (PS3.18 10.4, RAD-107) to retrieve, as stored (``transfer-syntax=*``);
- :class:`DimseFetcher` (``--pacs-dimse AET@HOST:PORT``): Study Root C-FIND (PS3.4
  C.6.2) to query and C-MOVE (PS3.4 C.4.2) to xdsi's own storage SCP.  What arrives is
  counted against what was asked for: some PACS answer a C-MOVE of an unknown UID with
  Success and send nothing.

Evicting an instance removes it from the store without announcing a study change: a
cached instance is not one the Imaging Document Source received.

With WADO-RS the instances can also be handed on while they arrive
(:meth:`PacsSource.locate_streaming`): a QIDO-RS Search for Instances per series first
says which of them the PACS holds, so a RAD-69 answer knows its status before any pixel
data comes; each instance is then cached and handed on as its part of the PACS's
multipart response ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import queue
import ssl
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from imaging_source.instances import (
    ATTRIBUTE_LEVEL,
    INCOMING_DIR,
    InstanceFile,
    InstanceStore,
    InvalidInstance,
    PlacedInstance,
    QueryLevel,
    ReceivedFile,
    StoredInstance,
    is_intact,
)
from imaging_source.peers import DicomPeer
from imaging_source.requestor import REQUESTOR_HANDLERS
from imaging_source.wado_retrieve import HttpConnection, RetrieveFailed, read_multipart

log = logging.getLogger(__name__)

DICOM_MEDIA_TYPE = "application/dicom"
DICOM_JSON_MEDIA_TYPE = "application/dicom+json"
# PS3.18 8.7.3.5.2: "*" asks for the instance as the origin server stores it
AS_STORED_ACCEPT = f'multipart/related; type="{DICOM_MEDIA_TYPE}"; transfer-syntax=*'
_RETRIEVE_HEADERS = {"Accept": AS_STORED_ACCEPT, "Accept-Encoding": "identity"}
# seconds an instance the PACS listed but did not give is answered as unknown rather
# than promised (a streamed answer promising it again would be cut short again)
UNDELIVERED_FOR = 600.0
_PENDING = frozenset({0xFF00, 0xFF01})  # PS3.4 C.4.1.1.4: pending C-FIND responses
_LEVEL_RANK = {QueryLevel.STUDY: 0, QueryLevel.SERIES: 1, QueryLevel.IMAGE: 2}
# PS3.18 10.6.1: QIDO-RS resource per query level
_QIDO_RESOURCE = {
    QueryLevel.STUDY: "studies",
    QueryLevel.SERIES: "series",
    QueryLevel.IMAGE: "instances",
}


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """An instance named by its study, series and SOP Instance UIDs."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str


class InstanceSource(Protocol):
    """Instances by UID and Study Root matching, wherever the instances live."""

    def locate(self, refs: Sequence[InstanceRef]) -> dict[str, StoredInstance]:
        """The named instances that exist, as local files, keyed by SOP Instance UID.
        An instance found under another study or series than its ref names is returned
        as it is; the caller decides."""
        ...

    def locate_files(self, refs: Sequence[InstanceRef]) -> Mapping[str, InstanceFile]:
        """As :meth:`locate`, for sending the files only (RAD-69): a store may read less."""
        ...

    def instances(
        self, study_instance_uid: str, series_instance_uid: str | None = None
    ) -> list[StoredInstance]:
        """Every instance of a study (or one of its series), as local files."""
        ...

    def find(self, level: QueryLevel, keys: Mapping[str, str | None]) -> Iterator[dict[str, Any]]:
        """Study Root matching (PS3.4 C.2.2.2) at ``level``, as InstanceStore.find."""
        ...


@dataclass(frozen=True, slots=True)
class Arriving:
    """Instances located before all of them are local: ``found`` are local files now,
    ``coming`` (SOP Instance UID -> where the PACS files it) are held by the PACS and
    come through ``arrivals``, a batch as each lands in the cache, until ``close``.
    ``arrivals`` raises :class:`PacsError` when the PACS fails; a promised instance it
    does not give is for the caller to notice."""

    found: dict[str, StoredInstance]
    coming: dict[str, InstanceRef]
    arrivals: Callable[[], Iterator[list[StoredInstance]]]
    # ends the fetch (always call it: ``arrivals`` may never be taken)
    close: Callable[[], None]


@runtime_checkable
class StreamingSource(Protocol):
    """An :class:`InstanceSource` that can tell which instances it will give before
    their bytes are local."""

    def locate_streaming(self, refs: Sequence[InstanceRef]) -> Arriving: ...


class LocalSource:
    """Instances held by the Imaging Document Source itself."""

    def __init__(self, store: InstanceStore) -> None:
        self.store = store

    def locate(self, refs: Sequence[InstanceRef]) -> dict[str, StoredInstance]:
        stored = self.store.get_many(ref.sop_instance_uid for ref in refs)
        return {uid: instance for uid, instance in stored.items() if is_intact(instance)}

    def locate_files(self, refs: Sequence[InstanceRef]) -> Mapping[str, InstanceFile]:
        located = self.store.locate_files(ref.sop_instance_uid for ref in refs)
        return {uid: instance for uid, instance in located.items() if is_intact(instance)}

    def instances(
        self, study_instance_uid: str, series_instance_uid: str | None = None
    ) -> list[StoredInstance]:
        return list(self.store.instances(study_instance_uid, series_instance_uid))

    def find(self, level: QueryLevel, keys: Mapping[str, str | None]) -> Iterator[dict[str, Any]]:
        return self.store.find(level, keys)


# --- the backing PACS ---------------------------------------------------------------------
class PacsError(Exception):
    """The backing PACS could not be reached or refused the request."""


class PacsFetcher(Protocol):
    """How a backing PACS is queried and how its instances reach the local store."""

    def fetch(self, refs: Sequence[InstanceRef], store: InstanceStore) -> set[str]:
        """Bring the named instances into ``store``; the SOP Instance UIDs that arrived."""
        ...

    def find(
        self, level: QueryLevel, keys: Mapping[str, str | None]
    ) -> Iterator[dict[str, Any]]: ...


def _plain(value: Any) -> Any:
    """A pydicom value as InstanceStore.find gives it: str, int or None."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    if isinstance(value, PersonName):
        return str(value)
    return str(value)


def match_dict(ds: Dataset) -> dict[str, Any]:
    """A query answer (C-FIND Identifier or QIDO-RS result) as keyword -> value."""
    return {e.keyword: _plain(e.value) for e in ds if e.keyword and e.VR != "SQ"}


def return_keys(level: QueryLevel) -> list[str]:
    """The attributes xdsi asks a PACS to return at ``level`` (PS3.4 C.6.2.1.2)."""
    keys = [k for k, lvl in ATTRIBUTE_LEVEL.items() if _LEVEL_RANK[lvl] <= _LEVEL_RANK[level]]
    if level is QueryLevel.STUDY:
        keys += ["ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances"]
    elif level is QueryLevel.SERIES:
        keys.append("NumberOfSeriesRelatedInstances")
    return keys


class PacsSource:
    """Instances of a backing PACS, fetched on demand and cached in ``store``."""

    def __init__(self, store: InstanceStore, fetcher: PacsFetcher, max_bytes: int) -> None:
        self.store = store
        self.fetcher = fetcher
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._recent: OrderedDict[str, int] | None = None  # SOP UID -> size, oldest first
        self._bytes = 0  # the sum of ``_recent``'s sizes
        # SOP UID -> when: listed by the PACS but not given by its WADO-RS (a part that
        # is not a DICOM instance, say); such an instance is not promised again for a while
        self._undelivered: OrderedDict[str, float] = OrderedDict()

    # --- the cache ----------------------------------------------------------------------
    def _cache(self) -> OrderedDict[str, int]:
        """Usage order, seeded from the store by reception time on first use."""
        if self._recent is None:
            seen = [i for study in self.store.studies() for i in self.store.instances(study)]
            seen.sort(key=lambda i: i.received)
            self._recent = OrderedDict((i.sop_instance_uid, i.size) for i in seen)
            self._bytes = sum(self._recent.values())
        return self._recent

    def _touch(self, instances: Iterable[StoredInstance]) -> None:
        with self._lock:
            cache = self._cache()
            for instance in instances:
                uid = instance.sop_instance_uid
                self._bytes += instance.size - cache.get(uid, 0)
                cache[uid] = instance.size
                cache.move_to_end(uid)

    def evict(self, protect: Iterable[str] = ()) -> list[str]:
        """Remove least recently used instances until the cache fits ``max_bytes``;
        ``protect`` (about to be sent) stays.  Returns the evicted SOP Instance UIDs."""
        victims: list[str] = []
        with self._lock:
            cache = self._cache()
            if self._bytes <= self.max_bytes:
                return []
            keep = set(protect)
            for uid, size in list(cache.items()):
                if self._bytes <= self.max_bytes:
                    break
                if uid in keep:
                    continue
                victims.append(uid)
                self._bytes -= size
                del cache[uid]
        if victims:
            self.store.remove(sop_instance_uids=victims)
        return victims

    # --- InstanceSource -----------------------------------------------------------------
    def locate(self, refs: Sequence[InstanceRef]) -> dict[str, StoredInstance]:
        found = LocalSource(self.store).locate(refs)
        missing = [ref for ref in refs if ref.sop_instance_uid not in found]
        if missing:
            with self._fetch_lock:  # one fetch at a time: a C-MOVE lands in the shared store
                arrived = self.fetcher.fetch(missing, self.store)
            lost = {ref.sop_instance_uid for ref in missing} - arrived
            if lost:
                log.info("backing PACS did not deliver %d of %d instances", len(lost), len(missing))
            found.update(
                LocalSource(self.store).locate(
                    [r for r in missing if r.sop_instance_uid in arrived]
                )
            )
        self._touch(found.values())
        self.evict(protect=found)
        return found

    def locate_files(self, refs: Sequence[InstanceRef]) -> Mapping[str, InstanceFile]:
        return self.locate(refs)  # fetched into the cache and counted as used there

    def locate_streaming(self, refs: Sequence[InstanceRef]) -> Arriving:
        """As :meth:`locate`, but what is not cached yet is only asked about (QIDO-RS)
        and comes later, through ``arrivals``, as it lands in the cache; the fetch
        begins at once, while the PACS is asked.  A fetcher that cannot stream
        (C-MOVE), or a PACS whose answer may be incomplete, gets everything fetched
        first, as :meth:`locate` does."""
        found = LocalSource(self.store).locate(refs)
        fetcher = self.fetcher
        if len(found) == len(refs) or not isinstance(fetcher, WadoRsFetcher):
            return Arriving(self.locate(refs), {}, lambda: iter(()), lambda: None)
        undelivered = self._recently_undelivered()
        missing = [
            ref
            for ref in refs
            if ref.sop_instance_uid not in found and ref.sop_instance_uid not in undelivered
        ]
        if not missing:
            self._touch(found.values())
            return Arriving(found, {}, lambda: iter(()), lambda: None)
        retrieval = fetcher.start(missing, self.store)
        try:
            holdings = fetcher.holdings(missing)
        except BaseException:
            retrieval.close()
            raise
        if holdings is None:  # fetched whole first, then taken from the cache
            try:
                for _ in retrieval.batches():
                    pass
            finally:
                retrieval.close()
            return Arriving(self.locate(refs), {}, lambda: iter(()), lambda: None)
        protect = {ref.sop_instance_uid for ref in refs}
        self._touch(found.values())
        coming = {
            uid: ref
            for ref in missing
            if holdings.instances.get(uid := ref.sop_instance_uid) == ref
        }

        def arrivals() -> Iterator[list[StoredInstance]]:
            waiting = set(coming)
            try:
                for batch in retrieval.batches():
                    self._touch(batch)
                    self.evict(protect=protect)
                    waiting.difference_update(i.sop_instance_uid for i in batch)
                    yield batch
                self._note_undelivered(waiting)
            finally:
                retrieval.close()

        return Arriving(found, coming, arrivals, retrieval.close)

    def _recently_undelivered(self) -> set[str]:
        with self._lock:
            horizon = time.monotonic() - UNDELIVERED_FOR
            while self._undelivered and next(iter(self._undelivered.values())) < horizon:
                self._undelivered.popitem(last=False)
            return set(self._undelivered)

    def _note_undelivered(self, uids: Iterable[str]) -> None:
        with self._lock:
            for uid in uids:
                self._undelivered[uid] = time.monotonic()
                self._undelivered.move_to_end(uid)

    def instances(
        self, study_instance_uid: str, series_instance_uid: str | None = None
    ) -> list[StoredInstance]:
        keys: dict[str, str | None] = {
            "StudyInstanceUID": study_instance_uid,
            "SeriesInstanceUID": series_instance_uid or "",
            "SOPInstanceUID": "",
        }
        refs = [
            InstanceRef(m["StudyInstanceUID"], m["SeriesInstanceUID"], m["SOPInstanceUID"])
            for m in self.fetcher.find(QueryLevel.IMAGE, keys)
            if m.get("SOPInstanceUID")
        ]
        found = self.locate(refs)
        return [found[r.sop_instance_uid] for r in refs if r.sop_instance_uid in found]

    def find(self, level: QueryLevel, keys: Mapping[str, str | None]) -> Iterator[dict[str, Any]]:
        return self.fetcher.find(level, keys)


# --- WADO-RS / QIDO-RS ----------------------------------------------------------------------
class _PartSpool:
    """A :class:`~imaging_source.wado_retrieve.PartSink` writing each body part to a
    file of its own, hashed as it is written (the views come a megabyte at a time: one
    write and one hash call a typical instance)."""

    def __init__(
        self, directory: Path, on_file: Callable[[ReceivedFile], None] | None = None
    ) -> None:
        self.directory = directory
        self.on_file = on_file  # told of each part as it is written completely
        self.paths: list[Path] = []
        self.files: list[ReceivedFile] = []  # the parts written completely
        self._file: Any = None
        self._digest: Any = None
        self._size = 0

    def begin(self) -> None:
        path = self.directory / f"pacs-{uuid.uuid4().hex}"
        self.paths.append(path)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._digest, self._size = hashlib.sha1(), 0

    def data(self, view: memoryview) -> None:
        self._file.write(view)
        self._digest.update(view)
        self._size += len(view)

    def end(self) -> None:
        self.close()
        received = ReceivedFile(self.paths[-1], self._digest.hexdigest(), self._size)
        self.files.append(received)
        if self.on_file is not None:
            self.on_file(received)

    def close(self) -> None:
        """Close the part being written (a part cut short is discarded, never taken in)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _boundary(content_type: str) -> str:
    for item in content_type.split(";")[1:]:
        name, _, value = item.strip().partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    raise PacsError(f"multipart response without a boundary: {content_type!r}")


_SOP_INSTANCE_UID = "00080018"  # DICOM JSON (PS3.18 F.2) key of SOP Instance UID
_INDEX_INTERVAL = 0.5  # seconds between two index transactions of a retrieval


class _Indexer:
    """Index rows of placed cached copies, written by a thread of its own: each
    transaction takes whatever was placed while the last one committed."""

    def __init__(self, store: InstanceStore) -> None:
        self.store = store
        self._placed: queue.SimpleQueue[PlacedInstance | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-index", daemon=True)
        self._thread.start()

    def put(self, placed: PlacedInstance) -> None:
        self._placed.put(placed)

    def close(self) -> None:
        """Index what is left, then end the thread."""
        self._placed.put(None)
        self._closing.set()
        self._thread.join()

    def _run(self) -> None:
        done = False
        while not done:
            batch: list[PlacedInstance] = []
            item = self._placed.get()
            while True:
                if item is None:
                    done = True
                else:
                    batch.append(item)
                try:
                    item = self._placed.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    self.store.index_cached(batch)
                except Exception:  # the copies are placed; not indexed, they are not cached
                    log.exception("cannot index %d cached instance(s)", len(batch))
            if not done:  # let a batch gather: fewer, larger transactions
                self._closing.wait(_INDEX_INTERVAL)


def _by_series(refs: Iterable[InstanceRef]) -> dict[tuple[str, str], list[str]]:
    by_series: dict[tuple[str, str], list[str]] = {}
    for ref in refs:
        key = (ref.study_instance_uid, ref.series_instance_uid)
        by_series.setdefault(key, []).append(ref.sop_instance_uid)
    return by_series


def _retrieve_urls(
    base_url: str, refs: Sequence[InstanceRef], series_size: Callable[[str, str], int | None]
) -> list[str]:
    """The WADO-RS resources that give ``refs``: a series' when every instance of it is
    asked for, else each instance's."""
    urls = []
    for (study, series), uids in _by_series(refs).items():
        series_url = f"{base_url}/studies/{study}/series/{series}"
        if len(uids) > 1 and series_size(study, series) == len(set(uids)):
            urls.append(series_url)
        else:
            urls += [f"{series_url}/instances/{uid}" for uid in uids]
    return urls


@dataclass(frozen=True, slots=True)
class PacsHoldings:
    """What a PACS said it holds of some instances asked about: each by its UID, filed
    under the study and series it was asked under, and the size of each series."""

    base_url: str
    instances: dict[str, InstanceRef]
    series_sizes: dict[tuple[str, str], int]

    def retrieve_urls(self, refs: Sequence[InstanceRef]) -> list[str]:
        """The WADO-RS resources that give ``refs`` (held ones)."""
        return _retrieve_urls(
            self.base_url, refs, lambda study, series: self.series_sizes.get((study, series))
        )


class Retrieval:
    """WADO-RS Retrieves under way, ``parallel`` at a time, begun at construction: each
    part is checked and moved into the cache by the thread that received it as the part
    ends, and handed on by :meth:`batches`.  The cache's index rows are written by a
    thread of their own, one transaction for whatever was placed while the last one
    committed, so an instance is handed on without waiting for a commit.  :meth:`close`
    (always, and more than once is fine) stops the requests, removes the parts not taken
    in and waits until everything placed is indexed."""

    def __init__(self, fetcher: WadoRsFetcher, urls: Sequence[str], store: InstanceStore) -> None:
        self.fetcher = fetcher
        self.store = store
        incoming = store.root / INCOMING_DIR
        incoming.mkdir(parents=True, exist_ok=True)
        self._incoming = incoming
        self._landed: queue.SimpleQueue[StoredInstance | BaseException | None] = queue.SimpleQueue()
        self._todo: queue.SimpleQueue[str] = queue.SimpleQueue()
        for url in urls:
            self._todo.put(url)
        self._stop = threading.Event()
        self._spools: list[_PartSpool] = []
        self._connections: list[HttpConnection] = []
        self._indexer = _Indexer(store)
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name="wado-rs", daemon=True)
            for _ in range(min(fetcher.parallel, len(urls)))
        ]
        self._running = len(self._workers)
        for worker in self._workers:
            worker.start()

    def _land(self, file: ReceivedFile) -> None:
        try:
            placed = self.store.place_cached(file)
        except InvalidInstance as exc:
            log.warning(
                "WADO-RS from %s: a part is not a DICOM instance: %s", self.fetcher.base_url, exc
            )
            return
        self._indexer.put(placed)
        self._landed.put(placed.instance)

    def _work(self) -> None:
        connection = self.fetcher.connection()
        self._connections.append(connection)
        if self._stop.is_set():  # closed while this worker started
            connection.abort()
        try:
            while not self._stop.is_set():
                try:
                    url = self._todo.get_nowait()
                except queue.Empty:
                    return
                spool = _PartSpool(self._incoming, self._land)
                self._spools.append(spool)
                self.fetcher._retrieve(connection, url, spool, self._stop)
        except BaseException as exc:  # handed to the reading thread
            if not self._stop.is_set():
                self._landed.put(exc)
        finally:
            connection.close()
            self._landed.put(None)

    def batches(self) -> Iterator[list[StoredInstance]]:
        """The instances as they land, a batch being those that landed meanwhile; a part
        that is not a DICOM instance is logged and left out; PacsError when the PACS
        fails."""
        while self._running:
            batch: list[StoredInstance] = []
            item = self._landed.get()
            while True:
                if item is None:
                    self._running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    batch.append(item)
                try:
                    item = self._landed.get_nowait()
                except queue.Empty:
                    break
            if batch:
                yield batch

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for connection in list(self._connections):  # a read under way ends now
            connection.abort()
        for worker in self._workers:
            worker.join()
        for spool in self._spools:
            spool.discard()
        self._indexer.close()


class WadoRsFetcher:
    """A PACS reached by QIDO-RS and WADO-RS at ``base_url`` (its DICOMweb root).

    A series asked for whole comes in one Retrieve Series; other instances come one per
    Retrieve Instance request (PS3.18 10.4), ``parallel`` requests at a time (the PACS
    answers several at once while xdsi spools what came).  Responses are asked uncompressed
    (``Accept-Encoding: identity``): pixel data gains little from gzip, and compressing
    it costs the PACS more time than the bytes take on the wire.

    QIDO-RS goes through ``client`` (httpx); a Retrieve's multipart body, hundreds of MB,
    is read off a connection of its own by ``imaging_source.wado_retrieve``, each worker
    keeping its connection from one Retrieve to the next.  Both connect to the PACS
    directly (no proxy taken from the environment) and trust ``ssl_context`` (the
    system's CA certificates by default) for an https URL; ``timeout`` (seconds) bounds
    connecting and each wait for bytes."""

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        parallel: int = 4,
        timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.parallel = max(1, parallel)
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.client = (
            client
            if client is not None
            else httpx.Client(
                timeout=timeout,
                limits=httpx.Limits(max_keepalive_connections=self.parallel),
                verify=self.ssl_context,
                trust_env=False,
            )
        )

    def close(self) -> None:
        self.client.close()

    def fetch(self, refs: Sequence[InstanceRef], store: InstanceStore) -> set[str]:
        """A series asked for whole by one WADO-RS Retrieve Series, other instances each
        by a Retrieve Instance (PS3.18 10.4.1), ``parallel`` requests at a time, the
        parts spooled and taken into the store as cached copies as they end."""
        retrieval = self.start(refs, store)
        try:
            return {i.sop_instance_uid for batch in retrieval.batches() for i in batch}
        finally:
            retrieval.close()

    def start(self, refs: Sequence[InstanceRef], store: InstanceStore) -> Retrieval:
        """Begin fetching ``refs`` into ``store`` (as :meth:`fetch`), in the background:
        the caller takes the instances from :meth:`Retrieval.batches` and must close it."""
        urls = _retrieve_urls(self.base_url, refs, self._series_size)
        return Retrieval(self, urls, store)

    def holdings(self, refs: Sequence[InstanceRef]) -> PacsHoldings | None:
        """PS3.18 10.6.1: which of ``refs`` the PACS holds, by one QIDO-RS Search for
        Instances per series; None when an answer may be incomplete (PS3.18 8.3.4.4: a
        Warning that there are more results) or the PACS cannot be asked."""
        keys = list(_by_series(refs))
        with ThreadPoolExecutor(self.parallel, thread_name_prefix="qido-rs") as pool:
            answers = list(pool.map(self._series_instances, keys))
        if any(uids is None for uids in answers):
            return None
        instances: dict[str, InstanceRef] = {}
        sizes: dict[tuple[str, str], int] = {}
        for (study, series), uids in zip(keys, answers, strict=True):
            sizes[(study, series)] = len(uids or ())
            for uid in uids or ():
                instances[uid] = InstanceRef(study, series, uid)
        return PacsHoldings(self.base_url, instances, sizes)

    def _series_instances(self, key: tuple[str, str]) -> list[str] | None:
        """PS3.18 10.6.1: the SOP Instance UIDs of one series, None if unknown."""
        study, series = key
        url = f"{self.base_url}/studies/{study}/series/{series}/instances"
        try:
            response = self.client.get(url, headers={"Accept": DICOM_JSON_MEDIA_TYPE})
        except httpx.HTTPError as exc:
            log.warning("QIDO-RS %s: %s", url, exc)
            return None
        if response.status_code in (204, 404):
            return []
        if response.status_code >= 400 or "warning" in response.headers:
            return None
        try:
            return [item[_SOP_INSTANCE_UID]["Value"][0] for item in response.json()]
        except (ValueError, KeyError, IndexError, TypeError):
            return None

    def _series_size(self, study: str, series: str) -> int | None:
        """PS3.18 10.6.1: the series' NumberOfSeriesRelatedInstances, None if unknown."""
        keys = {"StudyInstanceUID": study, "SeriesInstanceUID": series}
        try:
            (match,) = self.find(QueryLevel.SERIES, keys)
            return int(match["NumberOfSeriesRelatedInstances"])
        except (PacsError, ValueError, KeyError, TypeError):
            return None

    def connection(self) -> HttpConnection:
        """A connection to the PACS for Retrieves, one worker's (see :meth:`_retrieve`)."""
        return HttpConnection(self.base_url, timeout=self.timeout, ssl_context=self.ssl_context)

    def _retrieve(
        self,
        connection: HttpConnection,
        url: str,
        spool: _PartSpool,
        stop: threading.Event | None = None,
    ) -> None:
        """PS3.18 10.4.1: one WADO-RS Retrieve on ``connection``, its parts streamed to
        ``spool`` (until ``stop`` is set).  RFC 2046 5.1.1: a body ends with its close
        delimiter; one that stops short (a connection closed mid-part) is a failed
        Retrieve (PacsError), not fewer parts."""
        target = urlsplit(url)
        path = f"{target.path}?{target.query}" if target.query else target.path
        try:
            response = connection.get(path, _RETRIEVE_HEADERS)
            whole = False  # the response read to its end: the connection can be kept
            try:
                if response.status not in (404, 204):
                    if response.status >= 400 or response.status < 200:
                        raise PacsError(f"WADO-RS {url}: HTTP {response.status}")
                    boundary = _boundary(response.headers.get("content-type", ""))
                    read_multipart(response, boundary, spool, stop)
                whole = stop is None or not stop.is_set()
            finally:
                if whole:
                    connection.release(response)
                else:
                    connection.close()
        except RetrieveFailed as exc:
            connection.close()
            raise PacsError(f"WADO-RS {url}: {exc}") from exc
        finally:
            spool.close()

    def find(self, level: QueryLevel, keys: Mapping[str, str | None]) -> Iterator[dict[str, Any]]:
        """PS3.18 10.6: QIDO-RS Search at the level's resource, every key a match
        parameter, every attribute xdsi indexes asked for by includefield."""
        params: list[tuple[str, str]] = [(k, v) for k, v in keys.items() if v not in (None, "")]
        params += [("includefield", k) for k in return_keys(level)]
        url = f"{self.base_url}/{_QIDO_RESOURCE[level]}"
        try:
            response = self.client.get(
                url, params=params, headers={"Accept": DICOM_JSON_MEDIA_TYPE}
            )
        except httpx.HTTPError as exc:
            raise PacsError(f"QIDO-RS {url}: {exc}") from exc
        if response.status_code == 204:
            return iter(())
        if response.status_code >= 400:
            raise PacsError(f"QIDO-RS {url}: HTTP {response.status_code}")
        return (match_dict(Dataset.from_json(item)) for item in response.json())


# --- C-FIND / C-MOVE ------------------------------------------------------------------------
class DimseFetcher:
    """A PACS reached by Study Root C-FIND and C-MOVE; the move destination is xdsi's
    own storage SCP, known to the PACS as ``ae_title``.  A PACS marked ``tls`` is
    reached over TLS with ``ssl_context`` (PS3.15 B.1)."""

    def __init__(
        self,
        pacs: DicomPeer,
        ae_title: str,
        *,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 120.0,
        network_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if pacs.tls and ssl_context is None:
            raise ValueError(f"{pacs} is reached over TLS: an ssl_context is needed")
        self.pacs = pacs
        self.ae_title = ae_title
        self.ssl_context = ssl_context
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout

    def _associate(self, context: str) -> Any:
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.dimse_timeout
        ae.network_timeout = self.network_timeout
        ae.add_requested_context(context)
        tls_args = (self.ssl_context, self.pacs.host) if self.pacs.tls else None
        assoc = ae.associate(
            self.pacs.host,
            self.pacs.port,
            ae_title=self.pacs.ae_title,
            evt_handlers=REQUESTOR_HANDLERS,  # TCP_NODELAY, responses kept from the reactor
            tls_args=tls_args,
        )
        if not assoc.is_established:
            raise PacsError(f"association with {self.pacs} not established")
        return assoc

    def fetch(self, refs: Sequence[InstanceRef], store: InstanceStore) -> set[str]:
        """One IMAGE-level C-MOVE per series, the SOP Instance UIDs as a list (PS3.4
        C.4.2.2.1); then the store is asked which of them arrived."""
        by_series: dict[tuple[str, str], list[str]] = {}
        for ref in refs:
            key = (ref.study_instance_uid, ref.series_instance_uid)
            by_series.setdefault(key, []).append(ref.sop_instance_uid)
        arrived: set[str] = set()
        assoc = self._associate(StudyRootQueryRetrieveInformationModelMove)
        try:
            for (study, series), uids in by_series.items():
                identifier = Dataset()
                identifier.QueryRetrieveLevel = QueryLevel.IMAGE.value
                identifier.StudyInstanceUID = study
                identifier.SeriesInstanceUID = series
                identifier.SOPInstanceUID = uids if len(uids) > 1 else uids[0]
                completed = 0
                for status, _ in assoc.send_c_move(
                    identifier, self.ae_title, StudyRootQueryRetrieveInformationModelMove
                ):
                    if status is not None and "NumberOfCompletedSuboperations" in status:
                        completed = int(status.NumberOfCompletedSuboperations or 0)
                here = {uid for uid in uids if store.get(uid) is not None}
                if len(here) != len(uids):
                    log.info(
                        "C-MOVE from %s: %d of %d instances arrived (%d reported completed)",
                        self.pacs,
                        len(here),
                        len(uids),
                        completed,
                    )
                arrived |= here
        finally:
            assoc.release()
        return arrived

    def find(self, level: QueryLevel, keys: Mapping[str, str | None]) -> Iterator[dict[str, Any]]:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = level.value
        for keyword in return_keys(level):
            setattr(identifier, keyword, None)
        for keyword, value in keys.items():
            if keyword in ATTRIBUTE_LEVEL or keyword == "ModalitiesInStudy":
                setattr(identifier, keyword, value or None)
        assoc = self._associate(StudyRootQueryRetrieveInformationModelFind)
        matches: list[dict[str, Any]] = []
        try:
            for status, answer in assoc.send_c_find(
                identifier, StudyRootQueryRetrieveInformationModelFind
            ):
                if status is None:
                    raise PacsError(f"C-FIND to {self.pacs}: no response")
                if status.Status in _PENDING and answer is not None:
                    matches.append(match_dict(answer))
                elif status.Status != 0x0000:
                    raise PacsError(f"C-FIND to {self.pacs}: status 0x{status.Status:04X}")
        finally:
            assoc.release()
        return iter(matches)


__all__ = [
    "AS_STORED_ACCEPT",
    "Arriving",
    "DimseFetcher",
    "InstanceRef",
    "InstanceSource",
    "LocalSource",
    "PacsError",
    "PacsFetcher",
    "PacsHoldings",
    "PacsSource",
    "Retrieval",
    "StreamingSource",
    "WadoRsFetcher",
    "match_dict",
    "return_keys",
]
