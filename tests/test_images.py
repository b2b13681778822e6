from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotiscope.errors import InputError, OutputError, OutputExistsError
from emotiscope.images import (
    declared_size,
    encode_image,
    image_format,
    iter_image_paths,
    load_image,
    sample_image_path,
    save_image,
)

# Left half red, right half blue (RGB): any channel swap or flip shows.
RGB = np.zeros((40, 60, 3), np.uint8)
RGB[:, :30] = (255, 0, 0)
RGB[:, 30:] = (0, 0, 255)


def _encoded(image_rgb: np.ndarray, suffix: str) -> bytes:
    return encode_image(image_rgb, suffix)


def _close(a: np.ndarray, b: np.ndarray, tol: int = 0) -> bool:
    """Same shape; largest difference <= tol (lossless) or, for tol > 0, mean difference <= tol
    (lossy codecs blur the colour edge). A swapped channel or a flip differs by ~170."""
    diff = np.abs(a.astype(int) - b.astype(int)) if a.shape == b.shape else None
    return diff is not None and (diff.max() == 0 if tol == 0 else diff.mean() <= tol)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp", ".ppm"])
def test_lossless_formats_round_trip_as_rgb(tmp_path, suffix):
    path = tmp_path / f"x{suffix}"
    path.write_bytes(_encoded(RGB, suffix))
    image = load_image(path)
    assert image.dtype == np.uint8 and _close(image, RGB, tol=0 if suffix != ".webp" else 8)


def test_jpeg_path_bytes_and_str_agree(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(_encoded(RGB, ".jpg"))
    from_path, from_str = load_image(path), load_image(str(path))
    assert _close(from_path, RGB, tol=12)
    assert np.array_equal(from_path, load_image(path.read_bytes()))
    assert np.array_equal(from_path, from_str)


def test_bytes_that_name_a_file_say_to_pass_a_str_or_path(tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(_encoded(RGB, ".jpg"))
    with pytest.raises(InputError, match="are the name of a file, not image data; pass the name "
                       "as a str or Path"):
        load_image(os.fsencode(path))
    # a named source (an upload) is never looked up as a file; other bytes: not an image
    for data, name in ((os.fsencode(path), "the upload"), (b"/no/such/file.jpg", None)):
        with pytest.raises(InputError, match="is not an image format"):
            load_image(data, name=name)


def test_grey_and_16_bit_and_alpha_become_rgb_uint8():
    grey = cv2.cvtColor(RGB, cv2.COLOR_RGB2GRAY)
    assert _close(load_image(_encoded(grey, ".png")), cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), 0)
    deep = (RGB.astype(np.uint16) * 257)
    assert _close(load_image(_encoded(deep, ".png")), RGB, tol=0)
    rgba = np.dstack([RGB, np.full(RGB.shape[:2], 255, np.uint8)])
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert _close(load_image(png.tobytes()), RGB, tol=0)


@pytest.mark.parametrize(("depth", "tupltype", "sample", "rgb"), [
    (3, "RGB", [200, 50, 10], [200, 50, 10]),
    (4, "RGB_ALPHA", [200, 50, 10, 128], [200, 50, 10]),  # OpenCV's ANYCOLOR gave it as BGR
    (1, "GRAYSCALE", [77], [77, 77, 77]),
    (2, "GRAYSCALE_ALPHA", [77, 128], [77, 77, 77]),
])
def test_pam_samples_are_read_in_file_order(depth, tupltype, sample, rgb):
    header = (f"P7\nWIDTH 3\nHEIGHT 2\nDEPTH {depth}\nMAXVAL 255\nTUPLTYPE {tupltype}\n"
              "ENDHDR\n").encode()
    image = load_image(header + bytes(sample * 6))
    assert image.shape == (2, 3, 3) and image[1, 2].tolist() == rgb


def test_cmyk_jpeg_and_exif_orientation():
    pil = pytest.importorskip("PIL.Image")
    import io as std_io

    buffer = std_io.BytesIO()
    pil.fromarray(RGB).convert("CMYK").save(buffer, "JPEG", quality=95)
    assert _close(load_image(buffer.getvalue()), RGB, tol=12)
    exif = pil.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    buffer = std_io.BytesIO()
    pil.fromarray(RGB).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    upright = load_image(buffer.getvalue())
    assert _close(upright, np.rot90(RGB, k=-1), tol=12)


@pytest.mark.parametrize("array, expected", [
    (np.full((4, 5), 7, np.uint8), 7),
    (np.full((4, 5, 1), 7, np.uint8), 7),
    (np.full((4, 5, 2), 7, np.uint8), 7),
    (np.full((4, 5, 4), 7, np.uint8), 7),
    (np.full((4, 5, 3), 65535, np.uint16), 255),
    (np.full((4, 5, 3), 0.5, np.float32), 128),
    (np.ones((4, 5), bool), 255),
])
def test_arrays_of_any_common_layout(array, expected):
    image = load_image(array)
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8 and (image == expected).all()


def test_rgb_uint8_array_is_taken_as_rgb():
    assert np.array_equal(load_image(RGB), RGB)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((4, 5, 5), np.uint8), "shape"),
    (np.zeros((0, 5, 3), np.uint8), "shape"),
    (np.zeros((4, 5, 3), np.int64), "pixel type"),
    (12, "int"),
])
def test_bad_arrays_and_types(bad, words):
    with pytest.raises(InputError, match=words):
        load_image(bad)


