"""Images in and out: any path, bytes or array -> RGB uint8; annotated images -> files.

Colour order is RGB everywhere in emotiscope; BGR (OpenCV's order) exists only inside this
module. Decoding applies EXIF orientation, converts CMYK, grey and 16-bit images, and drops
alpha: the colour under transparent pixels is kept, as stored (a TIFF with associated alpha
stores it premultiplied, so its partly transparent pixels come out darker and fully
transparent ones black). Only formats whose size can be read from
the header are decoded (see imageheader.py), and the pixel limit and aspect-ratio limit are
checked first, so a small file cannot expand into gigabytes.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from ._quiet import quiet_native_output
from .errors import ImageTooLargeError, InputError, OutputError, UnsupportedImageError
from .imageheader import (  # noqa: F401
    ACCEPTED,
    declared_size,
    image_format,
    other_format,
    read_header,
    straight_alpha,
)
from .listing import folder_files, real_path
from .options import DEFAULT_MAX_PIXELS
from .outputs import check_new, display, write_bytes

# declared_size and image_format are re-exported above: callers import them from here.

# Wider or taller than 50:1 is refused before decoding. The widest ordinary photos, 360-degree
# panoramas, are about 10:1; a 50:1 strip shrunk to the detector's 640 px is 13 px tall, below
# any detectable face; and strips are what upscaling and resizing bombs are made of.
MAX_ASPECT = 50
# File-name suffixes, in one place (lower case, with the dot).
# Images load_image reads, which `predict` finds in folders:
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".webp", ".tif",
                            ".tiff", ".gif", ".pbm", ".pgm", ".ppm", ".pnm", ".pam"})
# ... of which OpenCV's imread (training folders) decodes all but GIF:
IMREAD_SUFFIXES = IMAGE_SUFFIXES - {".gif"}
# Still images by name, read or not (an animated GIF is a short clip, so not GIF):
STILL_SUFFIXES = IMREAD_SUFFIXES | {".heic", ".heif", ".avif", ".jxl", ".jp2"}
# Formats annotated copies are written in (others get ".png" appended):
WRITABLE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
# Videos by name (`predict` points them to `emotiscope video`):
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
                            ".wmv", ".flv", ".3gp", ".ts"})
_GLOB_CHARS = re.compile(r"[*?\[]")
# A URL, also as Path() leaves it ("https:/host/a.jpg"); two letters or more, so not "C:/".
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
ImageSource = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray


def sample_image_path() -> Path:
    """The photo shipped with the package (see emotiscope/data/README.md for its source)."""
    return Path(str(resources.files("emotiscope") / "data" / "sample.jpg"))


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               name: str | None = None) -> np.ndarray:
    """Path, encoded bytes or array -> HxWx3 RGB uint8.

    Arrays are taken as RGB (or grey / RGBA); convert OpenCV's BGR frames before passing them.
    A C-contiguous RGB uint8 array is returned as it is, without a copy.
    Raises InputError, with the reason and the fix in one line, for anything unusable:
    UnsupportedImageError for formats and layouts it does not read, ImageTooLargeError above
    `max_pixels`. `name` is what messages call a bytes or array source ("image bytes").
    """
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name or "array")
    if isinstance(source, bytes | bytearray | memoryview):
        if name is None:  # bytes from the caller's own code (not an upload): they may be a name
            _refuse_file_name(bytes(source))
        return _decode(bytes(source), name or "image bytes", max_pixels)
    if isinstance(source, str | os.PathLike):
        if isinstance(source, str) and (not source.strip() or _URL.match(source)):
            raise InputError(f"{source!r} is a URL: URLs are not fetched; download the file first "
                             "and pass its path" if source.strip() else
                             f"the image path is empty ({source!r}); pass the path of an image file")
        path = Path(source)
        return _decode(_read_file(path), display(path), max_pixels)
    raise InputError(f"cannot read an image from a {type(source).__name__}; "
                     "pass a file path, encoded image bytes or a numpy array")


def _refuse_file_name(data: bytes) -> None:
    """InputError for bytes that are no image but the name of an existing file."""
    if len(data) <= 4096 and read_header(data) is None and os.path.isfile(data):
        raise InputError(f"image bytes {data[:200]!r} are the name of a file, not image data; pass "
                         "the name as a str or Path to read that file")


def not_a_file(path: Path) -> str | None:
    """Why `path` is not a readable regular file (one line, with the fix), or None if it is."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if path.is_symlink():
            return (f"{display(path)} is a broken symbolic link (to {display(os.readlink(path))}); "
                    "fix or remove the link")
        hint = " (URLs are not fetched: download the file first)" if _URL.match(str(path)) else ""
        return f"{display(path)} does not exist{hint}; check the path"
    except OSError as exc:  # a symbolic link loop, a name too long, a folder we may not enter
        return f"cannot open {display(path)}: {exc.strerror or exc}; check the path"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return f"{display(path)} is a folder, not a file; give a file in it"
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
            or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"{display(path)} is {kind}, not a file; save the data to a file first"


