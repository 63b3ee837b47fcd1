"""Checks of a downloaded photo: a whole JPEG or PNG within size and pixel limits.

Pure apart from reading the file it is given; the photo module
(:mod:`syndication.photos`) calls :func:`verify_image` before it attaches anything.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from syndication.errors import PermanentError

ACCEPTED_FORMATS: dict[str, tuple[str, str]] = {
    "JPEG": ("image/jpeg", ".jpg"),
    "PNG": ("image/png", ".png"),
}
"""Pillow format → (content type, file extension): the types every marketplace takes."""


@dataclass(frozen=True)
class ImageLimits:
    """What an image must satisfy to be attached."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 100


class ImageRejected(PermanentError):
    """The file is not an image the marketplaces take; the message says why."""


@dataclass(frozen=True)
class VerifiedImage:
    format: str
    content_type: str
    extension: str
    width: int
    height: int
    size: int
    sha256: str


def verify_image(path: Path, limits: ImageLimits) -> VerifiedImage:
    """Check that ``path`` is a whole JPEG or PNG within ``limits``; :class:`ImageRejected` if not.

    The header is read first (format, dimensions) so a decompression bomb is
    refused before any pixel is decoded; then the whole image is decoded, which
    catches truncated and corrupt files that a header check alone would pass.
    """
    size = path.stat().st_size
    if size == 0:
        raise ImageRejected("the file is empty")
    if size > limits.max_bytes:
        raise ImageRejected(f"the file is too large: {size} bytes, the limit is {limits.max_bytes}")
    kind = "image"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                kind = str(image.format)
                width, height = image.size
                if kind not in ACCEPTED_FORMATS:
                    raise ImageRejected(
                        f"the type {kind} is not taken by the marketplaces (only JPEG and PNG)"
                    )
                _check_dimensions(width, height, limits)
                image.verify()
            with Image.open(path) as image:
                image.load()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"the image has too many pixels ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("the file is not an image (neither JPEG nor PNG)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the {kind} file is damaged or truncated ({exc})") from exc
    content_type, extension = ACCEPTED_FORMATS[kind]
    return VerifiedImage(kind, content_type, extension, width, height, size, _sha256(path))


def _check_dimensions(width: int, height: int, limits: ImageLimits) -> None:
    if width * height > limits.max_pixels:
        raise ImageRejected(
            f"the image has too many pixels: {width}x{height}, the limit is {limits.max_pixels}"
        )
    if min(width, height) < limits.min_side:
        raise ImageRejected(
            f"the image is too small: {width}x{height}, at least {limits.min_side} px a side"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
