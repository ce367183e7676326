"""Renderer, projection and differentiable rasterisers (see the package docstring for the algorithm)."""

from __future__ import annotations

import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from . import cuda_backend

log = logging.getLogger("lasor_trainer.neural_renderer")

DEFAULT_IMAGE_SIZE = 256
DEFAULT_ANTI_ALIASING = True
DEFAULT_NEAR = 0.1
DEFAULT_FAR = 100.0
DEFAULT_EPS = 1e-4
BACKENDS = ("auto", "cpu", "neural_renderer")
ENV_BACKEND = "LASOR_NMR_BACKEND"

try:  # one error type per package boundary; still a ValueError for callers that expect one
    from lasor_shared.errors import LasorError as _Base
except Exception:  # pragma: no cover - lasor_shared is always importable in the project
    _Base = Exception


class RendererInputError(_Base, ValueError):
    """Bad input to the neural renderer; the one-line message names the argument."""


def _bad(msg: str):
    raise RendererInputError(msg)


# --------------------------------------------------------------------------------------------------
# kernels (imported lazily so that importing the package never triggers numba compilation)
# --------------------------------------------------------------------------------------------------


def _ck():
    from . import cpu_kernels

    return cpu_kernels


# --------------------------------------------------------------------------------------------------
# projection
# --------------------------------------------------------------------------------------------------


def projection(vertices, K, R, t, dist_coeffs=None, orig_size=1024, eps=1e-9):
    """World (B, N, 3) → NDC (B, N, 3): x right, y up, in [-1, 1] over the image; z = camera depth.

    P = v·Rᵀ + t; x' = x/z, y' = y/z; optional OpenCV distortion (k1, k2, p1, p2, k3);
    [u, v] = K·[x', y', 1]; u_ndc = 2u/orig − 1, v_ndc = 1 − 2v/orig. K, R: (B, 3, 3); t: (B, 1, 3).
    """
    P = torch.matmul(vertices, R.transpose(-1, -2)) + t
    x, y, z = P[..., 0], P[..., 1], P[..., 2]
    x_ = x / (z + eps)
    y_ = y / (z + eps)
    if dist_coeffs is not None:
        k1, k2, p1, p2, k3 = (dist_coeffs[:, None, i] for i in range(5))
        r2 = x_ * x_ + y_ * y_
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 * r2 * r2
        x__ = x_ * radial + 2 * p1 * x_ * y_ + p2 * (r2 + 2 * x_ * x_)
        y__ = y_ * radial + p1 * (r2 + 2 * y_ * y_) + 2 * p2 * x_ * y_
        x_, y_ = x__, y__
    u = K[:, None, 0, 0] * x_ + K[:, None, 0, 1] * y_ + K[:, None, 0, 2]
    v = K[:, None, 1, 0] * x_ + K[:, None, 1, 1] * y_ + K[:, None, 1, 2]
    u = 2.0 * u / orig_size - 1.0
    v = 1.0 - 2.0 * v / orig_size
    return torch.stack([u, v, z], dim=-1)


class _ProjectCPU(torch.autograd.Function):
    """`projection` without distortion as one CPU kernel (and one for the backward); the camera
    (K, R, t) is held fixed — callers whose camera needs a gradient use the torch ops."""

    @staticmethod
    def forward(ctx, vertices, K, R, t, orig_size, eps):
        arrs = [x.detach().to(torch.float64).contiguous().numpy() for x in (K, R, t)]
        v = vertices.detach().contiguous()
        ctx.saved = (v, arrs, float(orig_size), float(eps))
        return torch.from_numpy(_ck().project_vertices(v.numpy(), *arrs, float(orig_size), float(eps)))

    @staticmethod
    def backward(ctx, grad):
        v, arrs, orig, eps = ctx.saved
        g = grad.detach().float().contiguous().numpy()
        return torch.from_numpy(_ck().project_vertices_backward(v.numpy(), *arrs, orig, eps, g)), None, None, None, None, None


