"""Differentiable rasterisers on NDC faces: neural_renderer's ``rasterize_rgbad``, ``rasterize``,
``rasterize_silhouettes``, ``rasterize_depth`` and ``Rasterize``, on the CPU kernels (see the package
docstring for the algorithm).

Gradients, as upstream: RGB and alpha get Kato's approximate edge gradient w.r.t. the faces' x, y
(one joint rule over the returned channels); textures get the exact gradient of the trilinear
sampling (sampling positions held fixed); depth gets the analytic derivative of z* = 1/Σ wₖ/zₖ.

Differences from upstream: tensors may live on any device (they are rasterised on the CPU and the
images returned on their device); a texture size T = 1 samples its single texel (upstream reads
past the face's texture there); ``Rasterize`` is a thin wrapper with upstream's raw outputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_IMAGE_SIZE = 256
DEFAULT_ANTI_ALIASING = True
DEFAULT_NEAR = 0.1
DEFAULT_FAR = 100.0
DEFAULT_EPS = 1e-4
DEFAULT_BACKGROUND_COLOR = (0, 0, 0)


def _ck():
    from . import cpu_kernels  # lazily: importing the package never compiles numba kernels

    return cpu_kernels


def _tk():
    from . import texture_kernels

    return texture_kernels


# --------------------------------------------------------------------------------------------------
# forward raster and autograd functions (internal frame: row 0 = NDC y −1)
# --------------------------------------------------------------------------------------------------


def _forward_cpu(verts_ndc: torch.Tensor, faces: torch.Tensor, two_sided: bool, is_: int, near: float, far: float):
    v = verts_ndc.detach().to("cpu", torch.float32).contiguous().numpy()
    f = faces.detach().to("cpu", torch.int32).contiguous().numpy()
    fim, zbuf, bounds = _ck().forward(v, f, two_sided, is_, near, far)
    return v, f, bounds, torch.from_numpy(fim), torch.from_numpy(zbuf)


class _SilhouetteFunction(torch.autograd.Function):
    """alpha = [face index ≥ 0]; backward = Kato's approximate edge gradient (CPU kernels)."""

    @staticmethod
    def forward(ctx, verts_ndc, v_np, f_np, bounds, fim, eps, two_sided):
        ctx.saved = (v_np, f_np, bounds, fim.numpy(), eps, two_sided)
        return (fim >= 0).to(torch.float32)

    @staticmethod
    def backward(ctx, grad_alpha):
        v_np, f_np, bounds, fim, eps, two_sided = ctx.saved
        g = grad_alpha.detach().to("cpu", torch.float32).contiguous().numpy()
        gv = _ck().backward(v_np, f_np, bounds, fim, g, eps, two_sided)
        return torch.from_numpy(gv), None, None, None, None, None, None


def _nonzero(g):
    return g is not None and bool(g.ne(0).any())


