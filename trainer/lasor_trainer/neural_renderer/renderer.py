"""``Renderer`` (neural_renderer's, all camera modes and outputs), backend selection and input checks."""

from __future__ import annotations

import logging
import math
import os
import time

import numpy as np
import torch

from . import cuda_backend
from .lighting import face_light
from .projection import _project, look, look_at, perspective, vertices_to_faces
from .rasterize import (DEFAULT_ANTI_ALIASING, DEFAULT_EPS, DEFAULT_FAR, DEFAULT_IMAGE_SIZE, DEFAULT_NEAR,
                        rasterize_face_index_map, rasterize_mesh, rasterize_rgbad, rasterize_silhouettes)

log = logging.getLogger("lasor_trainer.neural_renderer")

CAMERA_MODES = ("projection", "look", "look_at", "none")
RGB_EPS = 1e-3  # upstream's Renderer.rasterizer_eps for render/render_rgb
BACKENDS = ("auto", "cpu", "neural_renderer")
ENV_BACKEND = "LASOR_NMR_BACKEND"

from lasor_shared.errors import LasorError as _Base  # one error type per package boundary


class RendererInputError(_Base, ValueError):
    """Bad input to the neural renderer; the one-line message names the argument."""


def _bad(msg: str):
    raise RendererInputError(msg)


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


def _check_textures(textures, B, Fn):
    if not isinstance(textures, torch.Tensor):
        _bad(f"textures must be a torch.Tensor of shape (B, F, T, T, T, 3), got {type(textures).__name__}")
    s = tuple(textures.shape)
    if not (textures.ndim == 6 and s[0] in (1, B) and s[1] == Fn and s[2] == s[3] == s[4] >= 1 and s[5] == 3):
        _bad(f"textures must have shape (B, F, T, T, T, 3) with B={B}, F={Fn}, got {s}")
    if not textures.is_floating_point():
        _bad(f"textures must be a float tensor, got {textures.dtype}")
    if not bool(torch.isfinite(textures).all()):
        _bad("textures contain NaN or infinite values")
    return textures.float()


