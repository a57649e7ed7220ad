"""Thumbnails with Pillow: pure, blocking functions, and the worker process that runs them.

Only JPEG, PNG, GIF and WebP are opened (Pillow is told to try no other format).  An
image is refused before decoding when it has more than ``max_pixels`` pixels, so a small
file that claims huge dimensions (a decompression bomb) costs nothing; Pillow's own
``DecompressionBombError`` is mapped to the same error.  Thumbnails are never animated
(the first frame of an animation is used).

:func:`probe` reads an image's header only (its size, upright, and whether it is
animated): the node calls it in-process.  :func:`render` decodes the image once and
writes all the thumbnails asked for; it holds the decoded image (up to 4 bytes a pixel)
and runs in a worker process of its own (this file run as a script, a job as JSON on
stdin, see :func:`main`), so the node never holds decoded pixels and the memory goes back
to the system when the worker exits.  Decoding is kept small where Pillow can: JPEG is
decoded at 1/2, 1/4 or 1/8 scale when that is still large enough (``draft``); any image
much larger than its largest thumbnail is first shrunk by an integer factor
(``reduce``, in strips, so no second full-size copy is made), then resampled (LANCZOS).

This module imports nothing but the standard library and Pillow: the worker runs it as a
script, outside the package.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

log = logging.getLogger(__name__)

#: Content types we thumbnail, and the Pillow format of each.
IMAGE_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
#: Refuse to decode images larger than this (32 megapixels, about 128 MB as RGBA).
MAX_PIXELS = 32_000_000
#: Shrink by an integer factor first while the result stays this many times larger than
#: the thumbnail (Pillow's ``reducing_gap``: 2 is indistinguishable from resampling it all).
REDUCING_GAP = 2.0
#: Rows of the decoded image converted and shrunk at a time.
STRIP_ROWS = 256

#: How to turn an image with each EXIF orientation upright.
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: The orientations whose upright image is the stored one turned a quarter.
_SWAPS = {5, 6, 7, 8}
_PREMULTIPLIED = {"RGBA": "RGBa", "LA": "La"}


class ThumbnailError(Exception):
    """The content cannot be thumbnailed (not a supported image, or corrupt)."""


class ImageTooLarge(ThumbnailError):
    """The image has too many pixels to be decoded safely."""


@dataclass(frozen=True)
class SourceInfo:
    """An image as its header describes it; ``width`` x ``height`` upright (EXIF applied)."""

    format: str
    width: int
    height: int
    animated: bool
    #: Pixels to decode (before any JPEG draft scaling).
    pixels: int


@dataclass(frozen=True)
class Job:
    """One thumbnail to write: ``file`` in the output directory, ``width`` x ``height``,
    showing ``box`` (left, top, width, height) of the upright source."""

    file: str
    width: int
    height: int
    box: tuple[float, float, float, float]


def output_type(source_content_type: str) -> str:
    """The content type of thumbnails of a source: JPEG stays JPEG, the rest become PNG."""
    return "image/jpeg" if source_content_type == "image/jpeg" else "image/png"


def probe(source: Path, max_pixels: int = MAX_PIXELS) -> SourceInfo:
    """What the header of the image at ``source`` says; nothing is decoded."""
    with _opened(source) as image:
        return _info(image, max_pixels)


def render(
    source: Path, jobs: list[Job], out_type: str, out_dir: Path, max_pixels: int = MAX_PIXELS
) -> SourceInfo:
    """Decode the image once and write each job's thumbnail into ``out_dir`` (synced)."""
    with _opened(source) as image:
        info = _info(image, max_pixels)
        try:
            _render(image, info, jobs, out_type, out_dir)
        except ThumbnailError:
            raise
        except MemoryError:
            raise ImageTooLarge("Image is too large to thumbnail") from None
        except Exception as e:  # any decoder failure on untrusted input is the input's fault
            log.info("cannot thumbnail %s: %s: %s", source.name, type(e).__name__, e)
            raise ThumbnailError("The image could not be decoded") from None
        return info


class _opened:
    """``Image.open`` of the formats we decode, its failures as ThumbnailError."""

    def __init__(self, source: Path) -> None:
        self.source = source
        self.image: Image.Image | None = None

    def __enter__(self) -> Image.Image:
        try:
            self.image = Image.open(self.source, formats=list(IMAGE_FORMATS.values()))
        except Image.DecompressionBombError as e:
            raise ImageTooLarge(f"Image is too large to thumbnail: {e}") from None
        except Exception as e:
            log.info("cannot open %s: %s: %s", self.source.name, type(e).__name__, e)
            raise ThumbnailError("The image could not be decoded") from None
        return self.image

    def __exit__(self, *exc: object) -> None:
        if self.image is not None:
            self.image.close()


def _info(image: Image.Image, max_pixels: int) -> SourceInfo:
    raw_w, raw_h = image.size
    if raw_w <= 0 or raw_h <= 0:
        raise ThumbnailError("The image has no pixels")
    if raw_w * raw_h > max_pixels:
        raise ImageTooLarge(
            f"Image is too large to thumbnail ({raw_w}x{raw_h} pixels, at most {max_pixels})"
        )
    try:
        animated = bool(getattr(image, "is_animated", False))
    except Exception as e:
        log.info("cannot read the frames: %s: %s", type(e).__name__, e)
        raise ThumbnailError("The image could not be decoded") from None
    swapped = _orientation(image) in _SWAPS
    width, height = (raw_h, raw_w) if swapped else (raw_w, raw_h)
    return SourceInfo(image.format or "", width, height, animated, raw_w * raw_h)