@pytest.mark.parametrize("source, words", [
    ("https://example.com/photos/a.jpg", "'https://example.com/photos/a.jpg' is a URL.*download"),
    ("", "path is empty"), ("  ", "path is empty"),
])
def test_a_url_or_an_empty_path_says_so(source, words):
    """Not "https:/example.com/... does not exist" (Path folds the //) or ". is a folder"."""
    with pytest.raises(InputError, match=words):
        load_image(source)


def test_missing_empty_folder_and_non_image_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(tmp_path / "empty.jpg")
    (tmp_path / "notes.jpg").write_text("not a picture at all\n" * 20)
    with pytest.raises(InputError, match="not an image"):
        load_image(tmp_path / "notes.jpg")
    with pytest.raises(InputError, match="empty"):
        load_image(b"")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_files_are_reported_as_corrupt(tmp_path, suffix):
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    data = _encoded(noise, suffix)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as info:
        load_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def test_decompression_bomb_refused_from_the_header_with_the_limit_named():
    with pytest.raises(InputError, match="limit of 50 megapixels"):
        load_image(_png_header(20_000, 20_000))
    with pytest.raises(InputError, match="limit of 0.001 megapixels"):
        load_image(_encoded(np.zeros((40, 40, 3), np.uint8), ".png"), max_pixels=1000)
    assert load_image(_encoded(np.zeros((40, 40, 3), np.uint8), ".png"), max_pixels=1600).shape \
        == (40, 40, 3)


@pytest.mark.parametrize("suffix, kind", [(".png", "PNG"), (".jpg", "JPEG"), (".bmp", "BMP"),
                                          (".webp", "WebP"), (".tif", "TIFF"), (".ppm", "PNM")])
def test_header_sizes_match_the_decoded_images(suffix, kind):
    image = np.zeros((37, 53, 3), np.uint8)
    data = _encoded(image, suffix)
    assert image_format(data) == kind
    assert tuple(declared_size(data)) == (53, 37)


def test_header_sizes_of_gif_and_lossless_webp():
    pil = pytest.importorskip("PIL.Image")
    import io as std_io

    for fmt, options in (("GIF", {}), ("WEBP", {"lossless": True})):
        buffer = std_io.BytesIO()
        pil.new("RGB", (53, 37)).save(buffer, fmt, **options)
        assert tuple(declared_size(buffer.getvalue())) == (53, 37)


def test_unknown_header_size_is_none():
    assert declared_size(b"hello") is None and image_format(b"hello") is None


def test_iter_image_paths_files_folders_globs(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    for name in ("a/2.png", "a/deep/1.JPG", "a/notes.txt", ".hidden/x.png", "b.jpg", "c.bin"):
        (tmp_path / name).write_bytes(b"x")
    found = list(iter_image_paths([tmp_path / "a", tmp_path / "c.bin", str(tmp_path / "*.jpg"),
                                   tmp_path / "a" / "2.png"]))
    assert found == [tmp_path / "a" / "2.png", tmp_path / "a" / "deep" / "1.JPG",
                     tmp_path / "c.bin", tmp_path / "b.jpg"]


def test_iter_image_paths_reports_missing_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="does not exist"):
        list(iter_image_paths([tmp_path / "missing.jpg"]))
    errors = []
    found = list(iter_image_paths([tmp_path / "empty", str(tmp_path / "*.png"), tmp_path / "m"],
                                  on_error=lambda item, exc: errors.append(str(exc))))
    assert found == []
    assert [("holds no images" in e, "matches no files" in e, "does not exist" in e)
            for e in errors] == [(True, False, False), (False, True, False), (False, False, True)]


def test_save_image_refuses_to_overwrite(tmp_path):
    path = save_image(tmp_path / "sub" / "out.png", RGB)
    assert np.array_equal(load_image(path), RGB)
    with pytest.raises(OutputExistsError, match="--force"):
        save_image(path, RGB)
    save_image(path, RGB[:, ::-1], overwrite=True)
    assert np.array_equal(load_image(path), RGB[:, ::-1])
    with pytest.raises(OutputError, match="cannot encode"):
        encode_image(RGB, ".nope")


