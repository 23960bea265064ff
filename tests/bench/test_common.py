"""The benchmark table's arithmetic: verdicts, ratios, percentiles, and the ITI-42 set
builder the registration scenario sends."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from common import Figure, higher_is_better, lower_is_better, percentile, render_table  # noqa: E402
from registrations import RIM, UNIQUE_ID_SCHEME, multi_document_envelope  # noqa: E402


def test_rate_passes_only_above_both_ratio_and_floor() -> None:
    assert higher_is_better("r", 400, 1000, "/s", min_ratio=0.3, min_value=300).passed
    assert not higher_is_better("r", 290, 500, "/s", min_ratio=0.3, min_value=300).passed
    assert not higher_is_better("r", 310, 2000, "/s", min_ratio=0.3, min_value=300).passed


def test_time_fails_above_its_ratio() -> None:
    assert lower_is_better("t", 1.5, 1.0, "s", max_ratio=1.5).passed
    assert not lower_is_better("t", 1.6, 1.0, "s", max_ratio=1.5).passed


def test_size_limit_is_strict() -> None:
    assert not lower_is_better("m", 64, None, "MiB", max_value=64).passed


def test_figure_without_target_has_no_verdict() -> None:
    figure = higher_is_better("r", 1, 2, "/s")
    assert figure.passed is None
    assert figure.ratio == pytest.approx(0.5)


def test_nearest_rank_percentile() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([3.0], 99) == 3.0


def test_table_marks_failures() -> None:
    table = render_table([Figure("x", 1, 2, "s", "<= 1x", False)])
    assert "FAIL" in table.splitlines()[2]


def test_multi_document_envelope_has_distinct_entries_and_members() -> None:
    root = etree.fromstring(multi_document_envelope("http://h/xds/registry", "1^^^&1.2&ISO", 5))
    entries = root.findall(f".//{{{RIM}}}ExtrinsicObject")
    members = root.findall(f".//{{{RIM}}}Association")
    assert len({e.get("id") for e in entries}) == 5
    assert {m.get("targetObject") for m in members} == {e.get("id") for e in entries}
    ids = [el.get("id") for el in root.iter() if el.get("id")]
    assert len(ids) == len(set(ids))
    unique_ids = {
        i.get("value")
        for i in root.iter(f"{{{RIM}}}ExternalIdentifier")
        if i.get("identificationScheme") == UNIQUE_ID_SCHEME
    }
    assert len(unique_ids) == 5