class Renderer(torch.nn.Module):
    """neural_renderer's ``Renderer``: same arguments, defaults, attributes and outputs, on CPU kernels
    (or on neural_renderer itself for CUDA tensors when it is installed, see ``backend``).

    Rendering: ``image_size`` S, ``anti_aliasing`` (rasterise at 2S, average 2×2), ``background_color``
    (3,) or (B, 3), ``fill_back`` (two-sided: faces doubled with reversed winding; the copies get their
    own light). Cameras (``camera_mode``):
    * 'projection': OpenCV ``K`` (B,3,3), ``R`` (B,3,3), ``t`` (B,1,3) — (3,3)/(3,)/(B,3) accepted —
      ``dist_coeffs`` (B,5), ``orig_size``; can be overridden per call.
    * 'look_at': camera at ``self.eye`` (default (0, 0, −(1/tan(viewing_angle) + 1))) looking at the
      origin, y up; 'look': at ``self.eye`` along ``camera_direction``. Then, if ``perspective``,
      x, y ← x/(z·tan a), y/(z·tan a) with a = ``viewing_angle`` degrees. ``self.eye`` may be set to a
      sequence or a (3,)/(B,3) tensor — a tensor that requires grad gets a gradient.
    * 'none' (lasor's): vertices are already NDC (x right, y up in [-1, 1], z = depth).
    Light: ``light_intensity_ambient``·``light_color_ambient`` + ``light_intensity_directional``·
    ``light_color_directional``·max(0, n·``light_direction``) per face, on world vertices.
    ``near``/``far``: pixels kept when near < z < far; depth background = far.

    Outputs: ``render`` → (rgb (B,3,S,S), depth (B,S,S), alpha (B,S,S)); ``render_rgb`` → rgb;
    ``render_silhouettes`` → (B,S,S) in [0,1]; ``render_depth`` → (B,S,S). ``forward(..., mode=None|
    'rgb'|'silhouettes'|'depth')`` dispatches as upstream (None → ``render``).

    lasor's extras: ``eps`` (Kato gradient eps of silhouettes/depth; RGB uses ``rasterizer_eps`` = 1e-3 as
    upstream) and ``backend`` ('auto' | 'cpu' | 'neural_renderer'; None → env LASOR_NMR_BACKEND → 'auto').
    Differences from upstream, on purpose: render_silhouettes/render_depth honour this Renderer's
    near/far (upstream silently uses 0.1/100, which are also the defaults); ``camera_direction`` is
    honoured (upstream ignores the argument and always uses (0, 0, 1), the default); 'look' works
    (upstream's crashes, see ``projection.look``); bad input raises one-line ``RendererInputError``.
    """

    def __init__(self, image_size=DEFAULT_IMAGE_SIZE, anti_aliasing=DEFAULT_ANTI_ALIASING,
                 background_color=(0, 0, 0), fill_back=True, camera_mode="projection",
                 K=None, R=None, t=None, dist_coeffs=None, orig_size=1024,
                 perspective=True, viewing_angle=30, camera_direction=(0, 0, 1),
                 near=DEFAULT_NEAR, far=DEFAULT_FAR,
                 light_intensity_ambient=0.5, light_intensity_directional=0.5,
                 light_color_ambient=(1, 1, 1), light_color_directional=(1, 1, 1), light_direction=(0, 1, 0),
                 eps=DEFAULT_EPS, backend=None):
        super().__init__()
        if camera_mode not in CAMERA_MODES:
            _bad(f"camera_mode must be one of {CAMERA_MODES}, got {camera_mode!r}")
        if backend is not None and str(backend).strip().lower() not in BACKENDS:
            _bad(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.image_size = image_size
        self.anti_aliasing = bool(anti_aliasing)
        self.background_color = background_color
        self.fill_back = bool(fill_back)
        self.camera_mode = camera_mode
        self.K, self.R, self.t, self.dist_coeffs = K, R, t, dist_coeffs
        self.orig_size = orig_size
        self.perspective = perspective
        self.viewing_angle = viewing_angle
        self.eye = [0, 0, -(1.0 / math.tan(math.radians(viewing_angle)) + 1)]
        self.camera_direction = camera_direction
        self.near, self.far, self.eps = near, far, float(eps)
        self.light_intensity_ambient = light_intensity_ambient
        self.light_intensity_directional = light_intensity_directional
        self.light_color_ambient = light_color_ambient
        self.light_color_directional = light_color_directional
        self.light_direction = light_direction
        self.rasterizer_eps = RGB_EPS
        self.backend = backend
        self._logged: set[tuple[str, str]] = set()
        self._settings()

    def _settings(self):
        """(image_size, near, far) checked now: upstream code sets these attributes after construction."""
        S = self.image_size
        if isinstance(S, bool) or not isinstance(S, (int, np.integer)) or S < 1:
            _bad(f"image_size must be a positive int, got {S!r}")
        orig = self.orig_size
        if not (isinstance(orig, (int, float, np.integer, np.floating)) and orig > 0):
            _bad(f"orig_size must be a positive number, got {orig!r}")
        if not (0 <= float(self.near) < float(self.far)):
            _bad(f"near/far must satisfy 0 ≤ near < far, got near={self.near!r}, far={self.far!r}")
        return int(S), float(self.near), float(self.far)

    # ---- upstream entry points ----
    def forward(self, vertices, faces, textures=None, mode=None, K=None, R=None, t=None, dist_coeffs=None,
                orig_size=None):
        if mode is None:
            return self.render(vertices, faces, textures, K, R, t, dist_coeffs, orig_size)
        if mode == "rgb":
            return self.render_rgb(vertices, faces, textures, K, R, t, dist_coeffs, orig_size)
        if mode == "silhouettes":
            return self.render_silhouettes(vertices, faces, K, R, t, dist_coeffs, orig_size)
        if mode == "depth":
            return self.render_depth(vertices, faces, K, R, t, dist_coeffs, orig_size)
        _bad(f"mode should be one of None, 'rgb', 'silhouettes' or 'depth', got {mode!r}")

    def render(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """(rgb (B, 3, S, S), depth (B, S, S), alpha (B, S, S)) of a textured, lit mesh."""
        out = self._render_rgb(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), True)
        return out["rgb"], out["depth"], out["alpha"]

    def render_rgb(self, vertices, faces, textures, K=None, R=None, t=None, dist_coeffs=None, orig_size=None):
        """RGB images (B, 3, S, S) of a textured, lit mesh."""
        return self._render_rgb(vertices, faces, textures, (K, R, t, dist_coeffs, orig_size), False)["rgb"]

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
        if self.camera_mode in ("look_at", "look"):
            try:
                if self.camera_mode == "look_at":
                    v = look_at(vertices, self.eye)
                else:
                    v = look(vertices, self.eye, self.camera_direction)
            except (TypeError, ValueError, RuntimeError) as e:
                _bad(f"eye/camera_direction must be 3-vectors or (B, 3) tensors ({e})".replace("\n", " "))
            return perspective(v, angle=self.viewing_angle) if self.perspective else v
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

    def _backend(self, vertices):
        backend = resolve_backend(self.backend, vertices.device)
        key = (backend, vertices.device.type)
        if key not in self._logged:
            self._logged.add(key)
            log.info("neural renderer backend: %s (tensors on %s, requested %s)", backend,
                     vertices.device.type, self.backend or os.environ.get(ENV_BACKEND, "auto"))
        return backend

    def _render(self, what, vertices, faces, K, R, t, dist_coeffs, orig_size):
        faces = _check_mesh(vertices, faces)
        S, near, far = self._settings()
        backend = self._backend(vertices)
        v = self.project(vertices, K, R, t, dist_coeffs, orig_size)
        args = (S, self.anti_aliasing, near, far, self.eps)
        if backend == "neural_renderer":
            faces = faces.expand(v.shape[0], -1, -1)
            if self.fill_back:
                faces = torch.cat((faces, faces.flip(-1)), dim=1)
            fn = cuda_backend.render_silhouettes if what == "silhouettes" else cuda_backend.render_depth
            return fn(v, faces, *args)
        sil = what == "silhouettes"
        out = rasterize_mesh(v, faces, *args, fill_back=self.fill_back, return_alpha=sil, return_depth=not sil)
        return out["alpha" if sil else "depth"]

    def _light(self, vertices, faces):
        """Per-face light (B, F or 2F, 3) of the world mesh (the reversed copies' after, with fill_back)."""
        f = faces.expand(vertices.shape[0], -1, -1)
        if self.fill_back:
            f = torch.cat((f, f.flip(-1)), dim=1)
        try:
            return face_light(vertices_to_faces(vertices, f), self.light_intensity_ambient,
                              self.light_intensity_directional, self.light_color_ambient,
                              self.light_color_directional, self.light_direction)
        except (TypeError, ValueError, RuntimeError) as e:
            _bad(f"light colours/direction must be 3-vectors or (B, 3) ({e})".replace("\n", " "))

    def _render_rgb(self, vertices, faces, textures, camera, want_all):
        faces = _check_mesh(vertices, faces)
        textures = _check_textures(textures, vertices.shape[0], faces.shape[1])
        S, near, far = self._settings()
        backend = self._backend(vertices)
        light = self._light(vertices, faces)
        v = self.project(vertices, *camera)
        if backend == "neural_renderer":
            B = v.shape[0]
            f = faces.expand(B, -1, -1)
            tex = textures.to(v.device).expand(B, *textures.shape[1:])
            if self.fill_back:
                f = torch.cat((f, f.flip(-1)), dim=1)
                tex = torch.cat((tex, tex.permute(0, 1, 4, 3, 2, 5)), dim=1)
            tex = tex * light[:, :, None, None, None, :]
            return cuda_backend.render_rgbad(v, f, tex, S, self.anti_aliasing, near, far, self.rasterizer_eps,
                                             self.background_color, want_all)
        return rasterize_mesh(v, faces, S, self.anti_aliasing, near, far, self.rasterizer_eps, self.fill_back,
                              want_all, want_all, textures, light, self.background_color, True)


def warmup():
    """Compile (or load from cache) the numba kernels on a tiny problem; returns seconds spent."""
    t0 = time.perf_counter()
    f = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], requires_grad=True)
    a = rasterize_silhouettes(f, 8, False)
    (a * (1 - 2 * torch.rand_like(a))).sum().backward()
    rasterize_face_index_map(f.detach(), 8)
    return time.perf_counter() - t0


def warmup_rgb():
    """Compile (or load from cache) the textured-RGB kernels; returns seconds spent."""
    t0 = time.perf_counter()
    f = torch.tensor([[[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]]], requires_grad=True)
    tex = torch.rand(1, 1, 2, 2, 2, 3, requires_grad=True)
    out = rasterize_rgbad(f, tex, 8, False)
    (out["rgb"] * torch.rand_like(out["rgb"])).sum().backward()
    return time.perf_counter() - t0
