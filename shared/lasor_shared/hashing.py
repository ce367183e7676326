"""File hashing: the one sha256 used for body models, pose files, shards and manifests."""

import hashlib


def sha256_file(path: str) -> str:
    """sha256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
