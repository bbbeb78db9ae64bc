"""Named parameters and counters for the kernels: 1-element structured arrays read by field.

A kernel takes ``params`` and ``state`` records and reads ``p = params[0]``,
``p.alpha``, ``st.frames``: a parameter or counter has a name, not a position,
and adding one shifts nothing. Records rather than NamedTuples: numba checks a
record array's type in C on every call, a NamedTuple of twenty fields in Python.
"""

from __future__ import annotations

import numba
import numpy as np


def kernel_record(values: np.ndarray) -> np.ndarray:
    """A 1-element structured array as the td kernels take it (``rec[0].field`` inside).

    Compiled, a plain structured array (numba checks its type in C, 0.3 µs a
    call; a recarray's in Python, 2 µs); with NUMBA_DISABLE_JIT, a recarray
    view of the same memory (the plain kernels read fields as attributes).
    """
    return values.view(np.recarray) if numba.config.DISABLE_JIT else values.view(np.ndarray)


def new_record(dtype: np.dtype, **fields: float) -> np.ndarray:
    """A kernel record of ``dtype`` with every field given (:func:`kernel_record`).

    Raises
    ------
    TypeError
        If a field is missing or unknown (a programming error, not a user's).
    """
    missing = set(dtype.names) ^ set(fields)
    if missing:
        raise TypeError(f"kernel record fields {sorted(missing)} missing or unknown")
    rec = np.zeros(1, dtype=dtype)
    for name, value in fields.items():
        rec[name] = value
    return kernel_record(rec)


def zeroed_state(dtype: np.dtype) -> np.recarray:
    """A zeroed record of ``dtype`` for a new stream: a recarray of length 1, read by field by the
    engine (``counters[0].frames``); the kernel takes its :func:`kernel_record`."""
    return np.zeros(1, dtype=dtype).view(np.recarray)