class _RGBAFunction(torch.autograd.Function):
    """(rgb (B, is, is, 3), alpha (B, is, is)) of textured faces; Kato edge gradient on x, y of the
    vertices from both outputs jointly, exact sampling gradient to textures and light."""

    @staticmethod
    def forward(ctx, verts_ndc, textures, light, st):
        B = st["fim"].shape[0]
        Fn = st["f"].shape[1]
        tex = textures.detach().to("cpu", torch.float32).expand(B, *textures.shape[1:]).contiguous()
        tex = tex.reshape(B, Fn, -1, 3).numpy()
        lt = light.detach().to("cpu", torch.float32).expand(B, -1, -1).contiguous().numpy()
        rgb = _tk().sample(st["v"], st["f"], st["fim"], tex, lt, st["eps"], st["bg"])
        ctx.st, ctx.tex, ctx.light, ctx.rgb = st, tex, lt, rgb
        ctx.tex_shape, ctx.light_shape = textures.shape, light.shape
        return torch.from_numpy(rgb), torch.from_numpy((st["fim"] >= 0).astype(np.float32))

    @staticmethod
    def backward(ctx, g_rgb, g_alpha):
        st = ctx.st
        fim = st["fim"]
        imgs, grads = [], []
        if _nonzero(g_rgb):
            g_rgb = g_rgb.detach().to("cpu", torch.float32).contiguous().numpy()
            imgs.append(ctx.rgb)
            grads.append(g_rgb)
        else:
            g_rgb = None
        if _nonzero(g_alpha):
            imgs.append((fim >= 0).astype(np.float32)[..., None])
            grads.append(g_alpha.detach().to("cpu", torch.float32).numpy()[..., None])
        gv = gt = gl = None
        if ctx.needs_input_grad[0]:
            if imgs:
                img = np.ascontiguousarray(np.concatenate(imgs, axis=-1))
                grad = np.ascontiguousarray(np.concatenate(grads, axis=-1))
                gv = torch.from_numpy(_tk().backward(st["v"], st["f"], st["bounds"], fim, img, grad,
                                                     st["eps"], st["two_sided"]))
            else:
                gv = torch.zeros(st["v"].shape)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            if g_rgb is None:
                gt_np, gl_np = np.zeros_like(ctx.tex), np.zeros_like(ctx.light)
            else:
                gt_np, gl_np = _tk().sample_backward(st["v"], st["f"], fim, ctx.tex, ctx.light, st["eps"], g_rgb)
            gt = torch.from_numpy(gt_np).reshape(fim.shape[0], *ctx.tex_shape[1:])
            if ctx.tex_shape[0] != gt.shape[0]:
                gt = gt.sum(0, keepdim=True)
            gl = torch.from_numpy(gl_np)
            if ctx.light_shape[0] != gl.shape[0]:
                gl = gl.sum(0, keepdim=True)
        return gv, gt, gl, None


def _depth_differentiable(verts_ndc, faces, fim, far):
    """Perspective-correct depth recomputed with torch ops at covered pixels (exact gradient).

    The face choice comes from the z-buffer; the weights use signed areas, so a face drawn as its
    reversed copy (index ≥ F) gives the same barycentrics in the original vertex order.
    """
    B, is_ = fim.shape[0], fim.shape[1]
    F = faces.shape[1]
    bi, ri, ci = torch.nonzero(fim >= 0, as_tuple=True)
    out = torch.full((B, is_, is_), float(far), dtype=verts_ndc.dtype)
    if bi.numel() == 0:
        return out + 0.0 * verts_ndc.sum()
    fi = fim[bi, ri, ci].long() % F
    vidx = faces.long()[bi if faces.shape[0] > 1 else torch.zeros_like(bi), fi]  # (P, 3)
    v = verts_ndc[bi[:, None], vidx]  # (P, 3, 3)
    yp = (2.0 * ri.to(v.dtype) + 1.0 - is_) / is_
    xp = (2.0 * ci.to(v.dtype) + 1.0 - is_) / is_
    x0, y0, z0 = v[:, 0, 0], v[:, 0, 1], v[:, 0, 2]
    x1, y1, z1 = v[:, 1, 0], v[:, 1, 1], v[:, 1, 2]
    x2, y2, z2 = v[:, 2, 0], v[:, 2, 1], v[:, 2, 2]
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    e12 = (yp - y1) * (x2 - x1) - (xp - x1) * (y2 - y1)
    e20 = (yp - y2) * (x0 - x2) - (xp - x2) * (y0 - y2)
    e01 = (yp - y0) * (x1 - x0) - (xp - x0) * (y1 - y0)
    w = (torch.stack([e12, e20, e01], dim=-1) / area[:, None]).clamp(0.0, 1.0)
    w = w / w.sum(-1, keepdim=True)
    zp = 1.0 / (w[:, 0] / z0 + w[:, 1] / z1 + w[:, 2] / z2)
    return out.index_put((bi, ri, ci), zp)


def _background(color, B):
    """background_color (3,) or (B, 3) → float32 numpy (B, 3)."""
    c = np.asarray(color.detach().cpu().numpy() if torch.is_tensor(color) else color, dtype=np.float32)
    if c.shape == (3,):
        c = np.broadcast_to(c, (B, 3))
    if c.shape != (B, 3):
        from .renderer import _bad

        _bad(f"background_color must have shape (3,) or (B, 3), got {c.shape}")
    return np.ascontiguousarray(c)


