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
# small inlined helpers shared by the kernels here and in texture_kernels
# --------------------------------------------------------------------------------------------------


@njit(inline="always", **_OPTS)
def _face_stride(faces):
    """Batch stride of ``faces``: 0 when one face list (1, F, 3) serves the whole batch."""
    return np.int64(1) if faces.shape[0] > 1 else np.int64(0)


@njit(inline="always", **_OPTS)
def _vertex(verts, b, i):
    """(x, y, z) of vertex i of image b, as float64."""
    return np.float64(verts[b, i, 0]), np.float64(verts[b, i, 1]), np.float64(verts[b, i, 2])


@njit(inline="always", **_OPTS)
def _camera_point(verts, R, t, b, i):
    """Camera-frame point R·v + t of vertex i of image b."""
    vx, vy, vz = _vertex(verts, b, i)
    x = R[b, 0, 0] * vx + R[b, 0, 1] * vy + R[b, 0, 2] * vz + t[b, 0, 0]
    y = R[b, 1, 0] * vx + R[b, 1, 1] * vy + R[b, 1, 2] * vz + t[b, 0, 1]
    z = R[b, 2, 0] * vx + R[b, 2, 1] * vy + R[b, 2, 2] * vz + t[b, 0, 2]
    return x, y, z


@njit(inline="always", **_OPTS)
def _area2(x0, y0, x1, y1, x2, y2):
    """Twice the signed area of a triangle (> 0 counter-clockwise); barycentrics are edge functions over it."""
    return (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)


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
            x, y, z = _camera_point(verts, R, t, b, i)
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
            x, y, z = _camera_point(verts, R, t, b, i)
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
    fstride = _face_stride(faces)
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
            x0, y0, _ = _vertex(verts, b, i0)
            x1, y1, _ = _vertex(verts, b, i1)
            x2, y2, _ = _vertex(verts, b, i2)
            area2 = _area2(x0, y0, x1, y1, x2, y2)
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
    fstride = _face_stride(faces)
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
            x0, y0, z0 = _vertex(verts, b, i0)
            x1, y1, z1 = _vertex(verts, b, i1)
            x2, y2, z2 = _vertex(verts, b, i2)
            inv_area = 1.0 / _area2(x0, y0, x1, y1, x2, y2)
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
# backward: Kato's edge gradient of silhouettes and of multi-channel images (texture_kernels)
# --------------------------------------------------------------------------------------------------


@njit(inline="always", **_OPTS)
def _candidate(fim, grad, b, r, c, silhouette):
    """Whether an OUT sweep can gain from pixel (r, c). Silhouettes: the pixel inside the edge has
    I = 1, so a background pixel (I = 0) that the growing face covers changes by +1 and lowers the
    loss iff grad < 0; any other pixel gives d ≤ 0. Images: any pixel with a non-zero gradient."""
    if silhouette:
        return fim[b, r, c] < 0 and grad[b, r, c, 0] < 0.0
    nz = False
    for k in range(grad.shape[3]):
        if grad[b, r, c, k] != 0.0:
            nz = True
    return nz


@njit(parallel=True, **_OPTS)
def owned_and_candidates(fim, grad, silhouette, owned, active, counts):
    """owned[b, f] = 1 when face f wins a pixel; active[b] = 1 when grad[b] ≠ 0 somewhere; OUT
    candidates (`_candidate`) per scan line: counts[b, 0, col] along columns, counts[b, 1, row] rows."""
    B = fim.shape[0]
    is_ = fim.shape[1]
    C = grad.shape[3]
    for b in prange(B):
        any_g = False
        for r in range(is_):
            for c in range(is_):
                f = fim[b, r, c]
                if f >= 0:
                    owned[b, f] = 1
                for k in range(C):
                    if grad[b, r, c, k] != 0.0:
                        any_g = True
                if _candidate(fim, grad, b, r, c, silhouette):
                    counts[b, 0, c] += 1
                    counts[b, 1, r] += 1
        active[b] = 1 if any_g else 0


@njit(parallel=True, **_OPTS)
def candidates_fill(fim, grad, silhouette, ptr, pos, val):
    """Fill the per-line candidate lists (CSR by ``ptr``), positions ascending; for silhouettes also
    val = −grad > 0 (``val`` is not touched for images)."""
    B = fim.shape[0]
    is_ = fim.shape[1]
    for b in prange(B):
        cur_col = np.empty(is_, dtype=np.int64)
        for c in range(is_):
            cur_col[c] = ptr[(b * 2 + 0) * is_ + c]
        for r in range(is_):
            k = ptr[(b * 2 + 1) * is_ + r]
            for c in range(is_):
                if _candidate(fim, grad, b, r, c, silhouette):
                    j = cur_col[c]
                    pos[j] = r
                    cur_col[c] = j + 1
                    pos[k] = c
                    if silhouette:
                        val[j] = val[k] = -np.float64(grad[b, r, c, 0])
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


