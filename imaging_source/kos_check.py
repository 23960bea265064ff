"""xdsi's own checks of an imaging manifest, for what ``dciodvfy -profile
IHEXDSIManifest`` does not verify: the document title, the template, that the content
items and the evidence reference the same instances with the right value types, and
that every referenced series says where to retrieve it (RAD TF-3 4.68.4.1.2).

Each check is a named rule; :func:`check_manifest` returns every finding, an empty
list for a good manifest.  Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydicom.dataset import Dataset

from imaging_source.kos import (
    KOS_MODALITY,
    KOS_SOP_CLASS_UID,
    KOS_TEMPLATE,
    MANIFEST_TITLE,
    TEMPLATE_MAPPING_RESOURCE,
    content_value_type,
)

REFERENCE_VALUE_TYPES = frozenset({"IMAGE", "COMPOSITE", "WAVEFORM"})


@dataclass(frozen=True, slots=True)
class ManifestFinding:
    rule: str  # the rule id, e.g. "kos-title"
    source: str  # where the rule comes from
    message: str


@dataclass(frozen=True, slots=True)
class _Context:
    ds: Dataset
    retrieve_location_uid: str | None


Check = Callable[[_Context], Iterator[str]]


def _sop_class(ctx: _Context) -> Iterator[str]:
    if ctx.ds.get("SOPClassUID") != KOS_SOP_CLASS_UID:
        yield f"SOP Class UID is {ctx.ds.get('SOPClassUID')}, not Key Object Selection"
    if ctx.ds.get("Modality") != KOS_MODALITY:
        yield f"Modality is {ctx.ds.get('Modality')!r}, not KO"


def _title(ctx: _Context) -> Iterator[str]:
    names = ctx.ds.get("ConceptNameCodeSequence") or ()
    if len(names) != 1:
        yield "the document title (Concept Name Code Sequence) must have one item"
        return
    code = names[0]
    if (code.get("CodeValue"), code.get("CodingSchemeDesignator")) != (
        MANIFEST_TITLE.code,
        MANIFEST_TITLE.scheme,
    ):
        yield (
            f"the document title is ({code.get('CodeValue')}, "
            f"{code.get('CodingSchemeDesignator')}), not (113030, DCM, Manifest)"
        )


def _template(ctx: _Context) -> Iterator[str]:
    if ctx.ds.get("ValueType") != "CONTAINER":
        yield "the root content item is not a CONTAINER"
    if ctx.ds.get("ContinuityOfContent") != "SEPARATE":
        yield "Continuity Of Content is not SEPARATE"
    templates = ctx.ds.get("ContentTemplateSequence") or ()
    found = [(t.get("MappingResource"), str(t.get("TemplateIdentifier", ""))) for t in templates]
    if found != [(TEMPLATE_MAPPING_RESOURCE, KOS_TEMPLATE)]:
        yield f"the content template is {found}, not DCMR TID 2010"


def _references(items: object) -> Iterator[tuple[str, str]]:
    for ref in items or ():  # type: ignore[attr-defined]
        yield (
            str(ref.get("ReferencedSOPClassUID", "")),
            str(ref.get("ReferencedSOPInstanceUID", "")),
        )


def _evidence_instances(ds: Dataset) -> set[tuple[str, str]]:
    return {
        reference
        for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or ()
        for series in study.get("ReferencedSeriesSequence") or ()
        for reference in _references(series.get("ReferencedSOPSequence"))
    }


def _content_matches_evidence(ctx: _Context) -> Iterator[str]:
    content: set[tuple[str, str]] = set()
    for item in ctx.ds.get("ContentSequence") or ():
        value_type = item.get("ValueType")
        if value_type not in REFERENCE_VALUE_TYPES:
            continue
        for sop_class, sop_instance in _references(item.get("ReferencedSOPSequence")):
            content.add((sop_class, sop_instance))
            expected = content_value_type(sop_class)
            if value_type != expected:
                yield f"{sop_instance} is referenced as {value_type}, its SOP class needs {expected}"
    evidence = _evidence_instances(ctx.ds)
    if not evidence:
        yield "the Current Requested Procedure Evidence Sequence references no instance"
    for _sop_class, sop_instance in sorted(evidence - content):
        yield f"{sop_instance} is in the evidence but no content item references it"
    for _sop_class, sop_instance in sorted(content - evidence):
        yield f"{sop_instance} is referenced by a content item but not in the evidence"


def _one_study(ctx: _Context) -> Iterator[str]:
    studies = [
        s.get("StudyInstanceUID")
        for s in ctx.ds.get("CurrentRequestedProcedureEvidenceSequence") or ()
    ]
    if studies != [ctx.ds.get("StudyInstanceUID")]:
        yield f"the evidence names studies {studies}, not only {ctx.ds.get('StudyInstanceUID')}"


def _retrieve_location(ctx: _Context) -> Iterator[str]:
    for study in ctx.ds.get("CurrentRequestedProcedureEvidenceSequence") or ():
        for series in study.get("ReferencedSeriesSequence") or ():
            uid = series.get("SeriesInstanceUID")
            location = series.get("RetrieveLocationUID")
            if not location:
                yield f"series {uid} has no Retrieve Location UID"
            elif ctx.retrieve_location_uid and location != ctx.retrieve_location_uid:
                yield (
                    f"series {uid} names Retrieve Location UID {location}, "
                    f"not {ctx.retrieve_location_uid}"
                )
            if not series.get("RetrieveAETitle"):
                yield f"series {uid} has no Retrieve AE Title"


RAD_MANIFEST = "RAD TF-3 4.68.4.1.2"
# (rule id, source, check)
RULES: tuple[tuple[str, str, Check], ...] = (
    ("kos-sop-class", "PS3.3 A.35.4, C.17.6.1.1", _sop_class),
    ("kos-title", f"{RAD_MANIFEST}.2", _title),
    ("kos-template", "PS3.16 TID 2010; PS3.3 C.18.8.1.1", _template),
    (
        "kos-content-matches-evidence",
        "PS3.16 TID 2010; PS3.3 C.17.6.2.1",
        _content_matches_evidence,
    ),
    ("kos-one-study", RAD_MANIFEST, _one_study),
    ("kos-retrieve-location", f"{RAD_MANIFEST}.3", _retrieve_location),
)


def check_manifest(
    ds: Dataset, *, retrieve_location_uid: str | None = None
) -> list[ManifestFinding]:
    """Every finding of every rule; ``retrieve_location_uid``, when given, is the
    Imaging Document Source's repositoryUniqueId each series must name."""
    ctx = _Context(ds, retrieve_location_uid)
    return [
        ManifestFinding(rule, source, message)
        for rule, source, check in RULES
        for message in check(ctx)
    ]


__all__ = ["RULES", "ManifestFinding", "check_manifest"]
