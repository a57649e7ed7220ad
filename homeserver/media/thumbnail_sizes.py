"""Which thumbnails an image has, and which of them answers a request: pure arithmetic.

As Synapse (``thumbnail_sizes``, ``dynamic_thumbnails: false``): an image gets one
thumbnail per configured size, no more, and a request is answered with the best of them
by Synapse's rule (``_select_thumbnail``), whatever size it asks for.  Unlike Synapse a
thumbnail is never larger than its source (the spec: servers MUST NOT upscale), so a
configured size an image is too small for gives the largest thumbnail it allows.

A size's box is the region of the (upright) source the thumbnail shows: all of it for
``scale``, the middle region with the requested aspect for ``crop``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Method = Literal["crop", "scale"]
METHODS: tuple[Method, ...] = ("crop", "scale")


@dataclass(frozen=True)
class Candidate:
    """One thumbnail of one image: its size, method and the region of the source it shows."""

    width: int
    height: int
    method: Method
    box: tuple[float, float, float, float]

    def file_name(self, extension: str) -> str:
        return f"{self.width}x{self.height}-{self.method}.{extension}"


def output_size(src_w: int, src_h: int, width: int, height: int, method: Method) -> tuple[int, int]:
    """The size of the thumbnail of a ``src_w`` x ``src_h`` image for ``width`` x ``height``."""
    if method == "scale":
        # The largest size with the source's aspect that fits in the request, never larger
        # than the source.
        factor = min(width / src_w, height / src_h, 1.0)
        return max(1, round(src_w * factor)), max(1, round(src_h * factor))
    # crop: exactly the requested size, unless that would mean upscaling; then the largest
    # region of the source with the requested aspect, at its own size.
    _, _, box_w, box_h = box(src_w, src_h, width, height, method)
    if box_w >= width:
        return width, height
    return max(1, round(box_w)), max(1, round(box_h))


def box(
    src_w: int, src_h: int, width: int, height: int, method: Method
) -> tuple[float, float, float, float]:
    """The region of the source the thumbnail shows: (left, top, width, height)."""
    if method == "scale":
        return 0.0, 0.0, float(src_w), float(src_h)
    if src_w * height > src_h * width:  # the source is wider than the request: trim the sides
        box_w, box_h = src_h * width / height, float(src_h)
    else:  # taller: trim top and bottom
        box_w, box_h = float(src_w), src_w * height / width
    return (src_w - box_w) / 2, (src_h - box_h) / 2, box_w, box_h


def exact(src_w: int, src_h: int, width: int, height: int, method: Method) -> Candidate:
    """The thumbnail of exactly the requested size (``dynamic_thumbnails``)."""
    out_w, out_h = output_size(src_w, src_h, width, height, method)
    return Candidate(out_w, out_h, method, box(src_w, src_h, width, height, method))


def candidates(src_w: int, src_h: int, sizes: Iterable[tuple[int, int, Method]]) -> list[Candidate]:
    """The thumbnails of an upright ``src_w`` x ``src_h`` image, one per configured size
    (sizes that come out the same are made once), in the configuration's order."""
    made: dict[tuple[int, int, Method], Candidate] = {}
    for width, height, method in sizes:
        candidate = exact(src_w, src_h, width, height, method)
        made.setdefault((candidate.width, candidate.height, method), candidate)
    return list(made.values())


def select(
    width: int, height: int, method: Method, available: Iterable[Candidate]
) -> Candidate | None:
    """The thumbnail that answers a request, by Synapse's rule; None if none has the method.

    Only thumbnails made with the requested method count.  Those at least as wide or as
    tall as the request are preferred to smaller ones; among them, for ``crop``: the
    closest aspect, then one at least as large as the request in both dimensions, then
    the smallest difference in size; for ``scale``: the smallest difference in size.
    Synapse breaks the remaining ties by the smaller file; before a thumbnail exists its
    pixel count stands in for that, then the configuration's order.
    """
    same = [c for c in available if c.method == method]
    large = [c for c in same if c.width >= width or c.height >= height]

    def quality(c: Candidate) -> tuple[int, ...]:
        size = abs((width - c.width) * (height - c.height))
        if method == "crop":
            aspect = abs(width * c.height - height * c.width)
            smaller = 0 if width <= c.width and height <= c.height else 1
            return aspect, smaller, size, c.width * c.height
        return size, c.width * c.height

    pool = large or same
    return min(pool, key=quality) if pool else None
