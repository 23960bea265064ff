"""The XDS-I.b imaging manifest: a DICOM Key Object Selection Document (RAD TF-3
4.68.4.1.2) built from descriptions of the instances it references.

:func:`describe` reads what a manifest needs from one pydicom dataset (its Specific
Character Set already decoded by pydicom into ``str``); :func:`build_manifest` makes the
KOS of one study (PS3.3 A.35.4 Key Object Selection Document IOD, PS3.16 TID 2010 Key
Object Selection) and :func:`manifest_bytes` writes it as a Part 10 file.  Text is
written as UTF-8 (Specific Character Set ``ISO_IR 192``) when any value is not ASCII,
whatever character set the images used.

Nothing here does I/O apart from encoding into memory.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from io import BytesIO

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian, generate_uid

from ebxml.model import Code

# PS3.4 B.5 / PS3.6 Annex A
KOS_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"
KOS_MODALITY = "KO"  # PS3.3 C.17.6.1.1 Key Object Document Series: Modality is KO

# RAD TF-3 4.68.4.1.2.2: the Key Object Selection Document Title of a manifest
MANIFEST_TITLE = Code("113030", "DCM", "Manifest")
# PS3.16 TID 2010 row 4: Key Object Description
KEY_OBJECT_DESCRIPTION = Code("113012", "DCM", "Key Object Description")
# PS3.3 C.18.8.1.1 Content Template Sequence: TID 2010 from DCMR
TEMPLATE_MAPPING_RESOURCE = "DCMR"
KOS_TEMPLATE = "2010"

UTF8_CHARACTER_SET = "ISO_IR 192"  # PS3.3 C.12.1.1.2

# PS3.16 TID 2010 rows 6-8: the value type of a referenced instance's content item.
# Waveforms (PS3.4 B.5: 1.2.840.10008.5.1.4.1.1.9.x) are WAVEFORM; image storage SOP
# classes are IMAGE; everything else (SR, KOS, PDF, segmentations, ...) is COMPOSITE.
WAVEFORM_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
IMAGE_SOP_CLASSES_WITHOUT_IMAGE_IN_NAME = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage (an image IOD)
        "1.2.840.10008.5.1.4.1.1.77.1.6",  # VL Whole Slide Microscopy Image Storage
    }
)


def content_value_type(sop_class_uid: str) -> str:
    """IMAGE, WAVEFORM or COMPOSITE for a referenced SOP class (PS3.16 TID 2010)."""
    if sop_class_uid.startswith(WAVEFORM_SOP_CLASS_PREFIX):
        return "WAVEFORM"
    if sop_class_uid in IMAGE_SOP_CLASSES_WITHOUT_IMAGE_IN_NAME:
        return "IMAGE"
    name = UID(sop_class_uid).name
    return "IMAGE" if "Image Storage" in name else "COMPOSITE"


@dataclass(frozen=True, slots=True)
class PatientStudy:
    """Patient and study attributes copied from the images into the manifest
    (PS3.3 C.7.1.1 Patient, C.7.2.1 General Study).  Text is decoded (``str``); the PN
    values keep DICOM's ``^``-separated form."""

    patient_name: str = ""
    patient_id: str = ""
    issuer_of_patient_id: str = ""
    issuer_of_patient_id_oid: str = ""  # Issuer of Patient ID Qualifiers: Universal Entity ID
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_date: str = ""
    study_time: str = ""
    timezone_offset: str = ""  # Timezone Offset From UTC, "+HHMM" / "-HHMM"
    accession_number: str = ""
    accession_issuer_oid: str = ""  # Issuer of Accession Number Sequence: Universal Entity ID
    accession_issuer_namespace: str = ""  # ... Local Namespace Entity ID
    referring_physician_name: str = ""
    study_id: str = ""
    study_description: str = ""


