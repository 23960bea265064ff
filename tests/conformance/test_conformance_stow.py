"""conformance/dicom.py and the stow / rad69 request builders of conformance/steps.py."""

from __future__ import annotations

import io

from pydicom import dcmread

from conformance.dicom import instance_names, make_study, stow_request
from conformance.plan import Step
from conformance.result import Endpoints
from conformance.steps import dicomweb_root, study_requests
from conformance.templates import Scope

ENDPOINTS = Endpoints(
    imaging_source_url="https://pacs.example:8443/xdsi/imaging-source",
    affinity_domain="1.2.3.4",
    imaging_source_id="1.2.3.7",
)


def scope() -> Scope:
    return Scope(ENDPOINTS, "2.25.1.2", 1)


def test_instances_are_numbered_across_the_study() -> None:
    assert instance_names([2, 1]) == [(1, "instance1"), (1, "instance2"), (2, "instance3")]


def test_posted_instances_are_part10_of_the_case_patient() -> None:
    s = scope()
    make_study(s, [2, 1])
    first = dcmread(io.BytesIO(s.posted["instance1"].content))
    assert s.posted["instance1"].content[128:132] == b"DICM"  # PS3.10 7.1
    assert first.PatientID == s.patient_number("main")
    assert first.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == "1.2.3.4"
    assert first.SOPInstanceUID == s.uid("instance1")
    assert {p.series_instance_uid for p in s.posted.values()} == {
        s.uid("series1"),
        s.uid("series2"),
    }


def test_stow_body_has_one_dicom_part_per_instance() -> None:
    s = scope()
    make_study(s, [1, 1])
    content_type, body = stow_request(list(s.posted.values()))
    assert content_type.startswith('multipart/related; type="application/dicom"')
    assert body.count(b"Content-Type: application/dicom\r\n") == 2


def test_dicomweb_root_is_on_the_imaging_source_origin() -> None:
    assert dicomweb_root(ENDPOINTS) == "https://pacs.example:8443/dicomweb"
    given = Endpoints(imaging_source_url="http://x/y", dicomweb_url="http://w/dicom-web/")
    assert dicomweb_root(given) == "http://w/dicom-web"


def test_rad69_requests_group_posted_instances_by_series() -> None:
    s = scope()
    make_study(s, [2, 1])
    xml = study_requests(Step("rad69", "rad69", options={"requests": "posted"}), s)
    assert xml.count("<iherad:StudyRequest") == 1
    assert xml.count("<iherad:SeriesRequest") == 2
    assert xml.count("<xdsb:DocumentRequest>") == 3
    assert "{{imaging_source_id}}" in xml  # filled when the template is rendered