def _project(vertices, K, R, t, dist_coeffs, orig_size):
    """`projection`, through the fused CPU kernel when it applies (CPU float32, no distortion, fixed camera)."""
    if (vertices.device.type == "cpu" and vertices.dtype == torch.float32 and dist_coeffs is None
            and not (K.requires_grad or R.requires_grad or t.requires_grad)):
        return _ProjectCPU.apply(vertices, K, R, t, orig_size, 1e-9)
    return projection(vertices, K, R, t, dist_coeffs, orig_size)


def vertices_to_faces(vertices, faces):
    """(B, N, 3) vertices, (B, F, 3) indices → (B, F, 3, 3) face vertex coordinates."""
    B = vertices.shape[0]
    idx = torch.arange(B, device=vertices.device)[:, None, None]
    return vertices[idx, faces.long()]


# --------------------------------------------------------------------------------------------------
# CPU rasterisation (internal frame: row 0 = NDC y −1) and its autograd
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


def _finish(img: torch.Tensor, anti_aliasing: bool) -> torch.Tensor:
    img = img.flip(1)  # internal row 0 is the bottom of the picture
    if anti_aliasing:
        img = F.avg_pool2d(img[:, None], kernel_size=2)[:, 0]
    return img


def rasterize_mesh(verts_ndc, faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                   near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, fill_back=False,
                   return_alpha=True, return_depth=True):
    """CPU rasteriser on NDC vertices (B, N, 3) and faces (1 or B, F, 3) → {'alpha', 'depth'}.

    ``fill_back`` draws the reversed copy of back-facing faces (neural_renderer's doubled face list,
    without materialising it). One rasterisation pass serves both outputs. Tensors on another
    device are rasterised on the CPU and the images returned on that device (autograd flows).
    """
    device = verts_ndc.device
    v_cpu = verts_ndc.to("cpu", torch.float32)
    is_ = int(image_size) * (2 if anti_aliasing else 1)
    v_np, f_np, bounds, fim, zbuf = _forward_cpu(v_cpu, faces, fill_back, is_, near, far)
    out = {"alpha": None, "depth": None}
    if return_alpha:
        if v_cpu.requires_grad:
            alpha = _SilhouetteFunction.apply(v_cpu, v_np, f_np, bounds, fim, float(eps), bool(fill_back))
        else:
            alpha = (fim >= 0).to(torch.float32)
        out["alpha"] = _finish(alpha, anti_aliasing).to(device)
    if return_depth:
        if v_cpu.requires_grad:
            depth = _depth_differentiable(v_cpu, torch.from_numpy(f_np), fim, far)
        else:
            depth = zbuf
        out["depth"] = _finish(depth, anti_aliasing).to(device)
    return out


def _faces_as_mesh(faces):
    """(B, F, 3, 3) face coordinates → vertices (B, 3F, 3) and shared indices (1, F, 3)."""
    B, Fn = faces.shape[:2]
    idx = torch.arange(3 * Fn, dtype=torch.int32).reshape(1, Fn, 3)
    return faces.reshape(B, 3 * Fn, 3), idx


def rasterize(
    faces,
    image_size=DEFAULT_IMAGE_SIZE,
    anti_aliasing=DEFAULT_ANTI_ALIASING,
    near=DEFAULT_NEAR,
    far=DEFAULT_FAR,
    eps=DEFAULT_EPS,
    return_alpha=True,
    return_depth=True,
):
    """neural_renderer-style rasteriser on NDC faces (B, F, 3, 3) → {'alpha', 'depth'} (CPU)."""
    v, idx = _faces_as_mesh(faces)
    return rasterize_mesh(v, idx, image_size, anti_aliasing, near, far, eps, False, return_alpha, return_depth)


def rasterize_silhouettes(faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                          near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS):
    """Silhouettes (B, S, S) in [0, 1] of NDC faces (B, F, 3, 3); Kato gradient on x, y."""
    return rasterize(faces, image_size, anti_aliasing, near, far, eps, True, False)["alpha"]


def rasterize_depth(faces, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                    near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS):
    """Depth (B, S, S) of NDC faces, background = far; analytic gradient of z* = 1/Σ wₖ/zₖ."""
    return rasterize(faces, image_size, anti_aliasing, near, far, eps, False, True)["depth"]


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