def _read_file(path: Path) -> bytes:
    if path.is_dir():
        raise InputError(f"{display(path)} is a folder, not an image; pass image files, or give "
                         "the folder to `emotiscope predict`, which searches it")
    reason = not_a_file(path)
    if reason:
        raise InputError(reason)
    try:
        # O_NONBLOCK: a FIFO swapped in after the check above cannot block the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InputError(f"cannot read {display(path)}: {exc.strerror or exc}; check its "
                         "permissions") from None
    with open(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise InputError(f"{display(path)} is not a regular file; save the data to a file first")
        try:
            return f.read()
        except OSError as exc:
            raise InputError(f"cannot read {display(path)}: {exc.strerror or exc}; "
                             "check the disk") from None


def _decode(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    import cv2

    if not data:
        raise InputError(f"{name} is empty (0 bytes); it is not an image")
    header = read_header(data)
    if header is None:
        other = other_format(data)
        what = f"a {other} image" if other else "not an image format emotiscope reads"
        raise UnsupportedImageError(f"{name} is {what} (it reads {ACCEPTED}, whose size can be "
                                    "checked before decoding); convert it to JPEG or PNG")
    if header.size is None:
        raise InputError(f"{name} looks like a {header.format} but its header is corrupt or "
                         "truncated (no valid image size); re-export it")
    check_size(*header.size, name, max_pixels)
    if header.channels is not None and not 1 <= header.channels <= 4:
        raise UnsupportedImageError(f"{name} is a TIFF with {header.channels} channels; emotiscope "
                                    "reads grey, grey+alpha, RGB and RGBA (1-4 channels): save "
                                    "it as an RGB image")
    with quiet_native_output():  # libjpeg/libpng warnings: our InputError says it better
        try:
            # ANYDEPTH|ANYCOLOR keeps 16-bit and grey as they are and applies EXIF orientation
            # (IMREAD_UNCHANGED would skip the orientation). PAM has none, and ANYCOLOR would give
            # an RGB_ALPHA PAM in BGR but an RGB one in file order: UNCHANGED gives file order.
            flags = (cv2.IMREAD_UNCHANGED if header.format == "PAM"
                     else cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
            image = cv2.imdecode(np.frombuffer(straight_alpha(data), np.uint8), flags)
        except cv2.error:
            image = None
    if image is None:
        raise InputError(f"{name} looks like a {header.format} but cannot be decoded: it is "
                         "truncated or corrupt; re-export it")
    check_size(image.shape[1], image.shape[0], name, max_pixels)
    # PAM samples come in file order, which is RGB(A) by the PAM standard.
    # Swapped by indexing, not cvtColor, which refuses some depths (a 64-bit float TIFF).
    if image.ndim == 3 and image.shape[2] in (3, 4) and header.format != "PAM":
        image = image[..., [2, 1, 0, 3][:image.shape[2]]]
    return _array_to_rgb(image, name)


def check_size(width: int, height: int, name: str, max_pixels: int) -> None:
    """InputError for images above `max_pixels` (decompression bombs) or beyond MAX_ASPECT:1."""
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels), above the limit of "
            f"{max_pixels / 1e6:g} megapixels that guards against decompression bombs; shrink the "
            "image or raise the limit (max_pixels=..., --max-megapixels)")
    if max(width, height) > MAX_ASPECT * max(1, min(width, height)):
        raise InputError(
            f"{name} is {width}x{height}, an aspect ratio above {MAX_ASPECT}:1 (a strip, not a "
            "photo; no face fits in it); crop it to the part with faces")


def _array_to_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """Grey (+alpha) / RGB (+alpha) array of uint8, uint16, bool or float -> RGB uint8."""
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
        # Float images come as 0..1 (OpenCV, scikit-image) or as 0..255 (float TIFFs, arrays
        # computed from uint8): above 1 means the 0..255 convention.
        with np.errstate(over="ignore"):  # float64 beyond float32's range: +-inf, then clipped
            image = np.nan_to_num(image.astype(np.float32, copy=False), nan=0.0, posinf=255.0)
        scale = 1.0 if image.size and float(image.max()) > 1.0 else 255.0
        return (np.clip(image * scale, 0.0, 255.0) + 0.5).astype(np.uint8)
    raise InputError(f"{name} has pixel type {image.dtype}; expected uint8, uint16 or float "
                     "(0..1, or 0..255 when any value is above 1)")


# -- many inputs, and writing results -----------------------------------------------------------

def iter_image_paths(inputs: Iterable[str | os.PathLike],
                     on_error: Callable[[str, InputError], None] | None = None) -> Iterator[Path]:
    """Files as given, folders searched recursively for images (sorted), globs expanded.

    A missing path, a folder without images or a glob matching nothing raises InputError, or,
    with `on_error`, is passed to it and skipped. Each file is yielded once.
    """
    seen: set[str] = set()  # real paths
    for item in inputs:
        try:
            found = _expand(str(item))
        except InputError as exc:
            if on_error is None:
                raise
            on_error(str(item), exc)
            continue
        for path, real in found:
            if real not in seen:
                seen.add(real)
                yield path


def _expand(item: str) -> list[tuple[Path, str]]:
    """The files `item` names, each with its real path."""
    path = Path(item)
    if path.is_file():
        return [(path, real_path(path))]
    if path.is_dir():
        found = folder_files(path, IMAGE_SUFFIXES)
        if not found:
            raise InputError(f"folder {display(path)} holds no images (looked for "
                             f"{', '.join(sorted(IMAGE_SUFFIXES))}); check the folder")
        return found
    if _GLOB_CHARS.search(item):
        paths = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
        if not paths:
            raise InputError(f"pattern '{display(item)}' matches no files; check the pattern")
        return [(p, real_path(p)) for p in paths]
    raise InputError(not_a_file(path) or f"{display(path)} is not a file or folder; check the path")


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
        raise OutputError(f"cannot encode an image as {suffix!r}; use .jpg or .png")
    return encoded.tobytes()


def save_image(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an RGB uint8 image; the suffix picks the format. Refuses to overwrite unless asked."""
    path = check_new(path, overwrite, "output")
    # temp file + rename: a run killed mid-write never leaves a truncated image behind
    return write_bytes(path, encode_image(image, path.suffix or ".png"))

