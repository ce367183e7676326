"""Code shared by lasor's generator and trainer: body models, keypoints, cameras,
the shard schema and manifest, config loading."""

from lasor_shared.errors import LasorError

__all__ = ["LasorError"]
