"""Synthetic studies for the manifest tests: pydicom datasets as a modality would send
them (several series and modalities, character sets, optional attributes left out)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid

from imaging_source.kos import InstanceDescription, ManifestConfig, describe

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ECG_WAVEFORM = "1.2.840.10008.5.1.4.1.1.9.1.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

IDS_REPOSITORY = "1.3.6.1.4.1.21367.13.71.200"
ACCESSION_ISSUER = "1.3.6.1.4.1.21367.13.20.3000"
PATIENT_ISSUER = "1.3.6.1.4.1.21367.13.20.2000"

CONFIG = ManifestConfig(
    retrieve_ae_title="XDSI",
    retrieve_location_uid=IDS_REPOSITORY,
    uid_root="1.3.6.1.4.1.21367.13.71.1",
    retrieve_url="http://xdsi.test/dicomweb",
)


def image(
    study_uid: str,
    series_uid: str,
    sop_class: str = CT_IMAGE,
    modality: str = "CT",
    *,
    charset: str | None = None,
    name: str = "Doe^John",
    full: bool = True,
) -> Dataset:
    """One instance's header; ``full=False`` leaves every optional attribute out."""
    ds = Dataset()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.PatientName = name
    ds.PatientID = "LOC-77"
    if full:
        ds.IssuerOfPatientID = "HOSP"
        qualifiers = Dataset()
        qualifiers.UniversalEntityID = PATIENT_ISSUER
        qualifiers.UniversalEntityIDType = "ISO"
        ds.IssuerOfPatientIDQualifiersSequence = DicomSequence([qualifiers])
        ds.PatientBirthDate = "19700412"
        ds.PatientSex = "M"
        ds.StudyDate = "20240105"
        ds.StudyTime = "233015.25"
        ds.TimezoneOffsetFromUTC = "+0100"
        ds.AccessionNumber = "ACC-1"
        issuer = Dataset()
        issuer.UniversalEntityID = ACCESSION_ISSUER
        issuer.UniversalEntityIDType = "ISO"
        ds.IssuerOfAccessionNumberSequence = DicomSequence([issuer])
        ds.ReferringPhysicianName = "Welby^Marcus"
        ds.StudyID = "S1"
        ds.StudyDescription = "CT chest"
        ds.BodyPartExamined = "CHEST"
    return ds


def study_images(
    series: Sequence[tuple[str, str, int]] = (("CT", CT_IMAGE, 2), ("MR", MR_IMAGE, 1)),
    **options: object,
) -> list[Dataset]:
    """A study with one series per (modality, SOP class, instance count)."""
    study_uid = generate_uid()
    images = []
    for modality, sop_class, count in series:
        series_uid = generate_uid()
        images += [
            image(study_uid, series_uid, sop_class, modality, **options)  # type: ignore[arg-type]
            for _ in range(count)
        ]
    return images


def descriptions(images: Sequence[Dataset]) -> list[InstanceDescription]:
    return [describe(ds) for ds in images]


def dciodvfy_errors(data: bytes, tmp_path: Path) -> list[str]:
    """The Error lines of ``dciodvfy -profile IHEXDSIManifest`` for a Part 10 file."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        if os.environ.get("XDSI_REQUIRE_INTEROP") == "1":
            pytest.fail("dciodvfy is not installed")
        pytest.skip("dciodvfy is not installed")
    path = tmp_path / "manifest.dcm"
    path.write_bytes(data)
    run = subprocess.run(
        [tool, "-profile", "IHEXDSIManifest", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    output = run.stdout + run.stderr
    return [line for line in output.splitlines() if line.startswith("Error")]
