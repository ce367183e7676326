"""Rotation conversions (torch, batched): axis-angle, matrices and the 6D representation."""

import torch


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle → (..., 3, 3) rotation matrices (Rodrigues)."""
    angle = aa.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    axis = aa / angle
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(aa.shape[:-1] + (3, 3))
    s, c = torch.sin(angle)[..., None], torch.cos(angle)[..., None]
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device).expand_as(skew)
    return eye + s * skew + (1 - c) * (skew @ skew)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices → (..., 3) axis-angle, stable near 0 and π."""
    q = matrix_to_quaternion(R)
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    sin_half = xyz.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-7, angle / sin_half.clamp_min(1e-12), 2.0 + angle * 0)
    return xyz * scale


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 4) unit quaternions (w, x, y, z)."""
    m = R.reshape(R.shape[:-2] + (9,))
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.unbind(-1)
    candidates = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        torch.stack([m21 - m12, 1 + m00 - m11 - m22, m10 + m01, m02 + m20], -1),
        torch.stack([m02 - m20, m10 + m01, 1 - m00 + m11 - m22, m21 + m12], -1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, 1 - m00 - m11 + m22], -1),
    ], -2)
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    return q / q.norm(dim=-1, keepdim=True)


def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) → (..., 3, 3): Gram–Schmidt on the two columns (Zhou et al. 2019)."""
    a1, a2 = x[..., 0:3], x[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) → (..., 6): the first two columns."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)