# The edge sweep shared by the silhouette gradient here and the RGB(A) gradient in texture_kernels:
# one job per (image, face); for each edge and axis, each scan line the edge spans is visited at the
# crossing between the pixel just inside the face (d1_in) and just outside (d1_out).


@njit(inline="always", **_OPTS)
def _sweep_face(job, F, bounds, owned, active):
    """(b, f, rev, fn, live) of a (image, face) job; live only for a drawn face that owns a pixel of an
    image with a gradient (OUT needs the inside pixel owned, IN walks owned pixels)."""
    b = job // F
    f = job % F
    if active[b] == 0 or bounds[b, f, 0] > bounds[b, f, 1]:
        return b, f, 0, 0, False
    rev = bounds[b, f, 4]
    fn = f + F * rev
    return b, f, rev, fn, owned[b, fn] != 0


@njit(inline="always", **_OPTS)
def _face_pixels(verts, faces, fb, b, f, rev, n):
    """(3, 2) pixel coordinates of the face's corners in drawing order (reversed when rev)."""
    P = np.empty((3, 2))
    for k in range(3):
        vi = faces[fb, f, 2 - k if rev else k]
        P[k, 0] = 0.5 * (np.float64(verts[b, vi, 0]) * n + n - 1.0)
        P[k, 1] = 0.5 * (np.float64(verts[b, vi, 1]) * n + n - 1.0)
    return P


@njit(inline="always", **_OPTS)
def _edge_lines(P, edge, axis, n):
    """Edge (i0 → i1, opposite corner i2) seen along ``axis``: a* index scan lines, b* run along them.

    Returns (i0, i1, a0, a1, a2, b0, b1, b2, comp, direction, lo, hi, slope); lo > hi when the edge
    crosses no scan line. comp: the gradient component (y when scanning columns, x for rows);
    direction: from the inside pixel to the outside one along the line.
    """
    i0 = edge
    i1 = (edge + 1) % 3
    i2 = (edge + 2) % 3
    a0, a1, a2 = P[i0, axis], P[i1, axis], P[i2, axis]
    b0, b1, b2 = P[i0, 1 - axis], P[i1, 1 - axis], P[i2, 1 - axis]
    if a0 == a1:
        return i0, i1, a0, a1, a2, b0, b1, b2, 0, 0, 1.0, 0.0, 0.0
    comp = 1 - axis
    if axis == 0:
        direction = -1 if a0 < a1 else 1
    else:
        direction = 1 if a0 < a1 else -1
    lo = max(math.ceil(min(a0, a1)), 0.0)
    hi = min(math.floor(max(a0, a1)), n - 1.0)
    slope = (b1 - b0) / (a1 - a0) if hi >= lo else 0.0
    return i0, i1, a0, a1, a2, b0, b1, b2, comp, direction, lo, hi, slope


@njit(inline="always", **_OPTS)
def _crossing(slope, a0, b0, d0, direction, n, is_):
    """(ok, d1_cross, d1_in, d1_out) where the edge crosses scan line d0; ok when both pixels lie inside."""
    d1_cross = slope * (d0 - a0) + b0
    if not (d1_cross >= -1.0 and d1_cross <= n):
        return False, d1_cross, 0, 0
    if direction > 0:
        d1_in = int(math.floor(d1_cross))
    else:
        d1_in = int(math.ceil(d1_cross))
    d1_out = d1_in + direction
    ok = not (d1_in < 0 or d1_in >= is_ or d1_out < 0 or d1_out >= is_)
    return ok, d1_cross, d1_in, d1_out


@njit(inline="always", **_OPTS)
def _beyond(ptr, pos, line, direction, d1_out):
    """Index range [k0, k1) of the candidate pixels of ``line`` (CSR, ascending) from d1_out outwards."""
    s = ptr[line]
    e = ptr[line + 1]
    if s >= e:
        return s, s
    if direction > 0:
        return s + np.searchsorted(pos[s:e], d1_out), e
    return s, s + np.searchsorted(pos[s:e], d1_out, side="right")


