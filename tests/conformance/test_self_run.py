"""``xdsi conformance run --self``: the whole suite against a temporary xdsi, which
serves every actor the plans need (registry, repository, ITI-8, the Imaging Document
Source with STOW-RS), so no case is skipped."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from xdsi.cli import main


@pytest.mark.slow
def test_self_run_passes_every_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "junit.xml"
    html = tmp_path / "report.html"
    code = main(["conformance", "run", "--self", "--junit", str(junit), "--html", str(html)])
    out = capsys.readouterr().out
    suite = etree.parse(str(junit)).getroot()
    failing = {
        case.get("name")
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    }
    assert failing == set(), out
    assert code == 0
    assert int(suite.get("tests")) >= 150
    assert int(suite.get("skipped")) == 0, out
    assert "<html>" in html.read_text(encoding="utf-8")


def test_run_without_endpoints_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "run"]) == 2
    assert "--self" in capsys.readouterr().err


def test_list_prints_every_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "list", "--only", "iti43-*"]) == 0
    assert "iti43-partial-success" in capsys.readouterr().out
