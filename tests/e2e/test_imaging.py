"""The Imaging Document Source end to end, with real processes: ``xdsi serve``, dcmtk's
storescu, dciodvfy, dicomweb-client and Orthanc as the backing PACS.

(a) local mode: a multi-series study sent by C-STORE is published automatically
(RAD-68), found by ITI-18 FindDocuments on the KOS formatCode, retrieved by ITI-43,
valid per ``dciodvfy -profile IHEXDSIManifest``, and every instance it references comes
back by RAD-69 as it was sent; WADO-RS serves the study to dicomweb-client.
(b) PACS mode: the study is in Orthanc only; ``xdsi serve --pacs-wado-rs`` and
``xdsi publish`` publish it, and RAD-69 returns Orthanc's pixel data.

Skipped without the tools unless XDSI_REQUIRE_INTEROP=1.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from e2e_support import (
    NS,
    REPO_ROOT,
    SUCCESS,
    TEST_CONFIG,
    Reply,
    ResponseSchemas,
    ServerProcess,
    XdsPeer,
    adt_a01,
    document_bytes,
    entries_by_unique_id,
    free_port,
    missing,
    new_id,
    new_patient_number,
    patient_cx,
    rad69_request,
    send_mllp,
)
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, RLELossless

sys.path.insert(0, str(REPO_ROOT / "tests" / "imaging_source"))
from dicom_studies import make_study, write_files  # noqa: E402
from orthanc_fixtures import orthanc_server  # noqa: E402

IMAGING_SOURCE_ID = "1.3.6.1.4.1.21367.13.40.3001"
KOS_FORMAT = "1.2.840.10008.5.1.4.1.1.88.59^^1.2.840.10008.2.6.1"
RAD69_ACTION = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
ITI18_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
PUBLISH_TIMEOUT = 30.0

IMAGING_CONFIG = f"""{TEST_CONFIG}
[imaging_source]
repository_unique_id = "{IMAGING_SOURCE_ID}"
stability_delay = 1.0
publish_interval = 0.3
"""

# ITI TF-2 3.18.4.1.2.3.7.1 FindDocuments with $XDSDocumentEntryFormatCode
FIND_BY_FORMAT = """<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"
               xmlns:wsa="http://www.w3.org/2005/08/addressing">
  <soap:Header>
    <wsa:Action soap:mustUnderstand="1">urn:ihe:iti:2007:RegistryStoredQuery</wsa:Action>
    <wsa:MessageID>urn:uuid:{message_id}</wsa:MessageID>
    <wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>
    <wsa:To soap:mustUnderstand="1">{to}</wsa:To>
  </soap:Header>
  <soap:Body>
    <query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
        xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0">
      <query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>
      <rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
        <rim:Slot name="$XDSDocumentEntryPatientId">
          <rim:ValueList><rim:Value>'{patient_id}'</rim:Value></rim:ValueList>
        </rim:Slot>
        <rim:Slot name="$XDSDocumentEntryStatus">
          <rim:ValueList><rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value></rim:ValueList>
        </rim:Slot>
        <rim:Slot name="$XDSDocumentEntryFormatCode">
          <rim:ValueList><rim:Value>('{format_code}')</rim:Value></rim:ValueList>
        </rim:Slot>
      </rim:AdhocQuery>
    </query:AdhocQueryRequest>
  </soap:Body>
