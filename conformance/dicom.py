"""Small DICOM studies the ``stow`` step sends, and the STOW-RS request that carries them.

Each instance is a Secondary Capture Image (PS3.3 A.8.1) of 8x8 16-bit pixels, written
as a PS3.10 file (preamble, "DICM", File Meta Information, Explicit VR Little Endian),
so a source that keeps what it receives returns the same bytes by RAD-69.  The patient
is the case's, in the affinity domain: Patient ID plus Issuer of Patient ID Qualifiers
with the domain's OID (PS3.3 C.7.1.1, C.7.1.1.1.1; RAD TF-3 4.68.4.1.2.3).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage

from conformance.templates import PostedInstance, Scope

DICOM_MEDIA_TYPE = "application/dicom"  # PS3.18 8.7.3.5
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.10.543.1"  # PS3.7 D.3.3.2: this writer
ROWS = COLUMNS = 8


def instance_names(series: Sequence[int]) -> list[tuple[int, str]]:
    """(series number, instance name) of a study with ``series[i]`` instances in series
    i + 1; instances are named ``instance1`` .. ``instanceN`` across the study."""
    names: list[tuple[int, str]] = []
    for number, count in enumerate(series, 1):
        names += [(number, f"instance{len(names) + n}") for n in range(1, count + 1)]
    return names


def make_instance(
    scope: Scope, patient: str, series_number: int, name: str, instance_number: int
) -> Dataset:
    study, series, sop = scope.uid("study"), scope.uid(f"series{series_number}"), scope.uid(name)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = scope.patient_number(patient)
    qualifier = Dataset()
    qualifier.UniversalEntityID = scope.affinity_domain()
    qualifier.UniversalEntityIDType = "ISO"
    ds.IssuerOfPatientIDQualifiersSequence = DicomSequence([qualifier])
    ds.PatientName = f"Conformance^{patient}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500"
    ds.AccessionNumber = scope.patient_number(f"accession-{patient}")[:16]
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.Rows, ds.Columns = ROWS, COLUMNS
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((instance_number * 7 + i) % 256 for i in range(ROWS * COLUMNS * 2))
    return ds


def part10(ds: Dataset) -> bytes:
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def make_study(scope: Scope, series: Sequence[int], patient: str = "main") -> list[str]:
    """Make the study, record each instance in ``scope.posted``; the instance names."""
    names = instance_names(series)
    for position, (series_number, name) in enumerate(names, 1):
        ds = make_instance(scope, patient, series_number, name, position)
        scope.posted[name] = PostedInstance(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, part10(ds)
        )
    return [name for _, name in names]


def stow_request(instances: Sequence[PostedInstance]) -> tuple[str, bytes]:
    """(Content-Type, body) of a STOW-RS Store Instances request (PS3.18 10.5.1.1):
    ``multipart/related; type="application/dicom"``, one part per instance."""
    boundary = f"xdsi-conformance-{uuid.uuid4().hex}"
    body = bytearray()
    for instance in instances:
        body += f"--{boundary}\r\nContent-Type: {DICOM_MEDIA_TYPE}\r\n\r\n".encode()
        body += instance.content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    content_type = f'multipart/related; type="{DICOM_MEDIA_TYPE}"; boundary={boundary}'
    return content_type, bytes(body)


__all__ = [
    "DICOM_MEDIA_TYPE",
    "instance_names",
    "make_instance",
    "make_study",
    "part10",
    "stow_request",
]
