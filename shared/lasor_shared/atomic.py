"""Write to a temporary file, then rename: a reader sees either the old file or the whole new one."""

from __future__ import annotations

import contextlib
import os
import uuid


@contextlib.contextmanager
def atomic_write(path: str, prefix: str | None = None, suffix: str = ""):
    """Yield a temporary path in `path`'s folder for the block to write; when the block succeeds, fsync
    that file and rename it over `path`; when it fails, delete it. The temporary is named
    `prefix` + pid-random + `suffix` (default prefix: `path`'s name + '.tmp-')."""
    folder = os.path.dirname(os.path.abspath(path))
    name = f"{os.path.basename(path) + '.tmp-' if prefix is None else prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = os.path.join(folder, name + suffix)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