</soap:Envelope>
"""

# RAD TF-3 4.69.4.1.2: StudyRequest / SeriesRequest / xdsb:DocumentRequest, then the
# transfer syntaxes the consumer accepts

_tools = [tool for tool in ("storescu", "dciodvfy") if shutil.which(tool) is None]


def _require_tools() -> None:
    if _tools:
        missing(f"not installed: {', '.join(_tools)}")


# --- the consumer's side ---------------------------------------------------------------


def _feed_patient(server: ServerProcess, number: str) -> None:
    reply = send_mllp("127.0.0.1", server.mllp_port, adt_a01(number))
    assert b"MSA|AA" in reply or b"MSA|CA" in reply, reply


def _find_manifests(peer: XdsPeer, patient: str) -> Reply:
    envelope = FIND_BY_FORMAT.format(
        message_id=new_id(),
        to=peer.registry_url,
        patient_id=escape(patient),
        format_code=KOS_FORMAT,
    ).encode()
    return peer.simple(peer.registry_url, envelope, ITI18_ACTION)


def _wait_for_manifest(peer: XdsPeer, patient: str) -> dict:
    deadline = time.monotonic() + PUBLISH_TIMEOUT
    while time.monotonic() < deadline:
        found = entries_by_unique_id(_find_manifests(peer, patient))
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no manifest for {patient} within {PUBLISH_TIMEOUT}s")


def _rad69(peer: XdsPeer, images: list[Dataset], syntaxes: list[str]) -> dict[str, bytes]:
    """RAD-69 for ``images`` (one StudyRequest per study, one SeriesRequest per series);
    the returned documents by uniqueId."""
    envelope = rad69_request(
        f"{peer.base_url}/xdsi/imaging-source",
        [
            (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, IMAGING_SOURCE_ID)
            for ds in images
        ],
        syntaxes,
    )
    reply = peer.mtom(f"{peer.base_url}/xdsi/imaging-source", envelope, [], RAD69_ACTION)
    assert _retrieve_status(reply) == SUCCESS, reply.registry_errors()
    return {
        document.findtext("xdsb:DocumentUniqueId", namespaces=NS): document_bytes(
            reply.package, document.find("xdsb:Document", NS)
        )
        for document in reply.body.findall("xdsb:DocumentResponse", NS)
    }


def _retrieve_status(reply: Reply) -> str | None:
    """ITI TF-2 3.43.4.2.2: the status is the RegistryResponse's inside the response."""
    return reply.body.find("rs:RegistryResponse", NS).get("status")


def _retrieve_manifest(peer: XdsPeer, unique_id: str) -> bytes:
    reply = peer.retrieve([unique_id])
    assert _retrieve_status(reply) == SUCCESS, reply.registry_errors()
    (document,) = reply.body.findall("xdsb:DocumentResponse", NS)
    return document_bytes(reply.package, document.find("xdsb:Document", NS))