# --------------------------------------------------------------------------------------------------
# backend selection
# --------------------------------------------------------------------------------------------------


def resolve_backend(requested: str | None, device: torch.device) -> str:
    """'cpu' or 'neural_renderer' for tensors on `device`.

    `requested` (None → env LASOR_NMR_BACKEND → 'auto'): 'auto' uses neural_renderer when it imports
    and the tensors are on CUDA, else the CPU kernels; 'neural_renderer' insists on it (error if it
    is missing or the tensors are not on CUDA); 'cpu' always uses the CPU kernels (CUDA tensors are
    copied to the CPU and the images copied back).
    """
    req = requested if requested is not None else os.environ.get(ENV_BACKEND, "auto")
    req = str(req).strip().lower() or "auto"
    if req not in BACKENDS:
        _bad(f"backend must be one of {BACKENDS}, got {req!r}")
    if req == "cpu":
        return "cpu"
    has_nr = cuda_backend.load() is not None
    if req == "neural_renderer":
        if not has_nr:
            _bad("backend='neural_renderer' but the neural_renderer package does not import")
        if device.type != "cuda":
            _bad(f"backend='neural_renderer' needs CUDA tensors, got vertices on {device}")
        return "neural_renderer"
    return "neural_renderer" if (has_nr and device.type == "cuda") else "cpu"


def describe_backend(requested: str | None, device: torch.device) -> str:
    """One log line: which rasteriser renders tensors on `device` and, for CUDA without
    neural_renderer, that lasor's own renderer is the fallback and why."""
    backend = resolve_backend(requested, device)
    req = str(requested if requested is not None else os.environ.get(ENV_BACKEND, "auto")).strip().lower() or "auto"
    if backend == "neural_renderer":
        return f"silhouette renderer: neural_renderer (CUDA extension; requested {req})"
    if device.type != "cuda":
        return f"silhouette renderer: lasor's own (numba CPU kernels; requested {req})"
    why = f"{ENV_BACKEND}/backend is 'cpu'" if req == "cpu" else cuda_backend.unavailable_reason()
    return (f"silhouette renderer: FALLBACK to lasor's own (numba CPU kernels; CUDA tensors are copied to the CPU "
            f"and back) because {why}")


# --------------------------------------------------------------------------------------------------
# input checking
# --------------------------------------------------------------------------------------------------


def _check_mesh(vertices, faces):
    if not isinstance(vertices, torch.Tensor):
        _bad(f"vertices must be a torch.Tensor of shape (B, N, 3), got {type(vertices).__name__}")
    if vertices.ndim != 3 or vertices.shape[-1] != 3 or vertices.shape[0] < 1:
        _bad(f"vertices must have shape (B, N, 3) with B ≥ 1, got {tuple(vertices.shape)}")
    if vertices.dtype != torch.float32:
        _bad(f"vertices must be float32, got {vertices.dtype}")
    if not bool(torch.isfinite(vertices).all()):
        _bad("vertices contain NaN or infinite values")
    if not isinstance(faces, torch.Tensor):
        _bad(f"faces must be a torch.Tensor of shape (B, F, 3), got {type(faces).__name__}")
    if faces.dtype not in (torch.int32, torch.int64, torch.int16, torch.uint8):
        _bad(f"faces must be an integer tensor (int32/int64), got {faces.dtype}")
    if faces.ndim == 2 and faces.shape[-1] == 3:
        faces = faces[None]
    if faces.ndim != 3 or faces.shape[-1] != 3:
        _bad(f"faces must have shape (B, F, 3), got {tuple(faces.shape)}")
    B, N = vertices.shape[0], vertices.shape[1]
    if faces.shape[0] not in (1, B):
        _bad(f"faces batch size {faces.shape[0]} does not match vertices batch size {B}")
    if faces.device != vertices.device:
        faces = faces.to(vertices.device)
    if faces.numel():
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= N:
            _bad(f"faces index vertices out of range [0, {N}): min {lo}, max {hi}")
    return faces  # batch 1 or B


