"""The full-spool policy through the real application: once ``[audit] spool_limit``
events wait for a destination, SOAP transactions get the busy answer - nothing is
dropped - until the backlog is shipped."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from e2e_support import TEST_CONFIG, adt_a01, new_patient_number, patient_cx, render  # noqa: E402

from xdsi.config import load_config  # noqa: E402
from xdsi.serve import build_application  # noqa: E402

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"


def _find_documents(patient: str) -> bytes:
    return render(
        "iti18_find_documents.xml",
        message_id="urn:uuid:00000000-0000-4000-8000-000000000001",
        to="http://testserver/xds/registry",
        return_type="ObjectRef",
        patient_id=patient,
        statuses="'urn:oasis:names:tc:ebxml-regrep:StatusType:Approved'",
    )


def test_a_full_audit_spool_refuses_transactions_with_the_busy_answer(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    # a destination nobody ships to in this test: every event stays pending
    config_text = TEST_CONFIG + '\n[audit]\ndestinations = ["udp://127.0.0.1:9"]\nspool_limit = 3\n'
    (data_dir / "xdsi.toml").write_text(config_text, encoding="utf-8")
    application = build_application(load_config(data_dir, environ={}))
    auditor = application.auditor
    assert auditor is not None
    try:
        number = new_patient_number()
        assert b"MSA|AA" in application.feed.handle(adt_a01(number))  # one event
        envelope = _find_documents(patient_cx(number))
        headers = {"content-type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'}

        async def queries(n: int) -> list[httpx.Response]:
            transport = httpx.ASGITransport(app=application.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                return [
                    await c.post("/xds/registry", content=envelope, headers=headers)
                    for _ in range(n)
                ]

        first = asyncio.run(queries(2))  # events 2 and 3: the limit is reached
        assert all(b"ResponseStatusType:Success" in r.content for r in first)
        assert not auditor.accepting
        # the patient feed too: rejected unprocessed (AR), to be sent again
        other = new_patient_number()
        assert b"MSA|AR" in application.feed.handle(adt_a01(other))
        (refused,) = asyncio.run(queries(1))
        assert refused.status_code == 200
        assert b"XDSRegistryBusy" in refused.content
        assert b"ResponseStatusType:Failure" in refused.content
        # nothing dropped: every event and the alert are in the spool
        kinds = [m for _, m in auditor.spool.events()]
        assert any(b'csd-code="110133"' in m for m in kinds)
        assert auditor.spool.backlog() >= 4

        async def ship() -> None:
            auditor.shipper.on_shipped = auditor._on_shipped
            while auditor.spool.backlog():
                await auditor.shipper.ship_once("udp://127.0.0.1:9")

        asyncio.run(ship())
        assert auditor.accepting
        (again,) = asyncio.run(queries(1))
        assert b"ResponseStatusType:Success" in again.content
        assert b"MSA|AA" in application.feed.handle(adt_a01(other))
    finally:
        application.close()
