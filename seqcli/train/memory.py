"""Keep freed tensor memory in the process instead of returning it to the OS at every free.

glibc serves every large allocation (activations, gradients) with its own mmap and hands it
back with munmap when freed; a training step that frees and re-allocates the same tensors
then pays page faults for all of them, every step. Serving large blocks from the heap
(M_MMAP_MAX = 0) and trimming the heap only past 1 GiB free lets glibc reuse that memory.
Measured on the char-lm model (2-core CPU): page faults 1.9M -> 0.17M, sys time 4.8 s ->
0.6 s, throughput +45%; see benchmarks/lm_throughput.py. Set SEQCLI_MALLOC_TUNING=0 to skip.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 1024 * 1024 * 1024

_done = False


def keep_freed_memory() -> bool:
    """Tune glibc's allocator (Linux with glibc only; a no-op elsewhere). Returns whether it applied."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("SEQCLI_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        _done = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        return False
    return _done
