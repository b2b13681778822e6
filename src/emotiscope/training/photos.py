"""Faces in photos: detect them, take the largest, crop it as inference does.

`predict` and `evaluate` detect the faces in a photo and crop them with the model's rule
(preprocess.face_crop, then resize_face). Training on class folders of photos, and
`emotiscope data crop`, do the same through a `FaceCropper`, so that a model trains on the faces
it will see rather than on a whole photo squashed to 48 x 48. Folders of face crops (FER-style
48 x 48 faces) are read as they are. No torch here.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from ..images import IMREAD_SUFFIXES as IMAGE_EXTS
from ..options import RecognizerOptions
from ..outputs import display
from .config import FACES

log = logging.getLogger(__name__)



def is_photo_folder(root: Path, limit: int = 20) -> bool:
    """True when the images look like full photos (larger than 96 px or far from square).

    Sizes come from the file headers; nothing is decoded (and no path goes to OpenCV, which
    crashes on names that are not valid UTF-8)."""
    from ..images import declared_size

    files = (p for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    for i, f in enumerate(files):
        if i >= limit:
            break
        try:
            size = declared_size(f.read_bytes())
        except OSError:
            continue
        if size and (max(size) > 96 or abs(size[0] - size[1]) > 0.2 * max(size)):
            return True
    return False


def largest_face(image: np.ndarray, boxes, margin: float, size: int) -> np.ndarray | None:
    """The largest of `boxes` cropped with the model's rule, as uint8 size x size grey; None
    when there is no box."""
    from ..preprocess import face_crop, resize_face

    if not boxes:
        return None
    box = max(boxes, key=lambda b: b.area)
    return resize_face(face_crop(image, box, margin), size)


class FaceCropper:
    """Finds the largest face in a photo with inference's detector settings (RecognizerOptions:
    detector, min_face, threshold, max_side) and crops it with `margin` (the model's crop margin,
    `train --crop-margin`). The detector is built when first used."""

    def __init__(self, margin: float = 0.0, options: RecognizerOptions | None = None) -> None:
        self.margin, self.options = float(margin), options or RecognizerOptions()

    @cached_property
    def detector(self):
        from ..detect import make_detector

        o = self.options
        return make_detector(o.detector, min_face=o.min_face, threshold=o.threshold,
                             max_side=o.max_side)

    def key(self) -> str:
        """The settings that change the crops (for the data cache's key)."""
        o = self.options
        name = getattr(self.detector, "name", type(self.detector).__name__)
        return f"faces={name},{o.min_face},{o.threshold:g},{o.max_side},{self.margin:g}"

    def crop(self, image: np.ndarray, size: int) -> np.ndarray | None:
        """RGB/grey uint8 photo -> its largest face as uint8 size x size grey, or None."""
        return largest_face(image, self.detector.detect(image), self.margin, size)


def face_cropper(data: Path, faces: str, margin: float, flag: str = "--faces") -> FaceCropper | None:
    """The FaceCropper for `data` under the --faces policy ("detect", "crops", or "auto": detect
    in class folders of photos, see `is_photo_folder`), or None when its images are face crops."""
    if faces not in FACES:
        raise ConfigError(f"{flag} {faces!r}: use one of {', '.join(FACES)}")
    data = Path(data)
    if faces == "detect" and not data.is_dir():
        raise ConfigError(f"{flag} detect needs class folders of photos ({data}/<class>/*.jpg); "
                          f"{data} is not a folder")
    if faces == "detect" or (faces == "auto" and data.is_dir() and is_photo_folder(data)):
        return FaceCropper(margin)
    return None


def report_skipped(root: Path, sets: dict) -> None:
    """One warning line for the unreadable images of {split: FaceSet}, one for its photos with
    no face."""
    no_face = [f for fs in sets.values() for f in fs.no_face]
    unreadable = [f for fs in sets.values() for f in fs.skipped if f not in fs.no_face]
    if unreadable:
        log.warning("skipped %d unreadable image(s) under %s, e.g. %s", len(unreadable),
                    display(root), unreadable[0])
    if no_face:
        log.warning("left out %d photo(s) under %s in which the detector finds no face, e.g. %s "
                    "(`emotiscope data crop` shows the faces found)", len(no_face), display(root),
                    no_face[0])


def crop_names(src: Path, dst: Path, files: list[Path]) -> dict[Path, Path]:
    """Each image's PNG under `dst`, all different: a.jpg -> a.png, but a.jpg beside a.png (or
    a.jpeg) keeps its suffix, a.jpg.png (and a.png.png), and a name still taken gets -2, -3..."""
    from collections import Counter

    stems = Counter(f.relative_to(src).with_suffix("") for f in files)
    targets: dict[Path, Path] = {}
    taken: set[Path] = set()
    for f in files:
        rel = f.relative_to(src)
        name = rel.with_suffix(".png") if stems[rel.with_suffix("")] == 1 else Path(f"{rel}.png")
        k = 1
        while name in taken:
            k += 1
            name = Path(f"{rel}-{k}.png")
        taken.add(name)
        targets[f] = dst / name
    return targets


def export_crops(src: Path, dst: Path, cropper: FaceCropper, size: int = 48,
                 force: bool = False) -> tuple[int, list[str], list[str]]:
    """Write the largest face of every image under `src` (as training crops it: grey, size x
    size) to the same path under `dst` as PNG. Existing files are refused unless `force`, before
    any work. Returns (faces written, images with no face, unreadable images)."""
    from ..errors import DataError, InputError
    from ..images import encode_image, load_image
    from ..outputs import check_writable_folder, refuse_existing, write_bytes

    if not src.is_dir():
        raise DataError(f"SRC {display(src)} is not a folder; pass a folder of class folders of photos")
    if dst.resolve().is_relative_to(src.resolve()):
        raise ConfigError(f"DST {display(dst)} is inside SRC {display(src)}; choose a folder outside it")
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(src).parts))
    if not files:
        raise DataError(f"no images (.jpg, .png, ...) under {display(src)}; expected "
                        f"{display(src)}/<class>/*.jpg")
    targets = crop_names(src, dst, files)
    check_writable_folder(dst, "DST")
    refuse_existing(list(targets.values()), force)
    written, no_face, unreadable = 0, [], []
    for f, target in targets.items():
        try:
            face = cropper.crop(load_image(f), size)
        except InputError:
            unreadable.append(display(f))
            continue
        if face is None:
            no_face.append(display(f))
            continue
        write_bytes(target, encode_image(face, ".png"))
        written += 1
    return written, no_face, unreadable
