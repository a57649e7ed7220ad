"""The arithmetic of thumbnail sizes (which thumbnails an image gets, which answers a
request), and their configuration: thumbnail_sizes, dynamic_thumbnails, rc_media_download."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from homeserver.config import (
    DEFAULT_THUMBNAIL_SIZES,
    ConfigError,
    Rate,
    ThumbnailSize,
    parse_config,
    render_config,
)
from homeserver.media.thumbnail_sizes import Method, candidates, select

DEFAULTS: list[tuple[int, int, Method]] = [
    (32, 32, "crop"),
    (96, 96, "crop"),
    (320, 240, "scale"),
    (640, 480, "scale"),
    (800, 600, "scale"),
]


def sizes_of(src: tuple[int, int]) -> list[tuple[int, int, str]]:
    return [(c.width, c.height, c.method) for c in candidates(*src, DEFAULTS)]


def test_candidates_never_upscale_and_are_made_once() -> None:
    assert sizes_of((5600, 5600)) == [
        (32, 32, "crop"),
        (96, 96, "crop"),
        (240, 240, "scale"),
        (480, 480, "scale"),
        (600, 600, "scale"),
    ]
    # Smaller than the larger sizes: those are the image's own size, made once.
    assert sizes_of((600, 400)) == [
        (32, 32, "crop"),
        (96, 96, "crop"),
        (320, 213, "scale"),
        (600, 400, "scale"),
    ]
    # Too small for the 96x96 crop: the largest square it has.
    assert sizes_of((80, 50)) == [(32, 32, "crop"), (50, 50, "crop"), (80, 50, "scale")]
    wide = candidates(900, 300, [(96, 96, "crop")])[0]
    assert wide.box == (300.0, 0.0, 300.0, 300.0)  # the middle square


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ((10, 10, "crop"), (32, 32)),
        ((32, 32, "crop"), (32, 32)),
        ((33, 33, "crop"), (96, 96)),
        ((40, 20, "crop"), (32, 32)),  # the aspect counts first
        ((500, 500, "crop"), (96, 96)),  # none large enough: the closest in size
        ((1, 1, "scale"), (320, 240)),
        ((321, 100, "scale"), (320, 240)),  # as tall as asked: it counts as covering
        ((400, 300, "scale"), (640, 480)),
        ((700, 500, "scale"), (800, 600)),
        ((5000, 5000, "scale"), (800, 600)),
    ],
)
def test_selection_is_synapses(
    request_: tuple[int, int, Method], expected: tuple[int, int]
) -> None:
    chosen = select(*request_, candidates(1600, 1200, DEFAULTS))
    assert chosen is not None and (chosen.width, chosen.height) == expected
    assert chosen.method == request_[2]


def test_selection_without_the_method_is_none() -> None:
    only_scale = candidates(1600, 1200, [(320, 240, "scale")])
    assert select(32, 32, "crop", only_scale) is None


BASE: dict[str, Any] = {"server_name": "town.example.jp"}


def test_configuration(tmp_path: Path) -> None:
    default = parse_config(BASE, tmp_path)
    assert default.thumbnail_sizes == DEFAULT_THUMBNAIL_SIZES
    assert [(s.width, s.height, s.method) for s in default.thumbnail_sizes] == DEFAULTS
    assert default.dynamic_thumbnails is False
    assert default.media_download_limit == Rate(20.0, 200)
    # The file kairan init writes says the same, and reads back.
    written = yaml.safe_load(render_config("town.example.jp", tmp_path))
    assert written["thumbnail_sizes"] == [
        {"width": w, "height": h, "method": m} for w, h, m in DEFAULTS
    ]
    assert written["rc_media_download"] == {"per_second": 20, "burst_count": 200}
    assert parse_config(written, tmp_path).thumbnail_sizes == DEFAULT_THUMBNAIL_SIZES

    custom = parse_config(
        {
            **BASE,
            "thumbnail_sizes": [{"width": 64, "height": 48, "method": "crop"}],
            "dynamic_thumbnails": True,
            "rc_media_download": {"per_second": 0.5, "burst_count": 10},
        },
        tmp_path,
    )
    assert custom.thumbnail_sizes == (ThumbnailSize(64, 48, "crop"),)
    assert custom.dynamic_thumbnails is True
    assert custom.media_download_limit == Rate(0.5, 10)


@pytest.mark.parametrize(
    "bad",
    [
        {"thumbnail_sizes": []},
        {"thumbnail_sizes": "32x32"},
        {"thumbnail_sizes": [{"width": 32, "height": 32}]},
        {"thumbnail_sizes": [{"width": 32, "height": 32, "method": "stretch"}]},
        {"thumbnail_sizes": [{"width": 0, "height": 32, "method": "crop"}]},
        {"thumbnail_sizes": [{"width": 32, "height": 99999, "method": "crop"}]},
        {"thumbnail_sizes": [{"width": "32", "height": 32, "method": "crop"}]},
        {"thumbnail_sizes": [{"width": 32, "height": 32, "method": "crop", "type": "png"}]},
        {"thumbnail_sizes": [{"width": 32, "height": 32, "method": "crop"}] * 17},
        {"dynamic_thumbnails": "yes"},
        {"rc_media_download": {"per_second": -1}},
        {"rc_media_download": {"burst_count": 0}},
        {"rc_media_download": {"per_second": 1, "burst": 5}},
        {"rc_media_download": 5},
    ],
)
def test_bad_configuration(tmp_path: Path, bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, **bad}, tmp_path)
    assert next(iter(bad)) in str(caught.value)