@njit(inline="always", **_OPTS)
def _inside_run(a0, a1, a2, b0, b1, b2, d0, d1_in, direction, n, is_):
    """Pixel range [d1_from, d1_to] of scan line d0 from the inside pixel to where the line leaves the face."""
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
    return max(min(d1_in, d1_limit), 0), min(max(d1_in, d1_limit), is_ - 1)


@njit(inline="always", **_OPTS)
def _on_line(axis, d0, d1):
    """(row, col) of pixel d1 on scan line d0 (a column when axis is 0, a row when 1)."""
    if axis == 0:
        return d1, d0
    return d0, d1


@njit(inline="always", **_OPTS)
def _store_corners(gf, grad_faces, b, f):
    """Write the (x, y) of the three corner gradients gf (9,) into grad_faces[b, f] (6,)."""
    for k in range(3):
        grad_faces[b, f, 2 * k] = gf[3 * k]
        grad_faces[b, f, 2 * k + 1] = gf[3 * k + 1]


@njit(inline="always", **_OPTS)
def _diff(img, grad, b, r, c, rr, cc):
    """Σ_ch (img[r, c] − img[rr, cc]) · grad[r, c]: how much the loss falls if (r, c) took (rr, cc)'s value."""
    d = 0.0
    for k in range(img.shape[3]):
        d += (np.float64(img[b, r, c, k]) - np.float64(img[b, rr, cc, k])) * np.float64(grad[b, r, c, k])
    return d


@njit(inline="always", **_OPTS)
def _sweep_edge(gf, P, edge, axis, b, fn, fim, img, grad, ptr, pos, val, silhouette, eps, n, is_):
    """Add to gf the gradient from one edge of face fn swept along the scan lines of ``axis`` (a
    constant at each call, so the compiler specialises the pixel indexing for it)."""
    i0, i1, a0, a1, a2, b0, b1, b2, comp, direction, lo, hi, slope = _edge_lines(P, edge, axis, n)
    for d0 in range(int(lo), int(hi) + 1):
        ok, d1_cross, d1_in, d1_out = _crossing(slope, a0, b0, d0, direction, n, is_)
        if not ok:
            continue
        r_in, c_in = _on_line(axis, d0, d1_in)
        r_out, c_out = _on_line(axis, d0, d1_out)
        # OUT: the face grows across the edge and covers the pixels beyond it
        if fim[b, r_in, c_in] == fn:
            k0, k1 = _beyond(ptr, pos, (b * 2 + axis) * is_ + d0, direction, d1_out)
            for k in range(k0, k1):
                d1 = np.int64(pos[k])
                if silhouette:
                    dg = val[k]  # > 0 by construction
                else:
                    r, c = _on_line(axis, d0, d1)
                    dg = _diff(img, grad, b, r, c, r_in, c_in)
                    if dg <= 0.0:
                        continue
                delta = (d1 - d1_cross) * 2.0 / n
                _accumulate(gf, i0, i1, comp, a0, a1, d0, delta, dg, eps)
        # IN: the face shrinks; its own pixels would take the outside pixel's value
        if silhouette and fim[b, r_out, c_out] >= 0:
            continue  # a silhouette pixel changes only where the outside is background
        d1_from, d1_to = _inside_run(a0, a1, a2, b0, b1, b2, d0, d1_in, direction, n, is_)
        for d1 in range(d1_from, d1_to + 1):
            r, c = _on_line(axis, d0, d1)
            if fim[b, r, c] != fn:
                continue
            if silhouette:
                dg = np.float64(grad[b, r, c, 0])
            else:
                dg = _diff(img, grad, b, r, c, r_out, c_out)
            if dg <= 0.0:
                continue
            delta = (d1 - d1_cross) * 2.0 / n
            _accumulate(gf, i0, i1, comp, a0, a1, d0, delta, dg, eps)


