r"""Readers of dataset files: IDX (the binary format of MNIST and Fashion-MNIST), CSV, NPZ.

Each reader checks everything it reads (magic numbers, dimensions, sizes, dtypes, cell
values) and reports any problem as a :class:`DataError` whose one-line message names
the file, so a truncated or corrupt file never loads partially and never surfaces as
a traceback from deep inside numpy, zlib or the csv module.

IDX layout (big-endian): two zero bytes, a type code, the number of dimensions
:math:`d`, then :math:`d` unsigned 32-bit sizes :math:`n_1 \dots n_d`, then
:math:`\prod_i n_i` values in C order.  A file may be gzipped (recognised by its
content, not its name).
"""

from __future__ import annotations

import csv
import gzip
import io
import struct
import zipfile
import zlib
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""IDX type code -> numpy dtype of the stored values."""

GZIP_MAGIC = b"\x1f\x8b"
NUMPY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")
"""How a zip archive (an ``.npz``, possibly empty) or an ``.npy`` file starts; ``np.load``
tries to unpickle anything else, and so would report a PNG as "pickled data"."""
MAX_DEFLATE_RATIO = 1032
"""Deflate expands at most about 1032:1, which bounds what a gzip file can hold."""

CSV_BLOCK_ROWS = 4096
"""Rows converted to floats at a time, so no file is ever held as a full table of strings."""


class DataError(ValueError):
    """A data file is missing, malformed or inconsistent; the message names the file."""


def _open_binary(path: Path) -> io.BufferedIOBase:
    """``path`` opened for reading, transparently decompressed when it starts like gzip."""
    with path.open("rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _read_exact(f: io.BufferedIOBase, out: NDArray[Any]) -> int:
    """Fill ``out`` from ``f`` (reads may come in pieces); returns the bytes actually read."""
    view = out.reshape(-1).view(np.uint8).data
    got = 0
    while got < len(view):
        n = f.readinto(view[got:])
        if not n:
            break
        got += n
    return got


NPZ_ERRORS = (
    OSError, EOFError, ValueError, KeyError, RuntimeError, NotImplementedError, zipfile.BadZipFile, zlib.error,
)  # fmt: skip
"""What ``np.load`` and :mod:`zipfile` raise on a damaged archive (``RuntimeError``: a member
marked encrypted; ``NotImplementedError``: an unknown compression method)."""


def is_numpy_file(path: Path) -> bool:
    """Whether ``path`` starts like an ``.npz`` or ``.npy`` file (see :data:`NUMPY_MAGIC`)."""
    with path.open("rb") as f:
        return f.read(6).startswith(NUMPY_MAGIC)


def read_idx(path: str | Path) -> NDArray[Any]:
    r"""The array stored in the IDX file ``path`` (raw or gzipped), in native byte order.

    The header must promise exactly the bytes that follow it: a file that ends early
    (truncated) or carries extra bytes is rejected, as are unknown type codes and
    zero dimensions.  Values are read straight into the result, so the file's data is
    held once (plus a byte-swap for the multi-byte types).

    Raises
    ------
    DataError
        If the file is missing, unreadable or not a well-formed IDX file.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with _open_binary(path) as f:
            gzipped = isinstance(f, gzip.GzipFile)
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_TYPES or head[3] == 0:
                raise DataError(f"{path}: not an IDX file (magic bytes {head.hex() or 'missing'})")
            ndim = head[3]
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header ({ndim} dimensions announced)")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dtype = np.dtype(IDX_TYPES[head[2]])
            nbytes = int(np.prod(dims, dtype=np.float64)) * dtype.itemsize
            available = size * MAX_DEFLATE_RATIO if gzipped else size - 4 - 4 * ndim
            if nbytes > available:
                raise DataError(f"{path}: truncated: header says {dims} ({nbytes} bytes) but the file is {size} bytes")
            out = np.empty(dims, dtype)
            got = _read_exact(f, out)
            if got < nbytes:
                raise DataError(f"{path}: truncated: header says {dims} ({nbytes} bytes of data), found {got}")
            if f.read(1):
                raise DataError(f"{path}: {dims} array followed by unexpected extra bytes")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    return out.astype(dtype.newbyteorder("="), copy=False)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_rows(path: Path) -> Generator[tuple[int, list[str]], None, None]:
    """Non-blank rows of ``path`` with their line numbers; decoding errors become DataError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for row in reader:
                if row and any(cell.strip() for cell in row):
                    yield reader.line_num, row
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise DataError(f"{path}: not valid CSV ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def _label_index(path: Path, names: list[str] | None, n_cols: int, label_column: str | int | None) -> int:
    """Column index of the labels: by name, by (possibly negative) index, else ``label`` or the last."""
    if isinstance(label_column, str) and (names is None or label_column not in names):
        try:  # "0" or "-1" from a command line is an index unless the header has such a name
            label_column = int(label_column)
        except ValueError:
            pass
    if isinstance(label_column, str):
        if names is None:
            raise DataError(f"{path}: label column {label_column!r} is a name but the file has no header row")
        if label_column not in names:
            shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise DataError(f"{path}: no column named {label_column!r} (columns: {shown})")
        return names.index(label_column)
    if label_column is None:
        return names.index("label") if names is not None and "label" in names else n_cols - 1
    if not -n_cols <= label_column < n_cols:
        raise DataError(f"{path}: label column {label_column} out of range for {n_cols} columns")
    return label_column % n_cols


def _label_indices(path: Path, names: list[str] | None, n_cols: int, label_column: str | int | None) -> list[int]:
    """The label columns: one (:func:`_label_index`), or several for ``"a,b,c"`` (names or
    indices, comma-separated; a header name that holds a comma is one column)."""
    if not isinstance(label_column, str) or "," not in label_column or (names is not None and label_column in names):
        return [_label_index(path, names, n_cols, label_column)]
    parts = [part.strip() for part in label_column.split(",")]
    indices = [_label_index(path, names, n_cols, part) for part in parts]
    if len(set(indices)) < len(indices):
        raise DataError(f"{path}: label columns {label_column!r} name a column twice")
    if len(indices) >= n_cols:
        raise DataError(f"{path}: label columns {label_column!r} leave no feature column")
    return indices


def label_column_names(
    path: str | Path, label_column: str | int | None = None, header: bool | None = None
) -> list[str]:
    """The names of a CSV file's label columns (see :func:`read_csv_table`): the header's,
    or ``column N`` (1-based) in a file without one."""
    path = Path(path)
    names, n_cols = csv_columns(path, header)
    indices = _label_indices(path, names, n_cols, label_column)
    return [names[i] if names is not None else f"column {i + 1}" for i in indices]


def _bad_cell(path: Path, line: int, col: int, names: list[str] | None, what: str) -> DataError:
    name = f" ({names[col]!r})" if names is not None else ""
    return DataError(f"{path}: line {line}, column {col + 1}{name}: {what}")


def _guess_header(first: list[str], second: list[str] | None) -> bool:
    """Whether ``first`` names the columns: some column holds a non-number there but a number
    in ``second`` (or, in a one-row file, no cell is a number)."""
    if second is None:
        return not any(_is_number(cell) for cell in first)
    return any(not _is_number(a) and b < len(second) and _is_number(second[b]) for b, a in enumerate(first))


def csv_columns(path: str | Path, header: bool | None = None) -> tuple[list[str] | None, int]:
    """The column names (``None`` without a header row; ``header`` as in :func:`read_csv_table`)
    and the number of columns of a CSV file, from its first two rows (0 columns if it has none)."""
    rows = _csv_rows(Path(path))
    try:
        first, second = next(rows, None), next(rows, None)
    finally:
        rows.close()
    if first is None:
        return None, 0
    if header is None:
        header = _guess_header(first[1], None if second is None else second[1])
    return ([cell.strip() for cell in first[1]] if header else None), len(first[1])


def read_csv(
    path: str | Path, label_column: str | int | None = None, header: bool | None = None
) -> tuple[NDArray[np.float32], NDArray[Any]]:
    """Features and labels of a CSV file: :func:`read_csv_table` with a label column."""
    X, raw = read_csv_table(path, label_column, header)
    assert raw is not None
    return X, raw


def read_csv_features(path: str | Path, header: bool | None = None) -> NDArray[np.float32]:
    """Features only (every column is one) of a CSV file: :func:`read_csv_table` without labels."""
    return read_csv_table(path, header=header, with_labels=False)[0]


def read_csv_table(
    path: str | Path,
    label_column: str | int | None = None,
    header: bool | None = None,
    with_labels: bool = True,
) -> tuple[NDArray[np.float32], NDArray[Any] | None]:
    r"""Features (float32, one row per sample) and raw labels from a CSV file.

    Parameters
    ----------
    path : str or Path
        Comma-separated UTF-8 text; blank lines are skipped.
    label_column : str, int or None
        The label column by header name or by index (negative counts from the end;
        a string of digits that is not a header name is an index); several, as names or
        indices separated by commas (``"a,b,c"``), for multi-label or multi-output data.
        ``None`` means the column named ``label`` if the header has one, else the last.
    header : bool or None
        Whether the first row names the columns.  ``None`` guesses: it is a header
        when some column holds a non-number there but a number in the next row
        (or, in a one-row file, when no cell is a number).

    Returns
    -------
    X : ndarray of float32, shape (m, n)
        Every other column; each cell must be a finite number.
    labels : ndarray
        The label column as float64 when every label is a number, else as strings; with
        several label columns (``label_column="a,b,c"``), one column of labels per label
        column, shape (m, K).

    Raises
    ------
    DataError
        Empty file, ragged row, non-numeric or non-finite feature cell, bad label column.
    """
    path = Path(path)
    rows = _csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise DataError(f"{path}: empty file (no rows)")
    second = next(rows, None)
    if header is None:
        header = _guess_header(first[1], None if second is None else second[1])
    names = [cell.strip() for cell in first[1]] if header else None
    n_cols = len(first[1])
    if n_cols < 1 + with_labels:
        needs = "a label column and at least one feature column" if with_labels else "at least one column"
        raise DataError(f"{path}: needs {needs}, found {n_cols} column")
    label_cols = _label_indices(path, names, n_cols, label_column) if with_labels else []
    features = [c for c in range(n_cols) if c not in label_cols]

    blocks: list[NDArray[np.float32]] = []
    labels: list[list[str]] = []
    block: list[tuple[int, list[str]]] = []

    def convert(block: list[tuple[int, list[str]]]) -> None:
        try:
            with np.errstate(over="ignore"):  # values beyond float32 become inf, reported just below
                blocks.append(np.array([[row[c] for c in features] for _, row in block], dtype=np.float32))
        except ValueError:
            for line, row in block:
                for c in features:
                    if not _is_number(row[c]):
                        raise _bad_cell(path, line, c, names, f"non-numeric cell {row[c]!r}") from None
            raise DataError(f"{path}: lines {block[0][0]}-{block[-1][0]}: cells are not numbers") from None
        bad = np.argwhere(~np.isfinite(blocks[-1]))
        if len(bad):
            i, j = bad[0]
            line, row = block[i]
            raise _bad_cell(path, line, features[j], names, f"non-finite value {row[features[j]]!r}")
        for line, row in block if with_labels else ():
            for label in label_cols:
                if not row[label].strip():
                    raise _bad_cell(path, line, label, names, "empty label")
            labels.append([row[label].strip() for label in label_cols])

    data_rows = ([first] if not header else []) + ([second] if second is not None else [])
    for line, row in (*data_rows, *rows):
        if len(row) != n_cols:
            raise DataError(f"{path}: line {line} has {len(row)} cells, expected {n_cols} like line {first[0]}")
        block.append((line, row))
        if len(block) == CSV_BLOCK_ROWS:
            convert(block)
            block = []
    if block:
        convert(block)
    if not blocks:
        raise DataError(f"{path}: a header row but no data rows")
    X = np.concatenate(blocks)
    if not with_labels:
        return X, None
    raw = np.array(labels)
    raw = raw[:, 0] if len(label_cols) == 1 else raw
    return X, (raw.astype(np.float64) if all(_is_number(v) for v in raw.flat) else raw)


def read_npz(path: str | Path) -> tuple[NDArray[Any], NDArray[Any]]:
    """Features and labels of an NPZ archive: :func:`read_npz_table` with ``y``."""
    X, y = read_npz_table(path)
    assert y is not None
    return X, y


def read_npz_features(path: str | Path) -> NDArray[Any]:
    """The features ``X`` of an NPZ archive (``y`` not needed): :func:`read_npz_table`."""
    return read_npz_table(path, with_labels=False)[0]


def read_npz_table(path: str | Path, with_labels: bool = True) -> tuple[NDArray[Any], NDArray[Any] | None]:
    """Arrays ``X`` (m, n) or images (m, h, w) and ``y`` (m,) from an ``.npz`` archive.

    ``X`` must be numeric (bool, integer or float, all finite); ``y`` numeric or
    strings, or numeric of shape (m, K) (several labels or outputs per sample).
    Nothing is unpickled.

    Raises
    ------
    DataError
        Not an NPZ archive, a missing or malformed array, or mismatched lengths.
    """
    path = Path(path)
    try:
        if not is_numpy_file(path):
            raise DataError(f"{path}: not a readable NPZ archive (neither a zip archive nor a .npy array)")
        # Our own handle: np.load leaks the one it opens when the zip directory is corrupt.
        with path.open("rb") as f:
            archive = np.load(f, allow_pickle=False)
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an NPZ archive (a single .npy array?)")
            missing = [k for k in ("X", "y")[: 1 + with_labels] if k not in archive.files]
            if missing:
                raise DataError(f"{path}: missing array {missing[0]!r} (has: {', '.join(archive.files) or 'nothing'})")
            X, y = archive["X"], archive["y"] if with_labels else None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except DataError:
        raise
    except NPZ_ERRORS as e:
        raise DataError(f"{path}: not a readable NPZ archive ({type(e).__name__}: {e})".splitlines()[0]) from None
    if X.dtype.kind not in "buif":
        raise DataError(f"{path}: X must be numeric, got dtype {X.dtype}")
    if X.ndim in (2, 3) and X.shape[0] == 0:
        raise DataError(f"{path}: X is empty (no samples), shape {X.shape}")
    if X.ndim not in (2, 3) or X[0].size == 0:
        raise DataError(f"{path}: X must be (samples, features) or (samples, height, width), got shape {X.shape}")
    if y is not None and (y.ndim != 1 or y.dtype.kind not in "buifUS"):
        if y.ndim != 2 or y.dtype.kind not in "buif" or y.shape[1] == 0:
            raise DataError(
                f"{path}: y must be a 1-D array of numbers or strings, or (samples, outputs) numbers, "
                f"got {y.dtype} shape {y.shape}"
            )
    if y is not None and len(y) != len(X):
        raise DataError(f"{path}: {len(X)} samples in X but {len(y)} labels in y")
    if X.dtype.kind == "f" and not np.isfinite(X).all():
        raise DataError(f"{path}: X holds non-finite values (NaN or infinity)")
    return X, y
