"""A photo as the first frame: decoded safely, oriented, squared to the model size, with its field of view.

Accepted: anything Pillow reads as a still image (PNG, JPEG, WebP, TIFF, BMP, ...), 8- or 16-bit,
grayscale, RGB, palette or with alpha (composited over mid-grey). Refused with a message saying why:
files that are not images, truncated files, animations, images smaller than ``MIN_SIDE`` pixels a
side or larger than ``MAX_PIXELS`` pixels, longer than ``MAX_ASPECT_RATIO`` times their width (or the
other way round), files over ``MAX_FILE_BYTES``, and float images holding NaN or infinite values.

Memory is bounded for every shape: JPEGs are decoded at a reduced scale (``draft``), only the centre
square is kept and it is box-reduced in Pillow to about twice the model size before any float copy is
made, so a photo costs at most its decoded 8- or 16-bit pixels plus a few model-sized float images.

The field of view comes from the setting when one is given, else from the EXIF 35 mm-equivalent focal
length when the file has one, else ``DEFAULT_FOV_DEGREES``; it describes the square crop, horizontally.
"""

from __future__ import annotations

import importlib.resources
import io
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from mirage_viz.geometry.cameras import FOV_RANGE, Intrinsics, check_fov_degrees
from mirage_viz.inputs import open_input_file

__all__ = ["ASPECT_TOLERANCE", "DEFAULT_FOV_DEGREES", "MAX_ASPECT_RATIO", "MAX_FILE_BYTES", "MAX_PIXELS", "MIN_SIDE", "PHOTOS_DIR", "Photo", "centre_square", "load_photo", "sample_photos"]

DEFAULT_FOV_DEGREES = 60.0
MAX_PIXELS = 50_000_000  # refuse larger images before decoding them
MAX_ASPECT_RATIO = 8.0  # longest side / shortest side: a panorama, not a strip
MAX_FILE_BYTES = 256 * 2**20
MIN_SIDE = 32
ASPECT_TOLERANCE = 0.01  # a camera file and a photo of the same camera differ in aspect by rounding only
PHOTOS_DIR = Path(str(importlib.resources.files("mirage_viz") / "assets" / "photos"))  # package data
_DIAGONAL_35MM = math.hypot(36.0, 24.0)  # mm: "35 mm equivalent" focal lengths refer to this diagonal
_EXIF_IFD, _FOCAL_35MM = 0x8769, 0xA405


@dataclass(frozen=True)
class Photo:
    """A photo ready to be the first frame."""

    image: torch.Tensor  # (3, size, size) in [0, 1]
    fov_degrees: float  # horizontal field of view of the square crop
    fov_source: str  # "setting", "exif" or "default"
    name: str  # file name (or "photo")
    original_size: tuple[int, int]  # (width, height) after EXIF orientation

    @property
    def intrinsics(self) -> Intrinsics:
        size = self.image.shape[-1]
        return Intrinsics.from_fov(size, size, self.fov_degrees)

    def intrinsics_from(self, file: Intrinsics, where: str = "the camera file") -> Intrinsics:
        """A camera file's intrinsics ``file`` (at its own image size) as they see this photo's square: scaled to the
        photo's size, then cut as the photo was (:func:`centre_square`) and scaled to the model size. A file whose
        image has another shape than the photo is refused: its intrinsics would not describe these pixels."""
        width, height = self.original_size
        if abs(file.width / file.height - width / height) > ASPECT_TOLERANCE * width / height:
            raise ValueError(f"{self.name} is {width} x {height} pixels but {where} describes images of {file.width} x "
                             f"{file.height}, another shape; accepted: a photo of the shape the file's intrinsics "
                             f"describe (crop or pad the photo to {file.width / file.height:.3f}:1), or --fov to use "
                             "the photo alone with the file's poses")
        size = self.image.shape[-1]
        left, top, side, _ = centre_square(width, height, size)
        return file.scaled_to(width, height).cropped(left, top, side, side).scaled_to(size, size)


def sample_photos() -> list[Path]:
    """The photos shipped in ``mirage_viz/assets/photos`` (CC0 / public domain, from scikit-image's data)."""
    return sorted(p for p in PHOTOS_DIR.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))


@contextmanager
def _opened(source: str | Path | bytes | Image.Image) -> Iterator[tuple[Image.Image, str]]:
    """The image (header read, pixels not yet decoded) and its name; the file is closed after the block."""
    if isinstance(source, Image.Image):
        yield source, "photo"
        return
    name = "photo" if isinstance(source, bytes) else Path(source).name
    with io.BytesIO(source) if isinstance(source, bytes) else open_input_file(source, "photo", MAX_FILE_BYTES) as stream:
        try:
            image = Image.open(stream)
        except UnidentifiedImageError:
            raise ValueError(f"{name} is not an image Pillow can read; accepted: PNG, JPEG, WebP, TIFF, BMP") from None
        except Image.DecompressionBombError:
            raise ValueError(f"{name} is too large to open safely; accepted: at most {MAX_PIXELS:,} pixels") from None
        except Exception as error:  # noqa: BLE001 - a header cut short or garbled: Pillow raises many kinds
            raise ValueError(f"{name} could not be read ({type(error).__name__}: {error}); is the file complete?") from None
        with image:
            yield image, name


def _check(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"{name} is {width} x {height} pixels, too large; accepted: at most {MAX_PIXELS:,} pixels")
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"{name} is {width} x {height} pixels, too small; accepted: at least {MIN_SIDE} pixels a side")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ValueError(f"{name} is {width} x {height} pixels, {max(width, height) / min(width, height):,.1f} times longer "
                         f"than wide; accepted: aspect ratios up to {MAX_ASPECT_RATIO:g}:1 (the centre square is used)")
    if getattr(image, "is_animated", False) and getattr(image, "n_frames", 1) > 1:
        raise ValueError(f"{name} is animated ({image.n_frames} frames); accepted: a still image (save one frame as PNG or JPEG)")


def _reducible(image: Image.Image) -> Image.Image:
    """The image in a mode Pillow can box-reduce, keeping its precision (16-bit as 32-bit integers)."""
    if image.mode.startswith("I;16"):
        return image.convert("I")
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F"):
        return image.convert("RGB")
    return image


def centre_square(width: int, height: int, size: int) -> tuple[int, int, int, int]:
    """The square a photo of ``width`` x ``height`` pixels is cut to, as ``(left, top, side, factor)``: centred, its
    side a whole multiple of the ``factor`` it is box-reduced by (to no less than ``2 * size`` a side), so that
    the crop and its intrinsics (:meth:`Photo.intrinsics_from`) are exact."""
    side = min(width, height)
    factor = max(1, side // (2 * size))
    side -= side % factor
    return (width - side) // 2, (height - side) // 2, side, factor


def _centre_square(image: Image.Image, size: int) -> Image.Image:
    """The centre square of ``image`` (:func:`centre_square`), box-reduced by a whole factor."""
    left, top, side, factor = centre_square(*image.size, size)
    return _reducible(image).reduce(factor, box=(left, top, left + side, top + side))


def _to_rgb_array(image: Image.Image, source_mode: str | None = None) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] from any Pillow mode: 16-bit and float scaled, alpha over mid-grey.

    ``source_mode``: the mode the image had before it was made reducible (16-bit images become 32-bit ``I``).
    Raises ``ValueError`` for a float image with NaN or infinite values.
    """
    source_mode = source_mode or image.mode
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float32)
        array = array / (65535.0 if source_mode.startswith("I;16") or array.max() > 255 else 255.0)
        return np.repeat(np.clip(array, 0, 1)[..., None], 3, axis=2)
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if not np.isfinite(array).all():
            raise ValueError("has NaN or infinite pixel values; accepted: finite pixel values")
        low, high = float(array.min()), float(array.max())
        array = (array - low) / max(high - low, 1e-12)
        return np.repeat(array[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3] * rgba[..., 3:] + 0.5 * (1.0 - rgba[..., 3:])
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _exif_fov(image: Image.Image, width: int, height: int, size: int) -> float | None:
    """Horizontal field of view of the ``size`` square centre crop, from the 35 mm-equivalent focal length."""
    try:
        focal_35mm = float(image.getexif().get_ifd(_EXIF_IFD).get(_FOCAL_35MM) or 0)
    except (AttributeError, TypeError, ValueError, OSError):
        return None
    if not 5.0 <= focal_35mm <= 2000.0:
        return None
    focal_px = focal_35mm / _DIAGONAL_35MM * math.hypot(width, height)  # in the original's pixels
    focal_px *= size / min(width, height)  # after the resize that maps the short side to ``size``
    return math.degrees(2 * math.atan(size / 2 / focal_px))


def load_photo(source: str | Path | bytes | Image.Image, size: int = 256, fov_degrees: float | None = None) -> Photo:
    """Read a photo and make it a (3, size, size) first frame: EXIF-oriented, resized, centre-cropped.

    Args:
        source: a path, the file's bytes, or a Pillow image.
        size: the model's image size (square).
        fov_degrees: horizontal field of view in degrees; None reads the EXIF focal length, else 60.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < MIN_SIDE:
        raise ValueError(f"size must be an integer >= {MIN_SIDE}, got {size!r}")
    if fov_degrees is not None:
        fov_degrees = check_fov_degrees(fov_degrees)
    with _opened(source) as (image, name):
        try:
            _check(image, name)
            original = image.size
            if image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that still leaves 2 * size a side
                scale = min(1.0, 2 * size / min(image.size))
                image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
            image.load()
            exif_fov = _exif_fov(image, *original, size) if fov_degrees is None else None  # orientation-free
            decoded = image.size
            if isinstance(source, Image.Image):
                image = ImageOps.exif_transpose(image)  # a copy: the caller's image stays as it was
            else:
                ImageOps.exif_transpose(image, in_place=True)  # no second copy of a large photo
            width, height = original[::-1] if image.size != decoded else original  # upright (a turn swaps the sides)
            source_mode = image.mode
            square = _centre_square(image, size)
        except ValueError:
            raise
        except Exception as error:  # noqa: BLE001 - truncated or corrupt data: Pillow raises many kinds
            raise ValueError(f"{name} could not be decoded ({type(error).__name__}: {error}); is the file complete?") from None
    try:
        rgb = torch.from_numpy(np.ascontiguousarray(_to_rgb_array(square, source_mode))).permute(2, 0, 1)  # [3, s, s]
    except ValueError as error:
        raise ValueError(f"{name} {error}") from None
    square = torch.nn.functional.interpolate(rgb[None], size=(size, size), mode="bilinear", antialias=True,
                                             align_corners=False)[0].clamp(0, 1).contiguous()
    if fov_degrees is not None:
        fov, fov_source = float(fov_degrees), "setting"
    else:
        usable = exif_fov is not None and FOV_RANGE[0] <= exif_fov <= FOV_RANGE[1]
        fov, fov_source = (exif_fov, "exif") if usable else (DEFAULT_FOV_DEGREES, "default")
    return Photo(image=square, fov_degrees=fov, fov_source=fov_source, name=name, original_size=(width, height))
