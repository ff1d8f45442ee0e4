#!/usr/bin/env python3
"""Convert a pickled pandas DataFrame (PaddleRec's MetaHeac data: train_stage1.pkl, test_stage1.pkl,
test_stage2.pkl) to JSONL, one JSON object per row, the columns unchanged and in their order.

    python3 scripts/lookalike-pickle-to-jsonl.py train_stage1.pkl train_stage1.jsonl

Python standard library only: no pandas, no numpy. A pickle can run any code when it is loaded, so
this reads it with a restricted unpickler: `find_class` allows only the few pandas and numpy names
a DataFrame of numbers and lists is rebuilt from, and maps each to a small stand-in class here
(never to the real pandas or numpy); any other name stops the conversion with one line naming it.
Integer, float and boolean columns and object columns holding lists (or numpy arrays) of numbers are
supported: what PaddleRec's look-alike frames hold. Written to <out>.partial and renamed when done.
"""
import json
import math
import os
import pickle
import struct
import sys


class ConvertError(Exception):
    """A problem with the input, reported as one line."""


# ---- numpy stand-ins -----------------------------------------------------------------------------

class Dtype:
    """numpy.dtype('i8' | 'f4' | 'O8' | 'b1' | ...): kind, item size and byte order."""

    def __init__(self, spec, align=False, copy=True):
        if not isinstance(spec, str) or not spec:
            raise ConvertError(f"unsupported numpy dtype {spec!r}")
        self.kind = spec[0]
        self.itemsize = int(spec[1:]) if spec[1:].isdigit() else 0
        self.byteorder = "<"

    def __setstate__(self, state):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
        # '|' (no order) and '=' (native) read as little-endian: the machines pandas pickles on
        if isinstance(state, tuple) and len(state) > 1:
            self.byteorder = ">" if state[1] == ">" else "<"
        if isinstance(state, tuple) and len(state) > 3 and state[3] is not None:
            raise ConvertError("structured numpy dtypes are not supported")

    def struct_format(self):
        codes = {("i", 1): "b", ("i", 2): "h", ("i", 4): "i", ("i", 8): "q",
                 ("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q",
                 ("f", 4): "f", ("f", 8): "d", ("b", 1): "?"}
        code = codes.get((self.kind, self.itemsize))
        if code is None:
            raise ConvertError(f"unsupported numpy dtype kind '{self.kind}' of {self.itemsize} bytes")
        return ("<" if self.byteorder != ">" else ">"), code


class NDArray:
    """A numpy array as a flat Python list plus its shape (C order)."""

    def __init__(self, shape=(), dtype=None, flat=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.flat = [] if flat is None else flat

    def __setstate__(self, state):
        # (version, shape, dtype, is_fortran, data) from ndarray.__reduce__
        if len(state) == 5:
            _, shape, dtype, fortran, data = state
        else:
            shape, dtype, fortran, data = state
        self.shape = tuple(shape)
        self.dtype = dtype
        self.flat = decode_buffer(data, dtype, shape)
        if fortran and len(self.shape) == 2:
            self.flat = fortran_to_c(self.flat, self.shape)

    def rows(self):
        """A 2-D array as a list of rows; a 1-D array as one row."""
        if len(self.shape) == 1:
            return [self.flat]
        if len(self.shape) != 2:
            raise ConvertError(f"unsupported {len(self.shape)}-D array in the frame")
        n, m = self.shape
        return [self.flat[i * m:(i + 1) * m] for i in range(n)]


def decode_buffer(data, dtype, shape):
    count = 1
    for s in shape:
        count *= s
    if dtype.kind == "O":
        if not isinstance(data, list):
            raise ConvertError("an object array without its items")
        return data
    if isinstance(data, (bytes, bytearray, memoryview)):
        order, code = dtype.struct_format()
        raw = bytes(data)
        if len(raw) != count * dtype.itemsize:
            raise ConvertError(f"array data of {len(raw)} bytes for {count} items of {dtype.itemsize} bytes")
        return list(struct.unpack(f"{order}{count}{code}", raw))
    raise ConvertError(f"unsupported array payload {type(data).__name__}")


def fortran_to_c(flat, shape):
    n, m = shape
    return [flat[j * n + i] for i in range(n) for j in range(m)]


def reconstruct(cls, shape, typecode):
    """numpy.core.multiarray._reconstruct: an empty array that BUILD fills."""
    return NDArray()


def frombuffer(buffer, dtype, shape, order):
    """numpy._core.numeric._frombuffer (pickle protocol 5)."""
    flat = decode_buffer(buffer, dtype, shape)
    if order == "F" and len(shape) == 2:
        flat = fortran_to_c(flat, shape)
    return NDArray(shape, dtype, flat)


def scalar(dtype, data=None):
    """numpy.core.multiarray.scalar: a numpy scalar as a Python number."""
    if dtype.kind == "O":
        return data
    return decode_buffer(data, dtype, (1,))[0]


# ---- pandas stand-ins ----------------------------------------------------------------------------

class Stateful:
    """An object pandas rebuilds by __new__ + __setstate__: keep the state."""

    def __init__(self, *args):
        self.args = args
        self.state = None

    def __setstate__(self, state):
        self.state = state


class Frame(Stateful):
    pass


class Manager(Stateful):
    pass


class IndexStandIn:
    def __init__(self, values):
        self.values = values


class BackedArray(Stateful):
    """A pandas extension array backed by a numpy array (StringArray of column names, pandas >= 3)."""

    def ndarray(self):
        for part in self.state if isinstance(self.state, tuple) else ():
            if isinstance(part, NDArray):
                return part
        raise ConvertError("an extension array without its numpy values")


def unpickle_backed(cls, checksum, state=None):
    """pandas._libs.arrays.__pyx_unpickle_NDArrayBacked(cls, checksum, state): a BackedArray."""
    obj = BackedArray()
    if state is not None:
        obj.__setstate__(state)
    return obj


def new_index(cls, d=None):
    """pandas.core.indexes.base._new_Index(cls, d): the index's values."""
    d = d or {}
    if "data" in d:
        data = d["data"]
        if isinstance(data, BackedArray):
            data = data.ndarray()
        return IndexStandIn(data.flat if isinstance(data, NDArray) else list(data))
    if "start" in d or "stop" in d:
        return IndexStandIn(list(range(d.get("start", 0) or 0, d["stop"], d.get("step", 1) or 1)))
    raise ConvertError("an index pickled in an unknown form")


class IndexClass(Stateful):
    """An Index subclass named as a class (Index, Int64Index, RangeIndex...)."""


def unpickle_block(values, mgr_locs, ndim=2):
    """pandas._libs.internals._unpickle_block: a block as its values and placement."""
    return {"values": values, "mgr_locs": mgr_locs}


ALLOWED = {
    ("pandas.core.frame", "DataFrame"): Frame,
    ("pandas", "DataFrame"): Frame,
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked"): unpickle_backed,
    ("pandas.arrays", "StringArray"): BackedArray,
    ("pandas.core.arrays.string_", "StringArray"): BackedArray,
    ("pandas.core.arrays.string_", "StringDtype"): Stateful,
    ("pandas", "StringDtype"): Stateful,
    ("pandas.core.internals.managers", "BlockManager"): Manager,
    ("pandas.core.indexes.base", "_new_Index"): new_index,
    ("pandas._libs.internals", "_unpickle_block"): unpickle_block,
    ("numpy", "ndarray"): NDArray,
    ("numpy", "dtype"): Dtype,
    ("builtins", "slice"): slice,
}
for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    ALLOWED[(module, "_reconstruct")] = reconstruct
    ALLOWED[(module, "scalar")] = scalar
for module in ("numpy.core.numeric", "numpy._core.numeric"):
    ALLOWED[(module, "_frombuffer")] = frombuffer
for name in ("Index", "Int64Index", "UInt64Index", "Float64Index", "RangeIndex", "NumericIndex"):
    for module in ("pandas", "pandas.core.indexes.base", "pandas.core.indexes.numeric", "pandas.core.indexes.range"):
        ALLOWED[(module, name)] = IndexClass


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        target = ALLOWED.get((module, name))
        if target is None:
            raise ConvertError(f"the pickle needs {module}.{name}, which this converter does not allow "
                               "(it reads DataFrames of numbers and lists of numbers only)")
        return target


# ---- the frame -----------------------------------------------------------------------------------

def placement(locs):
    if isinstance(locs, slice):
        return list(range(locs.start or 0, locs.stop, locs.step or 1))
    if isinstance(locs, NDArray):
        return locs.flat
    return list(locs)


def frame_columns(obj):
    """(column names, per column the list of its values) of an unpickled DataFrame stand-in."""
    if not isinstance(obj, Frame) or not isinstance(obj.state, dict) or "_mgr" not in obj.state and "_data" not in obj.state:
        raise ConvertError("the pickle does not hold a pandas DataFrame")
    mgr = obj.state.get("_mgr", obj.state.get("_data"))
    if not isinstance(mgr, Manager):
        raise ConvertError("the DataFrame's block manager is in an unknown form")
    if mgr.state is None and len(mgr.args) == 2:
        # pandas >= 2.1: BlockManager(blocks, axes) through __reduce__
        st = {"blocks": list(mgr.args[0]), "axes": mgr.args[1]}
    else:
        # pandas 0.14.1 .. 2.0 (PaddleRec's files): __getstate__ with the '0.14.1' entry
        extra = mgr.state[3] if isinstance(mgr.state, tuple) and len(mgr.state) > 3 else None
        if not isinstance(extra, dict) or "0.14.1" not in extra:
            raise ConvertError("the DataFrame was pickled by a pandas this converter does not know (no '0.14.1' state)")
        st = extra["0.14.1"]
    axes = st["axes"]
    names = axes[0].values if isinstance(axes[0], IndexStandIn) else list(axes[0])
    nrows = len(axes[1].values) if isinstance(axes[1], IndexStandIn) else None
    columns = [None] * len(names)
    for block in st["blocks"]:
        values = block["values"]
        if not isinstance(values, NDArray):
            raise ConvertError(f"a column block of type {type(values).__name__} (extension arrays are not supported)")
        locs = placement(block["mgr_locs"])
        rows = values.rows()
        if len(rows) != len(locs):
            raise ConvertError(f"a block of {len(rows)} columns placed at {len(locs)} positions")
        for loc, col in zip(locs, rows):
            columns[loc] = col
    if any(c is None for c in columns):
        raise ConvertError("some columns have no data")
    if nrows is not None and any(len(c) != nrows for c in columns):
        raise ConvertError("columns of different lengths")
    return [str(n) for n in names], columns


def plain(v, column):
    """A cell as JSON: numbers as they are (integral floats stay floats), lists and arrays as lists."""
    if isinstance(v, NDArray):
        return [plain(x, column) for x in v.flat]
    if isinstance(v, (list, tuple)):
        return [plain(x, column) for x in v]
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ConvertError(f"column '{column}' holds {v}, which JSON cannot carry")
        return v
    raise ConvertError(f"column '{column}' holds a {type(v).__name__}")


def convert(src, dst):
    try:
        with open(src, "rb") as f:
            obj = RestrictedUnpickler(f).load()
    except ConvertError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise ConvertError(f"not a readable pickled DataFrame ({type(err).__name__}: {err})")
    names, columns = frame_columns(obj)
    n = len(columns[0]) if columns else 0
    partial = dst + ".partial"
    with open(partial, "w", encoding="utf-8") as out:
        for r in range(n):
            row = {name: plain(col[r], name) for name, col in zip(names, columns)}
            out.write(json.dumps(row, separators=(", ", ": ")) + "\n")
    os.replace(partial, dst)
    return n, names


def main(argv):
    if len(argv) != 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: lookalike-pickle-to-jsonl.py <frame.pkl> <out.jsonl>\n")
        return 2
    src, dst = argv[1], argv[2]
    if os.path.exists(dst):
        sys.stderr.write(f"error: {dst} already exists (hint: choose another output; nothing is overwritten)\n")
        return 1
    try:
        n, names = convert(src, dst)
    except ConvertError as err:
        sys.stderr.write(f"error: {src}: {err}\n")
        return 1
    except OSError as err:
        sys.stderr.write(f"error: {err.filename or src}: {err.strerror}\n")
        return 1
    sys.stderr.write(f"wrote {dst}: {n} rows, {len(names)} columns ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
