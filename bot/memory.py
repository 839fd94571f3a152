"""Give memory the process no longer uses back to the system (glibc keeps freed memory)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

log = logging.getLogger(__name__)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def give_back() -> None:
    """After a task graph's document is let go (hundreds of megabytes in pieces of a few),
    glibc keeps the freed pieces for later allocations and the process stays that big;
    ``malloc_trim`` returns them. Nothing happens where there is no glibc."""
    libc = _libc()
    if libc is None:
        return
    try:
        libc.malloc_trim(0)
    except Exception as error:  # pragma: no cover - a libc without it
        log.debug("malloc_trim failed: %s", error)
