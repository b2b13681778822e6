"""Image format and size from the first bytes of a file, before anything is decoded.

emotiscope decodes only formats whose size it can read here, so the pixel limit is checked
before a decoder allocates anything: JPEG, PNG, GIF, BMP, WebP, TIFF (classic and BigTIFF),
PNM (P1-P6) and PAM (P7). Other formats OpenCV could decode (JPEG 2000, AVIF, Radiance HDR,
...) are recognised only to name them when refusing them. Sizes are (width, height) in pixels.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

ACCEPTED = "JPEG, PNG, WebP, BMP, TIFF, GIF, PNM or PAM"


@dataclass(frozen=True)
class Header:
    """What the header says. `size` is None when it cannot be read or is impossible (corrupt);
    `channels` is known for TIFF only (OpenCV decodes TIFFs with 1 to 4)."""

    format: str
    size: tuple[int, int] | None
    channels: int | None = None


def image_format(data: bytes) -> str | None:
    """"JPEG", "PNG", "GIF", "BMP", "WebP", "TIFF", "PNM" or "PAM" from the magic bytes, else None."""
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
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if re.match(rb"P[1-6]\s", data[:3]):
        return "PNM"
    if re.match(rb"P7\s", data[:3]):
        return "PAM"
    return None


_OTHERS = (  # (test on the first bytes, name): formats refused by name
    (lambda d: d[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or d[:4] == b"\xff\x4f\xff\x51",
     "JPEG 2000"),
    (lambda d: d[4:8] == b"ftyp" and d[8:12] in (b"avif", b"avis"), "AVIF"),
    (lambda d: d[4:8] == b"ftyp" and d[8:12] in (b"heic", b"heix", b"mif1", b"msf1"), "HEIF"),
    (lambda d: d[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n" or d[:2] == b"\xff\x0a", "JPEG XL"),
    (lambda d: d[:10] == b"#?RADIANCE" or d[:6] == b"#?RGBE", "Radiance HDR"),
    (lambda d: re.match(rb"P[Ff]\s", d[:3]) is not None, "PFM"),
    (lambda d: d[:4] == b"\x59\xa6\x6a\x95", "Sun raster"),
    (lambda d: d[:4] == b"\x76\x2f\x31\x01", "OpenEXR"),
)


def other_format(data: bytes) -> str | None:
    """The name of an image format emotiscope recognises but does not read, else None."""
    return next((name for test, name in _OTHERS if test(data)), None)


def read_header(data: bytes) -> Header | None:
    """Format and declared size of an accepted format, else None."""
    kind = image_format(data)
    if kind is None:
        return None
    if kind == "TIFF":
        return _tiff(data)
    readers = {"PNG": _png_size, "GIF": _gif_size, "BMP": _bmp_size, "JPEG": _jpeg_size,
               "WebP": _webp_size, "PNM": _pnm_size, "PAM": _pam_size}
    try:
        size = readers[kind](data)
    except (struct.error, IndexError, ValueError):  # header shorter than it claims
        size = None
    return Header(kind, size if size and min(size) > 0 else None)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the header, or None when the format or header is unknown."""
    header = read_header(data)
    return header.size if header else None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The IHDR chunk carries a CRC: garbage after the signature is corrupt, not a huge image.
    if data[8:16] != b"\x00\x00\x00\x0dIHDR" or len(data) < 33:
        return None
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return (width, height) if max(width, height) < 2**31 else None