def _camera_tensor(x, name, B, device):
    """K/R → (B, 3, 3); t → (B, 1, 3); dist_coeffs → (B, 5); float32 on `device`, graph kept."""
    if x is None:
        _bad(f"{name} is required for camera_mode='projection'")
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        except (TypeError, ValueError):
            _bad(f"{name} must be numeric, got {type(x).__name__}")
    x = x.to(device=device, dtype=torch.float32)
    shape = tuple(x.shape)
    if name in ("K", "R"):
        ok = shape == (3, 3) or (x.ndim == 3 and shape[1:] == (3, 3))
        want = "(3, 3) or (B, 3, 3)"
    elif name == "t":
        ok = shape == (3,) or (x.ndim == 2 and shape[1] == 3) or (x.ndim == 3 and shape[1:] == (1, 3))
        want = "(3,), (B, 3) or (B, 1, 3)"
    else:
        ok = shape == (5,) or (x.ndim == 2 and shape[1] == 5)
        want = "(5,) or (B, 5)"
    if not ok:
        _bad(f"{name} must have shape {want}, got {shape}")
    if name == "t":
        x = x.reshape(1, 1, 3) if x.ndim == 1 else (x[:, None, :] if x.ndim == 2 else x)
    elif x.ndim == (2 if name in ("K", "R") else 1):
        x = x[None]
    if x.shape[0] not in (1, B):
        _bad(f"{name} batch size {x.shape[0]} does not match vertices batch size {B}")
    if not bool(torch.isfinite(x).all()):
        _bad(f"{name} contains NaN or infinite values")
    return x.expand(B, *x.shape[1:])


# --------------------------------------------------------------------------------------------------
# Renderer
# --------------------------------------------------------------------------------------------------


