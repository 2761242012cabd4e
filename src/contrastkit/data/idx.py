"""Reader for the IDX format (MNIST, Fashion-MNIST, KMNIST, EMNIST), plain or gzip-compressed.

Example:
    >>> import gzip, tempfile, os, numpy as np
    >>> from contrastkit.data.idx import read_idx, write_idx
    >>> path = os.path.join(tempfile.mkdtemp(), "x-idx3-ubyte.gz")
    >>> write_idx(path, np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    >>> read_idx(path).shape
    (2, 3, 4)
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "write_idx"]

_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: str | os.PathLike, mode: str):
    return gzip.open(path, mode) if str(path).endswith(".gz") else open(path, mode)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file into a numpy array of its stored shape and type.

    Raises:
        ValueError: the file is not IDX (bad magic number) or is truncated; the message names
            the file.
    """
    path = Path(path)
    with _open(path, "rb") as f:
        header = f.read(4)
        if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] not in _DTYPES:
            raise ValueError(
                f"{path} is not an IDX file (magic bytes {header!r}); expected files such as "
                f"train-images-idx3-ubyte[.gz]."
            )
        dtype = _DTYPES[header[2]]
        ndim = header[3]
        dims = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        data = f.read()
    count = int(np.prod(dims)) if dims else 1
    if len(data) < count * dtype.itemsize:
        raise ValueError(
            f"{path} is truncated: header says shape {dims} ({count * dtype.itemsize} bytes) "
            f"but {len(data)} bytes follow. Re-install or re-download the data set."
        )
    arr = np.frombuffer(data, dtype=dtype, count=count).reshape(dims)
    # a writable, native-endian copy (frombuffer views are read-only)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    codes = {v.newbyteorder("="): k for k, v in _DTYPES.items()}
    native = array.dtype.newbyteorder("=")
    if native not in codes:
        raise ValueError(f"IDX cannot store dtype {array.dtype}.")
    code = codes[native]
    stored = array.astype(_DTYPES[code], copy=False)
    with _open(path, "wb") as f:
        f.write(bytes([0, 0, code, array.ndim]))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(stored.tobytes())