def _dciodvfy_errors(data: bytes, directory: Path) -> list[str]:
    path = directory / "manifest.dcm"
    path.write_bytes(data)
    run = subprocess.run(
        ["dciodvfy", "-profile", "IHEXDSIManifest", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def _referenced(kos: Dataset) -> set[str]:
    """Every SOP Instance UID of the Current Requested Procedure Evidence Sequence."""
    return {
        sop.ReferencedSOPInstanceUID
        for study in kos.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }


# --- servers ------------------------------------------------------------------------------


class ImagingServer(ServerProcess):
    """``xdsi serve`` with extra flags (``--pacs-wado-rs``)."""

    extra: list[str]

    def command(self) -> list[str]:
        return [*super().command(), *getattr(self, "extra", [])]


def _server(data_dir: Path, extra: list[str] | None = None) -> ImagingServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "xdsi.toml").write_text(IMAGING_CONFIG, encoding="utf-8")
    server = ImagingServer(data_dir)
    server.extra = extra or []
    return server.start(timeout=90.0)


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[ImagingServer]:
    _require_tools()
    server = _server(tmp_path / "xdsi")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def consumer(local_server: ImagingServer) -> Iterator[XdsPeer]:
    peer = XdsPeer(local_server.base_url, ResponseSchemas())
    yield peer
    peer.close()


# --- (a) xdsi holds the study ---------------------------------------------------------------


def _store(server: ServerProcess, files: list[Path]) -> None:
    compressed = [p for p in files if dcmread(p).file_meta.TransferSyntaxUID == RLELossless]
    plain = [p for p in files if p not in compressed]
    for option, batch in (("-R", plain), ("-xr", compressed)):  # -xr: propose RLE Lossless
        run = subprocess.run(
            ["storescu", option, "-aec", "XDSI", "127.0.0.1", str(server.dicom_port)]
            + [str(p) for p in batch],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr


def test_study_stored_by_c_store_is_published_and_retrievable(
    local_server: ImagingServer, consumer: XdsPeer, tmp_path: Path
) -> None:
    number = new_patient_number()
    _feed_patient(local_server, number)
    study = make_study(patient_id=number)
    files = write_files(study, tmp_path / "study")
    _store(local_server, files)

    # RAD-68 happened by itself once the study was stable; ITI-18 by formatCode finds it
    manifests = _wait_for_manifest(consumer, patient_cx(number))
    assert len(manifests) == 1
    (unique_id,) = manifests

    # ITI-43 the KOS from the Document Repository; it passes dciodvfy's XDS-I profile
    kos_bytes = _retrieve_manifest(consumer, unique_id)
    assert _dciodvfy_errors(kos_bytes, tmp_path) == []
    kos = dcmread(io.BytesIO(kos_bytes))
    assert kos.SOPInstanceUID == unique_id
    assert _referenced(kos) == {ds.SOPInstanceUID for ds in study}
    retrieve = kos.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert retrieve.RetrieveLocationUID == IMAGING_SOURCE_ID

    # RAD-69 for every referenced instance, in the syntaxes they were sent in
    sent = {p.stem: dcmread(p) for p in files}
    returned = _rad69(consumer, study, [ExplicitVRLittleEndian, RLELossless])
    assert set(returned) == set(sent)
    for uid, data in returned.items():
        back = dcmread(io.BytesIO(data))
        assert back == sent[uid]  # every data element, pixel data included
        assert back.PixelData == sent[uid].PixelData


def test_wado_rs_serves_the_stored_study_to_dicomweb_client(
    local_server: ImagingServer, tmp_path: Path
) -> None:
    from dicomweb_client.api import DICOMwebClient

    study = make_study(patient_id=new_patient_number())
    _store(local_server, write_files(study, tmp_path / "study"))
    client = DICOMwebClient(url=f"{local_server.base_url}/dicomweb")
    retrieved = client.retrieve_study(study[0].StudyInstanceUID)
    assert {ds.SOPInstanceUID for ds in retrieved} == {ds.SOPInstanceUID for ds in study}
    found = client.search_for_series(study[0].StudyInstanceUID)
    assert len(found) == 3


# --- (b) xdsi in front of a PACS -------------------------------------------------------------


def _publish(server: ServerProcess, study_uid: str, patient: str, pacs: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDSI_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "xdsi",
            "publish",
            study_uid,
            "--patient-id",
            patient,
            "--data-dir",
            str(server.data_dir),
            "--server",
            server.base_url,
            "--pacs-wado-rs",
            pacs,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_study_in_a_pacs_is_published_on_demand_and_retrieved_from_it(tmp_path: Path) -> None:
    if shutil.which("dciodvfy") is None:
        missing("not installed: dciodvfy")
    orthanc = orthanc_server(tmp_path / "orthanc", free_port(), free_port(), {})
    pacs = next(orthanc)
    try:
        number = new_patient_number()
        study = make_study(patient_id=number)
        pacs.upload(study)
        server = _server(tmp_path / "xdsi", ["--pacs-wado-rs", pacs.dicomweb])
        peer = XdsPeer(server.base_url, ResponseSchemas())
        try:
            _feed_patient(server, number)
            unique_id = _publish(server, study[0].StudyInstanceUID, number, pacs.dicomweb)

            manifests = entries_by_unique_id(_find_manifests(peer, patient_cx(number)))
            assert set(manifests) == {unique_id}
            kos_bytes = _retrieve_manifest(peer, unique_id)
            assert _dciodvfy_errors(kos_bytes, tmp_path) == []

            returned = _rad69(peer, study, [ExplicitVRLittleEndian, RLELossless])
            assert set(returned) == {ds.SOPInstanceUID for ds in study}
            for uid, data in returned.items():
                original = dcmread(io.BytesIO(pacs.original(uid)))
                assert dcmread(io.BytesIO(data)).PixelData == original.PixelData
        finally:
            peer.close()
            server.stop()
    finally:
        orthanc.close()