class Renderer(torch.nn.Module):
    """neural_renderer's ``Renderer`` for silhouettes and depth, on CPU kernels or neural_renderer.

    Arguments mirror neural_renderer (projection mode): ``image_size`` S, ``anti_aliasing``
    (rasterise at 2S, average 2×2), ``fill_back`` (two-sided: faces doubled with reversed winding),
    ``camera_mode`` ('projection' with ``K`` (B,3,3), ``R`` (B,3,3), ``t`` (B,1,3) — (3,3)/(3,)
    and (B,3) are accepted too — ``dist_coeffs`` (B,5) and ``orig_size``; or 'none', where vertices
    are already NDC: x right, y up in [-1, 1], z = depth), ``near``/``far`` (pixels are kept when
    near < z < far; depth background = far). ``backend``: 'auto' | 'cpu' | 'neural_renderer'
    (None → env LASOR_NMR_BACKEND → 'auto'). Unlike upstream, render_silhouettes/render_depth honour
    this Renderer's near/far (upstream uses the module defaults 0.1/100, which are also ours).
    Camera arguments can be overridden per call, as upstream.
    """

    def __init__(self, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                 background_color=(0, 0, 0), fill_back=True, camera_mode="projection",
                 K=None, R=None, t=None, dist_coeffs=None, orig_size=1024,
                 near=DEFAULT_NEAR, far=DEFAULT_FAR, eps=DEFAULT_EPS, backend=None):
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
            _bad(f"image_size must be a positive int, got {image_size!r}")
        if camera_mode not in ("projection", "none"):
            _bad(f"camera_mode must be 'projection' or 'none', got {camera_mode!r}")
        if not (isinstance(orig_size, (int, float, np.integer, np.floating)) and orig_size > 0):
            _bad(f"orig_size must be a positive number, got {orig_size!r}")
        if not (0 <= float(near) < float(far)):
            _bad(f"near/far must satisfy 0 ≤ near < far, got near={near!r}, far={far!r}")
        self.image_size = int(image_size)
        self.anti_aliasing = bool(anti_aliasing)
        self.background_color = background_color
        self.fill_back = bool(fill_back)
        self.camera_mode = camera_mode
        self.K, self.R, self.t, self.dist_coeffs = K, R, t, dist_coeffs
        self.orig_size = orig_size
        self.near, self.far, self.eps = float(near), float(far), float(eps)
        if backend is not None and str(backend).strip().lower() not in BACKENDS:
            _bad(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self._logged: set[tuple[str, str]] = set()

    # ---- upstream-compatible entry points ----
    def forward(self, vertices, faces, textures=None, mode="silhouettes", K=None, R=None, t=None,
                dist_coeffs=None, orig_size=None):
        if mode == "silhouettes":
            return self.render_silhouettes(vertices, faces, K, R, t, dist_coeffs, orig_size)
        if mode == "depth":
            return self.render_depth(vertices, faces, K, R, t, dist_coeffs, orig_size)
        _bad(f"mode must be 'silhouettes' or 'depth' (textured RGB is not implemented), got {mode!r}")

    def render_silhouettes(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """(B, S, S) float32 silhouettes in [0, 1] (multiples of 0.25 with anti-aliasing)."""
        return self._render("silhouettes", vertices, faces, K, R, t, dist_coeffs, orig_size)

    def render_depth(self, vertices, faces, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """(B, S, S) float32 camera depth, background = far (anti-aliasing averages with far)."""
        return self._render("depth", vertices, faces, K, R, t, dist_coeffs, orig_size)

    # ---- shared pipeline ----
    def project(self, vertices, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """World vertices (B, N, 3) → NDC vertices (B, N, 3) with this renderer's camera."""
        if self.camera_mode == "none":
            return vertices
        B, dev = vertices.shape[0], vertices.device
        K = _camera_tensor(self.K if K is None else K, "K", B, dev)
        R = _camera_tensor(self.R if R is None else R, "R", B, dev)
        t = _camera_tensor(self.t if t is None else t, "t", B, dev)
        dc = self.dist_coeffs if dist_coeffs is None else dist_coeffs
        if dc is not None:
            dc = _camera_tensor(dc, "dist_coeffs", B, dev)
        orig = self.orig_size if orig_size is None else orig_size
        if not (isinstance(orig, (int, float, np.integer, np.floating)) and orig > 0):
            _bad(f"orig_size must be a positive number, got {orig!r}")
        return _project(vertices, K, R, t, dc, float(orig))

    def _render(self, what, vertices, faces, K, R, t, dist_coeffs, orig_size):
        faces = _check_mesh(vertices, faces)
        backend = resolve_backend(self.backend, vertices.device)
        key = (backend, vertices.device.type)
        if key not in self._logged:
            self._logged.add(key)
            log.info("neural renderer backend: %s (tensors on %s, requested %s)", backend,
                     vertices.device.type, self.backend or os.environ.get(ENV_BACKEND, "auto"))
        v = self.project(vertices, K, R, t, dist_coeffs, orig_size)
        args = (self.image_size, self.anti_aliasing, self.near, self.far, self.eps)
        if backend == "neural_renderer":
            faces = faces.expand(v.shape[0], -1, -1)
            if self.fill_back:
                faces = torch.cat((faces, faces.flip(-1)), dim=1)
            fn = cuda_backend.render_silhouettes if what == "silhouettes" else cuda_backend.render_depth
            return fn(v, faces, *args)
        sil = what == "silhouettes"
        out = rasterize_mesh(v, faces, *args, fill_back=self.fill_back, return_alpha=sil, return_depth=not sil)
        return out["alpha" if sil else "depth"]


def warmup():
    """Compile (or load from cache) the numba kernels on a tiny problem; returns seconds spent."""
    import time

    t0 = time.perf_counter()
    f = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], requires_grad=True)
    a = rasterize_silhouettes(f, 8, False)
    (a * (1 - 2 * torch.rand_like(a))).sum().backward()
    rasterize_face_index_map(f.detach(), 8)
    return time.perf_counter() - t0


__all__ = [
    "Renderer", "RendererInputError", "projection", "vertices_to_faces", "rasterize", "rasterize_mesh",
    "rasterize_silhouettes", "rasterize_depth", "rasterize_face_index_map", "resolve_backend",
    "warmup", "BACKENDS", "ENV_BACKEND",
]
