"""Compiled CPU kernels for textured RGB (numba, parallel, cached), in the internal raster frame of
``cpu_kernels`` (row 0 = NDC y −1; face-index map ``fim`` with F + f = reversed copy of face f).

Texture sampling is neural_renderer's: a face's texture is a T×T×T grid indexed by its three corners;
at a pixel with perspective-correct barycentrics b_k (the clamped, renormalised screen weights w_k
times z*/z_k), the texel coordinates are t_k = clamp(b_k·(T − 1), 0, T − 1 − eps) and the colour is
the trilinear interpolation of the 8 texels around (t_0, t_1, t_2), multiplied by the face's light.
A reversed copy (fill_back) samples its original's texture with the original's weights — exactly
what upstream's permuted texture copy (0, 1, 4, 3, 2, 5) gives — but has its own light.

Parallel jobs never race and sums run in a fixed order, so results do not depend on the thread
count: sampling is one job per (image, row); its backward one job per image (texels of a face are
shared by many pixels). The RGB(A) edge gradient is the silhouettes' sweep with the general pixel
rule (`cpu_kernels.edge_gradient`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_kernels import _OPTS, _area2, _face_stride, _threads, _vertex, edge_gradient


@njit(inline="always", **_OPTS)
def _texel_coords(verts, faces, fb, b, f, is_, r, c, T, eps, t):
    """Texel coordinates t[0..2] of pixel (r, c) on face f (original vertex order)."""
    n = float(is_)
    yp = (2.0 * r + 1.0 - n) / n
    xp = (2.0 * c + 1.0 - n) / n
    x0, y0, z0 = _vertex(verts, b, faces[fb, f, 0])
    x1, y1, z1 = _vertex(verts, b, faces[fb, f, 1])
    x2, y2, z2 = _vertex(verts, b, faces[fb, f, 2])
    # barycentrics do not depend on the winding, so the original order serves reversed copies too
    inv_area = 1.0 / _area2(x0, y0, x1, y1, x2, y2)
    w0 = min(max(((yp - y1) * (x2 - x1) - (xp - x1) * (y2 - y1)) * inv_area, 0.0), 1.0)
    w1 = min(max(((yp - y2) * (x0 - x2) - (xp - x2) * (y0 - y2)) * inv_area, 0.0), 1.0)
    w2 = min(max(((yp - y0) * (x1 - x0) - (xp - x0) * (y1 - y0)) * inv_area, 0.0), 1.0)
    ws = w0 + w1 + w2
    w0 /= ws
    w1 /= ws
    w2 /= ws
    zp = 1.0 / (w0 / z0 + w1 / z1 + w2 / z2)
    hi = T - 1.0 - eps
    t[0] = min(max(w0 * (T - 1.0) * zp / z0, 0.0), hi) if T > 1 else 0.0
    t[1] = min(max(w1 * (T - 1.0) * zp / z1, 0.0), hi) if T > 1 else 0.0
    t[2] = min(max(w2 * (T - 1.0) * zp / z2, 0.0), hi) if T > 1 else 0.0


@njit(inline="always", **_OPTS)
def _corner(t, T, pn):
    """(flat texel index, trilinear weight) of corner pn (bit k = upper neighbour along axis k)."""
    w = 1.0
    idx = 0
    for k in range(3):
        lo = int(t[k])
        fr = t[k] - lo
        if (pn >> k) & 1:
            w *= fr
            lo += 1
        else:
            w *= 1.0 - fr
        idx = idx * T + min(lo, T - 1)
    return idx, w


@njit(inline="always", **_OPTS)
def _sampling_dims(fim, faces, textures):
    """(B, is, F, T): batch, raster size, faces and texture resolution (textures hold T³ texels a face)."""
    return fim.shape[0], fim.shape[1], faces.shape[1], int(round(textures.shape[2] ** (1.0 / 3.0)))


@njit(parallel=True, **_OPTS)
def sample_textures(verts, faces, fim, textures, light, eps, bg, out):
    """out (B, is, is, 3) = light × trilinear texture sample at covered pixels, bg colour elsewhere.

    textures: (B, F, T³, 3) float32; light: (B, L, 3) with L = F (one-sided) or 2F (fill_back).
    """
    B, is_, F, T = _sampling_dims(fim, faces, textures)
    fstride = _face_stride(faces)
    for job in prange(B * is_):
        b = job // is_
        r = job % is_
        fb = np.int64(b) * fstride
        t = np.empty(3)
        for c in range(is_):
            idx = fim[b, r, c]
            if idx < 0:
                for k in range(3):
                    out[b, r, c, k] = bg[b, k]
                continue
            f = idx % F
            _texel_coords(verts, faces, fb, b, f, is_, r, c, T, eps, t)
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            for pn in range(8):
                ti, w = _corner(t, T, pn)
                s0 += w * textures[b, f, ti, 0]
                s1 += w * textures[b, f, ti, 1]
                s2 += w * textures[b, f, ti, 2]
            out[b, r, c, 0] = s0 * light[b, idx, 0]
            out[b, r, c, 1] = s1 * light[b, idx, 1]
            out[b, r, c, 2] = s2 * light[b, idx, 2]


@njit(parallel=True, **_OPTS)
def sample_textures_backward(verts, faces, fim, textures, light, eps, grad, grad_tex, grad_light):
    """Gradients of `sample_textures` w.r.t. textures (B, F, T³, 3) and light (B, L, 3), both zeroed.

    The sampling positions are held fixed (no vertex gradient through them, as upstream).
    """
    B, is_, F, T = _sampling_dims(fim, faces, textures)
    fstride = _face_stride(faces)
    for b in prange(B):
        fb = np.int64(b) * fstride
        t = np.empty(3)
        for r in range(is_):
            for c in range(is_):
                idx = fim[b, r, c]
                if idx < 0:
                    continue
                g0 = np.float64(grad[b, r, c, 0])
                g1 = np.float64(grad[b, r, c, 1])
                g2 = np.float64(grad[b, r, c, 2])
                if g0 == 0.0 and g1 == 0.0 and g2 == 0.0:
                    continue
                f = idx % F
                _texel_coords(verts, faces, fb, b, f, is_, r, c, T, eps, t)
                l0 = np.float64(light[b, idx, 0]) * g0
                l1 = np.float64(light[b, idx, 1]) * g1
                l2 = np.float64(light[b, idx, 2]) * g2
                s0 = 0.0
                s1 = 0.0
                s2 = 0.0
                for pn in range(8):
                    ti, w = _corner(t, T, pn)
                    if w == 0.0:
                        continue
                    s0 += w * textures[b, f, ti, 0]
                    s1 += w * textures[b, f, ti, 1]
                    s2 += w * textures[b, f, ti, 2]
                    grad_tex[b, f, ti, 0] += w * l0
                    grad_tex[b, f, ti, 1] += w * l1
                    grad_tex[b, f, ti, 2] += w * l2
                grad_light[b, idx, 0] += s0 * g0
                grad_light[b, idx, 1] += s1 * g1
                grad_light[b, idx, 2] += s2 * g2


# --------------------------------------------------------------------------------------------------
# numpy-level drivers
# --------------------------------------------------------------------------------------------------


def sample(verts, faces, fim, textures, light, eps, bg):
    """RGB raster (B, is, is, 3) float32; textures (B, F, T³, 3), light (B, L, 3), bg (B, 3)."""
    B, is_ = fim.shape[0], fim.shape[1]
    out = np.empty((B, is_, is_, 3), dtype=np.float32)
    with _threads(B * is_ * is_):
        sample_textures(verts, faces, fim, textures, light, float(eps), bg, out)
    return out


def sample_backward(verts, faces, fim, textures, light, eps, grad):
    """(grad_textures like textures, grad_light like light), float32."""
    grad_tex = np.zeros_like(textures)
    grad_light = np.zeros_like(light)
    with _threads(fim.shape[0] * fim.shape[1] * fim.shape[2]):
        sample_textures_backward(verts, faces, fim, textures, light, float(eps), grad, grad_tex, grad_light)
    return grad_tex, grad_light


def backward(verts, faces, bounds, fim, img, grad, eps, two_sided):
    """Kato's gradient of multi-channel images w.r.t. the NDC vertices: (B, N, 3) float32 (z zero)."""
    return edge_gradient(verts, faces, bounds, fim, img, grad, eps, two_sided, False)
