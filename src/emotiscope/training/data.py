"""Training data: the original fer2013.csv, image-folder layouts, and user class folders.

A `FaceSet` (faceset.py) holds uint8 faces (N x S x S grey, already at the model's input size), integer labels
and the class names they index. Loaders return {split name: FaceSet}; splits are "train", "val",
"test" (CSV: Training, PublicTest, PrivateTest) or "all" for a plain folder of class folders.
Photo folders go through photos.FaceCropper: each photo's largest face, cropped as inference does.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, InputError
from ..images import IMREAD_SUFFIXES
from ..outputs import display
from ..preprocess import resize_face
from .faceset import FaceSet, check_wanted
from .fercsv import CSV_USAGE, FER_CSV_NAMES, checked_ids, decode_pixels, parse_csv_rows
from .photos import FaceCropper, report_skipped

log = logging.getLogger(__name__)

FOLDER_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "publictest": "val", "test": "test", "privatetest": "test"}
IMAGE_EXTS = IMREAD_SUFFIXES  # every suffix the image reader decodes
CACHE_VERSION = "4"  # 2: folder file names kept; 3: images decoded as inference does; 4: CSV rows


def cache_dir() -> Path:
    root = os.environ.get("EMOTISCOPE_CACHE") or os.environ.get("XDG_CACHE_HOME")
    return Path(root or Path.home() / ".cache") / "emotiscope"


def _from_npz(z, split: str, classes: tuple[str, ...]) -> FaceSet:
    no_face = [str(f) for f in z[f"{split}_n"]]  # a cache of this CACHE_VERSION has every array
    return FaceSet(z[f"{split}_x"], z[f"{split}_y"], classes, list(no_face), z[f"{split}_f"],
                   no_face, z[f"{split}_r"])


def _cached(key: str, build):
    """Load {split: FaceSet} from the npz cache under `key`, or build it and store it (not when
    unreadable images were skipped; photos with no face are stored with the faces)."""
    path = cache_dir() / f"{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                classes = tuple(str(c) for c in z["classes"])
                return {str(s): _from_npz(z, str(s), classes) for s in z["splits"]}
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable cache %s", path)
    sets = build()
    if sets and not any(len(s.skipped) > len(s.no_face) for s in sets.values()):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays: dict[str, Any] = {  # Any: numpy's stub types savez's keywords as allow_pickle's
                f"{s}_{k}": v for s, fs in sets.items()
                for k, v in (("x", fs.images), ("y", fs.labels), ("f", fs.files),
                             ("n", np.array(fs.no_face, str)), ("r", fs.rows))}
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, splits=np.array(list(sets)), classes=np.array(next(iter(sets.values())).classes),
                     **arrays)
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("could not write cache %s (%s)", path, exc)
    return sets


def _file_key(path: Path, size: int, extra: str = "") -> str:
    st = path.stat()
    raw = f"{CACHE_VERSION}|{display(path.resolve())}|{st.st_size}|{st.st_mtime_ns}|{size}|{extra}"
    return hashlib.sha1(raw.encode()).hexdigest()[:20]


def load_csv(path: Path, size: int = 48, use_cache: bool = True) -> dict[str, FaceSet]:
    """fer2013.csv -> {"train", "val", "test"} FaceSets (splits absent from the file are left out)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV {path} does not exist")

    def build() -> dict[str, FaceSet]:
        rows = parse_csv_rows(path)
        emotions, pixels, usage, lines = rows
        ids = checked_ids(path, rows)
        images = decode_pixels(path, pixels, lines)
        if size != 48:
            images = np.stack([resize_face(im, size) for im in images])
        classes = tuple(sorted(FER_CSV_NAMES))
        remap = np.array([classes.index(n) for n in FER_CSV_NAMES])
        labels = remap[ids]
        usage_arr, line_arr = np.array(usage), np.array(lines, np.int64)
        return {CSV_USAGE[u]: FaceSet(images[usage_arr == u], labels[usage_arr == u], classes,
                                      rows=line_arr[usage_arr == u])
                for u in CSV_USAGE if (usage_arr == u).any()}

    return _cached(_file_key(path, size, "csv"), build) if use_cache else build()


NO_FACE = "no face"


def _read_face(path: Path, size: int, cropper: FaceCropper | None = None) -> np.ndarray | str | None:
    """Any image file -> uint8 size x size grey (decoded as inference decodes a face crop, so a
    model trains on the pixels it will see), or None when it cannot be decoded. With a `cropper`
    the image is a photo: its largest face as inference crops it, or NO_FACE."""
    from .. import load_image

    try:
        image = load_image(path)
    except InputError:
        return None
    if cropper is None:
        return resize_face(image, size, 1)
    face = cropper.crop(image, size)
    return NO_FACE if face is None else face


