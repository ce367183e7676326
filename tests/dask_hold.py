"""Dask worker preload for tests (never used by the product): after its first finished task a worker
pauses (Dask's own pause: it starts no new task but stays responsive) for as long as the file named by
$LASOR_TEST_HOLD exists. A test can then act on a run that has finished one shard and cannot finish the
rest, however fast the machine is. Enable it in a child's environment with `hold_env(path)`."""

from __future__ import annotations

import json
import os

from distributed import WorkerPlugin
from distributed.core import Status
from tornado.ioloop import PeriodicCallback


def hold_env(hold_file) -> dict:
    """Environment variables that load this preload into every worker of a LocalCluster."""
    return {"DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([os.path.abspath(__file__)]),
            "DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "False",  # the memory monitor would un-pause it
            "LASOR_TEST_HOLD": str(hold_file)}


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
