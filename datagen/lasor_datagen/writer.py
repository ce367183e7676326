"""Incremental, byte-reproducible HDF5 shard writer.

Datasets are created up front (fixed N), in schema order, without timestamps (track_times=False),
attributes in sorted order; rows are written in fixed-size groups that match the chunking, so the
same samples always give the same bytes. Image fields are chunked per sample (a reader decompresses
only what it needs) and gzip-compressed; small per-sample arrays are chunked per `rows` samples.
"""

from __future__ import annotations

import h5py
import numpy as np

from lasor_datagen.timers import stage


class ShardWriter:
    def __init__(self, path, schema: dict, n_samples: int, attrs: dict, rows: int, level: int = 4):
        with stage("write"):
            self._create(path, schema, n_samples, attrs, rows, level)

    def _create(self, path, schema, n_samples, attrs, rows, level):
        self.f = h5py.File(path, "w", libver="earliest", track_order=False)
        self.n = n_samples
        for key in sorted(attrs):
            value = attrs[key]
            self.f.attrs[key] = np.bytes_(value) if isinstance(value, str) else value
        self.ds = {}
        for name, (shape, dtype, per_sample) in schema.items():
            chunks = (1, *shape) if per_sample else (min(rows, n_samples), *shape)
            shuffle = dtype.kind == "f"
            self.ds[name] = self.f.create_dataset(
                name, shape=(n_samples, *shape), dtype=dtype, chunks=chunks, compression="gzip",
                compression_opts=level, shuffle=shuffle, track_times=False, fillvalue=0)

    def write(self, start: int, rows: dict) -> None:
        missing = set(self.ds) - set(rows)
        if missing:
            raise KeyError(f"rows lack field(s) {sorted(missing)}")
        with stage("write"):
            for name, ds in self.ds.items():
                data = np.asarray(rows[name], dtype=ds.dtype)
                ds[start:start + len(data)] = data

    def close(self):
        with stage("write"):
            self.f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
