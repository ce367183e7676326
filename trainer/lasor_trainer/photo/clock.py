"""Stage timings as (wall, cpu) second pairs: on a shared machine the CPU time of this process is what
an idle machine's wall time would be (the models run on one thread)."""

import time

import numpy as np


def now() -> np.ndarray:
    return np.array([time.perf_counter(), time.process_time()])


def split(t) -> tuple[float, float]:
    t = np.asarray(t, np.float64)
    return round(float(t[0]), 4), round(float(t[1]), 4)
