"""An instance in a transfer syntax its receiver accepts, transcoded with pydicom.

RAD-69 (RAD TF-3 4.69.4.1.3) and WADO-RS (PS3.18 8.7.3.5) both name the transfer
syntaxes a receiver accepts; the instance goes as stored when that is one of them,
otherwise it is converted to the first accepted one xdsi can produce:

- an uncompressed (native) instance is re-encoded without touching its pixels;
- an encapsulated (compressed) instance is decompressed by a pydicom pixel-data plugin,
  when one is installed for its transfer syntax;
- RLE Lossless is the one compressed syntax pydicom can encode without extra plugins.

Converted files are kept in a folder of their own, named by the source's SHA-1 and the
target syntax, so a second request for the same conversion reads the file again; the
folder is bounded in size, the least recently used files going first.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.pixels import get_decoder
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
)

from imaging_source.instances import InstanceFile

ANY_TRANSFER_SYNTAX = "*"  # PS3.18 8.7.3.5.2: "transfer-syntax=*", as stored
DEFAULT_CACHE_BYTES = 2 * 1024**3


class TranscodeError(Exception):
    """The instance cannot be given in any of the accepted transfer syntaxes."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """The file to send for an instance and the transfer syntax it is in."""

    path: Path
    size: int
    transfer_syntax_uid: str
    transcoded: bool = False


def _decompressed(ds: Dataset) -> Dataset:
    """PS3.5 A.4: encapsulated pixel data decoded to native (Explicit VR Little Endian)."""
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if not syntax.is_encapsulated:
        return ds
    if "PixelData" not in ds:  # no pixels: only the encoding of the data set changes
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        return ds
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise TranscodeError(f"no decoder for {syntax.name}") from exc
    if not decoder.is_available:
        raise TranscodeError(f"no pixel-data plugin installed to decode {syntax.name}")
    try:
        # PS3.5 8.2 / PS3.4: a change of transfer syntax keeps the SOP Instance UID
        ds.decompress(generate_instance_uid=False)
    except Exception as exc:  # the plugins raise many kinds on a bad codestream
        raise TranscodeError(f"cannot decode {syntax.name}: {exc}") from exc
    return ds


def _to_native(target: str) -> Callable[[Dataset], Dataset]:
    def convert(ds: Dataset) -> Dataset:
        ds = _decompressed(ds)
        ds.file_meta.TransferSyntaxUID = target
        return ds

    return convert


def _to_rle(ds: Dataset) -> Dataset:
    ds = _decompressed(ds)
    if "PixelData" not in ds:
        raise TranscodeError("RLE Lossless needs pixel data to encode")
    try:
        ds.compress(RLELossless, generate_instance_uid=False)
    except Exception as exc:
        raise TranscodeError(f"cannot encode RLE Lossless: {exc}") from exc
    return ds


# Target transfer syntax -> conversion of a data set read with its pixel data.  A target
# not listed here is produced only when the instance is stored in it.
CONVERSIONS: dict[str, Callable[[Dataset], Dataset]] = {
    ExplicitVRLittleEndian: _to_native(ExplicitVRLittleEndian),
    ImplicitVRLittleEndian: _to_native(ImplicitVRLittleEndian),
    RLELossless: _to_rle,
}


def convert(source: Path, target_syntax: str, destination: Path) -> None:
    """Write ``source`` converted to ``target_syntax`` at ``destination`` (TranscodeError
    when that cannot be done)."""
    convert_one = CONVERSIONS.get(target_syntax)
    if convert_one is None:
        raise TranscodeError(f"xdsi cannot produce transfer syntax {target_syntax}")
    ds = convert_one(dcmread(source))
    try:
        dcmwrite(destination, ds, enforce_file_format=True)
    except Exception as exc:
        raise TranscodeError(f"cannot encode in {target_syntax}: {exc}") from exc


class Transcoder:
    """Deliveries of stored instances; conversions cached under ``directory``."""

    def __init__(self, directory: Path | str, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def deliver(self, instance: InstanceFile, accepted: Sequence[str]) -> Delivery:
        """The instance in one of ``accepted`` (any syntax when empty or "*" is among
        them): as stored if possible, else the first convertible; TranscodeError when
        none can be produced."""
        stored = instance.transfer_syntax_uid
        if not accepted or ANY_TRANSFER_SYNTAX in accepted or stored in accepted:
            return Delivery(instance.path, instance.size, stored)
        reasons: list[str] = []
        for target in accepted:
            try:
                return self._converted(instance, target)
            except TranscodeError as exc:
                reasons.append(str(exc))
        raise TranscodeError(
            f"instance {instance.sop_instance_uid} is stored as {stored}; "
            f"none of the requested transfer syntaxes can be produced ({'; '.join(reasons)})"
        )

    def _converted(self, instance: InstanceFile, target: str) -> Delivery:
        if target not in CONVERSIONS:
            raise TranscodeError(f"xdsi cannot produce transfer syntax {target}")
        path = self.directory / f"{instance.sha1}-{target}.dcm"
        if path.exists():
            with contextlib.suppress(FileNotFoundError):
                os.utime(path)  # most recently used
                return Delivery(path, path.stat().st_size, target, transcoded=True)
        self.directory.mkdir(parents=True, exist_ok=True)
        temp = self.directory / f".{uuid.uuid4().hex}.tmp"
        try:
            convert(instance.path, target, temp)
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        size = path.stat().st_size
        self.prune(keep=path)
        return Delivery(path, size, target, transcoded=True)

    def prune(self, keep: Path | None = None) -> int:
        """Remove the least recently used conversions beyond ``max_bytes``; returns how
        many files went."""
        files = []
        for entry in os.scandir(self.directory):
            if entry.is_file() and not entry.name.startswith("."):
                stat = entry.stat()
                files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in files)
        removed = 0
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
            removed += 1
        return removed


__all__ = [
    "ANY_TRANSFER_SYNTAX",
    "CONVERSIONS",
    "DEFAULT_CACHE_BYTES",
    "Delivery",
    "TranscodeError",
    "Transcoder",
    "convert",
]
