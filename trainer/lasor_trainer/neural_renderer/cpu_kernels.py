"""Compiled CPU kernels of the Kato-style rasteriser (numba, parallel, cached).

All kernels work in the *internal* raster frame of neural_renderer: face vertices are given in
NDC (x right, y up, both in [-1, 1] across the image; z = camera depth), pixel (yi, xi) of an
``is × is`` raster has its centre at NDC ((2·xi + 1 − is)/is, (2·yi + 1 − is)/is), so internal
row 0 is the *bottom* of the picture (NDC y = −1); callers flip rows to get images.

Arrays: ``faces`` (B, F, 9) float32 = three (x, y, z) vertices per face; ``fim`` (B, is, is) int32
face-index map (−1 = background); ``zbuf`` (B, is, is) float32 depth (``far`` = background).

Parallelism never races: the forward rasteriser runs one job per (batch element, band of rows) and
each job owns its rows of the z-buffer; the backward runs one job per (batch element, face) and each
job owns that face's 9 gradient entries.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from lasor_shared.numba_threads import kernel_threads

_OPTS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


# --------------------------------------------------------------------------------------------------
# projection (camera_mode='projection' without distortion), fused, with its exact backward
# --------------------------------------------------------------------------------------------------


@njit(parallel=True, **_OPTS)
def project(verts, K, R, t, orig, eps, out):
    """NDC (B, N, 3) of world vertices: P = R·v + t; x' = x/(z+eps), y' = y/(z+eps);
    (u, v) = K·(x', y', 1); out = (2u/orig − 1, 1 − 2v/orig, z) — renderer.projection, fused."""
    B, N = verts.shape[0], verts.shape[1]
    for b in prange(B):
        for i in range(N):
            vx = np.float64(verts[b, i, 0])
            vy = np.float64(verts[b, i, 1])
            vz = np.float64(verts[b, i, 2])
            x = R[b, 0, 0] * vx + R[b, 0, 1] * vy + R[b, 0, 2] * vz + t[b, 0, 0]
            y = R[b, 1, 0] * vx + R[b, 1, 1] * vy + R[b, 1, 2] * vz + t[b, 0, 1]
            z = R[b, 2, 0] * vx + R[b, 2, 1] * vy + R[b, 2, 2] * vz + t[b, 0, 2]
            xs = x / (z + eps)
            ys = y / (z + eps)
            u = K[b, 0, 0] * xs + K[b, 0, 1] * ys + K[b, 0, 2]
            v = K[b, 1, 0] * xs + K[b, 1, 1] * ys + K[b, 1, 2]
            out[b, i, 0] = 2.0 * u / orig - 1.0
            out[b, i, 1] = 1.0 - 2.0 * v / orig
            out[b, i, 2] = z


@njit(parallel=True, **_OPTS)
def project_backward(verts, K, R, t, orig, eps, grad, out):
    """∂L/∂verts (B, N, 3) of `project` given ∂L/∂NDC ``grad`` (camera held fixed)."""
    B, N = verts.shape[0], verts.shape[1]
    for b in prange(B):
        for i in range(N):
            vx = np.float64(verts[b, i, 0])
            vy = np.float64(verts[b, i, 1])
            vz = np.float64(verts[b, i, 2])
            x = R[b, 0, 0] * vx + R[b, 0, 1] * vy + R[b, 0, 2] * vz + t[b, 0, 0]
            y = R[b, 1, 0] * vx + R[b, 1, 1] * vy + R[b, 1, 2] * vz + t[b, 0, 1]
            z = R[b, 2, 0] * vx + R[b, 2, 1] * vy + R[b, 2, 2] * vz + t[b, 0, 2]
            d = z + eps
            gu = np.float64(grad[b, i, 0]) * 2.0 / orig
            gv = -np.float64(grad[b, i, 1]) * 2.0 / orig
            gxs = gu * K[b, 0, 0] + gv * K[b, 1, 0]
            gys = gu * K[b, 0, 1] + gv * K[b, 1, 1]
            gx = gxs / d
            gy = gys / d
            gz = np.float64(grad[b, i, 2]) - (gxs * x + gys * y) / (d * d)
            out[b, i, 0] = R[b, 0, 0] * gx + R[b, 1, 0] * gy + R[b, 2, 0] * gz
            out[b, i, 1] = R[b, 0, 1] * gx + R[b, 1, 1] * gy + R[b, 2, 1] * gz
            out[b, i, 2] = R[b, 0, 2] * gx + R[b, 1, 2] * gy + R[b, 2, 2] * gz


# --------------------------------------------------------------------------------------------------
# forward
# --------------------------------------------------------------------------------------------------


@njit(parallel=True, **_OPTS)
def face_bounds(verts, faces, two_sided, is_, bounds):
    """Per-face drawing orientation and inclusive pixel box (row_min, row_max, col_min, col_max, rev).

    A face with positive signed area is drawn as is (rev = 0). With ``two_sided`` (fill_back) a face
    with negative area is drawn as its reversed copy (v2, v1, v0) with face index F + f (rev = 1),
    exactly as neural_renderer's doubled face list. Other faces (back side without fill_back,
    zero area, non-finite, off-image) get row_min > row_max and are never drawn. The box is widened
    by one pixel; the exact edge test decides coverage.
    """
    B = verts.shape[0]
    Bf = faces.shape[0]
    fstride = np.int64(1) if Bf > 1 else np.int64(0)  # faces shared by the batch when Bf == 1
    F = faces.shape[1]
    n = float(is_)
    for b in prange(B):
        fb = np.int64(b) * fstride
        for f in range(F):
            bounds[b, f, 0] = 1
            bounds[b, f, 1] = 0
            bounds[b, f, 4] = 0
            i0 = faces[fb, f, 0]
            i1 = faces[fb, f, 1]
            i2 = faces[fb, f, 2]
            x0 = np.float64(verts[b, i0, 0])
            y0 = np.float64(verts[b, i0, 1])
            x1 = np.float64(verts[b, i1, 0])
            y1 = np.float64(verts[b, i1, 1])
            x2 = np.float64(verts[b, i2, 0])
            y2 = np.float64(verts[b, i2, 1])
            area2 = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
            if area2 > 0.0:
                rev = 0
            elif two_sided and area2 < 0.0:
                rev = 1
            else:  # back side, degenerate or NaN
                continue
            px0 = 0.5 * (x0 * n + n - 1.0)
            px1 = 0.5 * (x1 * n + n - 1.0)
            px2 = 0.5 * (x2 * n + n - 1.0)
            py0 = 0.5 * (y0 * n + n - 1.0)
            py1 = 0.5 * (y1 * n + n - 1.0)
            py2 = 0.5 * (y2 * n + n - 1.0)
            cmin = min(px0, min(px1, px2)) - 1.0
            cmax = max(px0, max(px1, px2)) + 1.0
            rmin = min(py0, min(py1, py2)) - 1.0
            rmax = max(py0, max(py1, py2)) + 1.0
            if cmax < 0.0 or rmax < 0.0 or cmin > n - 1.0 or rmin > n - 1.0:
                continue
            bounds[b, f, 0] = int(math.ceil(max(rmin, 0.0)))
            bounds[b, f, 1] = int(math.floor(min(rmax, n - 1.0)))
            bounds[b, f, 2] = int(math.ceil(max(cmin, 0.0)))
            bounds[b, f, 3] = int(math.floor(min(cmax, n - 1.0)))
            bounds[b, f, 4] = rev


@njit(parallel=True, **_OPTS)
def rasterize(verts, faces, bounds, is_, near, far, nband, fim, zbuf):
    """Exact z-buffered rasterisation: fills ``fim`` and ``zbuf``.

    A pixel centre is inside a (drawn-orientation) face when all three edge functions are ≥ 0
    (edges count as inside). Barycentrics are clamped to [0, 1] and renormalised; depth is
    perspective-correct z* = 1 / Σ wₖ/zₖ and kept only for near < z* < far; the z-buffer keeps the
    nearest face, ties going to the lowest face index (as a sequential pass over neural_renderer's
    face list would).
    """
    B = verts.shape[0]
    Bf = faces.shape[0]
    fstride = np.int64(1) if Bf > 1 else np.int64(0)  # faces shared by the batch when Bf == 1
    F = faces.shape[1]
    n = float(is_)
    band_h = (is_ + nband - 1) // nband
    for job in prange(B * nband):
        b = job // nband
        fb = np.int64(b) * fstride
        r0 = (job % nband) * band_h
        r1 = min(is_, r0 + band_h) - 1
        for r in range(r0, r1 + 1):
            for c in range(is_):
                fim[b, r, c] = -1
                zbuf[b, r, c] = far
        for f in range(F):
            rmin = bounds[b, f, 0]
            rmax = bounds[b, f, 1]
            if rmin > rmax or rmax < r0 or rmin > r1:
                continue
            ya = max(rmin, r0)
            yb = min(rmax, r1)
            ca = bounds[b, f, 2]
            cb = bounds[b, f, 3]
            rev = bounds[b, f, 4]
            idx = f + F * rev
            i0 = faces[fb, f, 2 if rev else 0]
            i1 = faces[fb, f, 1]
            i2 = faces[fb, f, 0 if rev else 2]
            x0 = np.float64(verts[b, i0, 0])
            y0 = np.float64(verts[b, i0, 1])
            z0 = np.float64(verts[b, i0, 2])
            x1 = np.float64(verts[b, i1, 0])
            y1 = np.float64(verts[b, i1, 1])
            z1 = np.float64(verts[b, i1, 2])
            x2 = np.float64(verts[b, i2, 0])
            y2 = np.float64(verts[b, i2, 1])
            z2 = np.float64(verts[b, i2, 2])
            inv_area = 1.0 / ((x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0))
            for yi in range(ya, yb + 1):
                yp = (2.0 * yi + 1.0 - n) / n
                for xi in range(ca, cb + 1):
                    xp = (2.0 * xi + 1.0 - n) / n
                    e01 = (yp - y0) * (x1 - x0) - (xp - x0) * (y1 - y0)
                    if e01 < 0.0:
                        continue
                    e12 = (yp - y1) * (x2 - x1) - (xp - x1) * (y2 - y1)
                    if e12 < 0.0:
                        continue
                    e20 = (yp - y2) * (x0 - x2) - (xp - x2) * (y0 - y2)
                    if e20 < 0.0:
                        continue
                    w0 = min(max(e12 * inv_area, 0.0), 1.0)
                    w1 = min(max(e20 * inv_area, 0.0), 1.0)
                    w2 = min(max(e01 * inv_area, 0.0), 1.0)
                    ws = w0 + w1 + w2
                    zp = ws / (w0 / z0 + w1 / z1 + w2 / z2)
                    if not (zp > near and zp < far):
                        continue
                    zb = zbuf[b, yi, xi]
                    if zp < zb or (zp == zb and idx < fim[b, yi, xi]):
                        zbuf[b, yi, xi] = zp
                        fim[b, yi, xi] = idx


# --------------------------------------------------------------------------------------------------
# backward (silhouettes)
# --------------------------------------------------------------------------------------------------


@njit(parallel=True, **_OPTS)
def owned_faces(fim, owned, active, grad):
    """owned[b, f] = 1 when face f wins at least one pixel; active[b] = 1 when grad[b] ≠ 0 anywhere."""
    B = fim.shape[0]
    is_ = fim.shape[1]
    for b in prange(B):
        any_g = False
        for r in range(is_):
            for c in range(is_):
                f = fim[b, r, c]
                if f >= 0:
                    owned[b, f] = 1
                if grad[b, r, c] != 0.0:
                    any_g = True
        active[b] = 1 if any_g else 0


@njit(parallel=True, **_OPTS)
def out_candidates_count(fim, grad, counts):
    """Count, per scan line, the pixels an OUT sweep can gain from: background with ∂L/∂I < 0.

    For silhouettes the pixel inside the edge has I = 1, so a background pixel v (I = 0) that the
    growing face would cover changes by +1 and lowers the loss iff grad[v] < 0; any other pixel
    gives d ≤ 0 and is skipped. counts[b, 0, col] counts along columns, counts[b, 1, row] rows.
    """
    B = fim.shape[0]
    is_ = fim.shape[1]
    for b in prange(B):
        for r in range(is_):
            for c in range(is_):
                if fim[b, r, c] < 0 and grad[b, r, c] < 0.0:
                    counts[b, 0, c] += 1
                    counts[b, 1, r] += 1


@njit(parallel=True, **_OPTS)
def out_candidates_fill(fim, grad, ptr, pos, val):
    """Fill the per-line candidate lists (CSR by ``ptr``), positions ascending, val = −grad > 0."""
    B = fim.shape[0]
    is_ = fim.shape[1]
    for b in prange(B):
        cur_col = np.empty(is_, dtype=np.int64)
        for c in range(is_):
            cur_col[c] = ptr[(b * 2 + 0) * is_ + c]
        for r in range(is_):
            k = ptr[(b * 2 + 1) * is_ + r]
            for c in range(is_):
                if fim[b, r, c] < 0 and grad[b, r, c] < 0.0:
                    g = -np.float64(grad[b, r, c])
                    j = cur_col[c]
                    pos[j] = r
                    val[j] = g
                    cur_col[c] = j + 1
                    pos[k] = c
                    val[k] = g
                    k += 1


@njit(inline="always", **_OPTS)
def _accumulate(gf, i0, i1, comp, a0, a1, d0, delta, dg, eps):
    # split the needed displacement between the edge's two end vertices by their linear weights
    if a1 != d0:
        dist = (a1 - a0) / (a1 - d0) * delta
        dist = dist + eps if dist > 0.0 else dist - eps
        gf[i0 * 3 + comp] -= dg / dist
    if a0 != d0:
        dist = (a1 - a0) / (d0 - a0) * delta
        dist = dist + eps if dist > 0.0 else dist - eps
        gf[i1 * 3 + comp] -= dg / dist


@njit(parallel=True, **_OPTS)
def silhouette_backward(verts, faces, bounds, fim, grad, owned, active, ptr, pos, val, eps, grad_faces):
    """Kato's approximate gradient of a binary silhouette raster w.r.t. the faces' NDC x, y.

    grad: (B, is, is) ∂L/∂alpha in the internal frame. grad_faces: (B, F, 6) float32, zeroed; row f
    holds (x, y) gradients of the face's corners in *drawing* order (reversed when bounds[..., 4]).
    Only faces that own a pixel can contribute (OUT needs the inside pixel owned, IN walks owned
    pixels), so every other (b, f) job returns at once.
    """
    B = verts.shape[0]
    Bf = faces.shape[0]
    fstride = np.int64(1) if Bf > 1 else np.int64(0)  # faces shared by the batch when Bf == 1
    F = faces.shape[1]
    is_ = fim.shape[1]
    n = float(is_)
    for job in prange(B * F):
        b = job // F
        f = job % F
        if active[b] == 0 or bounds[b, f, 0] > bounds[b, f, 1]:
            continue
        rev = bounds[b, f, 4]
        fn = f + F * rev
        if owned[b, fn] == 0:
            continue
        fb = np.int64(b) * fstride
        gf = np.zeros(9)
        P = np.empty((3, 2))
        for k in range(3):
            vi = faces[fb, f, 2 - k if rev else k]
            P[k, 0] = 0.5 * (np.float64(verts[b, vi, 0]) * n + n - 1.0)
            P[k, 1] = 0.5 * (np.float64(verts[b, vi, 1]) * n + n - 1.0)
        for edge in range(3):
            i0 = edge
            i1 = (edge + 1) % 3
            i2 = (edge + 2) % 3
            for axis in range(2):
                # a*: coordinate that indexes scan lines; b*: coordinate along the line
                a0 = P[i0, axis]
                a1 = P[i1, axis]
                a2 = P[i2, axis]
                b0 = P[i0, 1 - axis]
                b1 = P[i1, 1 - axis]
                b2 = P[i2, 1 - axis]
                if a0 == a1:
                    continue
                comp = 1 - axis  # gradient lands on y when scanning columns, on x for rows
                if axis == 0:
                    direction = -1 if a0 < a1 else 1
                else:
                    direction = 1 if a0 < a1 else -1
                lo = max(math.ceil(min(a0, a1)), 0.0)
                hi = min(math.floor(max(a0, a1)), n - 1.0)
                if hi < lo:
                    continue
                slope = (b1 - b0) / (a1 - a0)
                for d0 in range(int(lo), int(hi) + 1):
                    d1_cross = slope * (d0 - a0) + b0
                    if not (d1_cross >= -1.0 and d1_cross <= n):
                        continue
                    if direction > 0:
                        d1_in = int(math.floor(d1_cross))
                    else:
                        d1_in = int(math.ceil(d1_cross))
                    d1_out = d1_in + direction
                    if d1_in < 0 or d1_in >= is_ or d1_out < 0 or d1_out >= is_:
                        continue
                    if axis == 0:
                        f_in = fim[b, d1_in, d0]
                        f_out = fim[b, d1_out, d0]
                    else:
                        f_in = fim[b, d0, d1_in]
                        f_out = fim[b, d0, d1_out]

                    # OUT: the face grows across the edge and covers background pixels beyond it
                    if f_in == fn:
                        line = (b * 2 + axis) * is_ + d0
                        s = ptr[line]
                        e = ptr[line + 1]
                        if s < e:
                            if direction > 0:
                                k0 = s + np.searchsorted(pos[s:e], d1_out)
                                k1 = e
                            else:
                                k0 = s
                                k1 = s + np.searchsorted(pos[s:e], d1_out, side="right")
                            for k in range(k0, k1):
                                delta = (pos[k] - d1_cross) * 2.0 / n
                                _accumulate(gf, i0, i1, comp, a0, a1, d0, delta, val[k], eps)

                    # IN: the face shrinks and uncovers its own pixels; they take the value just
                    # outside the edge, which for a silhouette changes them only if it is background
                    if f_out < 0:
                        if (d0 - a0) * (d0 - a2) < 0.0:
                            d0_cross2 = (b2 - b0) / (a2 - a0) * (d0 - a0) + b0
                        elif a1 != a2:
                            d0_cross2 = (b1 - b2) / (a1 - a2) * (d0 - a2) + b2
                        else:
                            d0_cross2 = b2
                        d0_cross2 = min(max(d0_cross2, -1.0), n)
                        if direction > 0:
                            d1_limit = int(math.ceil(d0_cross2))
                        else:
                            d1_limit = int(math.floor(d0_cross2))
                        d1_from = max(min(d1_in, d1_limit), 0)
                        d1_to = min(max(d1_in, d1_limit), is_ - 1)
                        for d1 in range(d1_from, d1_to + 1):
                            if axis == 0:
                                if fim[b, d1, d0] != fn:
                                    continue
                                g = np.float64(grad[b, d1, d0])
                            else:
                                if fim[b, d0, d1] != fn:
                                    continue
                                g = np.float64(grad[b, d0, d1])
                            if g <= 0.0:
                                continue
                            delta = (d1 - d1_cross) * 2.0 / n
                            _accumulate(gf, i0, i1, comp, a0, a1, d0, delta, g, eps)
        for k in range(3):
            grad_faces[b, f, 2 * k] = gf[3 * k]
            grad_faces[b, f, 2 * k + 1] = gf[3 * k + 1]


@njit(parallel=True, **_OPTS)
def scatter_vertex_grads(faces, bounds, grad_faces, out):
    """Sum per-face corner gradients into vertices: out (B, N, 3) float32, zeroed (z stays 0)."""
    B = out.shape[0]
    Bf = faces.shape[0]
    fstride = np.int64(1) if Bf > 1 else np.int64(0)  # faces shared by the batch when Bf == 1
    F = faces.shape[1]
    for b in prange(B):
        fb = np.int64(b) * fstride
        for f in range(F):
            if bounds[b, f, 0] > bounds[b, f, 1]:
                continue
            rev = bounds[b, f, 4]
            for k in range(3):
                gx = grad_faces[b, f, 2 * k]
                gy = grad_faces[b, f, 2 * k + 1]
                if gx != 0.0 or gy != 0.0:
                    vi = faces[fb, f, 2 - k if rev else k]
                    out[b, vi, 0] += gx
                    out[b, vi, 1] += gy


# --------------------------------------------------------------------------------------------------
# numpy-level drivers
# --------------------------------------------------------------------------------------------------


# Below this much work (faces + pixels over the batch) a kernel runs on the calling thread only:
# thread start-up and barriers cost more than they save, and under CPU contention spinning
# OpenMP barriers can slow a small call down by an order of magnitude.
PARALLEL_MIN_WORK = 200_000


def _threads(work: int):
    """Context manager for a block of kernel calls: 1 numba thread for small work, else numba's
    default; numba's and torch's thread settings are restored afterwards."""
    return kernel_threads(1 if work < PARALLEL_MIN_WORK else numba.config.NUMBA_NUM_THREADS)


def _bands(batch: int, is_: int, nthreads: int) -> int:
    """Bands of rows per image so that batch × bands gives every thread a few jobs."""
    want = 4 * nthreads
    nband = max(1, -(-want // max(batch, 1)))
    return int(min(nband, max(1, is_ // 8)))


def project_vertices(verts, K, R, t, orig, eps):
    """`project` on (B, N, 3) float32 vertices and float64 K, R (B, 3, 3), t (B, 1, 3) → NDC float32."""
    out = np.empty_like(verts)
    with _threads(verts.shape[0] * verts.shape[1]):
        project(verts, K, R, t, orig, eps, out)
    return out


def project_vertices_backward(verts, K, R, t, orig, eps, grad):
    out = np.empty_like(verts)
    with _threads(verts.shape[0] * verts.shape[1]):
        project_backward(verts, K, R, t, orig, eps, grad, out)
    return out


def forward(verts: np.ndarray, faces: np.ndarray, two_sided: bool, is_: int, near: float, far: float):
    """verts (B, N, 3) float32 NDC, faces (1 or B, F, 3) int32 →
    fim (B, is, is) int32 (−1 bg; F + f = reversed copy of f), zbuf (B, is, is) float32,
    bounds (B, F, 5) int32 — all in the internal frame."""
    B = verts.shape[0]
    F = faces.shape[1]
    bounds = np.empty((B, F, 5), dtype=np.int32)
    fim = np.empty((B, is_, is_), dtype=np.int32)
    zbuf = np.empty((B, is_, is_), dtype=np.float32)
    if F == 0:
        fim.fill(-1)
        zbuf.fill(far)
        return fim, zbuf, bounds
    with _threads(B * (F + is_ * is_)) as nt:
        face_bounds(verts, faces, bool(two_sided), is_, bounds)
        rasterize(verts, faces, bounds, is_, float(near), float(far), _bands(B, is_, nt), fim, zbuf)
    return fim, zbuf, bounds


def backward(verts, faces, bounds, fim, grad, eps, two_sided):
    """Kato's silhouette gradient w.r.t. the NDC vertices: (B, N, 3) float32 (z column zero)."""
    B, N = verts.shape[:2]
    F = faces.shape[1]
    is_ = fim.shape[1]
    out = np.zeros((B, N, 3), dtype=np.float32)
    if F == 0:
        return out
    with _threads(B * (F + is_ * is_)):
        owned = np.zeros((B, F * (2 if two_sided else 1)), dtype=np.uint8)
        active = np.zeros(B, dtype=np.uint8)
        owned_faces(fim, owned, active, grad)
        if not active.any():
            return out
        counts = np.zeros((B, 2, is_), dtype=np.int64)
        out_candidates_count(fim, grad, counts)
        ptr = np.zeros(B * 2 * is_ + 1, dtype=np.int64)
        np.cumsum(counts.reshape(-1), out=ptr[1:])
        total = int(ptr[-1])
        pos = np.empty(max(total, 1), dtype=np.int32)
        val = np.empty(max(total, 1), dtype=np.float64)
        if total:
            out_candidates_fill(fim, grad, ptr, pos, val)
        grad_faces = np.zeros((B, F, 6), dtype=np.float32)
        silhouette_backward(verts, faces, bounds, fim, grad, owned, active, ptr, pos, val, float(eps), grad_faces)
        scatter_vertex_grads(faces, bounds, grad_faces, out)
    return out