def _class_dirs(root: Path) -> list[Path]:
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not dirs:
        raise DataError(f"{display(root)} has no class folders; expected {display(root)}/<class>/*.jpg "
                        "(one sub-folder per emotion)")
    return dirs


def _load_class_tree(root: Path, classes: tuple[str, ...], size: int, strict: bool,
                     cropper: FaceCropper | None = None, chosen: bool = False) -> FaceSet:
    """The faces of `classes` (folder names; `chosen`: those --classes asked for) under `root`."""
    images, labels, skipped, names, no_face = [], [], [], [], []
    for cls in classes:
        if not (folder := root / cls).is_dir():
            raise DataError(f"class folder {display(folder)} is missing; every split needs the " + (
                f"classes --classes chose ({', '.join(classes)}): add the folder or leave that class out"
                if chosen else f"same classes ({', '.join(classes)}): add the folder or remove the "
                "class from the other splits (train and evaluate can also pick some with --classes)"))
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise DataError(f"class folder {display(folder)} has no images (.jpg, .png, ...); add "
                            "images or remove the folder")
        read = 0
        for f in files:
            face = _read_face(f, size, cropper)
            if isinstance(face, str):
                skipped.append(display(f))
                no_face.append(display(f))
                continue
            if face is None:
                if strict:
                    raise DataError(f"cannot decode image {display(f)}; remove or replace it, or "
                                    "drop --strict to skip unreadable images")
                skipped.append(display(f))
                continue
            images.append(face)
            labels.append(classes.index(cls))
            names.append(display(f.relative_to(root)))
            read += 1
        if not read:
            raise DataError(f"class folder {display(folder)}: none of its {len(files)} image(s) "
                            f"can be decoded{' or holds a face the detector finds' if cropper else ''}"
                            f" (e.g. {display(files[0].name)}); replace them or remove the folder")
    arr = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    # class names come from folder names: keep them printable (the paths above use the raw ones)
    return FaceSet(arr, np.array(labels, np.int64), tuple(display(c) for c in classes), skipped,
                   np.array(names, str), no_face)


def _tree_key(root: Path, size: int, extra: str = "") -> str:
    h = hashlib.sha1(f"{CACHE_VERSION}|{display(root.resolve())}|{size}|{extra}".encode())
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(os.fsencode(p) + f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:20]


def split_folders(root: Path) -> dict[str, Path]:
    """{split: folder} of a train/ val/ test/ layout (FOLDER_SPLITS names), else {"all": root}."""
    found = {FOLDER_SPLITS[d.name.lower()]: d for d in sorted(root.iterdir())
             if d.is_dir() and d.name.lower() in FOLDER_SPLITS}
    return found or {"all": root}


def load_folder(root: Path, size: int = 48, strict: bool = False, use_cache: bool = True,
                cropper: FaceCropper | None = None, wanted: list[str] | None = None,
                split: str | None = None) -> dict[str, FaceSet]:
    """train/ val/ test/ split folders of class folders, or a plain folder of class folders ("all").
    `cropper`: the images are photos; each gives its largest face (photos.py). `wanted`: only
    those classes (--classes), which then need not be the same in every split. `split`: only that
    split (a name split_folders gives), the others' images not read."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    split_dirs = split_folders(root)
    classes = tuple(d.name for d in _class_dirs(split_dirs.get("train", next(iter(split_dirs.values())))))
    if wanted:
        check_wanted(tuple(display(c) for c in classes), wanted)
        classes = tuple(c for c in classes if display(c) in wanted)
    if split is not None:
        split_dirs = {split: split_dirs[split]}

    def build() -> dict[str, FaceSet]:
        return {name: _load_class_tree(d, classes, size, strict, cropper, bool(wanted))
                for name, d in split_dirs.items()}

    key = _tree_key(root, size, (cropper.key() if cropper else "") + (f"|{classes}" if wanted else "")
                    + (f"|split={split}" if split is not None else ""))
    sets = _cached(key, build) if use_cache else build()
    report_skipped(root, sets)
    return sets


def load_any(path: Path, size: int = 48, strict: bool = False, use_cache: bool = True,
             cropper: FaceCropper | None = None, wanted: list[str] | None = None,
             split: str | None = None) -> dict[str, FaceSet]:
    """A fer2013-style CSV file or an image-folder layout (`cropper`, `wanted`, `split`: see
    load_folder; a CSV file gives all its splits)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data path {path} does not exist; pass fer2013.csv or a folder of class "
                        "folders (train/<class>/*.jpg)")
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_csv(path, size, use_cache)
    if path.is_dir():
        return load_folder(path, size, strict, use_cache, cropper, wanted, split)
    raise DataError(f"{path} is neither a .csv file nor a folder; pass fer2013.csv or a folder of "
                    "class folders (train/<class>/*.jpg)")
