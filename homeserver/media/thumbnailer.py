"""Thumbnails with Pillow: pure, blocking functions (the service runs them in a thread).

Only JPEG, PNG, GIF and WebP are decoded (Pillow is told to try no other format).  An
image is refused before decoding when it has more than ``max_pixels`` pixels, so a small
file that claims huge dimensions (a decompression bomb) costs nothing; Pillow's own
``DecompressionBombError`` is mapped to the same error.  Thumbnails are never upscaled
and never animated (the first frame of an animation is used).
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

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

Method = Literal["crop", "scale"]
METHODS: tuple[Method, ...] = ("crop", "scale")


class ThumbnailError(Exception):
    """The content cannot be thumbnailed (not a supported image, or corrupt)."""


class ImageTooLarge(ThumbnailError):
    """The image has too many pixels to be decoded safely."""


@dataclass(frozen=True)
class Thumbnail:
    #: The encoded thumbnail, or None when the original should be served as it is.
    data: bytes | None
    content_type: str
    width: int
    height: int


def output_type(source_content_type: str) -> str:
    """The content type of thumbnails of a source: JPEG stays JPEG, the rest become PNG."""
    return "image/jpeg" if source_content_type == "image/jpeg" else "image/png"


def make_thumbnail(
    source: Path,
    width: int,
    height: int,
    method: Method,
    out_type: str,
    *,
    max_pixels: int = MAX_PIXELS,
) -> Thumbnail:
    """A thumbnail of the image at ``source`` for a request of ``width`` x ``height``."""
    try:
        with Image.open(source, formats=list(IMAGE_FORMATS.values())) as image:
            return _thumbnail(image, width, height, method, out_type, max_pixels)
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"Image is too large to thumbnail: {e}") from None
    except ThumbnailError:
        raise
    except MemoryError:
        raise ImageTooLarge("Image is too large to thumbnail") from None
    except Exception as e:  # any decoder failure on untrusted input is the input's fault
        log.info("cannot thumbnail %s: %s: %s", source.name, type(e).__name__, e)
        raise ThumbnailError("The image could not be decoded") from None


def _thumbnail(
    image: Image.Image,
    width: int,
    height: int,
    method: Method,
    out_type: str,
    max_pixels: int,
) -> Thumbnail:
    raw_w, raw_h = image.size
    if raw_w <= 0 or raw_h <= 0:
        raise ThumbnailError("The image has no pixels")
    if raw_w * raw_h > max_pixels:
        raise ImageTooLarge(
            f"Image is too large to thumbnail ({raw_w}x{raw_h} pixels, at most {max_pixels})"
        )
    orientation = _orientation(image)
    swapped = orientation in (5, 6, 7, 8)
    src_w, src_h = (raw_h, raw_w) if swapped else (raw_w, raw_h)
    animated = bool(getattr(image, "is_animated", False))
    if src_w <= width and src_h <= height and not animated:
        # Smaller than asked for: the spec says to return the original content.
        return Thumbnail(None, Image.MIME.get(image.format or "", out_type), src_w, src_h)

    out_w, out_h = _output_size(src_w, src_h, width, height, method)
    if image.format == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that is still large enough.
        scale = out_w / _box(src_w, src_h, width, height, method)[2]
        need = (max(1, math.ceil(raw_w * scale)), max(1, math.ceil(raw_h * scale)))
        image.draft(None, need)
    image.seek(0)
    image.load()
    transpose = _TRANSPOSE.get(orientation)
    frame = image.transpose(transpose) if transpose is not None else image
    frame = _normalise_mode(frame, out_type)
    left, top, box_w, box_h = _box(frame.width, frame.height, width, height, method)
    resized = frame.resize(
        (out_w, out_h), Image.Resampling.LANCZOS, box=(left, top, left + box_w, top + box_h)
    )
    buffer = io.BytesIO()
    if out_type == "image/jpeg":
        resized.save(buffer, "JPEG", quality=80, optimize=True)
    else:
        resized.save(buffer, "PNG")
    return Thumbnail(buffer.getvalue(), out_type, out_w, out_h)


def _output_size(
    src_w: int, src_h: int, width: int, height: int, method: Method
) -> tuple[int, int]:
    if method == "scale":
        # The largest size with the source's aspect that fits in the request, never larger
        # than the source.
        factor = min(width / src_w, height / src_h, 1.0)
        return max(1, round(src_w * factor)), max(1, round(src_h * factor))
    # crop: exactly the requested size, unless that would mean upscaling; then the largest
    # region of the source with the requested aspect, at its own size.
    _, _, box_w, box_h = _box(src_w, src_h, width, height, method)
    if box_w >= width:
        return width, height
    return max(1, round(box_w)), max(1, round(box_h))


def _box(
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


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1, upright, when absent or unreadable: broken EXIF is common
    and must not make an otherwise good image fail)."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception as e:
        log.debug("ignoring unreadable EXIF: %s", e)
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _normalise_mode(image: Image.Image, out_type: str) -> Image.Image:
    """A mode that LANCZOS resampling and the output format both accept."""
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if out_type == "image/jpeg":
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return image
    return image.convert("RGBA" if has_alpha else "RGB")
