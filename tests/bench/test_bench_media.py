"""Smoke test of ``kairan bench media``: a real node started by the interop harness, small
counts; the figures are printed (the benchmark judges memory, the test does not)."""

from __future__ import annotations

import io

from PIL import Image

from interop.bench import media


def test_bench_prints_every_figure() -> None:
    lines: list[str] = []
    options = media.MediaBenchOptions(size=900, requests=8, concurrency=2, settle=0.1)
    result = media.run(options, lines.append)
    text = "\n".join(lines)
    for figure in (
        "png: 900x900, ",
        "thumbnail requests: 8 in ",
        "distinct thumbnails served: ",
        "node RSS idle: ",
        "node RSS peak during the run: ",
        "node RSS after the run: ",
        "child processes' RSS peak: ",
    ):
        assert sum(line.startswith(figure) for line in lines) == 1, (figure, text)
    assert lines[-1].startswith(("PASS: node peak ", "FAIL: node peak ")), text
    # It really asked: every answer a configured size (or the original, when larger).
    assert result.statuses == {200: 8}
    assert result.sizes <= {(32, 32), (96, 96), (240, 240), (480, 480), (600, 600), (900, 900)}
    assert result.idle_kib > 0 and result.node_peak_kib() >= result.idle_kib


def test_the_inputs() -> None:
    sizes = media.requested_sizes(40)
    assert len(set(sizes)) == 40
    assert {method for _, _, method in sizes} == {"crop", "scale"}
    png = media.big_png(700)
    with Image.open(io.BytesIO(png)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (700, 700), "RGB")
