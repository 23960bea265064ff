from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from soap_echo import make_app

from soap.limits import Limits


@pytest.fixture
def limits(tmp_path: Path) -> Limits:
    spool = tmp_path / "spool"
    spool.mkdir()
    return Limits(spool_dir=spool)


@pytest.fixture
async def http(limits: Limits):
    transport = httpx.ASGITransport(app=make_app(limits))
    async with httpx.AsyncClient(transport=transport, base_url="http://xdsi.test") as client:
        yield client