def test_sample_photo_is_shipped():
    image = load_image(sample_image_path())
    assert image.shape[2] == 3 and min(image.shape[:2]) >= 300


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and /dev/zero")
def test_fifos_devices_loops_and_broken_links_are_named_not_missing(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # reading it would block forever: no writer
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    cases = {fifo: "named pipe", Path("/dev/zero"): "a device",
             tmp_path / "loop.jpg": "symbolic links", tmp_path / "dangling.jpg": "broken symbolic link"}
    for path, words in cases.items():
        with pytest.raises(InputError, match=words) as info:
            load_image(path)
        assert "does not exist" not in str(info.value)
        with pytest.raises(InputError, match=words):  # as `emotiscope predict` meets them
            list(iter_image_paths([path]))
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)


def test_decoder_warnings_do_not_reach_the_terminal(capfd):
    rng = np.random.default_rng(1)
    jpeg = _encoded(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), ".jpg")
    scan = jpeg.index(b"\xff\xda") + 300
    damaged = jpeg[:scan] + b"\xff\xd0\xff\xd5" + jpeg[scan:]  # libjpeg: "Corrupt JPEG data"
    png = _encoded(np.zeros((8, 8, 3), np.uint8), ".png")
    chunk = b"tEXtkey\x00value"
    bad_crc = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk) ^ 1)
    for data in (damaged, png[:33] + bad_crc + png[33:]):  # libpng: "tEXt: CRC error"
        assert load_image(data).shape[2] == 3
    with pytest.raises(InputError):
        load_image(png[: len(png) // 2])  # libpng: "PNG input buffer is incomplete"
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_64_bit_float_tiff_is_read_in_rgb(tmp_path):
    # OpenCV decodes it as float64, which cvtColor refuses: the channels are swapped by indexing.
    bgr = np.zeros((8, 9, 3), np.float64)
    bgr[..., 2], bgr[..., 1] = 1.0, 0.5  # red 1, green 0.5, blue 0
    assert cv2.imwrite(str(tmp_path / "f64.tif"), bgr)
    assert load_image(tmp_path / "f64.tif")[0, 0].tolist() == [255, 128, 0]


def rgba_tiff(rgba: np.ndarray, extra_samples: int, order: str = "<", extra_kind: int = 3) -> bytes:
    """An uncompressed 8-bit RGBA TIFF whose ExtraSamples tag says what its alpha is (1:
    associated, i.e. premultiplied colour; 2: unassociated, as PIL and PNG store it), in byte
    `order` ("<": II, ">": MM), the tag a SHORT (3) or a LONG (4)."""
    h, w, _ = rgba.shape
    tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 4, 0), (259, 3, 1, 1), (262, 3, 1, 2),
            (273, 4, 1, 0), (277, 3, 1, 4), (278, 4, 1, h), (279, 4, 1, rgba.size),
            (338, extra_kind, 1, extra_samples)]
    bits_at = 8 + 2 + 12 * len(tags) + 4  # BitsPerSample's four values, then the pixels
    at = {258: bits_at, 273: bits_at + 8}
    entries = b"".join(struct.pack(order + ("HHIHxx" if kind == 3 and count == 1 else "HHII"), tag,
                                   kind, count, at.get(tag, value)) for tag, kind, count, value in tags)
    return ((b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(order + "IH", 8, len(tags))
            + entries + b"\x00" * 4 + struct.pack(order + "4H", 8, 8, 8, 8) + rgba.tobytes())


def test_an_rgba_tiff_gives_the_colour_an_rgba_png_gives():
    rgba = np.zeros((6, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = (0, 64, 128, 255)  # transparent to opaque, left to right
    png = load_image(cv2.imencode(".png", rgba[..., [2, 1, 0, 3]])[1].tobytes())
    assert (png == (200, 100, 50)).all()  # alpha dropped, the colour under it kept
    # unassociated alpha: libtiff premultiplied it (transparent pixels black); now as the PNG
    np.testing.assert_array_equal(load_image(rgba_tiff(rgba, 2)), png)
    # associated alpha: the file holds premultiplied colour, and it is read as stored
    premultiplied = rgba.copy()
    premultiplied[..., :3] = (rgba[..., :3] * (rgba[..., 3:] / 255) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(load_image(rgba_tiff(premultiplied, 1)), premultiplied[..., :3])


@pytest.mark.parametrize("order", ["<", ">"])
def test_unassociated_alpha_stored_as_a_long_is_read_as_stored_in_either_byte_order(order):
    # ExtraSamples is a SHORT by the spec, but libtiff reads a LONG too: in a big-endian file
    # its value 2 is in its last two bytes, which the patch has to clear as well
    rgba = np.zeros((6, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[..., 3] = (0, 64, 128, 255)
    assert (load_image(rgba_tiff(rgba, 2, order, extra_kind=4)) == (200, 100, 50)).all()
