"""imaging_source/kos_metadata.py: the manifest's DocumentEntry and SubmissionSet
(RAD TF-3 Table 4.68.4.1.2.3-1), checked value by value and by xdsi's ITI-41 validator."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from kos_fixtures import (
    ACCESSION_ISSUER,
    CT_IMAGE,
    MR_IMAGE,
    PATIENT_ISSUER,
    descriptions,
    study_images,
)
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ebxml.errors import ErrorCode
from ebxml.model import Code
from ebxml.validate import validate_submission
from ebxml.vocabulary import AssociationType, Transaction
from imaging_source.kos import PatientStudy, describe
from imaging_source.kos_metadata import (
    BODY_PART_CODES,
    MODALITY_CODES,
    ManifestMetadataConfig,
    ReportDocument,
    event_codes,
    manifest_submission,
    service_start_time,
    source_patient_info,
    xpn,
)

AFFINITY_PATIENT = "IHERED-1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"
CONFIG = ManifestMetadataConfig(source_id="1.3.6.1.4.1.21367.13.71.1")
NOW = datetime(2024, 1, 6, 8, 30, tzinfo=UTC)
MANIFEST_UID = "1.3.6.1.4.1.21367.13.71.1.77"


def package(images: list[Dataset] | None = None, config: ManifestMetadataConfig = CONFIG, **kw):  # noqa: ANN201
    instances = descriptions(images or study_images())
    return manifest_submission(
        MANIFEST_UID,
        instances,
        AFFINITY_PATIENT,
        config,
        submission_set_uid="1.2.3.99",
        now=NOW,
        **kw,
    )


def test_metadata_passes_the_rad68_validator() -> None:
    findings = validate_submission(
        package().submission, Transaction.RAD68, default_code=ErrorCode.XDSRepositoryMetadataError
    )
    assert [f for f in findings if f.is_error] == []


def test_metadata_without_optional_dicom_attributes_passes_the_validator() -> None:
    config = replace(CONFIG, patient_id_issuer_oid=PATIENT_ISSUER)
    findings = validate_submission(
        package(study_images(full=False), config).submission,
        Transaction.RAD68,
        default_code=ErrorCode.XDSRepositoryMetadataError,
    )
    assert [f for f in findings if f.is_error] == []


def test_unique_id_is_the_kos_sop_instance_uid() -> None:
    assert package().manifest.unique_id == MANIFEST_UID


def test_mime_type_is_application_dicom() -> None:
    assert package().manifest.mime_type == "application/dicom"


def test_format_code_is_the_kos_sop_class() -> None:
    code = package().manifest.format_code
    assert (code.code, code.scheme) == ("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1")


def test_patient_id_is_the_affinity_domain_id() -> None:
    result = package()
    assert result.manifest.patient_id == AFFINITY_PATIENT
    assert result.submission.submission_set.patient_id == AFFINITY_PATIENT


def test_event_codes_have_one_cid29_code_per_modality_and_the_body_part() -> None:
    images = study_images(series=(("CT", CT_IMAGE, 2), ("MR", MR_IMAGE, 1), ("CT", CT_IMAGE, 1)))
    codes = [(c.code, c.scheme) for c in event_codes(descriptions(images))]
    assert codes == [("CT", "DCM"), ("MR", "DCM"), ("51185008", "SCT")]


def test_event_codes_prefer_anatomic_region_sequence_over_body_part() -> None:
    ds = study_images(series=(("CT", CT_IMAGE, 1),))[0]
    region = Dataset()
    region.CodeValue, region.CodingSchemeDesignator, region.CodeMeaning = "39607008", "SCT", "Lung"
    ds.AnatomicRegionSequence = DicomSequence([region])
    assert event_codes([describe(ds)]) == (MODALITY_CODES["CT"], Code("39607008", "SCT", "Lung"))


def test_modalities_outside_cid29_add_no_event_code() -> None:
    images = study_images(series=(("SR", "1.2.840.10008.5.1.4.1.1.88.11", 1),), full=False)
    assert event_codes(descriptions(images)) == ()


@pytest.mark.parametrize(
    ("modality", "meaning"),
    [
        ("CT", "Computed Tomography"),
        ("MR", "Magnetic Resonance"),
        ("US", "Ultrasound"),
        ("XA", "X-Ray Angiography"),
    ],
)
def test_modality_table(modality: str, meaning: str) -> None:
    assert MODALITY_CODES[modality] == Code(modality, "DCM", meaning)


@pytest.mark.parametrize(
    ("term", "code"),
    [("CHEST", "51185008"), ("HEAD", "69536005"), ("ABDOMEN", "818981001"), ("KNEE", "72696002")],
)
def test_body_part_table(term: str, code: str) -> None:
    assert BODY_PART_CODES[term] == Code(code, "SCT", BODY_PART_CODES[term].display)


def test_reference_ids_hold_study_uid_and_accession_with_issuer() -> None:
    images = study_images()
    study_uid = images[0].StudyInstanceUID
    assert package(images).manifest.reference_ids == (
        f"{study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        f"ACC-1^^^&{ACCESSION_ISSUER}&ISO^urn:ihe:iti:xds:2013:accession",
    )


def test_accession_issuer_comes_from_configuration_when_images_have_none() -> None:
    images = study_images()
    for ds in images:
        del ds.IssuerOfAccessionNumberSequence
    config = replace(CONFIG, accession_issuer_oid="1.2.3.4.100")
    refs = package(images, config).manifest.reference_ids
    assert refs[1] == "ACC-1^^^&1.2.3.4.100&ISO^urn:ihe:iti:xds:2013:accession"


def test_accession_without_any_issuer_is_left_out() -> None:
    images = study_images()
    for ds in images:
        del ds.IssuerOfAccessionNumberSequence
    assert len(package(images).manifest.reference_ids) == 1


def test_accession_number_is_hl7_escaped() -> None:
    images = study_images()
    for ds in images:
        ds.AccessionNumber = "A^1&2"
    assert package(images).manifest.reference_ids[1].startswith("A\\S\\1\\T\\2^^^&")


def test_service_start_time_uses_timezone_offset() -> None:
    study = PatientStudy(study_date="20240105", study_time="233015.25", timezone_offset="+0100")
    assert service_start_time(study, "UTC") == "20240105223015"


def test_service_start_time_crosses_the_date_line() -> None:
    study = PatientStudy(study_date="20240105", study_time="2330", timezone_offset="-0500")
    assert service_start_time(study, "UTC") == "202401060430"


def test_service_start_time_uses_the_configured_zone_without_offset() -> None:
    study = PatientStudy(study_date="20240705", study_time="120000")
    assert service_start_time(study, "Europe/Berlin") == "20240705100000"


def test_service_start_time_is_the_date_without_a_time() -> None:
    assert service_start_time(PatientStudy(study_date="20240705"), "UTC") == "20240705"


def test_service_start_time_absent_without_a_study_date() -> None:
    assert service_start_time(PatientStudy(), "UTC") is None


def test_source_patient_id_from_issuer_of_patient_id_qualifiers() -> None:
    assert package().manifest.source_patient_id == f"LOC-77^^^HOSP&{PATIENT_ISSUER}&ISO"


def test_source_patient_id_authority_from_configuration() -> None:
    config = replace(CONFIG, patient_id_issuer_oid="1.2.3.4.200")
    images = study_images(full=False)
    assert package(images, config).manifest.source_patient_id == "LOC-77^^^&1.2.3.4.200&ISO"


def test_source_patient_info_has_pid3_pid5_pid7_pid8() -> None:
    info = package().manifest.source_patient_info
    assert info == (
        f"PID-3|LOC-77^^^HOSP&{PATIENT_ISSUER}&ISO",
        "PID-5|Doe^John",
        "PID-7|19700412",
        "PID-8|M",
    )


def test_latin1_patient_name_becomes_utf8_xpn() -> None:
    images = study_images(charset="ISO_IR 100", name="Müller^Jürgen")
    assert "PID-5|Müller^Jürgen" in package(images).manifest.source_patient_info


def test_pn_components_are_reordered_into_xpn() -> None:
    # PS3.5 PN: family^given^middle^prefix^suffix; XPN: family^given^further^suffix^prefix
    assert xpn("Doe^John^Q^Dr^Jr") == "Doe^John^Q^Jr^Dr"


def test_pn_ideographic_groups_are_dropped() -> None:
    assert xpn("Yamada^Tarou=山田^太郎") == "Yamada^Tarou"


def test_xpn_escapes_hl7_delimiters() -> None:
    assert xpn("O|Brien&Co^Ann~Marie") == "O\\F\\Brien\\T\\Co^Ann\\R\\Marie"


def test_source_patient_info_without_patient_id_authority_has_no_pid3() -> None:
    assert source_patient_info(PatientStudy(patient_name="Doe^J"), None) == ("PID-5|Doe^J",)


def test_affinity_domain_codes_come_from_configuration() -> None:
    config = replace(CONFIG, class_code=Code("X", "1.2.3", "x"), type_code=Code("Y", "1.2.3", "y"))
    entry = package(config=config).manifest
    assert (entry.class_code.code, entry.type_code.code) == ("X", "Y")


def test_submission_set_has_the_manifest_as_original_member() -> None:
    result = package()
    (member,) = result.submission.associations
    assert member.association_type == AssociationType.HAS_MEMBER
    assert (member.source, member.target) == (
        result.submission.submission_set.entry_uuid,
        result.manifest.entry_uuid,
    )
    assert member.submission_set_status == "Original"


def test_replacing_a_previous_manifest_adds_rplc() -> None:
    previous = "urn:uuid:9d0e6e7c-54b9-4a32-b5a6-b9a3b1d0e5f1"
    result = package(replaces=previous)
    rplc = [a for a in result.submission.associations if a.association_type == AssociationType.RPLC]
    assert [(a.source, a.target) for a in rplc] == [(result.manifest.entry_uuid, previous)]


def test_report_goes_into_the_same_submission_set() -> None:
    report = ReportDocument(
        "1.2.3.4.5.88",
        "application/pdf",
        Code("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3", "PDF"),
    )
    result = package(report=report)
    assert result.report is not None
    assert [e.unique_id for e in result.submission.document_entries] == [
        MANIFEST_UID,
        "1.2.3.4.5.88",
    ]
    assert result.report.reference_ids == result.manifest.reference_ids
    assert len(result.submission.associations) == 2
    findings = validate_submission(
        result.submission, Transaction.RAD68, default_code=ErrorCode.XDSRepositoryMetadataError
    )
    assert [f for f in findings if f.is_error] == []


def test_a_manifest_needs_an_instance() -> None:
    with pytest.raises(ValueError):
        manifest_submission("1.2", [], AFFINITY_PATIENT, CONFIG, submission_set_uid="1.3")