def _raster(verts_ndc, faces, is_, near, far, eps, fill_back, textures=None, light=None,
            background_color=DEFAULT_BACKGROUND_COLOR, return_rgb=False, return_alpha=True, return_depth=True):
    """Internal-frame maps {'rgb' (B, is, is, 3), 'alpha', 'depth' (B, is, is)} of NDC vertices
    (B, N, 3) and faces (1 or B, F, 3) on the CPU (autograd flows to verts_ndc, textures, light)."""
    v_cpu = verts_ndc.to("cpu", torch.float32)
    v_np, f_np, bounds, fim, zbuf = _forward_cpu(v_cpu, faces, fill_back, is_, near, far)
    out = {"rgb": None, "alpha": None, "depth": None}
    if return_rgb:
        B, Fn = v_np.shape[0], f_np.shape[1]
        if light is None:
            light = torch.ones(1, Fn * (2 if fill_back else 1), 3)
        textures, light = textures.to("cpu", torch.float32), light.to("cpu", torch.float32)
        st = {"v": v_np, "f": f_np, "bounds": bounds, "fim": fim.numpy(), "eps": float(eps),
              "two_sided": bool(fill_back), "bg": _background(background_color, B)}
        if v_cpu.requires_grad or textures.requires_grad or light.requires_grad:
            rgb, alpha = _RGBAFunction.apply(v_cpu, textures, light, st)
        else:
            rgb, alpha = _RGBAFunction.apply(v_cpu.detach(), textures.detach(), light.detach(), st)
        out["rgb"] = rgb
        if return_alpha:
            out["alpha"] = alpha
    elif return_alpha:
        if v_cpu.requires_grad:
            out["alpha"] = _SilhouetteFunction.apply(v_cpu, v_np, f_np, bounds, fim, float(eps), bool(fill_back))
        else:
            out["alpha"] = (fim >= 0).to(torch.float32)
    if return_depth:
        out["depth"] = _depth_differentiable(v_cpu, torch.from_numpy(f_np), fim, far) if v_cpu.requires_grad else zbuf
    return out


def _finish(img: torch.Tensor, anti_aliasing: bool) -> torch.Tensor:
    """(B, [C,] is, is) internal frame → image rows top-down, 2×2 average-pooled with anti-aliasing."""
    img = img.flip(-2)  # internal row 0 is the bottom of the picture
    if anti_aliasing:
        img = F.avg_pool2d(img, kernel_size=2) if img.ndim == 4 else F.avg_pool2d(img[:, None], kernel_size=2)[:, 0]
    return img


def rasterize_mesh(verts_ndc, faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                   near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, fill_back=False,
                   return_alpha=True, return_depth=True, textures=None, light=None,
                   background_color=DEFAULT_BACKGROUND_COLOR, return_rgb=False):
    """Rasterise NDC vertices (B, N, 3) with faces (1 or B, F, 3) → {'rgb' (B,3,S,S), 'alpha', 'depth'}.

    ``fill_back`` draws the reversed copy of back-facing faces (neural_renderer's doubled face list,
    without materialising it). RGB needs ``textures`` (1 or B, F, T, T, T, 3) and takes an optional
    per-face ``light`` (1 or B, F — 2F with fill_back, the copies' light after — 3). One raster pass
    serves all outputs. Tensors on another device are rasterised on the CPU and returned there.
    """
    device = verts_ndc.device
    is_ = int(image_size) * (2 if anti_aliasing else 1)
    raw = _raster(verts_ndc, faces, is_, near, far, eps, fill_back, textures, light, background_color,
                  return_rgb, return_alpha, return_depth)
    out = {}
    for key, img in raw.items():
        if img is not None and key == "rgb":
            img = img.permute(0, 3, 1, 2)
        out[key] = None if img is None else _finish(img, anti_aliasing).to(device)
    return out