@dataclass(frozen=True, slots=True)
class InstanceDescription:
    """One stored instance as a manifest references it."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    modality: str = ""
    body_part_examined: str = ""
    anatomic_regions: tuple[Code, ...] = ()  # Anatomic Region Sequence (CID 4)
    patient_study: PatientStudy = PatientStudy()


@dataclass(frozen=True, slots=True)
class ManifestConfig:
    """What the Imaging Document Source puts into each manifest.

    ``retrieve_location_uid`` is the Imaging Document Source's own repositoryUniqueId
    (RAD TF-3 4.68.4.1.2.3), not the Document Repository's; ``retrieve_url`` is the
    WADO-RS base (``.../dicomweb``), written per series when given."""

    retrieve_ae_title: str
    retrieve_location_uid: str
    uid_root: str | None = None  # new Series/SOP Instance UIDs: "<root>.<n>", else 2.25
    retrieve_url: str | None = None
    manufacturer: str = "xdsi"
    series_number: int = 1
    instance_number: int = 1
    description: str | None = None  # TID 2010 Key Object Description (TEXT), optional


# --- reading the images -----------------------------------------------------------------


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _first_item(ds: Dataset, keyword: str) -> Dataset | None:
    sequence = ds.get(keyword)
    return sequence[0] if sequence else None


def _codes(ds: Dataset, keyword: str) -> tuple[Code, ...]:
    return tuple(
        Code(
            _text(item, "CodeValue"),
            _text(item, "CodingSchemeDesignator"),
            _text(item, "CodeMeaning"),
        )
        for item in ds.get(keyword) or ()
        if _text(item, "CodeValue")
    )


def describe(ds: Dataset) -> InstanceDescription:
    """What a manifest takes from one image (its character set already decoded)."""
    issuer = _first_item(ds, "IssuerOfAccessionNumberSequence") or Dataset()
    qualifiers = _first_item(ds, "IssuerOfPatientIDQualifiersSequence") or Dataset()
    study = PatientStudy(
        patient_name=_text(ds, "PatientName"),
        patient_id=_text(ds, "PatientID"),
        issuer_of_patient_id=_text(ds, "IssuerOfPatientID"),
        issuer_of_patient_id_oid=(
            _text(qualifiers, "UniversalEntityID")
            if _text(qualifiers, "UniversalEntityIDType") == "ISO"
            else ""
        ),
        patient_birth_date=_text(ds, "PatientBirthDate"),
        patient_sex=_text(ds, "PatientSex"),
        study_date=_text(ds, "StudyDate"),
        study_time=_text(ds, "StudyTime"),
        timezone_offset=_text(ds, "TimezoneOffsetFromUTC"),
        accession_number=_text(ds, "AccessionNumber"),
        accession_issuer_oid=(
            _text(issuer, "UniversalEntityID")
            if _text(issuer, "UniversalEntityIDType") == "ISO"
            else ""
        ),
        accession_issuer_namespace=_text(issuer, "LocalNamespaceEntityID"),
        referring_physician_name=_text(ds, "ReferringPhysicianName"),
        study_id=_text(ds, "StudyID"),
        study_description=_text(ds, "StudyDescription"),
    )
    return InstanceDescription(
        study_instance_uid=_text(ds, "StudyInstanceUID"),
        series_instance_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        sop_class_uid=_text(ds, "SOPClassUID"),
        modality=_text(ds, "Modality"),
        body_part_examined=_text(ds, "BodyPartExamined"),
        anatomic_regions=_codes(ds, "AnatomicRegionSequence"),
        patient_study=study,
    )


# --- building the manifest -----------------------------------------------------------------


def _code_item(code: Code) -> Dataset:
    item = Dataset()
    item.CodeValue = code.code
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.display
    return item


def _sop_reference(instance: InstanceDescription) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = instance.sop_class_uid
    item.ReferencedSOPInstanceUID = instance.sop_instance_uid
    return item


def _series_groups(
    instances: Sequence[InstanceDescription],
) -> dict[str, list[InstanceDescription]]:
    groups: dict[str, list[InstanceDescription]] = {}
    for instance in instances:
        groups.setdefault(instance.series_instance_uid, []).append(instance)
    return groups


def _evidence(instances: Sequence[InstanceDescription], config: ManifestConfig) -> Dataset:
    """PS3.3 C.17.6.2 Current Requested Procedure Evidence Sequence, one study; RAD TF-3
    4.68.4.1.2.3: each Referenced Series item names where to retrieve it (Retrieve AE
    Title, Retrieve Location UID = the Imaging Document Source, optionally a URL)."""
    study_uid = instances[0].study_instance_uid
    study = Dataset()
    study.StudyInstanceUID = study_uid
    series_items = []
    for series_uid, members in _series_groups(instances).items():
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        series.RetrieveAETitle = config.retrieve_ae_title
        series.RetrieveLocationUID = config.retrieve_location_uid
        if config.retrieve_url:
            base = config.retrieve_url.rstrip("/")
            series.RetrieveURL = f"{base}/studies/{study_uid}/series/{series_uid}"
        series.ReferencedSOPSequence = DicomSequence([_sop_reference(i) for i in members])
        series_items.append(series)
    study.ReferencedSeriesSequence = DicomSequence(series_items)
    return study


def _content_item(instance: InstanceDescription) -> Dataset:
    """PS3.16 TID 2010 rows 6-8: CONTAINS an IMAGE / COMPOSITE / WAVEFORM reference."""
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = content_value_type(instance.sop_class_uid)
    item.ReferencedSOPSequence = DicomSequence([_sop_reference(instance)])
    return item


def _description_item(text: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = DicomSequence([_code_item(KEY_OBJECT_DESCRIPTION)])
    item.TextValue = text
    return item


def _copy_patient_study(ds: Dataset, study: PatientStudy, study_uid: str) -> None:
    """PS3.3 C.7.1.1 Patient and C.7.2.1 General Study, copied from the images (type 2
    attributes present, empty when the images had no value)."""
    ds.PatientName = study.patient_name
    ds.PatientID = study.patient_id
    if study.issuer_of_patient_id:
        ds.IssuerOfPatientID = study.issuer_of_patient_id
    ds.PatientBirthDate = study.patient_birth_date
    ds.PatientSex = study.patient_sex
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = study.study_date
    ds.StudyTime = study.study_time
    ds.ReferringPhysicianName = study.referring_physician_name
    ds.StudyID = study.study_id
    ds.AccessionNumber = study.accession_number
    if study.accession_issuer_oid or study.accession_issuer_namespace:
        ds.IssuerOfAccessionNumberSequence = DicomSequence([_issuer_item(study)])
    if study.study_description:
        ds.StudyDescription = study.study_description
    if study.timezone_offset:
        ds.TimezoneOffsetFromUTC = study.timezone_offset


def _issuer_item(study: PatientStudy) -> Dataset:
    item = Dataset()
    if study.accession_issuer_namespace:
        item.LocalNamespaceEntityID = study.accession_issuer_namespace
    if study.accession_issuer_oid:
        item.UniversalEntityID = study.accession_issuer_oid
        item.UniversalEntityIDType = "ISO"
    return item


def _needs_utf8(ds: Dataset) -> bool:
    text_vrs = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}
    for element in ds.iterall():
        if element.VR in text_vrs and element.value and not str(element.value).isascii():
            return True
    return False


def new_uid(root: str | None) -> str:
    """A new UID under ``root`` (PS3.5 9), or a 2.25 UUID-derived one without a root."""
    return generate_uid(prefix=f"{root.rstrip('.')}." if root else None)


def build_manifest(
    instances: Sequence[InstanceDescription],
    config: ManifestConfig,
    *,
    now: datetime | None = None,
    uid: Callable[[str | None], str] = new_uid,
) -> Dataset:
    """The KOS manifest of one study (RAD TF-3 4.68.4.1.2) referencing every instance."""
    if not instances:
        raise ValueError("a manifest references at least one instance")
    studies = {i.study_instance_uid for i in instances}
    if len(studies) != 1:
        raise ValueError(f"a manifest covers one study, got {len(studies)}")
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    first = instances[0]
    ds = Dataset()
    # PS3.3 C.12.1 SOP Common
    ds.SOPClassUID = KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = uid(config.uid_root)
    ds.InstanceCreationDate = moment.strftime("%Y%m%d")
    ds.InstanceCreationTime = moment.strftime("%H%M%S")
    _copy_patient_study(ds, first.patient_study, first.study_instance_uid)
    # PS3.3 C.17.6.1 Key Object Document Series
    ds.Modality = KOS_MODALITY
    ds.SeriesInstanceUID = uid(config.uid_root)
    ds.SeriesNumber = config.series_number
    ds.ReferencedPerformedProcedureStepSequence = DicomSequence()
    # PS3.3 C.7.5.1 General Equipment
    ds.Manufacturer = config.manufacturer
    # PS3.3 C.17.6.2 Key Object Document
    ds.InstanceNumber = config.instance_number
    ds.ContentDate = moment.strftime("%Y%m%d")
    ds.ContentTime = moment.strftime("%H%M%S")
    ds.CurrentRequestedProcedureEvidenceSequence = DicomSequence([_evidence(instances, config)])
    # PS3.3 C.17.3 SR Document Content, root of TID 2010
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = DicomSequence([_code_item(MANIFEST_TITLE)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = TEMPLATE_MAPPING_RESOURCE
    template.TemplateIdentifier = KOS_TEMPLATE
    ds.ContentTemplateSequence = DicomSequence([template])
    items = [_description_item(config.description)] if config.description else []
    items += [_content_item(i) for i in instances]
    ds.ContentSequence = DicomSequence(items)
    if _needs_utf8(ds):
        ds.SpecificCharacterSet = UTF8_CHARACTER_SET
    return ds


def manifest_bytes(ds: Dataset) -> bytes:
    """The manifest as a DICOM Part 10 file, Explicit VR Little Endian (PS3.10 7.1)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    buffer = BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


__all__ = [
    "KEY_OBJECT_DESCRIPTION",
    "KOS_MODALITY",
    "KOS_SOP_CLASS_UID",
    "KOS_TEMPLATE",
    "MANIFEST_TITLE",
    "TEMPLATE_MAPPING_RESOURCE",
    "UTF8_CHARACTER_SET",
    "InstanceDescription",
    "ManifestConfig",
    "PatientStudy",
    "build_manifest",
    "content_value_type",
    "describe",
    "manifest_bytes",
    "new_uid",
]
