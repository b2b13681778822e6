"""`emotiscope data stats|samples PATH`: class counts per split with a bar chart; a grid of the
faces training takes (in class folders of photos, each photo's largest face: training/photos.py).
`emotiscope data crop SRC DST`: the face crops training takes from photos, as PNG files.
`emotiscope data cache [--clear]`: the decoded-data cache's size, or clear it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ConfigError, DataError
from ..options import finite_float
from ..outputs import check_figure_path, display, refuse_inputs
from ..training.config import FACES, FACES_HELP, TrainConfig
from ._out import check_new

MAX_SAMPLES = 10000  # faces per class in one grid; more makes a picture nobody can open


def register(sub) -> None:
    p = sub.add_parser("data", help="inspect a data set: class counts, sample faces")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("stats", help="print class counts per split and write a bar chart")
    s.add_argument("path", help="fer2013.csv or an image-folder layout")
    s.add_argument("--out", default="class_counts.png",
                   help="bar chart; its suffix picks the format: .png, .svg, .pdf, ... "
                   "(default class_counts.png)")
    s.add_argument("--force", action="store_true", help="overwrite --out")
    s.add_argument("--strict", action="store_true", help=_train_help("strict"))
    s.set_defaults(func=run_stats)
    g = dsub.add_parser("samples", help="write a grid of sample faces")
    g.add_argument("path", help="fer2013.csv or an image-folder layout")
    g.add_argument("--class", dest="cls", help="only this class (default: every class)")
    g.add_argument("--split", help="split to draw from (default train, else all)")
    g.add_argument("-n", type=int, default=8, help="faces per class (default 8)")
    g.add_argument("--seed", type=int, default=0,
                   help="random seed of the faces drawn and their augmentation (default 0)")
    g.add_argument("--augment", nargs="?", const="", metavar="K=V,...",
                   help="show the faces as training augments them (default settings, or changed "
                   "ones, e.g. rotate=30,erase=0); needs torch")
    g.add_argument("--out", default="samples.png",
                   help="grid picture; its suffix picks the format: .png, .jpg, .pdf, ... "
                   "(default samples.png)")
    g.add_argument("--force", action="store_true", help="overwrite --out")
    g.add_argument("--faces", default="auto", choices=FACES,
                   help=f"{FACES_HELP}; in photos the largest face is drawn, as training crops it "
                   "(default: auto)")
    _add_crop_margin(g)
    g.set_defaults(func=run_samples)
    r = dsub.add_parser("crop", help="write the faces training takes from photos, as PNG files",
                        description="Detect the largest face of every image under SRC and write it "
                        "as training crops it (grey, --size px, --crop-margin) to the same path under "
                        "DST as PNG; lists the images in which no face is found.")
    r.add_argument("src", metavar="SRC", help="a folder of class folders of photos")
    r.add_argument("dst", metavar="DST", help="folder to write the crops to (same layout)")
    _add_crop_margin(r)
    r.add_argument("--size", type=int, default=48, help="side of the crops in pixels (default 48)")
    r.add_argument("--force", action="store_true", help="overwrite existing files in DST")
    r.set_defaults(func=run_crop)
    c = dsub.add_parser("cache", help="show the decoded-data cache's folder and size, or clear it")
    c.add_argument("--clear", action="store_true", help="delete the cached data sets")
    c.set_defaults(func=run_cache)


def _add_crop_margin(p: argparse.ArgumentParser) -> None:
    """`--crop-margin` of `data samples` and `data crop`: train's, for the faces found in photos."""
    p.add_argument("--crop-margin", type=finite_float, default=0.0, metavar="F",
                   help=_train_help("crop_margin") + " (default: 0)")


def _train_help(name: str) -> str:
    """The help of train's flag `name` (the same option in `data`)."""
    return TrainConfig.__dataclass_fields__[name].metadata["help"]


def _check_margin(margin: float) -> None:
    from ..preprocess import MAX_MARGIN

    if not 0 <= margin <= MAX_MARGIN:
        raise ConfigError(f"--crop-margin {margin:g} must be between 0 and {MAX_MARGIN:g}")


def run_stats(args: argparse.Namespace) -> int:
    from ..training.data import load_any
    from ..training.plots import plot_counts

    refuse_inputs([("--out", args.out)], [args.path])
    out = check_new(check_figure_path(args.out), args.force)
    splits = load_any(Path(args.path), strict=args.strict)
    counts = {name: fs.counts() for name, fs in splits.items()}
    classes = list(next(iter(counts.values())))
    print(f"{'class':<12}" + "".join(f"{s:>9}" for s in counts))
    for c in classes:
        print(f"{c:<12}" + "".join(f"{counts[s][c]:>9}" for s in counts))
    print(f"{'total':<12}" + "".join(f"{sum(counts[s].values()):>9}" for s in counts))
    skipped = sum(len(fs.skipped) for fs in splits.values())
    if skipped:
        print(f"{skipped} unreadable image(s) skipped")
    plot_counts(counts, out)
    print(f"chart: {display(out)}")
    return 0


