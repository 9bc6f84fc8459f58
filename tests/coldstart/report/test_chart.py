"""The start waterfall (coldstart report --chart): renders from every recorded fixture, SVG and PNG."""

import json
import re
import struct
import zlib
from pathlib import Path

import pytest

from coldstart.report import ReportError, build_timeline, default_budget, load_bundle
from coldstart.report.chart import render_chart
from coldstart.report.phases import BY_KEY

FIXTURES = Path(__file__).parent / "fixtures"

BUNDLES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())


def test_every_recorded_fixture_is_covered():
    assert {"warm", "cold_pull", "crash_loop", "missing_phases", "v034_cold"} <= set(BUNDLES)


@pytest.mark.parametrize("name", BUNDLES)
def test_svg_has_the_phases_and_the_budget_line(name, tmp_path):
    timeline = build_timeline(load_bundle(FIXTURES / name))
    out = render_chart(timeline, default_budget(), tmp_path / "start.svg")
    svg = out.read_text()  # matplotlib draws text as paths, each preceded by <!-- the text -->
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    for p in timeline.phases:
        assert f"<!-- {BY_KEY[p.key].label} -->" in svg, p.label
    assert "<!-- budget 190 s (published T4 / Mistral-7B AWQ breakdown) -->" in svg
    assert 'id="line2d_' in svg  # the budget's vertical line is a Line2D
    assert re.search(r"torch\.compile(: cache (hit|miss)| cache: unknown)", svg)


def _png_chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        yield kind, body
        pos += 12 + length


@pytest.mark.parametrize("name", BUNDLES)
def test_png_is_a_valid_png(name, tmp_path):
    out = render_chart(build_timeline(load_bundle(FIXTURES / name)), default_budget(), tmp_path / "start.png")
    chunks = list(_png_chunks(out.read_bytes()))
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 600 and height > 300


def test_cache_restore_and_publish_are_their_own_rows_with_hit_or_miss(tmp_path):
    for f in (FIXTURES / "v034_cold").iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "compile-cache-restore.log").write_text("2026-12-02T10:00:50.000Z " + json.dumps(
        {"event": "compile_cache_restore", "result": "miss", "seconds": 0.4}) + "\n")
    (tmp_path / "compile-cache-publish.log").write_text("2026-12-02T10:03:05.000Z " + json.dumps(
        {"event": "compile_cache_publish", "result": "ok", "seconds": 2.5, "published": 2, "bytes": 40 * 2**20}) + "\n")
    timeline = build_timeline(load_bundle(tmp_path))
    assert [e.event for e in timeline.cache_events] == ["compile_cache_restore", "compile_cache_publish"]
    svg = render_chart(timeline, default_budget(), tmp_path / "start.svg").read_text()
    assert "<!-- Compile cache restore -->" in svg and "<!-- Compile cache publish -->" in svg
    assert "S3 compile cache restore: miss" in svg


def test_unknown_extension_is_refused(tmp_path, timeline_of):
    with pytest.raises(ReportError, match=r"use a \.svg or \.png"):
        render_chart(timeline_of("warm"), None, tmp_path / "start.jpg")
