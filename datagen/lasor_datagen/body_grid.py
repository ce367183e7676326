"""numba kernels of `contact.BodyVolume`: the inside/outside cell grid and the exact nearest-vertex search.

All arithmetic is float64 in the order numpy/scipy used before (edge samples `a + d * (i / k)`, cells
`floor((p - origin) / voxel)`, squared distances summed x, y, z as cKDTree does, dot products summed
(x + z) + y as numpy's einsum "ij,ij->i" does, face normals as `np.cross`, vertex normals summed over the
incident faces in ascending order), so the decisions are bit-identical to the earlier
`scipy.ndimage.label` / `cKDTree` / sparse-incidence code. Single-threaded (one datagen worker = one core);
compiled once and cached on disk (`cache=True`).

- `cells`: voxel shell of the surface (vertices and samples along edges longer than a cell), dilated by
  one cell (3×3×3 box), minus the cells a 6-connected flood fill from cell (0, 0, 0) reaches.
- `bucket`: vertices sorted by their cell (counting sort), for `nearest_signed`.
- `nearest_signed`: per point, the nearest vertex (rings of cells searched outward until no unsearched
  cell can hold a nearer one; ties go to the lowest index) and the signed distance along its
  area-weighted normal; vertex normals are computed on first use and kept in the caller's cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MARGIN = 1e-9   # m: slack on the ring stop test (cell bounds are computed in floating point)


@njit(cache=True)
def _cell(x, origin, voxel, n):
    c = int(np.floor((x - origin) / voxel))
    return min(max(c, 0), n - 1)


@njit(cache=True)
def cells(v, edges, origin, shape, voxel, voxel2):
    """Cells that may be inside (bool grid of `shape`): see the module docstring. `voxel2` = voxel ** 2
    as Python computes it (the long-edge threshold)."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    shell = np.zeros((nx, ny, nz), np.bool_)
    for i in range(v.shape[0]):
        shell[_cell(v[i, 0], origin[0], voxel, nx), _cell(v[i, 1], origin[1], voxel, ny),
              _cell(v[i, 2], origin[2], voxel, nz)] = True
    ne = edges.shape[0]
    length2 = np.empty(ne)
    lmax = 0.0
    for e in range(ne):
        a, b = edges[e, 0], edges[e, 1]
        d0, d1, d2 = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
        length2[e] = (d0 * d0 + d2 * d2) + d1 * d1      # np.einsum's order
        lmax = max(lmax, length2[e])
    k = int(np.ceil(np.sqrt(lmax) / voxel))
    for e in range(ne):
        if length2[e] > voxel2:
            a, b = edges[e, 0], edges[e, 1]
            d0, d1, d2 = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
            for i in range(1, k):
                t = i / k
                shell[_cell(v[a, 0] + d0 * t, origin[0], voxel, nx), _cell(v[a, 1] + d1 * t, origin[1], voxel, ny),
                      _cell(v[a, 2] + d2 * t, origin[2], voxel, nz)] = True
    grid = _dilate(shell)
    enclosed(grid)
    return grid


@njit(cache=True)
def enclosed(grid):
    """In place: cells of a boolean grid (True = blocked) that are not 6-connected to cell (0, 0, 0)
    through free cells, i.e. `label(~grid)` (scipy.ndimage) `!= its label at (0, 0, 0)`."""
    if grid[0, 0, 0]:                 # the corner is background (label 0): every free cell differs
        nx, ny, nz = grid.shape
        for i in range(nx):
            for j in range(ny):
                for m in range(nz):
                    grid[i, j, m] = not grid[i, j, m]
    else:
        _fill_outside(grid)


@njit(cache=True)
def _grow(a, di, dj, dm):
    """`a` with both neighbours along (di, dj, dm) of every set cell set too (no wrap at the borders)."""
    nx, ny, nz = a.shape
    b = a.copy()
    for i in range(nx):
        for j in range(ny):
            for m in range(nz):
                if a[i, j, m]:
                    for s in (-1, 1):
                        p, q, r = i + s * di, j + s * dj, m + s * dm
                        if 0 <= p < nx and 0 <= q < ny and 0 <= r < nz:
                            b[p, q, r] = True
    return b


@njit(cache=True)
def _dilate(a):
    """3×3×3 box dilation (three separable passes)."""
    return _grow(_grow(_grow(a, 1, 0, 0), 0, 1, 0), 0, 0, 1)


