"""Decode any common image into 8-bit RGB, and write lossless PNGs.

Decoding goes through OpenCV because it keeps 16-bit depth and alpha, and refuses truncated files
(it returns nothing rather than a partly grey picture), which lets us name the bad file. A JPEG whose
scan is damaged does decode, with part of it made up; libjpeg's warning is caught and the file is
refused by name like any bad image (``data.on_bad_image`` decides whether that stops the stage).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import cv2.utils.logging
import numpy as np
from PIL import Image

from progrestore.errors import InputError
from progrestore.io.atomic import write_bytes

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_ERROR
)  # errors only: a bad file is reported by us, with its name

_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


class ImageDecodeError(InputError):
    """A source file that is not a readable image."""


JPEG_MAGIC = b"\xff\xd8"


@contextlib.contextmanager
def _libjpeg_messages() -> Iterator[list[str]]:
    """Collect what libjpeg writes straight to file descriptor 2 ("Corrupt JPEG data: ...") while the
    block runs, instead of letting it reach the user's terminal unattributed."""
    messages: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                if "JPEG" in line:
                    messages.append(line.strip())
                elif line.strip():  # someone else's output in the meantime: passed on
                    print(line, file=sys.stderr)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Bytes of a PNG/JPEG/TIFF/BMP/WebP file -> HxWx3 uint8 RGB.

    Grayscale is replicated to three channels, alpha is composited onto white (the usual backdrop
    of cut-out photographs), 16-bit values are rounded to 8 bits (x / 257).
    """
    if data[:2] == JPEG_MAGIC:
        with _libjpeg_messages() as messages:
            raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        if messages:  # decoded, but with a damaged scan: part of the picture would be made up
            raise ImageDecodeError(f"{name}: damaged JPEG data (libjpeg: {messages[0]})")
    else:
        raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if raw is None:
        raise ImageDecodeError(f"{name}: not a readable image (corrupt, truncated or not an image file)")
    if raw.ndim == 3 and raw.shape[2] in (3, 4):  # OpenCV's BGR(A) -> RGB(A)
        raw = np.concatenate([raw[:, :, 2::-1], raw[:, :, 3:]], axis=2)
    return to_rgb8(raw, name)


def to_rgb8(raw: np.ndarray, name: str) -> np.ndarray:
    """Gray, RGB or RGBA array of 8- or 16-bit integers -> HxWx3 uint8 RGB (the rules above)."""
    if raw.dtype == np.uint16:
        raw = np.round(raw.astype(np.float32) / 257.0).astype(np.uint8)
    elif raw.dtype != np.uint8:
        raise ImageDecodeError(f"{name}: unsupported sample type {raw.dtype}; expected 8- or 16-bit integers")
    if raw.ndim == 2:
        raw = raw[:, :, None]
    channels = raw.shape[2] if raw.ndim == 3 else 0
    if channels == 1:
        return np.repeat(raw, 3, axis=2)
    if channels == 3:
        return np.ascontiguousarray(raw)
    if channels == 4:
        alpha = raw[:, :, 3:4].astype(np.float32) / 255.0
        rgb = raw[:, :, :3].astype(np.float32)
        return np.round(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    raise ImageDecodeError(f"{name}: shape {raw.shape}; expected gray, colour or colour with alpha")


class ImageTooLarge(InputError):
    """An image with more pixels than the command that reads it takes."""


def _too_large(path: Path, pixels: int, max_pixels: int, size: str = "") -> ImageTooLarge:
    shown = f"{size}, {pixels:,} pixels" if size else f"{pixels:,} pixels"
    return ImageTooLarge(
        f"{path}: {shown}, more than the {max_pixels:,} this command takes; give a smaller image"
    )


def check_pixel_count(path: Path, max_pixels: int) -> None:
    """Refuse an image of more than ``max_pixels`` pixels from its header alone (PIL reads only the header
    in ``Image.open``), before decoding takes gigabytes. A file PIL cannot parse is left to the decoder;
    one PIL refuses as a decompression bomb is refused in the same line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused here, or not at all
            with Image.open(path) as image:
                width, height = image.size
    except Image.DecompressionBombError as err:  # "Image size (N pixels) exceeds limit of M pixels, ..."
        found = re.search(r"\((\d+) pixels\)", str(err))
        pixels = int(found.group(1)) if found else 2 * (Image.MAX_IMAGE_PIXELS or 0) + 1
        raise _too_large(path, pixels, max_pixels) from err
    except OSError:  # unreadable, or a format PIL does not know: the decoder names the problem
        return
    if width * height > max_pixels:
        raise _too_large(path, width * height, max_pixels, f"{width}x{height}")


def read_image(path: Path, max_pixels: int | None = None) -> np.ndarray:
    """The image at ``path`` as HxWx3 uint8 RGB; with ``max_pixels``, refused by name when larger (from
    its header when PIL reads the format, else once decoded)."""
    path = Path(path)
    if max_pixels is not None:
        check_pixel_count(path, max_pixels)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageDecodeError(f"{path}: cannot be read ({err.strerror})") from err
    image = decode_image(data, str(path))
    height, width = image.shape[:2]
    if max_pixels is not None and height * width > max_pixels:
        raise _too_large(path, height * width, max_pixels, f"{width}x{height}")
    return image


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), _PNG_PARAMS)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Lossless, deterministic PNG written atomically."""
    write_bytes(Path(path), encode_png(rgb))
