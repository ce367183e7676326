"""Dask worker preload for tests (never used by the product): after its first finished task a worker
pauses (Dask's own pause: it starts no new task but stays responsive) for as long as the file named by
$LASOR_TEST_HOLD exists. A test can then act on a run that has finished one shard and cannot finish the
rest, however fast the machine is. Enable it in a child's environment with `hold_env(path)` and wait for
that first shard with `wait_for_first_shard`."""

from __future__ import annotations

import json
import os
import time

from distributed import WorkerPlugin
from distributed.core import Status
from tornado.ioloop import PeriodicCallback


def hold_env(hold_file) -> dict:
    """Environment variables that load this preload into every worker of a LocalCluster."""
    return {"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([os.path.abspath(__file__)]),
            "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "False",  # the memory monitor would un-pause it
            "LASOR_TEST_HOLD": str(hold_file)}


def wait_for_first_shard(out, proc, timeout: float = 600) -> None:
    """Wait until a shard's sidecar appears in `out` (whichever shard the worker ran first) while the
    `lasor-datagen generate` process `proc` is still running; `timeout` only guards against a hang."""
    t = time.time()
    while not (os.path.isdir(out) and [f for f in os.listdir(out) if f.startswith("shard-") and f.endswith(".json")]):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t < timeout, f"no shard appeared in {out}"
        time.sleep(0.1)
    assert proc.poll() is None


class HoldAfterFirstTask(WorkerPlugin):
    def __init__(self, hold_file: str):
        self.hold_file, self.finished = hold_file, False

    def setup(self, worker):
        self.worker = worker
        self.poll = PeriodicCallback(self._release, 100)
        self.poll.start()

    def teardown(self, worker):
        self.poll.stop()

    def transition(self, key, start, finish, **kwargs):
        if finish == "memory" and not self.finished:
            self.finished = True
            if os.path.exists(self.hold_file):
                self.worker.status = Status.paused

    def _release(self):
        if self.worker.status == Status.paused and not os.path.exists(self.hold_file):
            self.worker.status = Status.running


async def dask_setup(worker):
    await worker.plugin_add(HoldAfterFirstTask(os.environ["LASOR_TEST_HOLD"]), name="lasor-test-hold")