def _render(
    image: Image.Image, info: SourceInfo, jobs: list[Job], out_type: str, out_dir: Path
) -> None:
    if not jobs:
        return
    # Source pixels per thumbnail pixel, for the thumbnail that needs the most detail.
    detail = min(min(j.box[2] / j.width, j.box[3] / j.height) for j in jobs)
    orientation = _orientation(image)
    transpose = _TRANSPOSE.get(orientation)
    if image.format == "JPEG" and detail >= 2:
        raw_w, raw_h = image.size
        image.draft(None, (math.ceil(raw_w / detail), math.ceil(raw_h / detail)))
    image.seek(0)
    image.load()
    scale = image.width / (info.height if orientation in _SWAPS else info.width)
    factor = max(1, int(detail * scale / REDUCING_GAP))
    frame = _shrunk(image, factor, out_type)
    if frame is not image:
        image.close()  # the decoded image goes before the thumbnails are made
    if transpose is not None:
        frame = frame.transpose(transpose)
    x_ratio, y_ratio = frame.width / info.width, frame.height / info.height
    for job in jobs:
        left, top = job.box[0] * x_ratio, job.box[1] * y_ratio
        box_w, box_h = job.box[2] * x_ratio, job.box[3] * y_ratio
        resized = frame.resize(
            (job.width, job.height),
            Image.Resampling.LANCZOS,
            box=(left, top, min(frame.width, left + box_w), min(frame.height, top + box_h)),
        )
        _write(_unpremultiplied(resized), out_type, out_dir / job.file)


def _shrunk(image: Image.Image, factor: int, out_type: str) -> Image.Image:
    """The loaded image in a mode LANCZOS resampling and the output format accept (alpha
    premultiplied), shrunk by ``factor`` (box average); converted and shrunk a strip at a
    time, so no second full-size copy exists."""
    if factor == 1:
        return _converted(image, out_type)
    width, height = image.size
    out: Image.Image | None = None
    rows = factor * max(1, STRIP_ROWS // factor)
    for top in range(0, height, rows):
        strip = _converted(image.crop((0, top, width, min(height, top + rows))), out_type)
        if out is None:
            out = Image.new(strip.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        out.paste(strip.reduce(factor), (0, top // factor))
    assert out is not None
    return out


def _converted(image: Image.Image, out_type: str) -> Image.Image:
    """``image`` in a mode LANCZOS resampling and the output format accept; alpha
    premultiplied (RGBa, La), as Pillow's own resampling does."""
    if out_type == "image/jpeg":
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.mode not in ("RGBA", "LA"):
        if image.mode == "L":
            target = "LA" if has_alpha else "L"
        else:
            target = "RGBA" if has_alpha else "RGB"
        if image.mode != target:
            image = image.convert(target)
    return image.convert(_PREMULTIPLIED[image.mode]) if image.mode in _PREMULTIPLIED else image


def _unpremultiplied(image: Image.Image) -> Image.Image:
    if image.mode == "RGBa":
        return image.convert("RGBA")
    if image.mode == "La":
        return image.convert("LA")
    return image


def _write(image: Image.Image, out_type: str, path: Path) -> None:
    buffer = io.BytesIO()
    if out_type == "image/jpeg":
        image.save(buffer, "JPEG", quality=80, optimize=True)
    else:
        image.save(buffer, "PNG")
    with open(path, "xb") as file:
        file.write(buffer.getvalue())
        file.flush()
        os.fsync(file.fileno())


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1, upright, when absent or unreadable: broken EXIF is common
    and must not make an otherwise good image fail).  From the header only: Pillow would
    decode a whole PNG to look for an eXIf chunk after the pixels."""
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as e:
        log.debug("ignoring unreadable EXIF: %s", e)
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


# ---------------------------------------------------------------- the worker process


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One worker job (see :func:`main`): its answer."""
    try:
        info = render(
            Path(job["source"]),
            [Job(j["file"], j["width"], j["height"], tuple(j["box"])) for j in job["jobs"]],
            job["out_type"],
            Path(job["out_dir"]),
            job["max_pixels"],
        )
    except ImageTooLarge as e:
        return {"error": "too_large", "message": str(e)}
    except ThumbnailError as e:
        return {"error": "cannot_thumbnail", "message": str(e)}
    if [info.width, info.height] != job["size"]:
        return {"error": "cannot_thumbnail", "message": "The image changed while thumbnailing"}
    return {"ok": True}


def main() -> None:
    """The worker: a job as JSON on stdin (``source``, upright ``size`` [w, h], ``out_type``,
    ``out_dir``, ``max_pixels`` and ``jobs``: [{file, width, height, box}]), the answer
    as JSON on stdout: ``{"ok": true}`` or ``{"error": "too_large" | "cannot_thumbnail",
    "message": ...}``."""
    answer = run_job(json.load(sys.stdin))
    json.dump(answer, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