@njit(cache=True)
def _fill_outside(grid):
    """In place: True (blocked) cells stay True, free cells become True unless 6-connected to (0, 0, 0)
    through free cells (which become False). (0, 0, 0) must be free. Scanline fill along the last axis."""
    nx, ny, nz = grid.shape
    state = np.empty((nx, ny, nz), np.uint8)            # 0 free, 1 blocked, 2 reached, 3 queued
    for i in range(nx):
        for j in range(ny):
            for m in range(nz):
                state[i, j, m] = 1 if grid[i, j, m] else 0
    stack = np.empty((nx * ny * nz, 3), np.int64)
    stack[0, 0] = stack[0, 1] = stack[0, 2] = 0
    state[0, 0, 0] = 3
    top = 1
    while top:
        top -= 1
        i, j, m = stack[top, 0], stack[top, 1], stack[top, 2]
        if state[i, j, m] == 2:
            continue
        m0 = m
        while m0 > 0 and (state[i, j, m0 - 1] == 0 or state[i, j, m0 - 1] == 3):
            m0 -= 1
        m1 = m
        while m1 < nz - 1 and (state[i, j, m1 + 1] == 0 or state[i, j, m1 + 1] == 3):
            m1 += 1
        for q in range(m0, m1 + 1):
            state[i, j, q] = 2
        for nb in range(4):
            a = i + (1 if nb == 0 else -1 if nb == 1 else 0)
            b = j + (1 if nb == 2 else -1 if nb == 3 else 0)
            if a < 0 or a >= nx or b < 0 or b >= ny:
                continue
            prev = False
            for q in range(m0, m1 + 1):
                st = state[a, b, q]
                free = st == 0 or st == 3
                if free and not prev and st == 0:
                    state[a, b, q] = 3
                    stack[top, 0], stack[top, 1], stack[top, 2] = a, b, q
                    top += 1
                prev = free
    for i in range(nx):
        for j in range(ny):
            for m in range(nz):
                grid[i, j, m] = state[i, j, m] != 2


@njit(cache=True)
def in_box(p, lo, hi):
    """Indices of the points strictly inside the box lo–hi."""
    keep = np.empty(p.shape[0], np.int64)
    n = 0
    for k in range(p.shape[0]):
        if lo[0] < p[k, 0] < hi[0] and lo[1] < p[k, 1] < hi[1] and lo[2] < p[k, 2] < hi[2]:
            keep[n] = k
            n += 1
    return keep[:n]


@njit(cache=True)
def in_cells(p, idx, origin, voxel, grid):
    """The points p[idx] (inside the grid) whose cell is True in `grid`, as an (M,3) array."""
    out = np.empty((idx.shape[0], 3))
    n = 0
    for k in idx:
        i = int(np.floor((p[k, 0] - origin[0]) / voxel))
        j = int(np.floor((p[k, 1] - origin[1]) / voxel))
        m = int(np.floor((p[k, 2] - origin[2]) / voxel))
        if grid[i, j, m]:
            out[n, 0], out[n, 1], out[n, 2] = p[k, 0], p[k, 1], p[k, 2]
            n += 1
    return out[:n]


@njit(cache=True)
def bucket(v, origin, shape, voxel):
    """Vertices grouped by cell: (start (cells + 1,), order (V,)); cell (i, j, m) holds
    order[start[c]:start[c + 1]], c = (i * ny + j) * nz + m, in ascending vertex order."""
    nx, ny, nz = shape[0], shape[1], shape[2]
    nv = v.shape[0]
    cell = np.empty(nv, np.int64)
    start = np.zeros(nx * ny * nz + 1, np.int64)
    for q in range(nv):
        c = (_cell(v[q, 0], origin[0], voxel, nx) * ny + _cell(v[q, 1], origin[1], voxel, ny)) * nz \
            + _cell(v[q, 2], origin[2], voxel, nz)
        cell[q] = c
        start[c + 1] += 1
    for c in range(nx * ny * nz):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(nv, np.int64)
    for q in range(nv):
        order[fill[cell[q]]] = q
        fill[cell[q]] += 1
    return start, order


