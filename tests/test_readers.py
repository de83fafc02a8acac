"""File readers: exact round trips of IDX, CSV and NPZ files written here, and one clear
DataError for every kind of corruption (never another exception, checked with hypothesis)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ml_math_nn.data.readers import DataError, read_csv, read_idx, read_npz

IDX_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def idx_bytes(a: np.ndarray) -> bytes:
    """The IDX encoding of ``a``: magic, big-endian sizes, big-endian values."""
    code = IDX_CODES[a.dtype.str[1:]]
    return (
        bytes([0, 0, code, a.ndim])
        + struct.pack(f">{a.ndim}I", *a.shape)
        + a.astype(a.dtype.newbyteorder(">")).tobytes()
    )


def write(path: Path, content: bytes | str) -> Path:
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


# -- IDX ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_round_trip_is_exact(tmp_path: Path, rng: np.random.Generator, dtype: str, gzipped: bool) -> None:
    a = (rng.normal(size=(5, 3, 4)) * 50).astype(np.dtype(dtype).newbyteorder("="))
    raw = idx_bytes(a)
    path = write(tmp_path / "a.idx", gzip.compress(raw) if gzipped else raw)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.dtype.isnative and b.shape == a.shape
    assert np.array_equal(a, b)


def test_idx_one_dimensional_labels(tmp_path: Path) -> None:
    labels = np.array([3, 0, 9, 255], dtype=np.uint8)
    assert np.array_equal(read_idx(write(tmp_path / "l", idx_bytes(labels))), labels)


GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"not an IDX file \(magic bytes missing\)"),
        (b"\x00\x01\x08\x03" + GOOD[4:], r"not an IDX file \(magic bytes 00010803\)"),
        (b"\x00\x00\x07\x03" + GOOD[4:], r"not an IDX file \(magic bytes 00000703\)"),
        (b"\x00\x00\x08\x00", r"not an IDX file"),
        (GOOD[:10], r"truncated IDX header \(3 dimensions announced\)"),
        (GOOD[:-1], r"truncated: header says \(2, 3, 4\) \(24 bytes\) but the file is 39 bytes"),
        (GOOD + b"\x00", r"\(2, 3, 4\) array followed by unexpected extra bytes"),
        (b"PK\x03\x04 this is a zip", r"not an IDX file"),
    ],
    ids=["empty", "bad-magic", "bad-type", "zero-dims", "short-header", "truncated", "extra-bytes", "other-format"],
)
def test_idx_corruption_is_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path / "bad-idx3-ubyte", content)
    with pytest.raises(DataError, match=f"^{path}: {message}") as err:
        read_idx(path)
    assert "\n" not in str(err.value)


def test_idx_truncated_gzip_stream(tmp_path: Path) -> None:
    packed = gzip.compress(GOOD * 50)
    path = write(tmp_path / "t.gz", packed[: len(packed) // 2])
    with pytest.raises(DataError, match=f"^{path}: cannot read"):
        read_idx(path)


def test_idx_gzip_holding_too_little_data(tmp_path: Path) -> None:
    path = write(tmp_path / "t.gz", gzip.compress(GOOD[:-5]))
    with pytest.raises(DataError, match=r"truncated: header says \(2, 3, 4\) \(24 bytes of data\), found 19"):
        read_idx(path)


def test_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothing.idx: file not found"):
        read_idx(tmp_path / "nothing.idx")


@FUZZ
@given(head=st.binary(max_size=16), body=st.binary(max_size=64), gzipped=st.booleans())
def test_idx_any_bytes_load_or_fail_cleanly(tmp_path: Path, head: bytes, body: bytes, gzipped: bool) -> None:
    # A valid-looking magic half the time, so the header and size checks are reached too.
    content = (b"\x00\x00\x08\x02" + head if head[:1] == b"\x00" else head) + body
    path = write(tmp_path / "fuzz", gzip.compress(content) if gzipped else content)
    try:
        a = read_idx(path)
    except DataError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
    else:
        assert len(idx_bytes(a.astype(a.dtype.newbyteorder("=")))) == len(content)


# -- CSV ----------------------------------------------------------------------------
def test_csv_round_trip_with_header_and_named_label(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,species,b\n1.5,cat,-2\n0,dog,3e2\n\n7,cat,0.25\n")
    X, labels = read_csv(path, "species")
    assert X.dtype == np.float32
    assert np.array_equal(X, np.array([[1.5, -2], [0, 300], [7, 0.25]], dtype=np.float32))
    assert labels.tolist() == ["cat", "dog", "cat"]


def test_csv_without_header_label_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "2,0.5,1\n10,1.5,2\n")
    X, labels = read_csv(path, 0)
    assert np.array_equal(X, [[0.5, 1], [1.5, 2]]) and labels.dtype == np.float64
    assert labels.tolist() == [2.0, 10.0]
    X2, labels2 = read_csv(path, "-3")  # a command line's string index
    assert np.array_equal(X, X2) and np.array_equal(labels, labels2)


@pytest.mark.parametrize(
    ("text", "header", "X", "labels"),
    [
        ("x,y,label\n1,2,a\n3,4,b\n", None, [[1, 2], [3, 4]], ["a", "b"]),  # guessed header, "label" column
        ("label,x\n5,1\n6,2\n", None, [[1], [2]], [5.0, 6.0]),  # "label" wins over "last column"
        ("1,2,a\n3,4,b\n", None, [[1, 2], [3, 4]], ["a", "b"]),  # text labels only: no header
        ("1,2,0\n3,4,1\n", True, [[3, 4]], [1.0]),  # an all-number header, declared
    ],
)
def test_csv_header_and_default_label_column(
    tmp_path: Path, text: str, header: bool | None, X: list[list[float]], labels: list[object]
) -> None:
    got_X, got_labels = read_csv(write(tmp_path / "t.csv", text), header=header)
    assert np.array_equal(got_X, X) and got_labels.tolist() == labels


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("", {}, r"empty file \(no rows\)"),
        ("\n \n", {}, r"empty file \(no rows\)"),
        ("a,b,c\n", {}, "a header row but no data rows"),
        ("1,2,0\n3,x,1\n", {}, r"line 2, column 2: non-numeric cell 'x'"),
        ("p,q,label\n1,2,0\n3,,1\n", {}, r"line 3, column 2 \('q'\): non-numeric cell ''"),
        ("1,2,0\n3,4\n", {}, "line 2 has 2 cells, expected 3 like line 1"),
        ("1,2,0\n3,4,1,5\n", {}, "line 2 has 4 cells, expected 3 like line 1"),
        ("1,nan,0\n3,4,1\n", {}, r"line 1, column 2: non-finite value 'nan'"),
        ("1,1e39,0\n", {}, r"line 1, column 2: non-finite value '1e39'"),
        ("1,2,a\n1,2, \n", {}, "line 2, column 3: empty label"),
        ("1\n2\n", {}, "needs a label column and at least one feature column, found 1 column"),
        ("a,b\n1,2\n", {"label_column": "c"}, r"no column named 'c' \(columns: a, b\)"),
        ("1,2\n", {"label_column": "c"}, "label column 'c' is a name but the file has no header row"),
        ("1,2\n", {"label_column": 2}, "label column 2 out of range for 2 columns"),
    ],
    ids=[
        "empty", "blank", "header-only", "non-numeric", "empty-cell", "ragged-short", "ragged-long", "nan",
        "float32-overflow", "empty-label", "one-column", "unknown-name", "name-no-header", "index-out-of-range",
    ],
)  # fmt: skip
def test_csv_errors_name_file_line_and_column(
    tmp_path: Path, text: str, kwargs: dict[str, object], message: str
) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=f"^{path}: {message}$"):
        read_csv(path, **kwargs)  # type: ignore[arg-type]


def test_csv_not_utf8_and_missing(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.csv", "caf\xe9,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.csv: not UTF-8 text \(byte 3\)"):
        read_csv(path)
    with pytest.raises(DataError, match="nothing.csv: file not found"):
        read_csv(tmp_path / "nothing.csv")


def test_csv_large_file_converts_in_blocks(tmp_path: Path, rng: np.random.Generator) -> None:
    X = rng.integers(0, 256, size=(10_000, 3))
    y = rng.integers(0, 4, size=10_000)
    lines = "\n".join(",".join(map(str, [*row, label])) for row, label in zip(X, y, strict=True))
    got_X, got_y = read_csv(write(tmp_path / "big.csv", lines))
    assert np.array_equal(got_X, X) and np.array_equal(got_y, y)


# -- NPZ ----------------------------------------------------------------------------
def test_npz_round_trip_keeps_uint8_and_images(tmp_path: Path, rng: np.random.Generator) -> None:
    X = rng.integers(0, 256, size=(6, 4, 5), dtype=np.uint8)
    y = np.array(["b", "a", "b", "c", "a", "c"])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    got_X, got_y = read_npz(tmp_path / "d.npz")
    assert got_X.dtype == np.uint8 and np.array_equal(got_X, X) and np.array_equal(got_y, y)


def npz(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.zeros((3, 2))}, r"missing array 'y' \(has: X\)"),
        ({"features": np.zeros((3, 2)), "y": np.zeros(3)}, r"missing array 'X' \(has: features, y\)"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(4)}, "3 samples in X but 4 labels in y"),
        ({"X": np.zeros(3), "y": np.zeros(3)}, r"X must be \(samples, features\) or \(samples, height, width\)"),
        ({"X": np.zeros((0, 2)), "y": np.zeros(0)}, r"X is empty \(no samples\), shape \(0, 2\)"),
        ({"X": np.array([["a"]]), "y": np.zeros(1)}, "X must be numeric, got dtype <U1"),
        ({"X": np.zeros((2, 2)), "y": np.array([["a"], ["b"]])}, "y must be a 1-D array of numbers or strings, or "),
        ({"X": np.array([[1.0, np.inf]]), "y": np.zeros(1)}, r"X holds non-finite values \(NaN or infinity\)"),
    ],
    ids=["no-y", "no-X", "count-mismatch", "1-D", "empty", "text-X", "2-D-y", "inf"],
)
def test_npz_errors(tmp_path: Path, arrays: dict[str, object], message: str) -> None:
    path = npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=f"^{path}: {message}"):
        read_npz(path)


def test_npz_refuses_pickles_and_other_files(tmp_path: Path) -> None:
    path = npz(tmp_path / "obj.npz", X=np.array([[{"evil": 1}]], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match=r"obj.npz: not a readable NPZ archive \(ValueError: Object arrays"):
        read_npz(path)
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DataError, match=r"single.npy: not an NPZ archive"):
        read_npz(tmp_path / "single.npy")
    with pytest.raises(DataError, match=r"text.npz: not a readable NPZ archive"):
        read_npz(write(tmp_path / "text.npz", "X,y\n1,2\n"))


@FUZZ
@given(content=st.binary(max_size=300), cut=st.integers(0, 400))
def test_npz_any_bytes_or_cut_archive_fails_cleanly(tmp_path: Path, content: bytes, cut: int) -> None:
    # Random bytes, and real archives cut short, both must give DataError or load.
    good = tmp_path / "good.npz"
    np.savez_compressed(good, X=np.ones((4, 3)), y=np.arange(4))
    for data in (content, good.read_bytes()[:cut]):
        path = write(tmp_path / "fuzz.npz", data)
        try:
            read_npz(path)
        except DataError as e:
            assert str(e).startswith(str(path)) and "\n" not in str(e)


@FUZZ
@given(
    X=hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4)),
    y=hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4)),
)
def test_npz_any_arrays_load_or_fail_cleanly(tmp_path: Path, X: np.ndarray, y: np.ndarray) -> None:
    path = npz(tmp_path / "fuzz.npz", X=X, y=y)
    try:
        got_X, got_y = read_npz(path)
    except DataError as e:
        assert str(e).startswith(str(path)) and "\n" not in str(e)
    else:
        assert np.array_equal(got_X, X, equal_nan=False) and len(got_y) == len(got_X)