def run_samples(args: argparse.Namespace) -> int:
    import numpy as np

    from ..training.data import load_any, split_folders
    from ..training.photos import face_cropper
    from ..training.plots import save_grid

    if not 1 <= args.n <= MAX_SAMPLES:
        raise ConfigError(f"-n {args.n} must be between 1 and {MAX_SAMPLES} faces per class")
    _check_margin(args.crop_margin)
    refuse_inputs([("--out", args.out)], [args.path])
    out = check_new(check_figure_path(args.out), args.force)
    # the faces training takes: in class folders of photos, each photo's largest face (--faces)
    path = Path(args.path)
    cropper = face_cropper(path, args.faces, args.crop_margin)
    # a folder's splits are known before its images are read: faces are found in the one drawn
    name = _split_to_draw(args, list(split_folders(path))) if path.is_dir() else None
    splits = load_any(path, cropper=cropper, split=name)
    name = name or _split_to_draw(args, list(splits))
    fs = splits[name]
    if args.cls and args.cls not in fs.classes:
        raise ConfigError(f"--class {args.cls!r} is not in the data; classes: {', '.join(fs.classes)}")
    rng = np.random.default_rng(args.seed)
    wanted = [args.cls] if args.cls else list(fs.classes)
    picks = [i for c in wanted
             for i in rng.permutation(np.flatnonzero(fs.labels == fs.classes.index(c)))[:args.n]]
    if not picks:  # the other splits (loaded now) say which to draw from instead
        raise ConfigError(_no_faces(load_any(path, cropper=cropper), name, args.cls))
    faces = fs.images[picks]
    if args.augment is not None:
        faces = augmented(faces, args.augment, args.seed)
    drawn = max(np.bincount(fs.labels[picks]))  # the longest row: -n or a class's size
    save_grid(faces, [fs.classes[fs.labels[i]] for i in picks], out,
              cols=min(drawn, 8) if args.cls else drawn)
    found = " (the largest face found in each photo)" if cropper else ""
    print(f"{len(picks)} faces from {name}{found}: {display(out)}")
    return 0


def _split_to_draw(args: argparse.Namespace, splits: list[str]) -> str:
    """The split `data samples` draws from: --split, else train, else the first."""
    name = args.split or ("train" if "train" in splits else splits[0])
    if name not in splits:
        raise ConfigError(f"--split {name!r} not in {args.path}; it has {', '.join(splits)}")
    return name


def _no_faces(splits: dict, name: str, cls: str | None) -> str:
    """Why split `name` gives no face to draw (of class `cls`), and which splits would."""
    have = [s for s, fs in splits.items() if (fs.counts().get(cls, 0) if cls else len(fs))]
    what = f"no {cls} faces" if cls else "no faces"
    where = f"choose --split {' or '.join(have)}" if have else "no split has any"
    return f"the {name} split has {what}, so there is nothing to draw; {where}"


def augmented(faces, settings: str, seed: int):
    """uint8 N x S x S faces after one draw of the training augmentation."""
    from ..errors import DependencyError

    try:
        import torch

        from ..training.augment import augment_batch
    except ImportError as exc:
        raise DependencyError("--augment needs torch: pip install torch==2.13.0 '.[train]' in the "
                              "emotiscope clone") from exc
    from ..training.config import AugmentConfig, parse_augment

    cfg = parse_augment(settings, AugmentConfig()) if settings else AugmentConfig()
    x = torch.from_numpy(faces).float()[:, None]
    out = augment_batch(x, cfg, torch.Generator().manual_seed(seed))
    return out[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def run_crop(args: argparse.Namespace) -> int:
    from ..preprocess import MAX_SIZE, MIN_SIZE
    from ..training.photos import FaceCropper, export_crops

    _check_margin(args.crop_margin)
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise ConfigError(f"--size {args.size} must be between {MIN_SIZE} and {MAX_SIZE}")
    src, dst = Path(args.src), Path(args.dst)
    written, no_face, unreadable = export_crops(src, dst, FaceCropper(args.crop_margin), args.size,
                                                args.force)
    for what, files in (("with no face found", no_face), ("unreadable", unreadable)):
        if files:
            print(f"{len(files)} image(s) {what}:")
            print("\n".join(f"  {f}" for f in files))
    if not written:
        raise DataError(f"no face found in the {len(no_face) + len(unreadable)} image(s) under "
                        f"{display(src)}; are they photos of faces? (face crops need no cropping)")
    print(f"wrote {written} face crop(s) to {display(dst)}")
    return 0


def run_cache(args: argparse.Namespace) -> int:
    from ..training.data import cache_dir

    root = cache_dir()
    files = sorted(root.glob("*.npz")) if root.is_dir() else []
    size = sum(f.stat().st_size for f in files)
    if args.clear:
        for f in files:
            f.unlink(missing_ok=True)
        print(f"cleared {len(files)} cached data set(s), {size / 1e6:.1f} MB, from {display(root)}")
    else:
        print(f"{display(root)}: {len(files)} cached data set(s), {size / 1e6:.1f} MB "
              "($EMOTISCOPE_CACHE moves it; `emotiscope data cache --clear` empties it)")
    return 0
