"""Sizes read before decoding, for every format decoded; other formats refused by name."""

from __future__ import annotations

import struct
from unittest import mock

import numpy as np
import pytest
from fixtures.bad_images import JP2_SIGNATURE, pam_bytes, png_header, tiff_bytes

from emotiscope.errors import InputError
from emotiscope.imageheader import declared_size, image_format, other_format, read_header
from emotiscope.images import load_image

RGB = (np.arange(20 * 30 * 3).reshape(20, 30, 3) % 251).astype(np.uint8)


def _refused(data: bytes, *words: str, max_pixels: int = 50_000_000) -> str:
    cv2 = pytest.importorskip("cv2")
    never = AssertionError("decoded: it should have been refused from its header")
    with mock.patch.object(cv2, "imdecode", side_effect=never), pytest.raises(InputError) as info:
        load_image(data, max_pixels=max_pixels)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message
    return message


@pytest.mark.parametrize("big", [False, True])
def test_tiff_and_bigtiff_sizes_are_read_and_small_ones_decode(big):
    data = tiff_bytes(RGB, big=big)
    assert image_format(data) == "TIFF" and declared_size(data) == (30, 20)
    assert np.array_equal(load_image(data), RGB)


def test_bigtiff_claiming_a_huge_size_is_refused_before_decoding():
    # 2.8 MB BigTIFFs like this took 22 s and 5.4 GB when OpenCV decoded them first.
    data = tiff_bytes(RGB, big=True, size=(200_000, 100_000))
    assert declared_size(data) == (200_000, 100_000)
    _refused(data, "200000x100000", "limit of 50 megapixels")


def test_pam_size_is_read_and_a_huge_pam_is_refused():
    small = pam_bytes(30, 20, RGB.tobytes())
    assert image_format(small) == "PAM" and declared_size(small) == (30, 20)
    assert np.array_equal(load_image(small), RGB)
    _refused(pam_bytes(100_000, 100_000), "100000x100000", "megapixels")


def test_jpeg_2000_and_other_formats_are_refused_by_name():
    cv2 = pytest.importorskip("cv2")
    ok, jp2 = cv2.imencode(".jp2", RGB)
    data = jp2.tobytes() if ok else JP2_SIGNATURE + b"\0" * 64
    assert image_format(data) is None and other_format(data) == "JPEG 2000"
    _refused(data, "JPEG 2000", "JPEG, PNG, WebP, BMP, TIFF, GIF, PNM or PAM", "convert it")
    avif = struct.pack(">I", 32) + b"ftypavif" + b"\0" * 64
    _refused(avif, "AVIF")
    _refused(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4 +X 4\n" + b"\0" * 64, "Radiance HDR")
    _refused(b"\x01\x02\x03 something else entirely", "not an image format emotiscope reads")


def test_garbage_png_header_is_corrupt_not_a_bomb():
    # Random bytes after the PNG signature once read as a 1.9-terapixel "bomb".
    garbage = b"\x89PNG\r\n\x1a\n" + bytes(range(200, 256)) * 4
    message = _refused(garbage, "corrupt")
    assert "megapixels" not in message
    _refused(png_header(1_400_000, 1_400_000, valid_crc=False), "corrupt")
    # A consistent header claiming that many pixels is a bomb, and is named one.
    _refused(png_header(1_400_000, 1_400_000), "megapixels", "decompression bombs")
    _refused(png_header(0, 10), "corrupt")


def test_bmp_shorter_than_its_uncompressed_rows_is_corrupt():
    cv2 = pytest.importorskip("cv2")
    bmp = cv2.imencode(".bmp", RGB)[1].tobytes()
    assert declared_size(bmp) == (30, 20)
    huge = bmp[:18] + struct.pack("<ii", 60_000, 60_000) + bmp[26:]
    _refused(huge, "corrupt")


def test_five_channel_tiff_is_named_unsupported_precisely():
    five = np.dstack([RGB, RGB[:, :, :2]])
    header = read_header(tiff_bytes(five))
    assert header is not None and header.channels == 5
    message = _refused(tiff_bytes(five), "TIFF with 5 channels", "save it as an RGB image")
    assert "corrupt" not in message
    four = np.dstack([RGB, np.full((20, 30), 255, np.uint8)])
    assert np.array_equal(load_image(tiff_bytes(four)), RGB)


def test_float_tiffs_of_0_to_255_and_of_0_to_1_both_read_right():
    grey = RGB[:, :, 0]
    as_255 = load_image(tiff_bytes(grey.astype(np.float32)))  # once read as all white
    assert np.array_equal(as_255[:, :, 0], grey)
    as_1 = load_image(tiff_bytes(grey.astype(np.float32) / 255.0))
    assert np.abs(as_1[:, :, 0].astype(int) - grey).max() <= 1
    assert np.array_equal(load_image(RGB.astype(np.float64)), RGB)  # arrays follow the same rule
