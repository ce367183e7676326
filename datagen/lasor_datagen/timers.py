"""Per-stage wall-clock timers of the generator, kept in the code path they time.

`stage(name)` is a context manager: while a `StageTimer` is active (`generate_shard` activates one
per shard task) it adds the block's time to `name`, exclusive of nested stages (an inside test run
while placing an occluder counts as `inside_tests`, not `occluders`). With no active timer it returns
one shared no-op context: a global lookup and an attribute test, ≈ 0.1 µs per use.

Stages (each a share of a sample's time): `setup` (per task: context, file, seeds), `pose_sampling`
(incl. the self-contact test of each drawn pose), `shape_camera_sampling` (shapes, genders, occluder
plans, grounding, camera framing), `body_forward` (the batched body model), `occluders` (placement
incl. retries, minus its inside tests), `inside_tests` (BodyVolume/convex penetration depths),
`render` (GL passes and read-back), `labels` (masks, projections, visibility, rows), `write`
(compression + HDF5 writes, hashing, rename, sidecar).

The clock is wall time (`time.perf_counter`), or the process's CPU time (`time.process_time`, every
thread: llvmpipe's too) when LASOR_STAGE_CLOCK=cpu — what one worker costs on a machine shared
with other work, where wall time measures the other work as much as this.
"""

from __future__ import annotations

import os
import time

STAGES = ("setup", "pose_sampling", "shape_camera_sampling", "body_forward", "occluders", "inside_tests",
          "render", "labels", "write")


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_NULL = _Null()
_active: StageTimer | None = None


class _Stage:
    __slots__ = ("timer", "name", "t0", "child")

    def __init__(self, timer, name):
        self.timer, self.name = timer, name

    def __enter__(self):
        self.child = 0.0
        self.timer.stack.append(self)
        self.t0 = self.timer.clock()
        return self

    def __exit__(self, *exc):
        dt = self.timer.clock() - self.t0
        stack = self.timer.stack
        stack.pop()
        self.timer.totals[self.name] += dt - self.child
        if stack:
            stack[-1].child += dt
        return False


class StageTimer:
    """Exclusive seconds per stage; `with StageTimer() as t:` makes it the active one."""

    def __init__(self, clock=None):
        self.clock = clock or (time.process_time if os.environ.get("LASOR_STAGE_CLOCK") == "cpu"
                               else time.perf_counter)
        self.totals = dict.fromkeys(STAGES, 0.0)
        self.stack: list[_Stage] = []

    def __call__(self, name):
        return _Stage(self, name)

    def __enter__(self):
        global _active
        self._previous, _active = _active, self
        return self

    def __exit__(self, *exc):
        global _active
        _active = self._previous
        return False


def stage(name: str):
    """Context timing `name` on the active StageTimer (a no-op when none is active)."""
    return _NULL if _active is None else _Stage(_active, name)
