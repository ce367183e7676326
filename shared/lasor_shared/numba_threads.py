"""Running numba's parallel kernels next to torch without disturbing torch's thread settings.

numba's 'omp' threading layer and torch share one OpenMP runtime: a numba parallel region sets the
calling thread's OpenMP thread count, which torch then reports and uses (a render call used to
leave torch at 2 threads after `torch.set_num_threads(1)`). `kernel_threads` runs a block of
kernel calls with a chosen numba thread count and restores numba's and torch's counts afterwards.
numba and torch are imported on the first call, so importing this module (as the body model does)
loads neither.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def kernel_threads(n: int | None = None):
    """Context manager: numba uses `n` threads inside (None = its current setting); on exit both
    numba's and torch's thread counts are what they were on entry. Yields the count in use."""
    import numba
    import torch

    torch_prev, numba_prev = torch.get_num_threads(), numba.get_num_threads()
    if n is not None and n != numba_prev:
        numba.set_num_threads(n)
    try:
        yield numba.get_num_threads()
    finally:
        if numba.get_num_threads() != numba_prev:
            numba.set_num_threads(numba_prev)
        if torch.get_num_threads() != torch_prev:
            torch.set_num_threads(torch_prev)
