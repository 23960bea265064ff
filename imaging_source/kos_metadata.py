"""The XDS metadata of an imaging manifest: its DocumentEntry (RAD TF-3 4.68.4.1.2.3,
Table 4.68.4.1.2.3-1) and the SubmissionSet that carries it, optionally with a
diagnostic report (PDF or CDA) in the same submission set.

Patient and study facts come from the images (``imaging_source.kos.PatientStudy``);
the affinity-domain codes (class, type, confidentiality, facility, practice setting,
content type) from :class:`ManifestMetadataConfig`.  Nothing here does I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pydicom.valuerep import PersonName

from ebxml import hl7
from ebxml.model import (
    Association,
    Author,
    Code,
    DocumentEntry,
    Submission,
    SubmissionSet,
)
from ebxml.vocabulary import (
    KOS_FORMAT_CODE,
    KOS_FORMAT_CODING_SCHEME,
    REFERENCE_ID_ACCESSION,
    REFERENCE_ID_STUDY_INSTANCE_UID,
    SUBMISSION_SET_STATUS_ORIGINAL,
    UUID_PREFIX,
    AssociationType,
)
from imaging_source.kos import InstanceDescription, PatientStudy

DICOM_MIME_TYPE = "application/dicom"  # RAD TF-3 4.68.4.1.2.3: mimeType of a manifest
KOS_FORMAT = Code(KOS_FORMAT_CODE, KOS_FORMAT_CODING_SCHEME, "Key Object Selection Document")

# PS3.16 CID 29 Acquisition Modality: DICOM Modality -> (code, DCM, meaning).  Modalities
# outside CID 29 (KO, PR, SR, SEG, ...) add no event code.
DCM = "DCM"
MODALITY_CODES: dict[str, Code] = {
    modality: Code(modality, DCM, meaning)
    for modality, meaning in (
        ("AR", "Autorefraction"),
        ("BDUS", "Ultrasound Bone Densitometry"),
        ("BMD", "Bone Mineral Densitometry"),
        ("CR", "Computed Radiography"),
        ("CT", "Computed Tomography"),
        ("DOC", "Document"),
        ("DX", "Digital Radiography"),
        ("ECG", "Electrocardiography"),
        ("EPS", "Cardiac Electrophysiology"),
        ("ES", "Endoscopy"),
        ("GM", "General Microscopy"),
        ("HD", "Hemodynamic Waveform"),
        ("IO", "Intra-oral Radiography"),
        ("IVOCT", "Intravascular Optical Coherence Tomography"),
        ("IVUS", "Intravascular Ultrasound"),
        ("KER", "Keratometry"),
        ("LEN", "Lensometry"),
        ("MG", "Mammography"),
        ("MR", "Magnetic Resonance"),
        ("NM", "Nuclear Medicine"),
        ("OAM", "Ophthalmic Axial Measurements"),
        ("OCT", "Optical Coherence Tomography"),
        ("OP", "Ophthalmic Photography"),
        ("OPM", "Ophthalmic Mapping"),
        ("OPT", "Ophthalmic Tomography"),
        ("OPV", "Ophthalmic Visual Field"),
        ("OSS", "Optical Surface Scanner"),
        ("PT", "Positron emission tomography"),
        ("PX", "Panoramic X-Ray"),
        ("RF", "Radiofluoroscopy"),
        ("RG", "Radiographic imaging"),
        ("SM", "Slide Microscopy"),
        ("SRF", "Subjective Refraction"),
        ("US", "Ultrasound"),
        ("VA", "Visual Acuity"),
        ("XA", "X-Ray Angiography"),
        ("XC", "External-camera Photography"),
    )
}

# PS3.16 Annex L (Body Part Examined defined terms -> CID 4 Anatomic Region, SNOMED CT)
SCT = "SCT"
BODY_PART_CODES: dict[str, Code] = {
    term: Code(code, SCT, meaning)
    for term, code, meaning in (
        ("ABDOMEN", "818981001", "Abdomen"),
        ("ANKLE", "344001", "Ankle"),
        ("BRAIN", "12738006", "Brain"),
        ("BREAST", "76752008", "Breast"),
        ("CHEST", "51185008", "Thorax"),
        ("CSPINE", "122494005", "Cervical spine"),
        ("ELBOW", "127949000", "Elbow"),
        ("FOOT", "56459004", "Foot"),
        ("HAND", "85562004", "Hand"),
        ("HEAD", "69536005", "Head"),
        ("HEART", "80891009", "Heart"),
        ("HIP", "29836001", "Hip"),
        ("KIDNEY", "64033007", "Kidney"),
        ("KNEE", "72696002", "Knee"),
        ("LIVER", "10200004", "Liver"),
        ("LSPINE", "122496007", "Lumbar spine"),
        ("NECK", "45048000", "Neck"),
        ("PELVIS", "816092008", "Pelvis"),
        ("SHOULDER", "16982005", "Shoulder"),
        ("SKULL", "89546000", "Skull"),
        ("SPINE", "421060004", "Spine"),
        ("TSPINE", "122495006", "Thoracic spine"),
        ("WHOLEBODY", "38266002", "Entire body"),
        ("WRIST", "74670003", "Wrist"),
    )
}


@dataclass(frozen=True, slots=True)
class ManifestMetadataConfig:
    """The affinity domain's codes and the source's identity (RAD TF-3 Table
    4.68.4.1.2.3-1 leaves these to the domain); defaults suit a test domain."""

    source_id: str  # XDSSubmissionSet.sourceId: the Imaging Document Source's OID
    class_code: Code = Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
    type_code: Code = Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")
    confidentiality_codes: tuple[Code, ...] = (Code("N", "2.16.840.1.113883.5.25", "Normal"),)
    healthcare_facility_type_code: Code = Code(
        "RADDX", "2.16.840.1.113883.5.11", "Radiology diagnostics or therapeutics unit"
    )
    practice_setting_code: Code = Code("R-3027B", "SRT", "Radiology")
    content_type_code: Code = Code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")
    language_code: str = "en-US"
    title: str = "Imaging manifest"
    authors: tuple[Author, ...] = ()
    # CX.4 of sourcePatientId when the images carry no Issuer of Patient ID Qualifiers
    patient_id_issuer_oid: str | None = None
    # CX.4 of the accession reference when the images carry no issuer (ITI TF-3 4.2.3.2.28)
    accession_issuer_oid: str | None = None
    # the zone of Study Date/Time when the images carry no Timezone Offset From UTC
    default_timezone: str = "UTC"


@dataclass(frozen=True, slots=True)
class ReportDocument:
    """A diagnostic report (PDF or CDA) submitted beside the manifest."""

    unique_id: str
    mime_type: str  # application/pdf, text/xml
    format_code: Code
    type_code: Code | None = None  # defaults to the manifest's
    title: str = "Imaging report"


@dataclass(frozen=True, slots=True)
class ManifestSubmission:
    """The submission set of one RAD-68; ``manifest`` and ``report`` are its entries."""

    submission: Submission
    manifest: DocumentEntry
    report: DocumentEntry | None = None


def new_entry_uuid() -> str:
    return f"{UUID_PREFIX}{uuid.uuid4()}"


# --- values derived from the images ----------------------------------------------------------


def event_codes(instances: Sequence[InstanceDescription]) -> tuple[Code, ...]:
    """RAD TF-3 Table 4.68.4.1.2.3-1 eventCodeList: one CID 29 code per modality, then
    the CID 4 anatomic regions (Anatomic Region Sequence, else Body Part Examined)."""
    codes: dict[tuple[str, str], Code] = {}
    for instance in instances:
        modality = MODALITY_CODES.get(instance.modality)
        if modality is not None:
            codes.setdefault((modality.code, modality.scheme), modality)
    for instance in instances:
        regions = instance.anatomic_regions or tuple(
            filter(None, (BODY_PART_CODES.get(instance.body_part_examined.upper()),))
        )
        for region in regions:
            codes.setdefault((region.code, region.scheme), region)
    return tuple(codes.values())


def study_reference_id(study_uid: str) -> str:
    """ITI TF-3 4.2.3.2.28: ``STUDYUID^^^^urn:ihe:iti:xds:2016:studyInstanceUID``."""
    return hl7.CX(study_uid, identifier_type_code=REFERENCE_ID_STUDY_INSTANCE_UID).encode()


def reference_ids(
    study_uid: str, study: PatientStudy, accession_issuer_oid: str | None
) -> tuple[str, ...]:
    """ITI TF-3 4.2.3.2.28 referenceIdList: the Study Instance UID and, when its issuer
    is known (CX.4 is required for an accession), the accession number."""
    ids = [study_reference_id(study_uid)]
    issuer = study.accession_issuer_oid or accession_issuer_oid
    if study.accession_number and issuer:
        ids.append(
            hl7.CX(
                study.accession_number,
                assigning_authority=hl7.HD("", issuer, "ISO"),
                identifier_type_code=REFERENCE_ID_ACCESSION,
            ).encode()
        )
    return tuple(ids)


def _offset(text: str) -> timezone | None:
    """PS3.3 C.12.1.1.8 Timezone Offset From UTC: ``&ZZXX`` (sign, hours, minutes)."""
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isdigit():
        return None
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    return timezone(timedelta(minutes=minutes if text[0] == "+" else -minutes))


def service_start_time(study: PatientStudy, default_timezone: str) -> str | None:
    """ITI TF-3 4.2.3.2.19 serviceStartTime in UTC from Study Date and Time (DA, TM);
    a date without a time stays a date (its UTC day is unknown)."""
    date = study.study_date
    if len(date) != 8 or not date.isdigit():
        return None
    time = study.study_time.split(".")[0]
    if not time or not time.isdigit() or len(time) % 2:
        return date
    precision = len(time)
    time = time.ljust(6, "0")
    zone = _offset(study.timezone_offset) or ZoneInfo(default_timezone)
    local = datetime.strptime(date + time, "%Y%m%d%H%M%S").replace(tzinfo=zone)
    return local.astimezone(UTC).strftime("%Y%m%d%H%M%S")[: 8 + precision]


def source_patient_id(study: PatientStudy, issuer_oid: str | None) -> str | None:
    """ITI TF-3 4.2.3.2.23: the DICOM Patient ID with its assigning authority."""
    authority = study.issuer_of_patient_id_oid or issuer_oid
    if not study.patient_id or not authority:
        return None
    namespace = study.issuer_of_patient_id if study.issuer_of_patient_id_oid else ""
    return hl7.CX(
        study.patient_id, assigning_authority=hl7.HD(namespace, authority, "ISO")
    ).encode()


def xpn(patient_name: str) -> str:
    """DICOM PN (family^given^middle^prefix^suffix, PS3.5 6.2.1.1) as HL7 v2 XPN
    (family^given^further^suffix^prefix), each component HL7-escaped; the alphabetic
    group only."""
    name = PersonName(patient_name)
    parts = [
        name.family_name,
        name.given_name,
        name.middle_name,
        name.name_suffix,
        name.name_prefix,
    ]
    return hl7.join([hl7.escape(p) for p in parts])


def source_patient_info(study: PatientStudy, patient_cx: str | None) -> tuple[str, ...]:
    """ITI TF-3 4.2.3.2.24 sourcePatientInfo: PID-3, PID-5, PID-7, PID-8 as known."""
    values = [f"PID-3|{patient_cx}"] if patient_cx else []
    if study.patient_name and xpn(study.patient_name):
        values.append(f"PID-5|{xpn(study.patient_name)}")
    if study.patient_birth_date:
        values.append(f"PID-7|{study.patient_birth_date}")
    if study.patient_sex:
        values.append(f"PID-8|{study.patient_sex}")
    return tuple(values)


def _dtm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


# --- the entries ---------------------------------------------------------------------------


def manifest_entry(
    manifest_uid: str,
    instances: Sequence[InstanceDescription],
    patient_id: str,
    config: ManifestMetadataConfig,
    *,
    now: datetime,
) -> DocumentEntry:
    """The manifest's DocumentEntry (RAD TF-3 Table 4.68.4.1.2.3-1): uniqueId is the KOS
    SOP Instance UID, patientId the affinity-domain id."""
    study = instances[0].patient_study
    patient_cx = source_patient_id(study, config.patient_id_issuer_oid)
    return DocumentEntry(
        entry_uuid=new_entry_uuid(),
        unique_id=manifest_uid,
        patient_id=patient_id,
        mime_type=DICOM_MIME_TYPE,
        title=config.title,
        comments=study.study_description or None,
        class_code=config.class_code,
        type_code=config.type_code,
        format_code=KOS_FORMAT,
        healthcare_facility_type_code=config.healthcare_facility_type_code,
        practice_setting_code=config.practice_setting_code,
        confidentiality_codes=config.confidentiality_codes,
        event_codes=event_codes(instances),
        authors=config.authors,
        creation_time=_dtm(now),
        service_start_time=service_start_time(study, config.default_timezone),
        language_code=config.language_code,
        source_patient_id=patient_cx,
        source_patient_info=source_patient_info(study, patient_cx),
        reference_ids=reference_ids(
            instances[0].study_instance_uid, study, config.accession_issuer_oid
        ),
    )


def report_entry(report: ReportDocument, manifest: DocumentEntry) -> DocumentEntry:
    """A report beside the manifest: the same patient, study and codes, its own format."""
    return DocumentEntry(
        entry_uuid=new_entry_uuid(),
        unique_id=report.unique_id,
        patient_id=manifest.patient_id,
        mime_type=report.mime_type,
        title=report.title,
        class_code=manifest.class_code,
        type_code=report.type_code or manifest.type_code,
        format_code=report.format_code,
        healthcare_facility_type_code=manifest.healthcare_facility_type_code,
        practice_setting_code=manifest.practice_setting_code,
        confidentiality_codes=manifest.confidentiality_codes,
        event_codes=manifest.event_codes,
        authors=manifest.authors,
        creation_time=manifest.creation_time,
        service_start_time=manifest.service_start_time,
        language_code=manifest.language_code,
        source_patient_id=manifest.source_patient_id,
        source_patient_info=manifest.source_patient_info,
        reference_ids=manifest.reference_ids,
    )


def manifest_submission(
    manifest_uid: str,
    instances: Sequence[InstanceDescription],
    patient_id: str,
    config: ManifestMetadataConfig,
    *,
    submission_set_uid: str,
    report: ReportDocument | None = None,
    replaces: str | None = None,
    now: datetime | None = None,
) -> ManifestSubmission:
    """The RAD-68 submission: SubmissionSet, the manifest entry, optionally a report;
    ``replaces`` (the entryUUID of the study's previous manifest) adds an RPLC
    association (RAD TF-3 4.68.4.1.3, RAD68-006; ITI TF-3 4.2.2.2.1)."""
    if not instances:
        raise ValueError("a manifest references at least one instance")
    moment = now or datetime.now(UTC)
    manifest = manifest_entry(manifest_uid, instances, patient_id, config, now=moment)
    report_doc = report_entry(report, manifest) if report else None
    entries = (manifest, report_doc) if report_doc else (manifest,)
    submission_set = SubmissionSet(
        entry_uuid=new_entry_uuid(),
        unique_id=submission_set_uid,
        source_id=config.source_id,
        patient_id=patient_id,
        submission_time=_dtm(moment),
        content_type_code=config.content_type_code,
        authors=config.authors,
        title=config.title,
    )
    associations = [
        Association(
            new_entry_uuid(),
            AssociationType.HAS_MEMBER,
            submission_set.entry_uuid,
            entry.entry_uuid,
            SUBMISSION_SET_STATUS_ORIGINAL,
        )
        for entry in entries
    ]
    if replaces:
        associations.append(
            Association(new_entry_uuid(), AssociationType.RPLC, manifest.entry_uuid, replaces)
        )
    submission = Submission(
        submission_set=submission_set,
        document_entries=entries,
        associations=tuple(associations),
    )
    return ManifestSubmission(submission, manifest, report_doc)


__all__ = [
    "BODY_PART_CODES",
    "DICOM_MIME_TYPE",
    "KOS_FORMAT",
    "MODALITY_CODES",
    "ManifestMetadataConfig",
    "ManifestSubmission",
    "ReportDocument",
    "event_codes",
    "manifest_entry",
    "manifest_submission",
    "reference_ids",
    "report_entry",
    "service_start_time",
    "source_patient_id",
    "source_patient_info",
    "study_reference_id",
    "xpn",
]
