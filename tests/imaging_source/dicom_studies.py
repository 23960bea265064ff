"""Synthetic DICOM studies built with pydicom: several series and modalities, small real
pixel data, one RLE Lossless compressed instance, a non-ASCII patient name."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

PATIENT_NAME = "Müller^Jürgen"


def make_instance(
    study_uid: str,
    series_uid: str,
    *,
    modality: str = "CT",
    sop_class: str = CTImageStorage,
    series_number: int = 1,
    instance_number: int = 1,
    patient_id: str = "PAT-1",
    patient_name: str = PATIENT_NAME,
    study_date: str = "20240115",
    accession: str = "ACC-1",
    body_part: str = "CHEST",
    compressed: bool = False,
) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.AccessionNumber = accession
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance_number
    ds.BodyPartExamined = body_part
    ds.Rows = 8
    ds.Columns = 8
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = bytes((instance_number * 7 + i) % 256 for i in range(8 * 8 * 2))
    if compressed:
        ds.compress(RLELossless)
    return ds


def make_study(
    *, patient_id: str = "PAT-1", study_date: str = "20240115", accession: str = "ACC-1"
) -> list[Dataset]:
    """CT series of 3 (the last RLE compressed), MR series of 2, one secondary capture."""
    study = generate_uid()
    ct, mr, sc = generate_uid(), generate_uid(), generate_uid()
    common = {"patient_id": patient_id, "study_date": study_date, "accession": accession}
    return [
        *(
            make_instance(study, ct, instance_number=n, compressed=(n == 3), **common)
            for n in (1, 2, 3)
        ),
        *(
            make_instance(
                study,
                mr,
                modality="MR",
                sop_class=MRImageStorage,
                series_number=2,
                instance_number=n,
                body_part="HEAD",
                **common,
            )
            for n in (1, 2)
        ),
        make_instance(
            study,
            sc,
            modality="OT",
            sop_class=SecondaryCaptureImageStorage,
            series_number=3,
            **common,
        ),
    ]


def write_files(datasets: Iterable[Dataset], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = directory / f"{ds.SOPInstanceUID}.dcm"
        dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths
