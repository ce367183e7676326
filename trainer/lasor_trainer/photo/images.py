"""Reading user photos: one-line errors for bad files, a pixel limit before decoding, EXIF orientation,
grey-scale / 16-bit / CMYK / palette / alpha images turned into 8-bit RGB."""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps

from lasor_shared.errors import LasorError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MAX_PIXELS = 50_000_000  # larger photos are refused before their pixels are decoded (decompression bombs)
MIN_SIDE = 16


class PhotoError(LasorError):
    """This photo cannot be used (unreadable, too large, no person): a folder run lists it and goes on."""


def read_image(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """(H, W, 3) uint8 RGB, upright by its EXIF orientation; PhotoError (one line) otherwise."""
    try:
        if os.path.getsize(path) == 0:
            raise PhotoError(f"--image {path}: the file is empty")
    except OSError as e:
        raise PhotoError(f"--image {path}: cannot be read ({e.strerror or e})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                W, H = img.size
                if W * H > max_pixels:
                    raise PhotoError(f"--image {path}: {W}×{H} pixels is over the limit of {max_pixels / 1e6:g} "
                                     "megapixels (refused before decoding; scale the photo down)")
                img.load()
                img = _upright(img)
                rgb = _to_rgb(img)
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PhotoError(f"--image {path}: refused as a possible decompression bomb ({e})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        what = "the image data is truncated" if "truncated" in msg else "not a readable image"
        raise PhotoError(f"--image {path}: {what} ({msg[:200]})") from None
    if min(rgb.shape[:2]) < MIN_SIDE:
        raise PhotoError(f"--image {path}: image is {rgb.shape[1]}×{rgb.shape[0]} pixels, too small for "
                         f"person detection (at least {MIN_SIDE} a side)")
    return rgb


def _upright(img: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation tag (left as it is when the EXIF block itself is broken)."""
    try:
        return ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError, AttributeError):
        return img


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # 16/32-bit grey: stretched to 8 bits
        a = np.asarray(img, np.float64)
        lo, hi = np.nanmin(a), np.nanmax(a)
        a = np.zeros_like(a) if not hi > lo else (a - lo) / (hi - lo) * 255
        return np.ascontiguousarray(np.repeat(np.nan_to_num(a).round().astype(np.uint8)[..., None], 3, -1))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.ascontiguousarray(np.asarray(Image.alpha_composite(white, rgba).convert("RGB")))
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))  # L, 1, P, CMYK, YCbCr, LAB, HSV, RGB


def list_images(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(path, f)))
        if not files:
            raise LasorError(f"--image {path}: the folder has no images ({', '.join(IMAGE_EXTS)})")
        return files
    if not os.path.isfile(path):
        raise LasorError(f"--image {path}: no such file or folder")
    return [path]
