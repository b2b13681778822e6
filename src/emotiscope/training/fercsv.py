"""Reading fer2013.csv: the columns emotion,pixels[,Usage], pixels as 2304 grey levels.

Text may be UTF-8 (with or without a byte-order mark) or UTF-16/32 with a byte-order mark;
lines may end in LF or CRLF; fields may be quoted. Errors name the file and the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import DataError

# The fer2013.csv `emotion` ids, a fact of that file format, and its Usage values.
FER_CSV_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CSV_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


class CsvRows(NamedTuple):
    """The fields of fer2013.csv, one entry per data row; `lines` are the rows' line numbers."""

    emotions: list[str]
    pixels: list[str]
    usage: list[str]
    lines: list[int]


def _read_csv_text(path: Path) -> str:
    """The file's text: UTF-8 (a byte-order mark is fine), or UTF-16/32 with a byte-order mark
    (what Excel's "Unicode text" writes); anything else is one DataError saying to save as UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read CSV {path}: {exc.strerror or exc}; check the path and its "
                        "permissions") from None
    boms = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
            (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
    encoding = next((enc for bom, enc in boms if data.startswith(bom)), "utf-8-sig")
    if encoding == "utf-8-sig" and b"\0" in data[:4096]:  # ASCII in UTF-16 is "valid" UTF-8
        raise DataError(f"CSV {path} holds NUL bytes: it is UTF-16 without a byte-order mark, or "
                        "not a text file; save it as UTF-8 (\"CSV UTF-8\" in Excel)")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"CSV {path} is not valid {encoding.removesuffix('-sig').upper()} text "
                        f"(byte {exc.start}); save it as UTF-8 (\"CSV UTF-8\" in Excel)") from None


def parse_csv_rows(path: Path) -> CsvRows:
    """Rows of fer2013.csv, read with the csv module: quoted fields, CRLF and a BOM are fine."""
    reader = csv.reader(io.StringIO(_read_csv_text(path), newline=""), skipinitialspace=True)
    out = CsvRows([], [], [], [])
    try:
        header = [h.strip() for h in next(reader, [])]
        # columns by name: fer2013.csv has emotion,pixels,Usage; Kaggle's icml_face_data.csv
        # has "emotion, Usage, pixels"; a CSV without Usage is all training data
        names = [h.lower() for h in header]
        known = {"emotion", "pixels", "usage"}
        if not {"emotion", "pixels"} <= set(names) <= known or len(names) != len(set(names)):
            raise DataError(f"{path}: header is {','.join(header)!r}, expected the columns emotion, "
                            "pixels and (optionally) Usage, as in fer2013.csv or icml_face_data.csv")
        col_e, col_p = names.index("emotion"), names.index("pixels")
        col_u = names.index("usage") if "usage" in names else None
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                quote = (" (a quote opened on an earlier line is never closed)"
                         if any("\n" in field for field in row) else "")
                raise DataError(f"{path} row {reader.line_num}: {len(row)} fields, expected "
                                f"{len(header)} ({','.join(header)}){quote}")
            out.emotions.append(row[col_e])
            out.pixels.append(row[col_p])
            out.usage.append(row[col_u].strip() if col_u is not None else "Training")
            out.lines.append(reader.line_num)
    except csv.Error as exc:  # an unclosed quote, a NUL byte, a field over the size limit
        raise DataError(f"{path} row {reader.line_num}: not valid CSV ({exc}); save it as a "
                        "plain comma-separated file") from None
    if not out.lines:
        raise DataError(f"{path} has a header but no rows")
    return out


def _pixel_counts(pixels: list[str]) -> np.ndarray:
    """Values in each row's pixel string, separated by any whitespace. Counting single spaces
    is fast; only rows where that count is off (double spaces, tabs, ends) are split."""
    counts = np.fromiter((p.count(" ") + 1 for p in pixels), int, len(pixels))
    for i in np.flatnonzero(counts != 2304):
        counts[i] = len(pixels[i].split())
    return counts


def decode_pixels(path: Path, pixels: list[str], lines: list[int]) -> np.ndarray:
    """All rows' whitespace-separated pixel strings -> uint8 N x 48 x 48, in one vectorised parse."""
    n = len(pixels)
    counts = _pixel_counts(pixels)
    bad = np.flatnonzero(counts != 2304)
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{path} row {lines[i]}: {counts[i]} pixel values, expected 2304 (48x48 "
                        "grey levels separated by spaces); fix or remove that row")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            # sep=" " matches any run of whitespace, so double spaces and tabs parse too
            flat = np.fromstring(" ".join(pixels), dtype=np.int32, sep=" ")
    except ValueError:  # recent numpy raises on a non-numeric token (older versions warned)
        flat = np.zeros(0, np.int32)
    if flat.size != n * 2304:
        for i, p in enumerate(pixels):
            if not all(t.isdigit() for t in p.split()):
                raise DataError(f"{path} row {lines[i]}: non-numeric pixel values; "
                                "pixels must be integers 0-255 separated by spaces")
        raise DataError(f"{path}: pixel values could not be parsed; each row needs 2304 integers "
                        "0-255 separated by spaces")
    if flat.min(initial=0) < 0 or flat.max(initial=0) > 255:
        i = int(np.flatnonzero(((flat < 0) | (flat > 255)).reshape(n, -1).any(1))[0])
        raise DataError(f"{path} row {lines[i]}: pixel values outside 0-255")
    return flat.astype(np.uint8).reshape(n, 48, 48)


def checked_ids(path: Path, rows: CsvRows) -> np.ndarray:
    """The rows' emotion ids (int64); DataError naming the line of an id that is not 0-6 or of
    an unknown Usage."""
    emotions, _, usage, lines = rows
    try:
        ids = np.array(emotions, dtype=np.int64)
    except ValueError:
        i = next(i for i, e in enumerate(emotions) if not e.strip().isdigit())
        raise DataError(f"{path} row {lines[i]}: emotion {emotions[i]!r} is not an integer id "
                        "0-6") from None
    if ids.min() < 0 or ids.max() > 6:
        i = int(np.flatnonzero((ids < 0) | (ids > 6))[0])
        raise DataError(f"{path} row {lines[i]}: unknown emotion id {ids[i]}; fer2013 ids are 0-6 "
                        f"({', '.join(f'{k} {n}' for k, n in enumerate(FER_CSV_NAMES))})")
    if unknown := sorted(set(usage) - set(CSV_USAGE)):
        i = usage.index(unknown[0])
        raise DataError(f"{path} row {lines[i]}: unknown Usage {unknown[0]!r}; expected one of "
                        f"{', '.join(CSV_USAGE)}")
    return ids
