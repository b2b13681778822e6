from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotiscope.errors import ConfigError, DataError
from emotiscope.training import data
from emotiscope.training.data import load_any, load_csv, load_folder
from emotiscope.training.faceset import FaceSet, balance, select_classes, split_fraction

# The fer2013.csv `emotion` ids as documented with the data set (test fixture, not product code).
CSV_IDS = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
GOOD = " ".join(["128"] * 2304)


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch) -> Path:
    """Every test caches under tmp_path, never in ~/.cache."""
    monkeypatch.setenv("EMOTISCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "emotiscope"


def write_csv(path: Path, rows: list[str], header: str = "emotion,pixels,Usage") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def write_image(path: Path, hw: tuple[int, int], colour: tuple[int, ...] | int) -> Path:
    """A uniform image; colour is a grey level, (B, G, R) or (B, G, R, A) as cv2 writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 1 if isinstance(colour, int) else len(colour)
    img = np.zeros((*hw, channels), np.uint8) + np.array(colour, np.uint8)
    assert cv2.imwrite(str(path), img if channels > 1 else img[:, :, 0])
    return path


def make_tree(root: Path, splits=("train", "val"), classes=("happy", "sad", "neutral"),
              per_class: int = 3) -> Path:
    """split/class/*.png|jpg images of assorted sizes and colours (plain class folders if no split)."""
    sizes = [(48, 48), (100, 60), (31, 77)]
    colours = [90, (0, 0, 255), (10, 200, 30, 255)]  # grey, red (BGR), green with alpha
    for split in splits or ("",):
        for ci, cls in enumerate(classes):
            for k in range(per_class):
                ext = ".jpg" if (k + ci) % 2 else ".png"
                colour = colours[k % 3] if ext == ".png" or k % 3 != 2 else colours[0]
                write_image(root / split / cls / f"{cls}{k}{ext}", sizes[k % 3], colour)
    return root


def faceset(counts: list[int]) -> FaceSet:
    """Images whose first pixel is their original index, so selections can be traced."""
    labels = np.repeat(np.arange(len(counts)), counts)
    images = np.zeros((len(labels), 48, 48), np.uint8)
    images[:, 0, 0] = np.arange(len(labels))
    return FaceSet(images, labels, tuple(f"c{i}" for i in range(len(counts))))


# --- CSV -----------------------------------------------------------------------------------------

def test_load_csv_sample_splits_and_shapes(sample_csv):
    sets = load_csv(sample_csv)
    assert set(sets) == {"train", "val"}
    for fs in sets.values():
        assert fs.images.shape == (175, 48, 48) and fs.images.dtype == np.uint8
        assert fs.labels.dtype == np.int64
        assert fs.classes == tuple(sorted(CSV_IDS.values()))
        assert fs.counts() == {name: 25 for name in CSV_IDS.values()}


def test_load_csv_label_mapping_and_pixels(sample_csv):
    sets = load_csv(sample_csv)
    with open(sample_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_usage = {"Training": "train", "PublicTest": "val"}
    seen = {"train": 0, "val": 0}
    for line, row in enumerate(rows, start=2):  # the header is line 1
        fs = sets[by_usage[row["Usage"]]]
        i = seen[by_usage[row["Usage"]]]
        seen[by_usage[row["Usage"]]] += 1
        assert fs.classes[fs.labels[i]] == CSV_IDS[int(row["emotion"])] and fs.rows[i] == line
        expected = np.array(row["pixels"].split(), np.uint8).reshape(48, 48)
        np.testing.assert_array_equal(fs.images[i], expected)


def test_load_csv_resizes_to_size(sample_csv):
    fs = load_csv(sample_csv, size=32, use_cache=False)["train"]
    assert fs.images.shape == (175, 32, 32)


def test_load_csv_without_usage_column_is_all_training(tmp_path):
    path = write_csv(tmp_path / "two.csv", [f"3,{GOOD}", f"4,{GOOD}"], header="emotion,pixels")
    sets = load_csv(path)
    assert set(sets) == {"train"}
    assert [sets["train"].classes[k] for k in sets["train"].labels] == ["happy", "sad"]


def test_load_csv_second_load_comes_from_cache(sample_csv, cache_in_tmp, monkeypatch):
    first = load_csv(sample_csv)
    assert len(list(cache_in_tmp.glob("*.npz"))) == 1

    def boom(*args, **kwargs):
        raise AssertionError("parsed the CSV again instead of using the cache")

    monkeypatch.setattr(data, "decode_pixels", boom)
    second = load_csv(sample_csv)
    for split in first:
        np.testing.assert_array_equal(first[split].images, second[split].images)
        np.testing.assert_array_equal(first[split].labels, second[split].labels)
        np.testing.assert_array_equal(first[split].rows, second[split].rows)
        assert first[split].classes == second[split].classes
    with pytest.raises(AssertionError, match="parsed the CSV again"):
        load_csv(sample_csv, use_cache=False)


def test_csv_rows_are_line_numbers_that_follow_subsets(tmp_path):
    path = write_csv(tmp_path / "gap.csv", [f"3,{GOOD},Training", f"4,{GOOD},PublicTest", "",
                                           f"4,{GOOD},Training", f"6,{GOOD},Training"])
    sets = load_csv(path)
    assert sets["train"].rows.tolist() == [2, 5, 6] and sets["val"].rows.tolist() == [3]
    assert select_classes(sets["train"], ["sad", "neutral"]).rows.tolist() == [5, 6]
    assert load_csv(path)["train"].rows.tolist() == [2, 5, 6]  # from the cache
    assert sets["train"].subset(np.array([2, 0])).rows.tolist() == [6, 2]


def test_load_csv_cache_follows_file_changes(tmp_path):
    path = write_csv(tmp_path / "a.csv", [f"3,{GOOD},Training"])
    assert load_csv(path)["train"].images[0, 0, 0] == 128
    write_csv(path, [f"3,{GOOD.replace('128', '7')},Training", f"0,{GOOD},Training"])
    fs = load_csv(path)["train"]
    assert len(fs) == 2 and fs.images[0, 0, 0] == 7


def test_load_csv_no_cache_writes_nothing(sample_csv, cache_in_tmp):
    load_csv(sample_csv, use_cache=False)
    assert not cache_in_tmp.exists() or not list(cache_in_tmp.iterdir())


BAD_ROWS = {
    "pixel count": (f"0,{' '.join(['1'] * 2303)},Training", "2303 pixel values"),
    "non-numeric": (f"0,{GOOD[:-3]}abc,Training", "non-numeric"),
    "pixel > 255": (f"0,{GOOD[:-3]}256,Training", "outside 0-255"),
    "negative pixel": (f"0,-1{GOOD[3:]},Training", "outside 0-255"),
    "label id 7": (f"7,{GOOD},Training", "unknown emotion id 7"),
    "label not a number": (f"happy,{GOOD},Training", "'happy'"),
    "usage": (f"0,{GOOD},Validation", "unknown Usage 'Validation'"),
    "field count": (f"0,{GOOD}", "2 fields"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_load_csv_bad_row_names_file_and_row(tmp_path, case):
    bad, fragment = BAD_ROWS[case]
    path = write_csv(tmp_path / "bad.csv", [f"3,{GOOD},Training", f"4,{GOOD},PublicTest", bad])
    with pytest.raises(DataError) as err:
        load_csv(path, use_cache=False)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message and "row 4" in message and fragment in message


@pytest.mark.parametrize("header", ["emotion,pixel,Usage", "label,pixels,Usage", "pixels,Usage",
                                    "emotion,pixels,split", ""])
def test_load_csv_wrong_columns(tmp_path, header):
    path = write_csv(tmp_path / "cols.csv", [f"0,{GOOD},Training"], header=header)
    with pytest.raises(DataError, match="expected the columns emotion, pixels and") as err:
        load_csv(path, use_cache=False)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_load_csv_header_only(tmp_path):
    path = write_csv(tmp_path / "empty.csv", [])
    with pytest.raises(DataError, match="no rows"):
        load_csv(path, use_cache=False)


def test_load_csv_missing_file(tmp_path):
    with pytest.raises(DataError, match="nosuch.csv does not exist"):
        load_csv(tmp_path / "nosuch.csv")


# What spreadsheets and editors write: encodings, line ends, quoting, stray whitespace.
RAMP = [str(v % 256) for v in range(2304)]  # distinct values, so a shifted parse shows


def csv_text(rows: list[str], header: str = "emotion,pixels,Usage", end: str = "\n") -> str:
    return end.join([header, *rows]) + end


def loaded(path: Path) -> np.ndarray:
    return load_csv(path, use_cache=False)["train"].images


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])  # each with a BOM
def test_load_csv_reads_unicode_text_with_a_byte_order_mark(tmp_path, encoding):
    path = tmp_path / "u.csv"
    path.write_bytes(csv_text([f"3,{' '.join(RAMP)},Training"]).encode(encoding))
    np.testing.assert_array_equal(loaded(path)[0].ravel(), np.arange(2304) % 256)


@pytest.mark.parametrize(("raw", "fragment"), [
    (csv_text([f"3,{GOOD},Training"]).encode("utf-16-le"), "UTF-16 without a byte-order mark"),
    (b"emotion,pixels,Usage\n3,\xff\xfe 1,Training\n", "not valid UTF-8 text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
])
def test_load_csv_text_it_cannot_read_is_one_clear_error(tmp_path, raw, fragment):
    path = tmp_path / "enc.csv"
    path.write_bytes(raw)
    with pytest.raises(DataError) as err:
        load_csv(path, use_cache=False)
    message = str(err.value)
    assert fragment in message and "save it as UTF-8" in message and "\n" not in message
    assert str(path) in message and "codec" not in message


def test_load_csv_accepts_crlf_quotes_and_spaces_after_commas(tmp_path):
    path = tmp_path / "excel.csv"
    rows = [f'3,"{" ".join(RAMP)}",Training', f'"4", "{GOOD}", "Training"']
    path.write_bytes(csv_text(rows, header='"emotion", "pixels", "Usage"', end="\r\n")
                     .encode("utf-8-sig"))
    images = loaded(path)
    np.testing.assert_array_equal(images[0].ravel(), np.arange(2304) % 256)
    assert (images[1] == 128).all()


def test_load_csv_reads_kaggles_icml_face_data_column_order(tmp_path):
    """icml_face_data.csv: "emotion, Usage, pixels", a space after each comma."""
    path = tmp_path / "icml_face_data.csv"
    path.write_text("emotion, Usage, pixels\n" f"3, Training, {' '.join(RAMP)}\n"
                    f"4, PublicTest, {GOOD}\n")
    splits = load_csv(path, use_cache=False)
    assert sorted(splits) == ["train", "val"]
    np.testing.assert_array_equal(splits["train"].images[0].ravel(), np.arange(2304) % 256)
    assert (splits["val"].images[0] == 128).all()


@pytest.mark.parametrize("sep", ["  ", "\t", " \t "])
def test_load_csv_pixels_may_be_separated_by_any_whitespace(tmp_path, sep):
    pixels = " " + sep.join(RAMP[:100]) + " " + " ".join(RAMP[100:]) + sep  # and at both ends
    path = write_csv(tmp_path / "ws.csv", [f"3,{pixels},Training", f"4,{GOOD},Training"])
    images = loaded(path)
    np.testing.assert_array_equal(images[0].ravel(), np.arange(2304) % 256)
    assert (images[1] == 128).all()


def test_load_csv_wrong_pixel_count_names_the_line_and_the_expected_count(tmp_path):
    short = "  ".join(["7"] * 2303)  # double spaces do not change the count
    path = tmp_path / "short.csv"
    path.write_text(csv_text([f"3,{GOOD},Training", "", f"4,{short},Training"]))
    with pytest.raises(DataError) as err:
        load_csv(path, use_cache=False)
    assert "row 4: 2303 pixel values, expected 2304" in str(err.value)  # line 4: after a blank


def test_load_csv_unclosed_quote_is_a_clear_error(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text(csv_text([f'3,"{GOOD},Training', f"4,{GOOD},Training"]))
    with pytest.raises(DataError, match=r"quote.csv row \d+: .*never closed") as err:
        load_csv(path, use_cache=False)
    assert "\n" not in str(err.value)


# --- folders -------------------------------------------------------------------------------------

def test_load_folder_split_layout(tmp_path):
    root = make_tree(tmp_path / "faces", splits=("train", "val", "test"))
    (root / "train" / "happy" / "notes.txt").write_text("not an image")
    sets = load_folder(root)
    assert set(sets) == {"train", "val", "test"}
    for fs in sets.values():
        assert fs.classes == ("happy", "neutral", "sad")
        assert fs.images.shape == (9, 48, 48) and fs.images.dtype == np.uint8
        assert fs.counts() == {"happy": 3, "neutral": 3, "sad": 3}
        assert fs.skipped == []


def test_load_folder_converts_colour_to_grey(tmp_path):
    root = tmp_path / "faces"
    write_image(root / "red" / "a.png", (60, 90), (0, 0, 255))      # BGR red, 60x90
    write_image(root / "grey" / "b.png", (20, 20), 90)               # grey, upscaled
    write_image(root / "green" / "c.png", (48, 48), (0, 255, 0, 128))  # BGRA green
    fs = load_folder(root)["all"]
    assert fs.classes == ("green", "grey", "red")
    assert fs.images.shape == (3, 48, 48)
    expected = {"red": 0.299 * 255, "grey": 90, "green": 0.587 * 255}
    for img, label in zip(fs.images, fs.labels, strict=True):
        assert abs(float(img.mean()) - expected[fs.classes[label]]) <= 1.5


def test_folder_faces_are_decoded_exactly_as_inference_decodes_them(tmp_path):
    """Training and inference see the same pixels: colour images (where OpenCV's grey decoding
    differs from RGB -> grey by a level or more) read through load_image + resize_face."""
    from emotiscope import load_image
    from emotiscope.preprocess import resize_face

    rng = np.random.default_rng(0)
    folder = tmp_path / "faces" / "happy"
    folder.mkdir(parents=True)
    for name in ("a.png", "b.jpg"):
        assert cv2.imwrite(str(folder / name), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    faces = load_folder(tmp_path / "faces", use_cache=False)["all"].images
    for face, name in zip(faces, ("a.png", "b.jpg"), strict=True):
        np.testing.assert_array_equal(face, resize_face(load_image(folder / name), 48))
        opencv_grey = cv2.imread(str(folder / name), cv2.IMREAD_GRAYSCALE)
        assert (face != opencv_grey).any()  # the other path would not have been the same


def test_load_folder_plain_class_folders(tmp_path):
    root = make_tree(tmp_path / "mine", splits=(), classes=("calm", "joy"), per_class=4)
    (root / ".ipynb_checkpoints").mkdir()
    sets = load_folder(root)
    assert set(sets) == {"all"}
    assert sets["all"].classes == ("calm", "joy")
    assert sets["all"].counts() == {"calm": 4, "joy": 4}


def test_load_any_dispatches(tmp_path, sample_csv):
    assert set(load_any(sample_csv)) == {"train", "val"}
    assert set(load_any(make_tree(tmp_path / "t", splits=()))) == {"all"}
    other = tmp_path / "faces.zip"
    other.write_bytes(b"PK")
    with pytest.raises(DataError, match="neither a .csv file nor a folder"):
        load_any(other)
    with pytest.raises(DataError, match="nothere does not exist"):
        load_any(tmp_path / "nothere")


def test_load_folder_second_load_comes_from_cache(tmp_path, cache_in_tmp, monkeypatch):
    root = make_tree(tmp_path / "faces")
    first = load_folder(root)
    assert len(list(cache_in_tmp.glob("*.npz"))) == 1
    monkeypatch.setattr(data, "_read_face", lambda *a: pytest.fail("decoded images again"))
    second = load_folder(root)
    for split in first:
        np.testing.assert_array_equal(first[split].images, second[split].images)
        np.testing.assert_array_equal(first[split].labels, second[split].labels)


def test_unreadable_images_are_skipped_and_counted(tmp_path, cache_in_tmp):
    root = make_tree(tmp_path / "faces")
    broken = root / "train" / "sad" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a jpeg")
    (root / "train" / "sad" / "empty.png").write_bytes(b"")
    fs = load_folder(root)["train"]
    assert len(fs) == 9 and fs.counts()["sad"] == 3
    assert sorted(Path(p).name for p in fs.skipped) == ["broken.jpg", "empty.png"]
    assert not cache_in_tmp.exists() or not list(cache_in_tmp.glob("*.npz"))
    with pytest.raises(DataError, match="broken.jpg") as err:
        load_folder(root, strict=True, use_cache=False)
    assert "--strict" in str(err.value) and "\n" not in str(err.value)


def test_a_class_whose_images_are_all_unreadable_is_an_error(tmp_path):
    root = make_tree(tmp_path / "faces")
    for f in (root / "val" / "sad").iterdir():
        f.write_bytes(b"not an image")
    with pytest.raises(DataError, match="none of its 3 image") as err:
        load_folder(root, use_cache=False)
    assert str(root / "val" / "sad") in str(err.value) and "\n" not in str(err.value)


def test_names_that_are_not_utf8_load_and_hash(tmp_path, cache_in_tmp):
    """A class folder and a file named with byte 0xE9: loaded, cached, and printable."""
    import os

    root = make_tree(tmp_path / "faces")
    for split in ("train", "val"):
        os.rename(os.fsencode(root / split / "sad"), os.fsencode(root / split) + b"/s\xe9d")
        first = os.fsencode(root / split / "happy" / "happy0.png")
        os.rename(first, first.replace(b"happy0", b"h\xe9ppy0"))
    for _ in range(2):  # built, then from the cache
        splits = load_folder(root)
        assert splits["train"].classes == ("happy", "neutral", "s\\xe9d")
        assert splits["train"].counts()["s\\xe9d"] == 3 and len(splits["val"]) == 9
        "".join(splits["train"].classes).encode("utf-8")


def test_empty_class_folder(tmp_path):
    root = make_tree(tmp_path / "faces")
    (root / "train" / "fear").mkdir()
    with pytest.raises(DataError, match="has no images") as err:
        load_folder(root)
    assert str(root / "train" / "fear") in str(err.value)


def test_missing_class_folder_in_val(tmp_path):
    root = make_tree(tmp_path / "faces")
    for f in (root / "val" / "sad").iterdir():
        f.unlink()
    (root / "val" / "sad").rmdir()
    with pytest.raises(DataError, match="is missing") as err:
        load_folder(root)
    assert str(root / "val" / "sad") in str(err.value) and "--classes" in str(err.value)


def test_chosen_classes_need_not_be_in_every_split_the_others(tmp_path):
    root = make_tree(tmp_path / "faces", classes=("happy", "sad", "neutral"))
    make_tree(root, splits=("train",), classes=("disgust",))  # val/ has no disgust/
    splits = load_folder(root, wanted=["sad", "happy"])
    assert [splits[s].classes for s in ("train", "val")] == [("happy", "sad")] * 2
    assert select_classes(splits["val"], ["sad", "happy"]).counts() == {"sad": 3, "happy": 3}
    # not from the cache; a hint that holds for every verb (data stats has no --classes)
    with pytest.raises(DataError, match=re.escape(
            "disgust is missing; every split needs the same classes (disgust, happy, neutral, sad): "
            "add the folder or remove the class from the other splits (train and evaluate can")):
        load_folder(root)
    with pytest.raises(DataError, match="disgust is missing; every split needs the classes --classes chose"):
        load_folder(root, wanted=["happy", "disgust"])
    with pytest.raises(ConfigError, match="unknown class.*angry.*the data has disgust"):
        load_folder(root, wanted=["happy", "angry"])


def test_folder_without_class_folders(tmp_path):
    (tmp_path / "flat").mkdir()
    write_image(tmp_path / "flat" / "a.png", (48, 48), 9)
    with pytest.raises(DataError, match="no class folders"):
        load_folder(tmp_path / "flat")


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        load_folder(tmp_path / "nosuch")
    assert str(tmp_path / "nosuch") in str(err.value)


# --- class selection, balancing, splitting -------------------------------------------------------

def test_select_classes_remaps_in_given_order(sample_csv):
    fs = load_csv(sample_csv)["train"]
    sub = select_classes(fs, ["sad", "happy"])
    assert sub.classes == ("sad", "happy")
    assert sub.counts() == {"sad": 25, "happy": 25}
    np.testing.assert_array_equal(sub.images[sub.labels == 0],
                                  fs.images[fs.labels == fs.classes.index("sad")])
    np.testing.assert_array_equal(sub.images[sub.labels == 1],
                                  fs.images[fs.labels == fs.classes.index("happy")])


def test_select_classes_unknown(sample_csv):
    fs = load_csv(sample_csv)["train"]
    with pytest.raises(ConfigError, match="unknown class.*nosuch.*the data has angry"):
        select_classes(fs, ["happy", "nosuch"])


def test_select_classes_refuses_a_class_named_twice(sample_csv):
    fs = load_csv(sample_csv)["train"]
    with pytest.raises(ConfigError, match="--classes names happy more than once"):
        select_classes(fs, ["happy", "sad", "happy"])


def test_balance_min_and_n(caplog):
    fs = faceset([10, 3, 6])
    assert balance(fs, "min").counts() == {"c0": 3, "c1": 3, "c2": 3}
    assert not caplog.records
    five = balance(fs, "5")
    assert five.counts() == {"c0": 5, "c1": 3, "c2": 5}
    assert [r.getMessage() for r in caplog.records] == [  # c1 keeps its 3: said, not silent
        "--balance 5: c1 (3) has fewer faces and keeps them all, so the classes are not equal; "
        "--balance min cuts every class to the rarest one's count"]
    balance(fs, "8")
    assert "c1 (3), c2 (6) have fewer faces and keep them all" in caplog.records[-1].getMessage()
    # images still match their labels: original index -> original label
    np.testing.assert_array_equal(fs.labels[five.images[:, 0, 0]], five.labels)


def test_balance_is_seeded():
    fs = faceset([40, 30])
    pick = lambda seed: balance(fs, "10", seed).images[:, 0, 0].tolist()  # noqa: E731
    assert pick(1) == pick(1)
    assert pick(1) != pick(2)


@pytest.mark.parametrize("mode", ["max", "0", "-3", "1.5", ""])
def test_balance_bad_mode(mode):
    with pytest.raises(ConfigError, match="--balance"):
        balance(faceset([3, 3]), mode)


def test_split_fraction_stratified_and_disjoint():
    fs = faceset([40, 20, 10])
    rest, held = split_fraction(fs, 0.1, seed=3)
    assert held.counts() == {"c0": 4, "c1": 2, "c2": 1}
    assert rest.counts() == {"c0": 36, "c1": 18, "c2": 9}
    ids_rest, ids_held = set(rest.images[:, 0, 0].tolist()), set(held.images[:, 0, 0].tolist())
    assert not ids_rest & ids_held and len(ids_rest | ids_held) == len(fs)
    again, _ = split_fraction(fs, 0.1, seed=3)
    np.testing.assert_array_equal(again.images, rest.images)
    other, _ = split_fraction(fs, 0.1, seed=4)
    assert not np.array_equal(other.images, rest.images)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5])
def test_split_fraction_bad(fraction):
    with pytest.raises(ConfigError, match="--val-fraction"):
        split_fraction(faceset([5, 5]), fraction)
