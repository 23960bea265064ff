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
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)
from python_multipart.multipart import MultipartParser

from imaging_source.instances import (
    ATTRIBUTE_LEVEL,
    INCOMING_DIR,
    InstanceStore,
    QueryLevel,
    ReceivedFile,
    StoredInstance,
    is_intact,
)
from imaging_source.peers import DicomPeer

log = logging.getLogger(__name__)

DICOM_MEDIA_TYPE = "application/dicom"
DICOM_JSON_MEDIA_TYPE = "application/dicom+json"
# PS3.18 8.7.3.5.2: "*" asks for the instance as the origin server stores it
AS_STORED_ACCEPT = f'multipart/related; type="{DICOM_MEDIA_TYPE}"; transfer-syntax=*'
_RETRIEVE_HEADERS = {"Accept": AS_STORED_ACCEPT, "Accept-Encoding": "identity"}
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

    def instances(
        self, study_instance_uid: str, series_instance_uid: str | None = None
    ) -> list[StoredInstance]:
        """Every instance of a study (or one of its series), as local files."""
        ...

    def find(self, level: QueryLevel, keys: Mapping[str, str | None]) -> Iterator[dict[str, Any]]:
        """Study Root matching (PS3.4 C.2.2.2) at ``level``, as InstanceStore.find."""
        ...


