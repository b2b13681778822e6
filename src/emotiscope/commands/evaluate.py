"""`emotiscope evaluate DATA`: accuracy, macro-F1, per-class metrics and a confusion matrix."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..options import DETECTION, add_recognizer_flags, add_tta_flags, comma_list, options_from_args
from ..outputs import check_figure_path, refuse_inputs, write_json
from ..training.config import FACES, FACES_HELP
from ._out import check_new

FILES = ("report.json", "confusion.png", "reliability.png")  # written into --out


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a model on labelled faces or photos",
                       description="Evaluate on a fer2013-style CSV split, folders of face crops, or "
                       "class folders of full photos (faces are detected; the largest is classified).")
    p.add_argument("data", help="fer2013.csv, a split layout (train/ val/ test/) or <class>/ folders")
    p.add_argument("--split", help="train, val, test or all (default: test, else val, else all)")
    add_tta_flags(p, ["none", "flip", "multicrop"], "test-time augmentation: mirror (2 views) "
                  "or mirror + shifts (10 views)", default=None,
                  shown="as the model file says, `emotiscope info`: tta")
    p.add_argument("--faces", default="auto", choices=FACES, help=f"{FACES_HELP} (default: auto)")
    p.add_argument("--classes", type=comma_list,
                   help="only these data classes, e.g. happy,sad,neutral (a model with fewer "
                   "labels than the data)")
    p.add_argument("--predictions", metavar="FILE.csv",
                   help="write one row per image: file (or \"row N\", line N of a CSV), true, predicted, "
                   "confidence")
    p.add_argument("--mistakes", metavar="FILE.png",
                   help="write a grid of the most confident mistakes, one row per true class")
    p.add_argument("--out", help="folder for report.json, confusion.png and reliability.png "
                   "(not written if omitted)")
    p.add_argument("--force", action="store_true", help="overwrite files in --out")
    p.add_argument("--json", action="store_true", help="print the JSON report to stdout")
    add_recognizer_flags(p, only=DETECTION)  # --tta is evaluate's own (above)
    p.set_defaults(func=run)


def print_summary(report: dict) -> None:
    print(f"model {report['model']}  data {report['data']} [{report['split']}]  tta {report['tta']}")
    print(f"{'class':<10} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for name, m in report["per_class"].items():
        print(f"{name:<10} {m['precision']:>9.3f} {m['recall']:>7.3f} {m['f1']:>6.3f} {m['support']:>8}")
    print(f"accuracy {report['accuracy']:.4f}  macro-F1 {report['macro_f1']:.4f}  n={report['n']}")
    if report.get("calibration"):
        c = report["calibration"]
        raw = f" (raw softmax {c['ece_uncalibrated']:.3f})" if "ece_uncalibrated" in c else ""
        print(f"expected calibration error {c['ece']:.3f}{raw}, temperature {c['temperature']:g}")
    if report.get("duplicate_free"):
        d = report["duplicate_free"]
        if not d["n"]:
            print(f"all {d['excluded']} faces have a near-twin in train: no duplicate-free accuracy")
        elif not d["excluded"]:
            print("no face has a near-twin in train: the accuracy above is duplicate-free")
        else:
            print(f"without the {d['excluded']} faces with a near-twin in train: accuracy "
                  f"{d['accuracy']:.4f}  macro-F1 {d['macro_f1']:.4f}  n={d['n']}")
    if report.get("no_face"):
        print(f"{len(report['no_face'])} image(s) with no face found (counted wrong):")
        for f in report["no_face"]:
            print(f"  {f}")
    if report.get("skipped"):
        print(f"{len(report['skipped'])} unreadable image(s) skipped (not counted):")
        for f in report["skipped"]:
            print(f"  {f}")


def run(args: argparse.Namespace) -> int:
    from ..training.evaluate import evaluate

    refuse_inputs([(flag, path) for flag, path in (
        ("--predictions", args.predictions), ("--mistakes", args.mistakes),
        *((("--out", Path(args.out) / name) for name in FILES) if args.out else ()))],
        [args.data])
    if args.mistakes:
        check_figure_path(args.mistakes, "--mistakes")
    if args.out:
        out = Path(args.out)
        report_path = check_new(out / "report.json", args.force)
        picture = check_new(out / "confusion.png", args.force)
        diagram = check_new(out / "reliability.png", args.force)
    predictions = check_new(Path(args.predictions), args.force, "--predictions") if args.predictions else None
    mistakes = check_new(Path(args.mistakes), args.force, "--mistakes") if args.mistakes else None
    classes = args.classes
    details: dict = {}
    options = options_from_args(args)
    report = evaluate(options.model, Path(args.data), args.split, args.tta, args.faces,
                      options.detector, classes, details, options=options)
    if predictions:
        from ..training.mistakes import write_predictions

        write_predictions(predictions, details, report["labels"])
    if mistakes:
        from ..training.mistakes import plot_mistakes

        plot_mistakes(mistakes, details, report["labels"])
    if args.out:
        from ..training.plots import plot_confusion, plot_reliability

        write_json(report_path, report)
        title = f"{Path(args.data).name} [{report['split']}]"
        plot_confusion(report["confusion"], report["labels"], picture, f"{title}: {report['accuracy']:.1%}")
        if report.get("calibration"):
            plot_reliability(report["calibration"], diagram, title)
    if args.json:
        print(json.dumps(report))
    else:
        print_summary(report)
    return 0
