"""imaging_source/kos_check.py: one test per rule, each breaking one thing."""

from __future__ import annotations

from datetime import UTC, datetime

from kos_fixtures import CONFIG, CT_IMAGE, IDS_REPOSITORY, MR_IMAGE, descriptions, study_images
from pydicom.dataset import Dataset

from imaging_source.kos import build_manifest
from imaging_source.kos_check import RULES, check_manifest

NOW = datetime(2024, 1, 6, 8, 30, tzinfo=UTC)


def manifest() -> Dataset:
    images = study_images(series=(("CT", CT_IMAGE, 2), ("MR", MR_IMAGE, 2)))
    return build_manifest(descriptions(images), CONFIG, now=NOW)


def rules(ds: Dataset, **options: str) -> set[str]:
    return {f.rule for f in check_manifest(ds, **options)}


def test_a_built_manifest_has_no_findings() -> None:
    assert check_manifest(manifest(), retrieve_location_uid=IDS_REPOSITORY) == []


def test_every_rule_names_its_source() -> None:
    assert all(source for _, source, _ in RULES)


def test_kos_sop_class_must_be_key_object_selection() -> None:
    ds = manifest()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    assert rules(ds) == {"kos-sop-class"}


def test_kos_modality_must_be_ko() -> None:
    ds = manifest()
    ds.Modality = "SR"
    assert rules(ds) == {"kos-sop-class"}


def test_kos_title_must_be_manifest() -> None:
    ds = manifest()
    ds.ConceptNameCodeSequence[0].CodeValue = "113000"  # Of Interest
    assert rules(ds) == {"kos-title"}


def test_kos_template_must_be_tid_2010() -> None:
    ds = manifest()
    ds.ContentTemplateSequence[0].TemplateIdentifier = "2000"
    assert rules(ds) == {"kos-template"}


def test_kos_continuity_must_be_separate() -> None:
    ds = manifest()
    ds.ContinuityOfContent = "CONTINUOUS"
    assert rules(ds) == {"kos-template"}


def test_kos_content_item_missing_for_an_evidence_instance() -> None:
    ds = manifest()
    del ds.ContentSequence[0]
    assert rules(ds) == {"kos-content-matches-evidence"}


def test_kos_evidence_missing_for_a_content_item() -> None:
    ds = manifest()
    series = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    del series.ReferencedSOPSequence[0]
    assert rules(ds) == {"kos-content-matches-evidence"}


def test_kos_content_value_type_must_match_sop_class() -> None:
    ds = manifest()
    ds.ContentSequence[0].ValueType = "COMPOSITE"  # a CT image
    assert rules(ds) == {"kos-content-matches-evidence"}


def test_kos_evidence_must_be_the_manifest_study() -> None:
    ds = manifest()
    ds.StudyInstanceUID = "1.2.3.999"
    assert rules(ds) == {"kos-one-study"}


def test_kos_series_without_retrieve_location() -> None:
    ds = manifest()
    del (
        ds.CurrentRequestedProcedureEvidenceSequence[0]
        .ReferencedSeriesSequence[1]
        .RetrieveLocationUID
    )
    assert rules(ds) == {"kos-retrieve-location"}


def test_kos_retrieve_location_must_be_the_imaging_document_source() -> None:
    assert rules(manifest(), retrieve_location_uid="1.2.3.4.5") == {"kos-retrieve-location"}


def test_kos_series_without_retrieve_ae_title() -> None:
    ds = manifest()
    del ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].RetrieveAETitle
    assert rules(ds) == {"kos-retrieve-location"}
