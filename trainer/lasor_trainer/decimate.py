"""A coarse copy of a body mesh for low-resolution silhouettes (the training loss's renderer).

At the silhouette loss's 48–64 px a 27k-triangle body covers a few hundred pixels: most triangles
are smaller than a pixel and the rasteriser's cost is per triangle. `cluster_decimate` keeps a
subset of the ORIGINAL vertices (so a posed coarse body is just `vertices[:, keep]`, no extra
skinning) and rewires the original triangles onto them:

- vertices are grouped by (dominant skinning joint, cell of a `cell`-metre grid on the template),
  so parts that only touch in the rest pose (fingers, inner thighs) never merge;
- each group is represented by its member closest to the group's mean;
- every original triangle is mapped onto the representatives; collapsed and duplicate triangles
  are dropped, orientation is kept.

The weights let a mean over the kept vertices stand for a mean over all of them (the training
loss's vertex term). The outline moves by at most about half a cell (1 cm at cell 0.02 m, a fifth of a pixel of a
48 px crop of a 2 m person). Deterministic: pure numpy on the model's arrays.
"""

from __future__ import annotations

import numpy as np


def cluster_decimate(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray, cell: float):
    """(keep (K,) sorted original vertex ids, faces (F', 3) indexing `keep`, weight (K,) how many
    original vertices each kept one stands for, owner (V,) the position in `keep` standing for each
    original vertex, −1 where its group lost all its triangles) for a `cell`-metre grid.

    vertices (V,3) rest-pose positions, faces (F,3), labels (V,) part id of each vertex."""
    if not cell > 0:
        raise ValueError(f"cell: expected a positive size in metres, got {cell}")
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    key = np.concatenate([np.asarray(labels, np.int64)[:, None], np.floor(vertices / cell).astype(np.int64)], 1)
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.reshape(-1)
    n = int(group.max()) + 1
    mean = np.zeros((n, 3))
    np.add.at(mean, group, vertices)
    mean /= np.bincount(group, minlength=n)[:, None]
    dist = np.linalg.norm(vertices - mean[group], axis=1)
    order = np.lexsort((np.arange(len(vertices)), dist, group))  # by group, then distance, then id
    first = order[np.r_[True, group[order][1:] != group[order][:-1]]]
    rep = np.empty(n, np.int64)
    rep[group[first]] = first
    f = rep[group[faces]]
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])]
    _, idx = np.unique(np.sort(f, 1), axis=0, return_index=True)
    f = f[np.sort(idx)]
    keep = np.unique(f)
    remap = np.full(len(vertices), -1, np.int64)
    remap[keep] = np.arange(len(keep))
    weight = np.bincount(group, minlength=n)[group[keep]]
    return keep, remap[f], weight, remap[rep[group]]


def coarse_body(model, cell: float):
    """`cluster_decimate` of a body model (smplx-style: v_template, faces_tensor, lbs_weights)."""
    v = model.v_template.detach().cpu().numpy()
    f = model.faces_tensor.detach().cpu().numpy()
    labels = model.lbs_weights.detach().cpu().numpy().argmax(1)
    return cluster_decimate(v, f, labels, cell)
