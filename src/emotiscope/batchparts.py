"""The rows of one file as a Parquet part of `emotiscope batch`'s dataset (batch.py): the
parts' schema, rows turned into Arrow columns chunk by chunk, and the temporary parts the
local engine's workers stream them into (renamed into place by batchstore.Store).
"""

from __future__ import annotations

import contextlib
import glob
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path


def schema(labels: Sequence[str]):
    """The Arrow schema of every part: the same columns, photos and videos alike."""
    import pyarrow as pa

    return pa.schema([("file", pa.string()), ("face", pa.int32()), ("x", pa.int32()),
                      ("y", pa.int32()), ("w", pa.int32()), ("h", pa.int32()),
                      ("label", pa.string()), ("score", pa.float64()),
                      *((name, pa.float64()) for name in labels), ("assumed", pa.bool_()),
                      ("time", pa.float64()), ("frame", pa.int64()), ("track_id", pa.int64())])


ROW_GROUP_ROWS = 65536  # rows a part's writer holds as Arrow columns before writing them


def _batches(chunks: Iterable[list[dict]], labels: Sequence[str]):
    """Each chunk of rows as an Arrow record batch of the parts' schema, with its face count."""
    import pyarrow as pa

    columns = schema(labels)
    for rows in chunks:
        yield (pa.RecordBatch.from_pylist(rows, schema=columns),
               sum(row.get("face") is not None for row in rows))


def rows_table(chunks: Iterable[list[dict]], labels: Sequence[str]):
    """(a pyarrow Table of the rows, the number with a face), built chunk by chunk."""
    import pyarrow as pa

    batches, faces = [], 0
    for batch, count in _batches(chunks, labels):
        batches.append(batch)
        faces += count
    return pa.Table.from_batches(batches, schema=schema(labels)), faces


# A run's temporary parts are named .part-RUN.RANDOM.tmp; LEFT_BEHIND: every temporary part a
# killed run may leave, those and a part the main process was writing whole (outputs.temp_beside).
TEMP_START, TEMP_END = ".part-", ".tmp"
LEFT_BEHIND = (f"{TEMP_START}*{TEMP_END}", ".*.tmp.parquet")


def temp_prefix(parts: Path) -> Path:
    """The start of the names of one run's temporary parts in the folder `parts`. They are
    hidden and not named *.parquet, so no reader of the dataset takes one for a part (pyarrow
    and pandas skip hidden files; DuckDB's 'parts/*.parquet' does not), and the run removes
    those left when its workers are done (remove_temp_parts), whatever stopped them."""
    return parts / f"{TEMP_START}{secrets.token_hex(4)}"


def remove_temp_parts(prefix: Path) -> None:
    """Remove the temporary parts whose names start with `prefix` (see temp_prefix)."""
    for tmp in prefix.parent.glob(f"{glob.escape(prefix.name)}.*{TEMP_END}"):
        tmp.unlink(missing_ok=True)


def clear_temp_parts(parts: Path) -> tuple[int, int]:
    """Remove the temporary parts killed runs left in `parts` (LEFT_BEHIND; call it holding the
    folder's lock, batchlock.py); (how many, their bytes)."""
    count = size = 0
    for tmp in (found for pattern in LEFT_BEHIND for found in parts.glob(pattern)):
        with contextlib.suppress(OSError):
            bytes_ = tmp.stat().st_size
            tmp.unlink()
            count, size = count + 1, size + bytes_
    return count, size


def write_temp_part(chunks: Iterable[list[dict]], labels: Sequence[str],
                    prefix: Path) -> tuple[Path, int]:
    """Write the rows, chunk by chunk (ROW_GROUP_ROWS a row group), to a new temporary part
    named `prefix`.RANDOM.tmp (see temp_prefix); (its path, the rows with a face). On any
    failure it is removed and the error raised."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .outputs import write_error

    tmp = prefix.with_name(f"{prefix.name}.{secrets.token_hex(4)}{TEMP_END}")
    pending, held, faces = [], 0, 0
    try:
        with pq.ParquetWriter(tmp, schema(labels)) as writer:
            for batch, count in _batches(chunks, labels):
                pending.append(batch)
                held, faces = held + batch.num_rows, faces + count
                if held >= ROW_GROUP_ROWS:
                    writer.write_table(pa.Table.from_batches(pending))
                    pending, held = [], 0
            if pending:
                writer.write_table(pa.Table.from_batches(pending))
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(tmp, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, faces