@njit(cache=True)
def _nearest(p0, p1, p2, v, origin, shape, voxel, start, order):
    nx, ny, nz = shape[0], shape[1], shape[2]
    ci, cj, cm = _cell(p0, origin[0], voxel, nx), _cell(p1, origin[1], voxel, ny), _cell(p2, origin[2], voxel, nz)
    best, bi = np.inf, -1
    r = 0
    while True:
        for i in range(max(ci - r, 0), min(ci + r, nx - 1) + 1):
            edge_i = i == ci - r or i == ci + r
            for j in range(max(cj - r, 0), min(cj + r, ny - 1) + 1):
                edge_j = edge_i or j == cj - r or j == cj + r
                m = max(cm - r, 0)
                while m <= min(cm + r, nz - 1):
                    c = (i * ny + j) * nz + m
                    for s in range(start[c], start[c + 1]):
                        q = order[s]
                        d = p0 - v[q, 0]
                        d2 = 0.0
                        d2 += d * d
                        d = p1 - v[q, 1]
                        d2 += d * d
                        d = p2 - v[q, 2]
                        d2 += d * d
                        if d2 < best or (d2 == best and q < bi):
                            best, bi = d2, q
                    if edge_j or m == cm + r:
                        m += 1
                    else:
                        m = cm + r          # inside the ring's box: only its two z faces
        # nearest point no ring so far covers: the box [c - r, c + r]'s faces that have cells beyond them
        g = np.inf
        if ci - r > 0:
            g = min(g, p0 - (origin[0] + (ci - r) * voxel))
        if ci + r < nx - 1:
            g = min(g, origin[0] + (ci + r + 1) * voxel - p0)
        if cj - r > 0:
            g = min(g, p1 - (origin[1] + (cj - r) * voxel))
        if cj + r < ny - 1:
            g = min(g, origin[1] + (cj + r + 1) * voxel - p1)
        if cm - r > 0:
            g = min(g, p2 - (origin[2] + (cm - r) * voxel))
        if cm + r < nz - 1:
            g = min(g, origin[2] + (cm + r + 1) * voxel - p2)
        if g == np.inf:
            return bi
        g -= _MARGIN
        if g > 0 and best < g * g:
            return bi
        r += 1


@njit(cache=True)
def _normal(q, v, faces, vf_start, vf_faces, out):
    """Area-weighted unit normal of vertex q (incident faces summed in ascending order) into out."""
    n0 = n1 = n2 = 0.0
    for s in range(vf_start[q], vf_start[q + 1]):
        f = vf_faces[s]
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        a0, a1, a2 = v[b, 0] - v[a, 0], v[b, 1] - v[a, 1], v[b, 2] - v[a, 2]
        b0, b1, b2 = v[c, 0] - v[a, 0], v[c, 1] - v[a, 1], v[c, 2] - v[a, 2]
        n0 += a1 * b2 - a2 * b1
        n1 += a2 * b0 - a0 * b2
        n2 += a0 * b1 - a1 * b0
    norm = max(np.sqrt(n0 * n0 + n1 * n1 + n2 * n2), 1e-12)
    out[0], out[1], out[2] = n0 / norm, n1 / norm, n2 / norm


@njit(cache=True)
def normals_at(idx, v, faces, vf_start, vf_faces, normals, known):
    """Unit normals of the vertices idx (rows of `normals`, computed where `known` is False)."""
    out = np.empty((idx.shape[0], 3))
    for k in range(idx.shape[0]):
        q = idx[k]
        if not known[q]:
            _normal(q, v, faces, vf_start, vf_faces, normals[q])
            known[q] = True
        out[k] = normals[q]
    return out


@njit(cache=True)
def nearest_signed(p, v, origin, shape, voxel, start, order, faces, vf_start, vf_faces, normals, known):
    """Per point of p (N,3): its nearest vertex's index and the signed distance (p - v) · normal."""
    n = p.shape[0]
    idx = np.empty(n, np.int64)
    s = np.empty(n)
    for k in range(n):
        q = _nearest(p[k, 0], p[k, 1], p[k, 2], v, origin, shape, voxel, start, order)
        idx[k] = q
        if not known[q]:
            _normal(q, v, faces, vf_start, vf_faces, normals[q])
            known[q] = True
        s[k] = ((p[k, 0] - v[q, 0]) * normals[q, 0] + (p[k, 2] - v[q, 2]) * normals[q, 2]) \
            + (p[k, 1] - v[q, 1]) * normals[q, 1]         # np.einsum("ij,ij->i")'s order: (x + z) + y
    return idx, s


def vertex_faces(faces: np.ndarray, n_vertices: int):
    """Vertex → incident faces (CSR: start (V + 1,), faces ascending) of a mesh topology."""
    f = np.asarray(faces, np.int64).ravel()
    order = np.argsort(f, kind="stable")                    # stable: faces ascending within a vertex
    start = np.zeros(n_vertices + 1, np.int64)
    np.cumsum(np.bincount(f, minlength=n_vertices), out=start[1:])
    return start, order // 3
