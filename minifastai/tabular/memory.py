"""Giving freed memory back to the system between the columns of a big table.

Processing a table of millions of rows column by column leaves holes in glibc's heap (and in pyarrow's pool)
that count in the process's peak memory while the next columns are processed. From `BIG_TABLE` rows on (see
`columns.py`), minifastai hands that free memory back after each column: pyarrow's `release_unused()`, and
glibc's `malloc_trim(0)` called through ctypes (as Dask does for its workers). Off glibc (macOS, musl) the
trim is a no-op.

One switch turns it off: `minifastai.tabular.memory.TRIM_MEMORY = False`, or the environment variable
`MINIFASTAI_TRIM_MEMORY=0`. Nothing else changes: the results are the same, only the peak is higher.
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

TRIM_MEMORY = True
"""Give free memory back to the system between the columns of a big table (`MINIFASTAI_TRIM_MEMORY=0` also
turns it off)."""


def trimming() -> bool:
    """Whether free memory is handed back now: `TRIM_MEMORY`, unless `MINIFASTAI_TRIM_MEMORY=0`."""
    return TRIM_MEMORY and os.environ.get("MINIFASTAI_TRIM_MEMORY", "1").strip() not in ("0", "false", "no")


def _release_free_memory() -> None:
    """Give memory that is free but still held back to the system: pyarrow's pool, and glibc's heap, which keeps
    the holes that a column's temporaries leave (tens of MB for a table of millions of rows; Dask trims its
    workers the same way). Without it they count in the peak while the next columns are processed. Does
    nothing when `trimming()` is off."""
    if not trimming():
        return
    pa = sys.modules.get("pyarrow")
    if pa is not None:
        pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (e.g. musl)
        return None


_LIBC = _load_libc()