@njit(inline="always", **_OPTS)
def _edge_sweep(job, verts, faces, fstride, bounds, fim, img, grad, owned, active, ptr, pos, val, silhouette, eps,
                grad_faces):
    """One (image, face) job of Kato's approximate gradient of a raster w.r.t. the faces' NDC x, y:
    writes grad_faces[b, f] (6,), the (x, y) gradients of the face's corners in *drawing* order
    (reversed when bounds[..., 4]). Only faces that own a pixel can contribute.

    ``silhouette`` (a constant at each call site, so each kernel compiles only its own rule):
    grad (B, is, is, 1) ∂L/∂alpha, ``img`` unused; ``val`` = −grad of the OUT candidates (background
    pixels with grad < 0); IN only where the pixel outside the edge is background. Otherwise
    multi-channel images ``img`` (B, is, is, C) and grad alike, ``val`` unused, upstream's general rule:
    OUT — pixels v1 beyond the edge would take the inside pixel's value, d = Σ_c (img[v1] − img[in])·G[v1];
    IN — this face's pixels would take the outside pixel's value, d = Σ_c (img[v1] − img[out])·G[v1].
    A pixel contributes −d/δ only when d > 0.
    """
    F = faces.shape[1]
    is_ = fim.shape[1]
    n = float(is_)
    b, f, rev, fn, live = _sweep_face(job, F, bounds, owned, active)
    if not live:
        return
    gf = np.zeros(9)
    P = _face_pixels(verts, faces, np.int64(b) * fstride, b, f, rev, n)
    for edge in range(3):
        _sweep_edge(gf, P, edge, 0, b, fn, fim, img, grad, ptr, pos, val, silhouette, eps, n, is_)
        _sweep_edge(gf, P, edge, 1, b, fn, fim, img, grad, ptr, pos, val, silhouette, eps, n, is_)
    _store_corners(gf, grad_faces, b, f)


_NO_IMAGE = np.zeros((1, 1, 1, 1), dtype=np.float32)  # the image argument of the silhouette sweep (unused)


def _edge_kernel(silhouette: bool):
    """The parallel edge-gradient kernel of one pixel rule: one `_edge_sweep` job per (image, face).
    ``silhouette`` is a compile-time constant of the kernel, so each compiles only its own rule."""

    @njit(parallel=True, **_OPTS)
    def kernel(verts, faces, bounds, fim, img, grad, owned, active, ptr, pos, val, eps, grad_faces):
        fstride = _face_stride(faces)
        for job in prange(verts.shape[0] * faces.shape[1]):
            _edge_sweep(job, verts, faces, fstride, bounds, fim, img, grad, owned, active, ptr, pos, val, silhouette,
                        eps, grad_faces)

    return kernel


silhouette_backward = _edge_kernel(True)
image_backward = _edge_kernel(False)


@njit(parallel=True, **_OPTS)
def scatter_vertex_grads(faces, bounds, grad_faces, out):
    """Sum per-face corner gradients into vertices: out (B, N, 3) float32, zeroed (z stays 0)."""
    B = out.shape[0]
    fstride = _face_stride(faces)
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


def edge_gradient(verts, faces, bounds, fim, img, grad, eps, two_sided, silhouette):
    """Kato's gradient w.r.t. the NDC vertices, (B, N, 3) float32 (z column zero), of silhouettes
    (grad (B, is, is, 1), img unused) or of images img (B, is, is, C) with grad alike."""
    B, N = verts.shape[:2]
    F = faces.shape[1]
    is_ = fim.shape[1]
    out = np.zeros((B, N, 3), dtype=np.float32)
    if F == 0:
        return out
    with _threads(B * (F + is_ * is_)):
        owned = np.zeros((B, F * (2 if two_sided else 1)), dtype=np.uint8)
        active = np.zeros(B, dtype=np.uint8)
        counts = np.zeros((B, 2, is_), dtype=np.int64)
        owned_and_candidates(fim, grad, silhouette, owned, active, counts)
        if not active.any():
            return out
        ptr = np.zeros(B * 2 * is_ + 1, dtype=np.int64)
        np.cumsum(counts.reshape(-1), out=ptr[1:])
        total = int(ptr[-1])
        pos = np.empty(max(total, 1), dtype=np.int32)
        val = np.empty(max(total, 1) if silhouette else 1, dtype=np.float64)
        if total:
            candidates_fill(fim, grad, silhouette, ptr, pos, val)
        grad_faces = np.zeros((B, F, 6), dtype=np.float32)
        kernel = silhouette_backward if silhouette else image_backward
        kernel(verts, faces, bounds, fim, img, grad, owned, active, ptr, pos, val, float(eps), grad_faces)
        scatter_vertex_grads(faces, bounds, grad_faces, out)
    return out


def backward(verts, faces, bounds, fim, grad, eps, two_sided):
    """Kato's silhouette gradient (grad (B, is, is) ∂L/∂alpha) w.r.t. the NDC vertices: (B, N, 3) float32."""
    return edge_gradient(verts, faces, bounds, fim, _NO_IMAGE, grad[..., None], eps, two_sided, True)
