"""Cameras: world vertices → NDC (neural_renderer's ``projection``, ``look_at``, ``look``, ``perspective``,
``get_points_from_angles``, ``vertices_to_faces``).

NDC here is neural_renderer's: x right and y up, both in [-1, 1] across the image, z = depth along
the viewing direction. All functions are torch ops (autograd reaches vertices and cameras), except the
fused CPU kernel ``_project`` uses for a fixed projection camera.

Differences from neural_renderer 1.1.x, on purpose:
* ``look(vertices, eye, direction, up)``: upstream crashes when ``up`` is None (its default, and what
  ``Renderer(camera_mode='look')`` passes), and defaults ``direction`` to [0, 1, 0]. Here ``up`` defaults
  to [0, 1, 0] and ``direction`` to [0, 0, 1], as in Kato's original (Chainer) package (upstream
  issues daniilidis-group/neural_renderer #22 and #134: 'look' cannot be given an up vector).
* ``look_at``/``look`` keep upstream's frame x = up × z, y up, z forward, which mirrors images
  left–right relative to a physical camera (upstream issue #22, "the renderer is left-handed").
* ``vertices_to_faces`` also accepts faces with batch size 1 for a batch of vertices.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def _ck():
    from . import cpu_kernels  # lazily, as in rasterize: importing the package never loads numba kernels

    return cpu_kernels


def _vec(x, device, batch=None, dtype=torch.float32):
    """list/tuple/ndarray/tensor → float tensor (1 or B, 3) on `device` (tensors keep their graph)."""
    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    x = x.to(device=device, dtype=dtype)
    if x.ndim == 1:
        x = x[None]
    if batch is not None and x.shape[0] == 1 and batch > 1:
        x = x.expand(batch, -1)
    return x


def projection(vertices, K, R, t, dist_coeffs=None, orig_size=1024, eps=1e-9):
    """World (B, N, 3) → NDC (B, N, 3) with an OpenCV camera: x right, y up in [-1, 1]; z = camera depth.

    P = v·Rᵀ + t; x' = x/(z+eps), y' = y/(z+eps); optional distortion (k1, k2, p1, p2, k3);
    [u, v] = K·[x', y', 1]; u_ndc = 2u/orig − 1, v_ndc = 1 − 2v/orig. K, R: (B, 3, 3); t: (B, 1, 3);
    dist_coeffs (B, 5) or None (upstream requires it; all zeros is the same as None).
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


def _rotate_into(vertices, eye, z_axis, up):
    """(v − eye)·rᵀ with camera axes z = z_axis, x = up × z, y = z × x (normalised, eps 1e-5 as upstream)."""
    z_axis = F.normalize(z_axis, eps=1e-5)
    x_axis = F.normalize(torch.cross(up, z_axis, dim=-1), eps=1e-5)
    y_axis = F.normalize(torch.cross(z_axis, x_axis, dim=-1), eps=1e-5)
    r = torch.stack((x_axis, y_axis, z_axis), dim=1)  # (B, 3, 3), rows = camera axes
    return torch.matmul(vertices - eye[:, None, :], r.transpose(1, 2))


def look_at(vertices, eye, at=(0, 0, 0), up=(0, 1, 0)):
    """Camera at `eye` looking at `at` with `up` up: world (B, N, 3) → camera (x, y, z = depth).

    eye/at/up: sequences, arrays or tensors of shape (3,) or (B, 3) (tensors keep their gradient).
    Like upstream, the camera frame is x = up × z, y = z × x: images come out mirrored left–right
    compared with a physical camera at `eye` (neural_renderer's convention, kept for compatibility).
    """
    if not torch.is_tensor(vertices) or vertices.ndim != 3:
        raise ValueError("vertices Tensor should have 3 dimensions")
    B, dev = vertices.shape[0], vertices.device
    eye, at, up = (_vec(x, dev, B, vertices.dtype) for x in (eye, at, up))
    return _rotate_into(vertices, eye, at - eye, up)


def look(vertices, eye, direction=(0, 0, 1), up=None):
    """Camera at `eye` looking along `direction` (default +z) with `up` (default +y; see module note)."""
    if not torch.is_tensor(vertices) or vertices.ndim != 3:
        raise ValueError("vertices Tensor should have 3 dimensions")
    B, dev = vertices.shape[0], vertices.device
    if direction is None:
        direction = (0, 0, 1)
    if up is None:
        up = (0, 1, 0)
    eye, direction, up = (_vec(x, dev, B, vertices.dtype) for x in (eye, direction, up))
    return _rotate_into(vertices, eye, direction, up)


def perspective(vertices, angle=30.0):
    """Perspective division, half field of view `angle` degrees: x, y ← x/(z·tan a), y/(z·tan a)."""
    if not torch.is_tensor(vertices) or vertices.ndim != 3:
        raise ValueError("vertices Tensor should have 3 dimensions")
    if torch.is_tensor(angle):
        width = torch.tan(angle.to(vertices) / 180.0 * math.pi).reshape(-1, 1)
    else:
        width = math.tan(float(angle) / 180.0 * math.pi)
    z = vertices[:, :, 2]
    x = vertices[:, :, 0] / z / width
    y = vertices[:, :, 1] / z / width
    return torch.stack((x, y, z), dim=2)


def get_points_from_angles(distance, elevation, azimuth, degrees=True):
    """Camera position on a sphere: (d·cos e·sin a, d·sin e, −d·cos e·cos a).

    Python numbers → a tuple of 3 floats (as upstream); tensors of shape (B,) → a (B, 3) tensor.
    """
    if not any(torch.is_tensor(x) for x in (distance, elevation, azimuth)):
        if degrees:
            elevation, azimuth = math.radians(elevation), math.radians(azimuth)
        return (distance * math.cos(elevation) * math.sin(azimuth),
                distance * math.sin(elevation),
                -distance * math.cos(elevation) * math.cos(azimuth))
    distance, elevation, azimuth = (torch.as_tensor(x, dtype=torch.float32) for x in (distance, elevation, azimuth))
    if degrees:
        elevation, azimuth = elevation * (math.pi / 180.0), azimuth * (math.pi / 180.0)
    return torch.stack([distance * torch.cos(elevation) * torch.sin(azimuth),
                        distance * torch.sin(elevation),
                        -distance * torch.cos(elevation) * torch.cos(azimuth)]).reshape(3, -1).transpose(1, 0)


def vertices_to_faces(vertices, faces):
    """(B, N, 3) vertices, (B or 1, F, 3) indices → (B, F, 3, 3) face vertex coordinates."""
    B = vertices.shape[0]
    idx = torch.arange(B, device=vertices.device)[:, None, None]
    return vertices[idx, faces.long()]
