"""imaging_source/kos.py: the KOS manifest of RAD TF-3 4.68.4.1.2, checked by dciodvfy
(-profile IHEXDSIManifest) and attribute by attribute."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from kos_fixtures import (
    BASIC_TEXT_SR,
    CONFIG,
    CT_IMAGE,
    ECG_WAVEFORM,
    IDS_REPOSITORY,
    MR_IMAGE,
    dciodvfy_errors,
    descriptions,
    study_images,
)
from pydicom import dcmread

from imaging_source.kos import (
    build_manifest,
    content_value_type,
    describe,
    manifest_bytes,
)

NOW = datetime(2024, 1, 6, 8, 30, 0, tzinfo=UTC)

STUDIES = {
    "several series and modalities": dict(
        series=(("CT", CT_IMAGE, 3), ("MR", MR_IMAGE, 2), ("CT", CT_IMAGE, 1))
    ),
    "Latin-1 patient name": dict(charset="ISO_IR 100", name="Müller^Jürgen"),
    "UTF-8 patient name": dict(charset="ISO_IR 192", name="山田^太郎"),
    "no optional attributes": dict(full=False),
    "waveform and structured report": dict(
        series=(("ECG", ECG_WAVEFORM, 1), ("SR", BASIC_TEXT_SR, 1), ("CT", CT_IMAGE, 1))
    ),
}


def manifest_of(**options: object):  # noqa: ANN201
    images = study_images(**options)  # type: ignore[arg-type]
    return images, build_manifest(descriptions(images), CONFIG, now=NOW)


@pytest.mark.parametrize("case", STUDIES, ids=list(STUDIES))
def test_manifest_passes_dciodvfy_ihe_xdsi_manifest_profile(case: str, tmp_path: Path) -> None:
    _, manifest = manifest_of(**STUDIES[case])
    assert dciodvfy_errors(manifest_bytes(manifest), tmp_path) == []


def test_manifest_with_description_passes_dciodvfy(tmp_path: Path) -> None:
    from dataclasses import replace

    images = study_images()
    config = replace(CONFIG, description="Images for referral")
    manifest = build_manifest(descriptions(images), config, now=NOW)
    assert dciodvfy_errors(manifest_bytes(manifest), tmp_path) == []


def test_manifest_is_a_key_object_selection_document_of_modality_ko() -> None:
    _, manifest = manifest_of()
    assert manifest.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert manifest.Modality == "KO"


def test_manifest_gets_new_series_and_sop_uids_under_the_configured_root() -> None:
    images, manifest = manifest_of()
    assert manifest.SOPInstanceUID.startswith(CONFIG.uid_root + ".")
    assert manifest.SeriesInstanceUID.startswith(CONFIG.uid_root + ".")
    assert manifest.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in images}
    assert manifest.SOPInstanceUID != manifest.SeriesInstanceUID


def test_manifest_without_uid_root_uses_2_25_uids() -> None:
    from dataclasses import replace

    manifest = build_manifest(descriptions(study_images()), replace(CONFIG, uid_root=None), now=NOW)
    assert manifest.SOPInstanceUID.startswith("2.25.")


def test_document_title_is_113030_manifest() -> None:
    _, manifest = manifest_of()
    title = manifest.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == (
        "113030",
        "DCM",
        "Manifest",
    )


def test_content_follows_tid_2010_with_separate_continuity() -> None:
    _, manifest = manifest_of()
    assert manifest.ValueType == "CONTAINER"
    assert manifest.ContinuityOfContent == "SEPARATE"
    template = manifest.ContentTemplateSequence[0]
    assert (template.MappingResource, template.TemplateIdentifier) == ("DCMR", "2010")


def test_one_content_item_per_instance() -> None:
    images, manifest = manifest_of()
    referenced = [
        item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID for item in manifest.ContentSequence
    ]
    assert referenced == [ds.SOPInstanceUID for ds in images]
    assert {item.RelationshipType for item in manifest.ContentSequence} == {"CONTAINS"}


def test_evidence_references_every_instance_grouped_by_series() -> None:
    images, manifest = manifest_of(series=(("CT", CT_IMAGE, 2), ("MR", MR_IMAGE, 3)))
    (study,) = manifest.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == images[0].StudyInstanceUID
    by_series = {
        s.SeriesInstanceUID: [r.ReferencedSOPInstanceUID for r in s.ReferencedSOPSequence]
        for s in study.ReferencedSeriesSequence
    }
    expected: dict[str, list[str]] = {}
    for ds in images:
        expected.setdefault(ds.SeriesInstanceUID, []).append(ds.SOPInstanceUID)
    assert by_series == expected


def test_each_series_names_retrieve_ae_location_and_url() -> None:
    images, manifest = manifest_of()
    study_uid = images[0].StudyInstanceUID
    for series in manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence:
        assert series.RetrieveAETitle == "XDSI"
        assert series.RetrieveLocationUID == IDS_REPOSITORY
        assert series.RetrieveURL == (
            f"http://xdsi.test/dicomweb/studies/{study_uid}/series/{series.SeriesInstanceUID}"
        )


def test_retrieve_url_is_left_out_when_not_configured() -> None:
    from dataclasses import replace

    manifest = build_manifest(
        descriptions(study_images()), replace(CONFIG, retrieve_url=None), now=NOW
    )
    series = manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert "RetrieveURL" not in series


def test_patient_and_study_attributes_are_copied_from_the_images() -> None:
    images, manifest = manifest_of()
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
        "StudyDescription",
        "TimezoneOffsetFromUTC",
    ):
        assert str(manifest[keyword].value) == str(images[0][keyword].value), keyword
    issuer = manifest.IssuerOfAccessionNumberSequence[0]
    assert (
        issuer.UniversalEntityID == images[0].IssuerOfAccessionNumberSequence[0].UniversalEntityID
    )


def test_missing_type_2_attributes_are_present_and_empty() -> None:
    _, manifest = manifest_of(full=False)
    for keyword in ("PatientBirthDate", "PatientSex", "StudyDate", "AccessionNumber", "StudyID"):
        assert keyword in manifest and not manifest[keyword].value, keyword


def test_latin1_name_is_written_as_utf8() -> None:
    _, manifest = manifest_of(charset="ISO_IR 100", name="Müller^Jürgen")
    data = manifest_bytes(manifest)
    reread = dcmread(BytesIO(data))
    assert reread.SpecificCharacterSet == "ISO_IR 192"
    assert str(reread.PatientName) == "Müller^Jürgen"
    assert "Müller".encode() in data


def test_ascii_manifest_has_no_specific_character_set() -> None:
    _, manifest = manifest_of()
    assert "SpecificCharacterSet" not in manifest


def test_a_manifest_covers_one_study() -> None:
    instances = descriptions(study_images() + study_images())
    with pytest.raises(ValueError, match="one study"):
        build_manifest(instances, CONFIG)


def test_a_manifest_needs_an_instance() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_manifest([], CONFIG)


def test_part10_file_has_kos_meta_information() -> None:
    _, manifest = manifest_of()
    reread = dcmread(BytesIO(manifest_bytes(manifest)))
    assert reread.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert reread.file_meta.MediaStorageSOPInstanceUID == manifest.SOPInstanceUID
    assert reread.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"


@pytest.mark.parametrize(
    ("sop_class", "value_type"),
    [
        (CT_IMAGE, "IMAGE"),
        (MR_IMAGE, "IMAGE"),
        ("1.2.840.10008.5.1.4.1.1.66.4", "IMAGE"),  # Segmentation
        ("1.2.840.10008.5.1.4.1.1.77.1.6", "IMAGE"),  # VL Whole Slide Microscopy
        (ECG_WAVEFORM, "WAVEFORM"),
        ("1.2.840.10008.5.1.4.1.1.9.3.1", "WAVEFORM"),  # Arterial Pulse Waveform
        (BASIC_TEXT_SR, "COMPOSITE"),
        ("1.2.840.10008.5.1.4.1.1.104.1", "COMPOSITE"),  # Encapsulated PDF
        ("1.2.840.10008.5.1.4.1.1.11.1", "COMPOSITE"),  # Grayscale Softcopy Presentation State
    ],
)
def test_content_value_type_by_sop_class(sop_class: str, value_type: str) -> None:
    assert content_value_type(sop_class) == value_type


def test_describe_reads_issuers_and_anatomic_region() -> None:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    ds = study_images()[0]
    region = Dataset()
    region.CodeValue = "39607008"
    region.CodingSchemeDesignator = "SCT"
    region.CodeMeaning = "Lung"
    ds.AnatomicRegionSequence = DicomSequence([region])
    described = describe(ds)
    assert described.anatomic_regions[0].code == "39607008"
    assert described.body_part_examined == "CHEST"
    assert described.patient_study.accession_issuer_oid == "1.3.6.1.4.1.21367.13.20.3000"
    assert described.patient_study.issuer_of_patient_id_oid == "1.3.6.1.4.1.21367.13.20.2000"


def test_dciodvfy_profile_reports_a_missing_retrieve_location(tmp_path: Path) -> None:
    """The profile check itself: without Retrieve Location UID a manifest fails."""
    _, manifest = manifest_of()
    for series in manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence:
        del series.RetrieveLocationUID
    errors = dciodvfy_errors(manifest_bytes(manifest), tmp_path)
    assert any("RetrieveLocationUID" in line for line in errors)