class LocalSource:
    """Instances held by the Imaging Document Source itself."""

    def __init__(self, store: InstanceStore) -> None:
        self.store = store

    def locate(self, refs: Sequence[InstanceRef]) -> dict[str, StoredInstance]:
        stored = self.store.get_many(ref.sop_instance_uid for ref in refs)
        return {uid: instance for uid, instance in stored.items() if is_intact(instance)}

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

    # --- the cache ----------------------------------------------------------------------
    def _cache(self) -> OrderedDict[str, int]:
        """Usage order, seeded from the store by reception time on first use."""
        if self._recent is None:
            seen = [i for study in self.store.studies() for i in self.store.instances(study)]
            seen.sort(key=lambda i: i.received)
            self._recent = OrderedDict((i.sop_instance_uid, i.size) for i in seen)
        return self._recent

    def _touch(self, instances: Iterable[StoredInstance]) -> None:
        with self._lock:
            cache = self._cache()
            for instance in instances:
                cache[instance.sop_instance_uid] = instance.size
                cache.move_to_end(instance.sop_instance_uid)

    def evict(self, protect: Iterable[str] = ()) -> list[str]:
        """Remove least recently used instances until the cache fits ``max_bytes``;
        ``protect`` (about to be sent) stays.  Returns the evicted SOP Instance UIDs."""
        keep = set(protect)
        victims: list[str] = []
        with self._lock:
            cache = self._cache()
            total = sum(cache.values())
            for uid, size in list(cache.items()):
                if total <= self.max_bytes:
                    break
                if uid in keep:
                    continue
                victims.append(uid)
                total -= size
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
    """python-multipart callbacks writing each body part to a file of its own, hashed
    as it is written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.paths: list[Path] = []
        self.files: list[ReceivedFile] = []  # the parts written completely
        self._file: Any = None
        self._digest: Any = None
        self._size = 0

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {"on_part_begin": self._begin, "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self) -> None:
        path = self.directory / f"pacs-{uuid.uuid4().hex}"
        self.paths.append(path)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._digest, self._size = hashlib.sha1(), 0

    def _data(self, data: bytes, start: int, end: int) -> None:
        piece = memoryview(data)[start:end]
        self._file.write(piece)
        self._digest.update(piece)
        self._size += end - start

    def _end(self) -> None:
        self.close()
        self.files.append(ReceivedFile(self.paths[-1], self._digest.hexdigest(), self._size))

    def close(self) -> None:
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


class WadoRsFetcher:
    """A PACS reached by QIDO-RS and WADO-RS at ``base_url`` (its DICOMweb root).

    A series asked for whole comes in one Retrieve Series; other instances come one per
    Retrieve Instance request (PS3.18 10.4), ``parallel`` requests at a time (the PACS
    answers several at once while xdsi spools what came).  Responses are asked uncompressed
    (``Accept-Encoding: identity``): pixel data gains little from gzip, and compressing
    it costs the PACS more time than the bytes take on the wire."""

    def __init__(
        self, base_url: str, *, client: httpx.Client | None = None, parallel: int = 4
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.parallel = max(1, parallel)
        self.client = (
            client
            if client is not None
            else httpx.Client(
                timeout=60.0, limits=httpx.Limits(max_keepalive_connections=self.parallel)
            )
        )

    def close(self) -> None:
        self.client.close()

    def fetch(self, refs: Sequence[InstanceRef], store: InstanceStore) -> set[str]:
        """A series asked for whole by one WADO-RS Retrieve Series, other instances each
        by a Retrieve Instance (PS3.18 10.4.1), ``parallel`` requests at a time, the
        parts spooled; then all taken into the store as cached copies at once."""
        incoming = store.root / INCOMING_DIR
        incoming.mkdir(parents=True, exist_ok=True)
        spools: list[_PartSpool] = []

        def retrieve(url: str) -> None:
            spool = _PartSpool(incoming)
            spools.append(spool)
            self._retrieve(url, spool)

        try:
            urls = self._retrieve_urls(refs)
            if self.parallel == 1 or len(urls) < 2:
                for url in urls:
                    retrieve(url)
            else:
                with ThreadPoolExecutor(self.parallel, thread_name_prefix="wado-rs") as pool:
                    list(pool.map(retrieve, urls))
            stored, refused = store.add_cached([f for spool in spools for f in spool.files])
        finally:
            for spool in spools:
                spool.discard()
        for exc in refused:
            log.warning("WADO-RS from %s: a part is not a DICOM instance: %s", self.base_url, exc)
        return {instance.sop_instance_uid for instance in stored}

    def _retrieve_urls(self, refs: Sequence[InstanceRef]) -> list[str]:
        """The WADO-RS resources that give ``refs``: a series' when every instance of
        it is asked for (its NumberOfSeriesRelatedInstances, by QIDO-RS), else each
        instance's."""
        by_series: dict[tuple[str, str], list[str]] = {}
        for ref in refs:
            key = (ref.study_instance_uid, ref.series_instance_uid)
            by_series.setdefault(key, []).append(ref.sop_instance_uid)
        urls = []
        for (study, series), uids in by_series.items():
            series_url = f"{self.base_url}/studies/{study}/series/{series}"
            if len(uids) > 1 and self._series_size(study, series) == len(set(uids)):
                urls.append(series_url)
            else:
                urls += [f"{series_url}/instances/{uid}" for uid in uids]
        return urls

    def _series_size(self, study: str, series: str) -> int | None:
        """PS3.18 10.6.1: the series' NumberOfSeriesRelatedInstances, None if unknown."""
        keys = {"StudyInstanceUID": study, "SeriesInstanceUID": series}
        try:
            (match,) = self.find(QueryLevel.SERIES, keys)
            return int(match["NumberOfSeriesRelatedInstances"])
        except (PacsError, ValueError, KeyError, TypeError):
            return None

    def _retrieve(self, url: str, spool: _PartSpool) -> None:
        """PS3.18 10.4.1: one WADO-RS Retrieve, its parts streamed to ``spool``."""
        try:
            with self.client.stream("GET", url, headers=_RETRIEVE_HEADERS) as response:
                if response.status_code in (404, 204):
                    return
                if response.status_code >= 400:
                    raise PacsError(f"WADO-RS {url}: HTTP {response.status_code}")
                parser = MultipartParser(
                    _boundary(response.headers.get("content-type", "")), spool.callbacks()
                )
                for chunk in response.iter_bytes():
                    parser.write(chunk)
                parser.finalize()
        except httpx.HTTPError as exc:
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
    own storage SCP, known to the PACS as ``ae_title``."""

    def __init__(
        self,
        pacs: DicomPeer,
        ae_title: str,
        *,
        acse_timeout: float = 30.0,
        dimse_timeout: float = 120.0,
        network_timeout: float = 60.0,
    ) -> None:
        self.pacs = pacs
        self.ae_title = ae_title
        self.acse_timeout = acse_timeout
        self.dimse_timeout = dimse_timeout
        self.network_timeout = network_timeout

    def _associate(self, context: str) -> Any:
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = self.acse_timeout
        ae.dimse_timeout = self.dimse_timeout
        ae.network_timeout = self.network_timeout
        ae.add_requested_context(context)
        assoc = ae.associate(self.pacs.host, self.pacs.port, ae_title=self.pacs.ae_title)
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
    "DimseFetcher",
    "InstanceRef",
    "InstanceSource",
    "LocalSource",
    "PacsError",
    "PacsFetcher",
    "PacsSource",
    "WadoRsFetcher",
    "match_dict",
    "return_keys",
]