def _faces_as_mesh(faces):
    """(B, F, 3, 3) face coordinates → vertices (B, 3F, 3) and shared indices (1, F, 3)."""
    B, Fn = faces.shape[:2]
    idx = torch.arange(3 * Fn, dtype=torch.int32).reshape(1, Fn, 3)
    return faces.reshape(B, 3 * Fn, 3), idx


def rasterize_rgbad(faces, textures=None, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                    near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, background_color=DEFAULT_BACKGROUND_COLOR,
                    return_rgb=True, return_alpha=True, return_depth=True):
    """RGB (B, 3, S, S), alpha (B, S, S) and depth (B, S, S) of NDC faces (B, F, 3, 3) with textures
    (B, F, T, T, T, 3) → dict {'rgb', 'alpha', 'depth'} (None for outputs not asked for)."""
    v, idx = _faces_as_mesh(faces)
    return rasterize_mesh(v, idx, image_size, anti_aliasing, near, far, eps, False, return_alpha, return_depth,
                          textures, None, background_color, bool(return_rgb and textures is not None))


def rasterize(faces, textures, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
              near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, background_color=DEFAULT_BACKGROUND_COLOR):
    """RGB images (B, 3, S, S) of NDC faces (B, F, 3, 3) with textures (B, F, T, T, T, 3)."""
    return rasterize_rgbad(faces, textures, image_size, anti_aliasing, near, far, eps, background_color,
                           True, False, False)["rgb"]


def rasterize_silhouettes(faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                          near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS):
    """Silhouettes (B, S, S) in [0, 1] of NDC faces (B, F, 3, 3); Kato gradient on x, y."""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, eps, None, False, True, False)["alpha"]


def rasterize_depth(faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                    near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS):
    """Depth (B, S, S) of NDC faces, background = far; analytic gradient of z* = 1/Σ wₖ/zₖ."""
    return rasterize_rgbad(faces, None, image_size, anti_aliasing, near, far, eps, None, False, False, True)["depth"]


def rasterize_face_index_map(faces, image_size=DEFAULT_IMAGE_SIZE, near=DEFAULT_NEAR, far=DEFAULT_FAR,
                             verts=None, fill_back=False):
    """Plain (non-differentiable) rasterisation → (face index (B,S,S) int32, −1 = bg; depth (B,S,S)).

    Either NDC face coordinates ``faces`` (B, F, 3, 3), or ``verts`` (B, N, 3) NDC with index
    ``faces`` (1 or B, F, 3). Rows are in image order (row 0 = top), no anti-aliasing.
    """
    with torch.no_grad():
        if verts is None:
            verts, faces = _faces_as_mesh(faces)
        _, _, _, fim, zbuf = _forward_cpu(verts, faces, fill_back, int(image_size), near, far)
    return fim.flip(1), zbuf.flip(1)


class Rasterize(torch.nn.Module):
    """Upstream's raw rasteriser module: ``Rasterize(image_size, near, far, eps, background_color,
    return_rgb, return_alpha, return_depth)(faces, textures)`` → (rgb (B, S, S, 3), alpha, depth) in
    the raster frame (row 0 = bottom, no anti-aliasing); outputs not asked for are empty tensors."""

    def __init__(self, image_size, near, far, eps, background_color, return_rgb=False, return_alpha=False,
                 return_depth=False):
        super().__init__()
        self.image_size, self.near, self.far, self.eps = image_size, near, far, eps
        self.background_color = background_color
        self.return_rgb, self.return_alpha, self.return_depth = return_rgb, return_alpha, return_depth

    def forward(self, faces, textures=None):
        v, idx = _faces_as_mesh(faces)
        raw = _raster(v, idx, int(self.image_size), self.near, self.far, self.eps, False, textures, None,
                      self.background_color if self.background_color is not None else DEFAULT_BACKGROUND_COLOR,
                      bool(self.return_rgb and textures is not None), self.return_alpha, self.return_depth)
        empty = torch.tensor([])
        return tuple(empty if raw[k] is None else raw[k].to(faces.device) for k in ("rgb", "alpha", "depth"))