def _gif_size(data: bytes) -> tuple[int, int]:
    return struct.unpack("<HH", data[6:10])


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    (info_size,) = struct.unpack("<I", data[14:18])
    if info_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", data[18:22])
    if info_size not in (40, 52, 56, 64, 108, 124):
        return None
    width, height, _, bits, compression = struct.unpack("<iiHHI", data[18:34])
    width, height = abs(width), abs(height)
    (offset,) = struct.unpack("<I", data[10:14])
    # Uncompressed rows are stored in full: a file shorter than they need is truncated or
    # garbage, whatever size it claims.
    if compression == 0 and len(data) < offset + (width * bits + 31) // 32 * 4 * height:
        return None
    return width, height


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
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _tiff(data: bytes) -> Header:
    """Size and samples per pixel from the first directory (the image OpenCV decodes)."""
    try:
        tags = {tag: value for tag, (value, _) in _tiff_tags(data, {256, 257, 277}).items()}
    except (struct.error, IndexError):
        tags = {}
    size = (tags[256], tags[257]) if 256 in tags and 257 in tags else None
    return Header("TIFF", size if size and min(size) > 0 else None, tags.get(277, 1))


def unassociated_alpha_at(data: bytes) -> slice | None:
    """Where the first directory of a TIFF says, in its ExtraSamples tag (338), that its one extra
    sample is unassociated alpha (2): the bytes of that value (a SHORT, or a LONG as some writers
    store it, which libtiff reads too); else None."""
    if image_format(data) != "TIFF":
        return None
    try:
        value, at = _tiff_tags(data, {338}, count=1).get(338, (None, None))
    except (struct.error, IndexError):
        return None
    return at if value == 2 else None


def _tiff_tags(data: bytes, wanted: set[int], count: int | None = None) -> dict[int, tuple[int, slice]]:
    """{tag: (its first value, the bytes of that value)} of the `wanted` SHORT, LONG or LONG8
    tags of the first directory (`count`: only those with that many values)."""
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")  # BigTIFF: 8-byte offsets and counts, 20-byte entries
    offset_format, count_format, entry, inline = ("Q", "Q", 20, 8) if big else ("I", "H", 12, 4)
    first = 8 if big else 4
    (ifd,) = struct.unpack(order + offset_format, data[first:first + struct.calcsize(offset_format)])
    (entries,) = struct.unpack(order + count_format, data[ifd:ifd + struct.calcsize(count_format)])
    start = ifd + struct.calcsize(count_format)
    scalar = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8
    found: dict[int, tuple[int, slice]] = {}
    for k in range(min(entries, 4096)):
        at = start + entry * k
        tag, kind = struct.unpack(order + "HH", data[at:at + 4])
        if tag not in wanted or kind not in scalar:
            continue
        (n,) = struct.unpack(order + offset_format, data[at + 4:at + 4 + inline])  # value count
        if count is None or n == count:
            value = at + 4 + inline  # inline: SHORT, LONG (and LONG8 in BigTIFF) fit
            (first,) = struct.unpack_from(order + scalar[kind], data[value:value + inline])
            found[tag] = (first, slice(value, value + struct.calcsize(scalar[kind])))
    return found


_PNM = re.compile(rb"P[1-6](?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    match = _PNM.match(data[:1024])
    return (int(match.group(1)), int(match.group(2))) if match else None


def _pam_size(data: bytes) -> tuple[int, int] | None:
    head = data[:1024].split(b"ENDHDR", 1)[0]
    fields = dict(re.findall(rb"^(WIDTH|HEIGHT)[ \t]+(\d+)", head, re.MULTILINE))
    if b"WIDTH" not in fields or b"HEIGHT" not in fields:
        return None
    return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])


def straight_alpha(data: bytes) -> bytes | bytearray:
    """`data`, or for a TIFF with unassociated alpha a copy that calls its alpha unspecified.

    libtiff's RGBA reader, which OpenCV uses for 8-bit TIFFs, multiplies unassociated alpha into
    the colour; unspecified alpha it leaves alone, so the colour comes out as stored (as a PNG's
    does) and alpha is dropped after. A TIFF with associated alpha stores premultiplied colour and
    decodes as stored."""
    at = unassociated_alpha_at(data)
    if at is None:
        return data
    patched = bytearray(data)
    patched[at] = bytes(at.stop - at.start)  # ExtraSamples 0: unspecified
    return patched
