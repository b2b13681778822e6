"""Images in and out: any path, bytes or array -> RGB uint8; annotated images -> files.

Colour order is RGB everywhere in emotiscope; BGR (OpenCV's order) exists only inside this
module. Decoding applies EXIF orientation, converts CMYK, grey and 16-bit images, and drops
alpha (the colour under transparent pixels is kept). A header check refuses images above a
pixel limit before decoding them, so a small file cannot expand into gigabytes.
"""

from __future__ import annotations

import glob
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError, OutputExistsError
from .outputs import write_bytes

DEFAULT_MAX_PIXELS = 50_000_000
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif",
                            ".tiff", ".gif", ".pbm", ".pgm", ".ppm", ".pnm"})
_GLOB_CHARS = re.compile(r"[*?\[]")
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray


def sample_image_path() -> Path:
    """The photo shipped with the package (see emotiscope/data/README.md for its source)."""
    return Path(str(resources.files("emotiscope") / "data" / "sample.jpg"))


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Path, encoded bytes or array -> HxWx3 RGB uint8.

    Arrays are taken as RGB (or grey / RGBA); convert OpenCV's BGR frames before passing them.
    A C-contiguous RGB uint8 array is returned as it is, without a copy.
    Raises InputError, with the reason and the fix in one line, for anything unusable.
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, "array")
    if isinstance(source, bytes | bytearray | memoryview):
        return _decode(bytes(source), "image bytes", max_pixels)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        return _decode(_read_file(path), str(path), max_pixels)
    raise InputError(f"cannot read an image from a {type(source).__name__}; "
                     "pass a file path, encoded image bytes or a numpy array")


def _read_file(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image; pass image files, or give the folder "
                         "to `emotiscope predict`, which searches it")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        hint = " (URLs are not fetched: download the image first)" if "://" in str(path) else ""
        raise InputError(f"{path} does not exist{hint}; check the path") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}; check its permissions") from None
    return data


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    import cv2

    if not data:
        raise InputError(f"{name} is empty (0 bytes); it is not an image")
    size = declared_size(data)
    if size is not None:
        _check_pixels(size[0], size[1], name, max_pixels)
    # OpenCV logs its own decoder warnings to stderr; our InputError says it better.
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        # ANYDEPTH|ANYCOLOR keeps 16-bit and grey as they are and applies EXIF orientation
        # (IMREAD_UNCHANGED would skip the orientation).
        flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        image = None
    finally:
        cv2.utils.logging.setLogLevel(previous)
    if image is None:
        raise InputError(_undecodable_message(data, name))
    _check_pixels(image.shape[1], image.shape[0], name, max_pixels)
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB
        image = cv2.cvtColor(image, code)
    return _array_to_rgb(image, name)


def _check_pixels(width: int, height: int, name: str, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels), above the limit of "
            f"{max_pixels / 1e6:g} megapixels that guards against decompression bombs; shrink the "
            "image or raise the limit (max_pixels=..., --max-megapixels)")


def _undecodable_message(data: bytes, name: str) -> str:
    kind = image_format(data)
    if kind is None:
        return (f"{name} is not an image OpenCV can read (supported: JPEG, PNG, WebP, BMP, TIFF, "
                "GIF, PNM); convert it to JPEG or PNG")
    return f"{name} looks like a {kind} but cannot be decoded: it is truncated or corrupt; re-export it"


def _array_to_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """Grey (+alpha) / RGB (+alpha) array of uint8, uint16, bool or float (0..1) -> RGB uint8."""
    import cv2

    if image.ndim == 3 and image.shape[2] in (1, 2, 4):
        image = image[:, :, 0] if image.shape[2] <= 2 else image[:, :, :3]
    if image.shape[2:] not in ((), (3,)) or image.ndim < 2 or image.size == 0:
        raise InputError(f"{name} has shape {image.shape}; expected HxW grey, HxWx3 RGB or "
                         "HxWx4 RGBA with at least one pixel")
    image = _to_uint8(image, name)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image)


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise InputError(f"{name} has pixel type {image.dtype}; expected uint8, uint16 or float in 0..1")


# -- image size from the file header, before decoding -------------------------------------------

def image_format(data: bytes) -> str | None:
    """"JPEG", "PNG", "GIF", "BMP", "WebP", "TIFF" or "PNM" from the magic bytes, else None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if re.match(rb"P[1-6]\s", data[:3]):
        return "PNM"
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header, or None when the format or header is unknown."""
    kind = image_format(data)
    try:
        if kind == "PNG":
            return struct.unpack(">II", data[16:24])
        if kind == "GIF":
            return struct.unpack("<HH", data[6:10])
        if kind == "BMP":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        reader = {"JPEG": _jpeg_size, "WebP": _webp_size, "TIFF": _tiff_size, "PNM": _pnm_size}
        return reader[kind](data) if kind in reader else None
    except struct.error:  # header shorter than it claims: let the decoder report it
        return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return (int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1)
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", data[4:8])[0]
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    found: dict[int, int] = {}
    for k in range(count):
        tag, kind = struct.unpack(order + "HH", data[ifd + 2 + 12 * k:ifd + 6 + 12 * k])
        value = data[ifd + 10 + 12 * k:ifd + 14 + 12 * k]
        if tag in (256, 257):
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"), value[:2 if kind == 3 else 4])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    match = re.match(rb"P[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)", data[:1024])
    return (int(match.group(1)), int(match.group(2))) if match else None


# -- many inputs, and writing results -----------------------------------------------------------

def iter_image_paths(inputs: Iterable[str | os.PathLike],
                     on_error: Callable[[str, InputError], None] | None = None) -> Iterator[Path]:
    """Files as given, folders searched recursively for images (sorted), globs expanded.

    A missing path, a folder without images or a glob matching nothing raises InputError, or,
    with `on_error`, is passed to it and skipped. Each file is yielded once.
    """
    seen: set[Path] = set()
    for item in inputs:
        try:
            found = _expand(str(item))
        except InputError as exc:
            if on_error is None:
                raise
            on_error(str(item), exc)
            continue
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield path


def _expand(item: str) -> list[Path]:
    path = Path(item)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if _is_image_file(p, path))
        if not found:
            raise InputError(f"folder {path} holds no images (looked for "
                             f"{', '.join(sorted(IMAGE_SUFFIXES))}); check the folder")
        return found
    if _GLOB_CHARS.search(item):
        found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        if not found:
            raise InputError(f"pattern {item!r} matches no files; check the pattern")
        return found
    raise InputError(f"{path} does not exist; check the path")


def _is_image_file(path: Path, root: Path) -> bool:
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def encode_image(image: np.ndarray, suffix: str = ".png", quality: int = 92) -> bytes:
    """RGB (or grey) uint8 image -> encoded bytes; `suffix` (".jpg", ".png", ...) picks the format."""
    import cv2

    suffix = suffix.lower() if suffix.startswith(".") else "." + suffix.lower()
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg", ".jpe") else []
    try:
        ok, encoded = cv2.imencode(suffix, bgr, params)
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot encode an image as {suffix!r}; use .jpg or .png")
    return encoded.tobytes()


def save_image(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an RGB uint8 image; the suffix picks the format. Refuses to overwrite unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --force (overwrite=True) to replace "
                                "it or choose another output folder")
    # temp file + rename: a run killed mid-write never leaves a truncated image behind
    return write_bytes(path, encode_image(image, path.suffix or ".png"))

