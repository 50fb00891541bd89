"""Keep freed memory in the process, so that a CPU training step does not fault its
large buffers in afresh at every step.

glibc's malloc serves every block above its mmap threshold with a fresh ``mmap`` and
returns it at ``free``; a ResNet-18 step allocates and frees tens of large buffers
(gradients, activations, oneDNN's reorders), and each fresh mapping pays the kernel's page
faults and zero-fill again. glibc raises that threshold by itself after the first frees,
so most buffers already stay; fixing the mmap and trim thresholds high keeps the rest:
about 3% more images/s of a ResNet-18 step on this project's CPU (processes taking turns;
docs/benchmarks.md), at the cost of the process keeping its peak memory until it exits.
A no-op where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc refuses more than HEAP_MAX/2 (32 MiB on 64-bit)
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 64 << 20

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to keep freed blocks in the heap (once per process); whether
    it took (False off glibc)."""
    global _done
    if _done is None:
        _done = _set_thresholds()
    return _done


def _set_thresholds() -> bool:
    """mallopt the mmap threshold, trim threshold and top pad; True when all three took."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # not glibc
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(option, value) == 1 for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD)))
