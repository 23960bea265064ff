"""STOW-RS receiver (PS3.18 10.5, Store Instances): ``POST /dicomweb/studies[/{study}]``.

The request body is ``multipart/related; type="application/dicom"`` (PS3.18 10.5.1.1);
each part is streamed to a file under the store's ``.incoming`` folder (at most
``max_instance_bytes``) and then added to the store like a C-STORE.  The response is the
Store Instances Response Module (PS3.18 10.5.3, Table 10.5.3-1) as
``application/dicom+json``: Referenced SOP Sequence for what was stored, Failed SOP
Sequence with a Failure Reason for what was not.  Status: 200 all stored, 202 some
stored, 409 none stored, 415 not ``application/dicom`` parts, 400 unreadable body.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
from pydicom import dcmread
from pydicom.dataset import Dataset
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from imaging_source.dimse import CANNOT_UNDERSTAND, IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
from imaging_source.exchange import (
    DicomExchange,
    DicomOperation,
    ExchangeStatus,
    OnExchange,
    notify,
    touched_all,
)
from imaging_source.instances import INCOMING_DIR, InvalidInstance, StoredInstance
from imaging_source.service import ImagingSource

DICOM_MEDIA_TYPE = "application/dicom"
DICOM_JSON_MEDIA_TYPE = "application/dicom+json"
# PS3.18 10.5.3 failure reasons (PS3.4 B.2.3 status codes)
FAILURE_CANNOT_UNDERSTAND = CANNOT_UNDERSTAND
FAILURE_NOT_OF_STUDY = IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS  # 0xA900: does not match
FAILURE_OUT_OF_RESOURCES = 0xA700
FAILURE_PROCESSING = 0x0110


STOW_OUTCOME = {
    200: ExchangeStatus.SUCCESS,
    202: ExchangeStatus.PARTIAL,
    409: ExchangeStatus.FAILURE,
}


class StowRequestError(ValueError):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = value.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, sep, param = item.strip().partition("=")
        if sep:
            params[name.strip().lower()] = param.strip().strip('"')
    return kind.strip().lower(), params


@dataclass
class _Part:
    path: Path
    content_type: str = ""
    size: int = 0
    too_large: bool = False


@dataclass
class _Spool:
    """python-multipart callbacks writing each part to its own file."""

    directory: Path
    limit: int
    parts: list[_Part] = field(default_factory=list)
    _file: Any = None
    _field: bytes = b""
    _value: bytes = b""
    _headers: dict[str, str] = field(default_factory=dict)

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.begin,
            "on_header_field": lambda data, start, end: self._grow("_field", data[start:end]),
            "on_header_value": lambda data, start, end: self._grow("_value", data[start:end]),
            "on_header_end": self.header_end,
            "on_part_data": self.data,
            "on_part_end": self.end,
        }

    def _grow(self, name: str, chunk: bytes) -> None:
        setattr(self, name, getattr(self, name) + chunk)

    def begin(self) -> None:
        part = _Part(self.directory / f"stow-{uuid.uuid4().hex}")
        self.parts.append(part)
        self._headers = {}
        self._file = open(part.path, "wb")  # noqa: SIM115 - closed in end()/close()

    def header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode(
            "latin-1"
        ).strip()
        self._field = self._value = b""
        self.parts[-1].content_type = self._headers.get("content-type", "")

    def data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        part.size += end - start
        if part.size > self.limit:
            part.too_large = True
            return
        self._file.write(data[start:end])

    def end(self) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        self.close()
        for part in self.parts:
            with contextlib.suppress(FileNotFoundError):
                part.path.unlink()


def _check_request(request: Request) -> str:
    kind, params = _media_type(request.headers.get("content-type", ""))
    if kind != "multipart/related":
        raise StowRequestError(415, "a STOW-RS request is multipart/related (PS3.18 10.5.1.1)")
    if params.get("type", DICOM_MEDIA_TYPE).lower() != DICOM_MEDIA_TYPE:
        raise StowRequestError(415, f"only {DICOM_MEDIA_TYPE} parts are accepted")
    if not params.get("boundary"):
        raise StowRequestError(400, "multipart/related without a boundary")
    return params["boundary"]


def _failed(sop_class: str, sop_instance: str, reason: int) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class or None
    item.ReferencedSOPInstanceUID = sop_instance or None
    item.FailureReason = reason
    return item


def _identify(path: Path) -> tuple[str, str, str]:
    header = dcmread(path, stop_before_pixels=True, force=True)  # checked again by add()
    return (
        str(header.get("SOPClassUID", "")),
        str(header.get("SOPInstanceUID", "")),
        str(header.get("StudyInstanceUID", "")),
    )


def _store_part(
    source: ImagingSource, part: _Part, study: str | None, base_url: str | None
) -> tuple[StoredInstance | None, Dataset]:
    """Store one spooled part; (the instance stored or None, its Referenced or Failed SOP Sequence item)."""
    if part.too_large:
        return None, _failed("", "", FAILURE_OUT_OF_RESOURCES)
    if _media_type(part.content_type)[0] not in ("", DICOM_MEDIA_TYPE):
        return None, _failed("", "", FAILURE_CANNOT_UNDERSTAND)
    try:
        sop_class, sop_instance, study_uid = _identify(part.path)
    except Exception:
        return None, _failed("", "", FAILURE_CANNOT_UNDERSTAND)
    # PS3.18 10.5.1.2: with a target study, instances of other studies are not stored
    if study is not None and study_uid != study:
        return None, _failed(sop_class, sop_instance, FAILURE_NOT_OF_STUDY)
    try:
        instance = source.add(part.path)
    except InvalidInstance:
        return None, _failed(sop_class, sop_instance, FAILURE_CANNOT_UNDERSTAND)
    except OSError:
        return None, _failed(sop_class, sop_instance, FAILURE_OUT_OF_RESOURCES)
    item = Dataset()
    item.ReferencedSOPClassUID = instance.sop_class_uid
    item.ReferencedSOPInstanceUID = instance.sop_instance_uid
    if base_url:
        item.RetrieveURL = (
            f"{base_url}/studies/{instance.study_instance_uid}"
            f"/series/{instance.series_instance_uid}/instances/{instance.sop_instance_uid}"
        )
    return instance, item


def _response(status: int, body: Dataset) -> Response:
    return JSONResponse(body.to_json_dict(), status_code=status, media_type=DICOM_JSON_MEDIA_TYPE)


def stow_endpoint(
    source: ImagingSource, on_event: OnExchange | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint for ``POST /studies`` and ``POST /studies/{study}``.

    ``on_event``: called with a :class:`DicomExchange` for each request that reached
    the store (auditing observes through it)."""
    config = source.config
    base_url = config.wado_rs_base_url.rstrip("/") if config.wado_rs_base_url else None

    async def store_instances(request: Request) -> Response:
        study = request.path_params.get("study")
        try:
            boundary = _check_request(request)
        except StowRequestError as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")
        incoming = Path(config.storage_dir) / INCOMING_DIR
        incoming.mkdir(parents=True, exist_ok=True)
        spool = _Spool(incoming, config.max_instance_bytes)
        try:
            parser = MultipartParser(boundary, spool.callbacks())
            try:
                async for chunk in request.stream():
                    parser.write(chunk)
                parser.finalize()
            except MultipartParseError as exc:
                return Response(f"unreadable multipart body: {exc}", 400, media_type="text/plain")
            finally:
                spool.close()
            outcomes = [
                await anyio.to_thread.run_sync(_store_part, source, part, study, base_url)
                for part in spool.parts
            ]
        finally:
            spool.discard()
        if not outcomes:
            return Response("no instance in the request", 400, media_type="text/plain")
        body = Dataset()
        if base_url and study:
            body.RetrieveURL = f"{base_url}/studies/{study}"
        stored = [item for ok, item in outcomes if ok]
        failed = [item for ok, item in outcomes if not ok]
        if stored:
            body.ReferencedSOPSequence = stored
        if failed:
            body.FailedSOPSequence = failed
        # PS3.18 10.5.3: 200 all stored, 202 some stored, 409 none stored
        status = 200 if not failed else 202 if stored else 409
        notify(
            on_event,
            lambda: DicomExchange(
                operation=DicomOperation.STOW_RS,
                peer=request.client.host if request.client is not None else "unknown",
                peer_address=request.client.host if request.client is not None else None,
                local=str(request.url),
                outcome=STOW_OUTCOME[status],
                status=status,
                description=f"{len(failed)} of {len(outcomes)} instances not stored"
                if failed
                else None,
                instances=touched_all(i for i, _ in outcomes if i is not None),
            ),
        )
        return _response(status, body)

    return store_instances


__all__ = ["DICOM_MEDIA_TYPE", "DICOM_JSON_MEDIA_TYPE", "stow_endpoint"]
