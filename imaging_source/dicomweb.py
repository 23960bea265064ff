"""DICOMweb read services of the Imaging Document Source, to mount under ``/dicomweb``.

- WADO-RS Retrieve (PS3.18 10.4; IHE RAD-107): a study, a series or an instance as
  ``multipart/related; type="application/dicom"``, in a transfer syntax the Accept
  header allows (PS3.18 8.7.3.5: Explicit VR Little Endian unless the client names
  another, ``transfer-syntax=*`` as stored); their ``/metadata`` as
  ``application/dicom+json`` (PS3.18 F.2) without bulk data; ``/frames/{list}`` as
  ``multipart/related; type="application/octet-stream"``, one native frame per part.
- QIDO-RS Search (PS3.18 10.6): ``/studies``, ``/series``, ``/instances`` and their
  study/series-scoped forms, with the Study Root match keys the index knows (by keyword
  or tag), ``limit``, ``offset`` and ``includefield``.
- WADO-URI (PS3.18 9; IHE RAD-55): ``/wado?requestType=WADO&studyUID=&seriesUID=
  &objectUID=&contentType=application/dicom[&transferSyntax=]``.

Instances come from an :class:`~imaging_source.pacs.InstanceSource` (the local store or
a backing PACS); everything is checked before the first byte, files stream from disk.
STOW-RS (``POST /studies``) lives in ``imaging_source.stow``.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
from pydicom import dcmread
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from imaging_source.exchange import (
    DicomExchange,
    DicomOperation,
    ExchangeStatus,
    OnExchange,
    notify,
    touched_all,
)
from imaging_source.instances import ATTRIBUTE_LEVEL, QueryLevel, StoredInstance
from imaging_source.pacs import InstanceRef, InstanceSource
from imaging_source.transcode import Delivery, TranscodeError, Transcoder

DICOM_MEDIA_TYPE = "application/dicom"
DICOM_JSON_MEDIA_TYPE = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
CHUNK_SIZE = 64 * 1024
# PS3.18 8.7.3.5.2 (Table 8.7.3-2): the default transfer syntax of application/dicom
DEFAULT_TRANSFER_SYNTAX = ExplicitVRLittleEndian
# PS3.4 C.6.2: Study Root Query/Retrieve Information Model - FIND, what QIDO-RS searches
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
# PS3.18 10.6.1.2: query parameters that are not match keys
_QIDO_CONTROLS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})
_TAG = re.compile(r"[0-9A-Fa-f]{8}")


class HttpProblem(Exception):
    """A request answered with an HTTP error status and a short text."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# --- Accept (PS3.18 8.7) -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str  # e.g. "multipart/related"
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header, in the order given (absent: ``*/*``)."""
    ranges = []
    for item in header.split(","):
        kind, _, rest = item.partition(";")
        if not kind.strip():
            continue
        params = {}
        for param in rest.split(";"):
            name, sep, value = param.strip().partition("=")
            if sep:
                params[name.strip().lower()] = value.strip().strip('"')
        ranges.append(MediaRange(kind.strip().lower(), params))
    return ranges or [MediaRange("*/*", {})]


def accepted_syntaxes(header: str, part_type: str = DICOM_MEDIA_TYPE) -> list[str]:
    """PS3.18 8.7.3.5: the transfer syntaxes a multipart Accept allows for parts of
    ``part_type``, in order; the default syntax where none is named, "*" for as stored.
    HttpProblem 406 when no media range allows such parts."""
    syntaxes: list[str] = []
    for media in parse_accept(header):
        part = media.params.get("type", part_type).lower()
        if media.type in ("*/*", "multipart/*", "multipart/related") and part in (
            part_type,
            "*/*",
        ):
            syntax = media.params.get("transfer-syntax", DEFAULT_TRANSFER_SYNTAX)
            if syntax not in syntaxes:
                syntaxes.append(syntax)
    if not syntaxes:
        raise HttpProblem(406, f'only multipart/related; type="{part_type}" is offered')
    return syntaxes


# --- multipart bodies ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Part:
    content_type: str
    path: Any = None  # a file to stream
    data: bytes | None = None  # or bytes in memory (frames)
    size: int = 0


def _part_head(boundary: str, part: Part) -> bytes:
    return f"--{boundary}\r\nContent-Type: {part.content_type}\r\n\r\n".encode("latin-1")


def multipart_length(boundary: str, parts: Sequence[Part]) -> int:
    tail = len(f"--{boundary}--\r\n")
    return sum(len(_part_head(boundary, p)) + p.size + 2 for p in parts) + tail


async def multipart_body(boundary: str, parts: Sequence[Part]) -> AsyncIterator[bytes]:
    """PS3.18 8.6.1.2 / RFC 2387: the parts, each streamed from disk in 64 KiB chunks."""
    for part in parts:
        yield _part_head(boundary, part)
        if part.data is not None:
            yield part.data
        else:
            async with await anyio.open_file(part.path, "rb") as stream:
                while chunk := await stream.read(CHUNK_SIZE):
                    yield chunk
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("latin-1")


def multipart_response(parts: Sequence[Part], part_type: str, status: int = 200) -> Response:
    boundary = f"xdsi-{uuid.uuid4().hex}"
    return StreamingResponse(
        multipart_body(boundary, parts),
        status_code=status,
        headers={
            "content-type": f'multipart/related; type="{part_type}"; boundary={boundary}',
            "content-length": str(multipart_length(boundary, parts)),
        },
    )


# --- the services ------------------------------------------------------------------------------
_LEVEL_RANK = {QueryLevel.STUDY: 0, QueryLevel.SERIES: 1, QueryLevel.IMAGE: 2}


def _keyword(name: str) -> str | None:
    """A QIDO-RS attribute named by keyword or by tag (PS3.18 8.3.4.1)."""
    if _TAG.fullmatch(name):
        return keyword_for_tag(int(name, 16)) or None
    return name if tag_for_keyword(name) is not None else None


def _json_item(match: dict[str, Any], retrieve_url: str | None) -> dict[str, Any]:
    ds = Dataset()
    for keyword, value in match.items():
        if value is None or value == "" or tag_for_keyword(keyword) is None:
            continue
        if isinstance(value, str) and "\\" in value:
            value = value.split("\\")
        if dictionary_VR(keyword) in ("IS", "US", "UL") and not isinstance(value, int | list):
            value = int(value)
        setattr(ds, keyword, value)
    if retrieve_url:
        ds.RetrieveURL = retrieve_url  # PS3.18 10.6.3.3.1
    return ds.to_json_dict()


def _retrieve_path(level: QueryLevel, match: dict[str, Any]) -> str:
    path = f"/studies/{match.get('StudyInstanceUID', '')}"
    if level is not QueryLevel.STUDY:
        path += f"/series/{match.get('SeriesInstanceUID', '')}"
    if level is QueryLevel.IMAGE:
        path += f"/instances/{match.get('SOPInstanceUID', '')}"
    return path


class DicomWeb:
    """WADO-RS, QIDO-RS and WADO-URI over an instance source."""

    def __init__(
        self,
        source: InstanceSource,
        transcoder: Transcoder,
        *,
        base_url: str | None = None,
        max_results: int = 1000,
        on_event: OnExchange | None = None,
    ) -> None:
        """``on_event``: called with a :class:`DicomExchange` as each WADO-RS or WADO-URI
        retrieve of instances, and each QIDO-RS search, ends (auditing observes through
        it)."""
        self.on_event = on_event
        self.source = source
        self.transcoder = transcoder
        self.base_url = base_url.rstrip("/") if base_url else None
        self.max_results = max_results

    def routes(self) -> list[Route]:
        """Starlette routes relative to the mount point (``/dicomweb``)."""
        s, r, i = "/studies/{study}", "/series/{series}", "/instances/{instance}"
        table: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = [
            ("/studies", self.search),
            (s, self.retrieve),
            (f"{s}/metadata", self.metadata),
            (f"{s}/series", self.search),
            (f"{s}/instances", self.search),
            (f"{s}{r}", self.retrieve),
            (f"{s}{r}/metadata", self.metadata),
            (f"{s}{r}/instances", self.search),
            (f"{s}{r}{i}", self.retrieve),
            (f"{s}{r}{i}/metadata", self.metadata),
            (f"{s}{r}{i}/frames/{{frames}}", self.frames),
            ("/series", self.search),
            ("/instances", self.search),
            ("/wado", self.wado_uri),
        ]
        return [Route(path, _answering(endpoint), methods=["GET"]) for path, endpoint in table]

    # --- selecting instances --------------------------------------------------------
    def _selected(self, params: dict[str, str]) -> list[StoredInstance]:
        study, series, sop = params.get("study"), params.get("series"), params.get("instance")
        if sop is not None and series is not None and study is not None:
            found = self.source.locate([InstanceRef(study, series, sop)]).get(sop)
            ok = found is not None and (found.study_instance_uid, found.series_instance_uid) == (
                study,
                series,
            )
            instances = [found] if ok and found is not None else []
        else:
            instances = self.source.instances(study or "", series)
        if not instances:
            raise HttpProblem(404, "no such study, series or instance")
        return instances

    def _deliveries(
        self, instances: Iterable[StoredInstance], syntaxes: Sequence[str]
    ) -> tuple[list[Delivery], int, list[StoredInstance]]:
        """The files to send, how many instances cannot be given, the ones that can."""
        deliveries: list[Delivery] = []
        delivered: list[StoredInstance] = []
        failed = 0
        for instance in instances:
            try:
                deliveries.append(self.transcoder.deliver(instance, syntaxes))
            except TranscodeError:
                failed += 1
            else:
                delivered.append(instance)
        return deliveries, failed, delivered

    def _observed(
        self, request: Request, operation: DicomOperation
    ) -> AbstractAsyncContextManager[_Sent]:
        return _observing(self.on_event, request, operation)

    # --- WADO-RS ----------------------------------------------------------------------
    async def retrieve(self, request: Request) -> Response:
        """PS3.18 10.4.1.1.1-3: Study, Series, Instance retrieve as DICOM parts; 206 when
        some instances cannot be given in an accepted syntax, 406 when none can."""
        async with self._observed(request, DicomOperation.WADO_RS) as sent:
            syntaxes = accepted_syntaxes(request.headers.get("accept", ""))
            instances = await run_in_threadpool(self._selected, dict(request.path_params))
            deliveries, failed, delivered = await run_in_threadpool(
                self._deliveries, instances, syntaxes
            )
            if not deliveries:
                raise HttpProblem(406, "no instance can be given in an accepted transfer syntax")
            sent.extend(delivered)
            sent.partial = bool(failed)
        parts = [
            Part(
                f"{DICOM_MEDIA_TYPE}; transfer-syntax={d.transfer_syntax_uid}", d.path, None, d.size
            )
            for d in deliveries
        ]
        return multipart_response(parts, DICOM_MEDIA_TYPE, 206 if failed else 200)

    async def metadata(self, request: Request) -> Response:
        """PS3.18 10.4.1.1.4: the DICOM JSON of each instance, without its pixel data."""
        instances = await run_in_threadpool(self._selected, dict(request.path_params))

        async def items() -> AsyncIterator[bytes]:
            yield b"["
            for n, instance in enumerate(instances):
                item = await run_in_threadpool(_metadata_json, instance)
                yield (b"," if n else b"") + item
            yield b"]"

        return StreamingResponse(items(), media_type=DICOM_JSON_MEDIA_TYPE)

    async def frames(self, request: Request) -> Response:
        """PS3.18 10.4.1.1.5: the listed frames (1-based), native, one per part."""
        accepted_syntaxes(request.headers.get("accept", ""), OCTET_STREAM)
        try:
            numbers = [int(n) for n in request.path_params["frames"].split(",")]
        except ValueError:
            raise HttpProblem(400, "frames are a comma-separated list of numbers") from None
        instances = await run_in_threadpool(self._selected, dict(request.path_params))
        frames = await run_in_threadpool(native_frames, instances[0], numbers)
        parts = [Part(OCTET_STREAM, None, frame, len(frame)) for frame in frames]
        return multipart_response(parts, OCTET_STREAM)

    # --- QIDO-RS ----------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        path = request.url.path
        level = (
            QueryLevel.IMAGE
            if path.endswith("/instances")
            else QueryLevel.SERIES
            if path.endswith("/series")
            else QueryLevel.STUDY
        )
        keys, unsupported = _match_keys(request, level)
        try:
            offset, limit = _paging(request, self.max_results)
            matches = await run_in_threadpool(
                lambda: list(
                    itertools.islice(self.source.find(level, keys), offset, offset + limit)
                )
            )
        except HttpProblem as exc:
            notify(self.on_event, partial(_searched, request, keys, exc.status, str(exc)))
            raise
        except Exception as exc:
            notify(self.on_event, partial(_searched, request, keys, 500, repr(exc)))
            raise
        notify(self.on_event, partial(_searched, request, keys, 200, None))
        base = self.base_url or _base_url(request)
        body = [_json_item(m, base + _retrieve_path(level, m)) for m in matches]
        headers = {}
        if unsupported:  # PS3.18 8.3.4.1 / 10.6.3.2: a Warning names what was ignored
            headers["warning"] = (
                "299 xdsi: The following attributes are not supported for matching: "
                + ", ".join(unsupported)
            )
        return JSONResponse(body, media_type=DICOM_JSON_MEDIA_TYPE, headers=headers)

    # --- WADO-URI ---------------------------------------------------------------------
    async def wado_uri(self, request: Request) -> Response:
        """PS3.18 9.1 / RAD-55: one instance as application/dicom."""
        query = request.query_params
        if query.get("requestType") != "WADO":
            raise HttpProblem(400, "requestType=WADO is required (PS3.18 9.1.2.1.1)")
        uids = {
            "study": query.get("studyUID"),
            "series": query.get("seriesUID"),
            "instance": query.get("objectUID"),
        }
        if not all(uids.values()):
            raise HttpProblem(400, "studyUID, seriesUID and objectUID are required")
        types = [t.split(";")[0].strip() for t in query.get("contentType", "image/jpeg").split(",")]
        if DICOM_MEDIA_TYPE not in types:
            raise HttpProblem(406, "only contentType=application/dicom is offered")
        # PS3.18 9.1.2.2.5 (transferSyntax): Explicit VR Little Endian when absent
        syntax = query.get("transferSyntax") or DEFAULT_TRANSFER_SYNTAX
        async with self._observed(request, DicomOperation.WADO_URI) as sent:
            instances = await run_in_threadpool(self._selected, uids)
            deliveries, _, delivered = await run_in_threadpool(
                self._deliveries, instances, [syntax]
            )
            if not deliveries:
                raise HttpProblem(406, f"the instance cannot be given in {syntax}")
            sent.extend(delivered)
        return FileResponse(deliveries[0].path, media_type=DICOM_MEDIA_TYPE)


class _Sent(list[StoredInstance]):
    partial: bool = False


@asynccontextmanager
async def _observing(
    hook: OnExchange | None, request: Request, operation: DicomOperation
) -> AsyncIterator[_Sent]:
    """Report the instances a retrieve hands out, or its refusal, to ``hook``."""
    sent = _Sent()
    client = request.client
    peer = client.host if client is not None else "unknown"

    def record(outcome: ExchangeStatus, status: int, text: str | None) -> DicomExchange:
        return DicomExchange(
            operation=operation,
            peer=peer,
            peer_address=client.host if client is not None else None,
            local=str(request.url),
            outcome=outcome,
            status=status,
            description=text,
            instances=touched_all(sent),
        )

    try:
        yield sent
    except HttpProblem as exc:
        notify(hook, partial(record, ExchangeStatus.FAILURE, exc.status, str(exc)))
        raise
    outcome = ExchangeStatus.PARTIAL if sent.partial else ExchangeStatus.SUCCESS
    notify(hook, partial(record, outcome, 206 if sent.partial else 200, None))


def _searched(
    request: Request, keys: dict[str, str], status: int, text: str | None
) -> DicomExchange:
    """A QIDO-RS search as an exchange: the query string as received is the query, the
    Study Root C-FIND SOP Class the model it searches (PS3.18 10.6 maps a search to
    it), the PatientID and StudyInstanceUID match keys the patient and studies."""
    client = request.client
    studies = keys.get("StudyInstanceUID", "")
    return DicomExchange(
        operation=DicomOperation.QIDO_RS,
        peer=client.host if client is not None else "unknown",
        peer_address=client.host if client is not None else None,
        local=str(request.url),
        outcome=ExchangeStatus.SUCCESS if status < 400 else ExchangeStatus.FAILURE,
        status=status,
        description=text,
        query=f"{request.url.path}?{request.url.query}".encode(),
        query_sop_class_uid=STUDY_ROOT_FIND,
        patient_id=keys.get("PatientID") or None,
        study_instance_uids=tuple(u for u in re.split(r"[,\\]", studies) if u),
    )


def _answering(
    endpoint: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """The one place where an HttpProblem becomes its response."""

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except HttpProblem as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")

    return answer


def _base_url(request: Request) -> str:
    root = request.scope.get("root_path", "")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def _match_keys(request: Request, level: QueryLevel) -> tuple[dict[str, str], list[str]]:
    keys: dict[str, str] = {}
    unsupported: list[str] = []
    for name, value in request.query_params.multi_items():
        if name in _QIDO_CONTROLS:
            continue
        keyword = _keyword(name)
        known = keyword in ATTRIBUTE_LEVEL or keyword == "ModalitiesInStudy"
        if keyword is None or not known:
            unsupported.append(name)
            continue
        keys[keyword] = value
    # the UIDs in the path are match keys of the levels above (PS3.18 10.6.1.2)
    for param, keyword in (("study", "StudyInstanceUID"), ("series", "SeriesInstanceUID")):
        if param in request.path_params:
            keys[keyword] = request.path_params[param]
    return keys, unsupported


def _paging(request: Request, max_results: int) -> tuple[int, int]:
    try:
        offset = max(0, int(request.query_params.get("offset", "0")))
        limit = int(request.query_params.get("limit", str(max_results)))
    except ValueError:
        raise HttpProblem(400, "limit and offset are numbers") from None
    return offset, max(0, min(limit, max_results))


def _metadata_json(instance: StoredInstance) -> bytes:
    ds = dcmread(instance.path, stop_before_pixels=True)
    return json.dumps(ds.to_json_dict(bulk_data_threshold=2**31)).encode("utf-8")


def native_frames(instance: StoredInstance, numbers: Sequence[int]) -> list[bytes]:
    """The listed frames of an instance as native pixel bytes (PS3.5 8.1.1); encapsulated
    pixel data is decoded first (HttpProblem 406 when no plugin can)."""
    ds = dcmread(instance.path)
    if "PixelData" not in ds:
        raise HttpProblem(404, "the instance has no pixel data")
    if UID(ds.file_meta.TransferSyntaxUID).is_encapsulated:
        try:
            ds.decompress(generate_instance_uid=False)
        except Exception as exc:
            raise HttpProblem(406, f"cannot decode the pixel data: {exc}") from exc
    count = int(ds.get("NumberOfFrames") or 1)
    if any(not 1 <= n <= count for n in numbers):
        raise HttpProblem(404, f"the instance has {count} frame(s)")
    if ds.BitsAllocated % 8:
        raise HttpProblem(406, "frames of Bits Allocated not a multiple of 8 are not offered")
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    data = ds.PixelData
    return [data[(n - 1) * size : n * size] for n in numbers]


def dicomweb_routes(
    source: InstanceSource,
    transcoder: Transcoder,
    *,
    base_url: str | None = None,
    on_event: OnExchange | None = None,
) -> list[Route]:
    """The routes to mount under ``/dicomweb`` (with STOW-RS's ``POST /studies``)."""
    return DicomWeb(source, transcoder, base_url=base_url, on_event=on_event).routes()


__all__ = [
    "DEFAULT_TRANSFER_SYNTAX",
    "DicomWeb",
    "HttpProblem",
    "MediaRange",
    "Part",
    "accepted_syntaxes",
    "dicomweb_routes",
    "multipart_body",
    "multipart_length",
    "native_frames",
    "parse_accept",
]
