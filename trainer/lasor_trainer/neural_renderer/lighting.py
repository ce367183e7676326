"""Lighting: neural_renderer's per-face ambient + directional (Lambert) light.

light_f = I_a·c_a + I_d·c_d·max(0, n_f·d), with n_f = normalize((v0 − v1) × (v2 − v1)) (eps 1e-5) and d
the direction *towards* the light, in the frame the vertices are given in (the Renderer lights world
vertices before its camera). The light multiplies every texel of the face: flat shading. For a face
that the rasteriser draws (counter-clockwise in NDC), n_f points towards the camera.

Difference from upstream, on purpose: ``lighting`` returns a new tensor instead of multiplying
``textures`` in place (upstream's ``textures *= light`` fails on a leaf tensor that requires grad and
silently changes the caller's textures otherwise).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _rows(x, device):
    """Colour/direction (3,) or (B, 3) → float32 tensor (1 or B, 3) (tensors keep their graph)."""
    if not torch.is_tensor(x):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    x = x.to(device=device, dtype=torch.float32)
    return x[None] if x.ndim == 1 else x


def face_light(faces, intensity_ambient=0.5, intensity_directional=0.5, color_ambient=(1, 1, 1),
               color_directional=(1, 1, 1), direction=(0, 1, 0)):
    """Per-face light colour (B, F, 3) of face coordinates ``faces`` (B, F, 3, 3)."""
    B, nf = faces.shape[:2]
    device = faces.device
    light = torch.zeros(B, nf, 3, dtype=torch.float32, device=device)
    if not (isinstance(intensity_ambient, (int, float)) and intensity_ambient == 0):
        light = light + intensity_ambient * _rows(color_ambient, device)[:, None, :]
    if not (isinstance(intensity_directional, (int, float)) and intensity_directional == 0):
        v10 = faces[:, :, 0] - faces[:, :, 1]
        v12 = faces[:, :, 2] - faces[:, :, 1]
        normals = F.normalize(torch.cross(v10, v12, dim=-1), eps=1e-5, dim=-1)
        cos = F.relu((normals * _rows(direction, device)[:, None, :]).sum(-1))
        light = light + intensity_directional * (_rows(color_directional, device)[:, None, :] * cos[:, :, None])
    return light


def lighting(faces, textures, intensity_ambient=0.5, intensity_directional=0.5, color_ambient=(1, 1, 1),
             color_directional=(1, 1, 1), direction=(0, 1, 0)):
    """Lit textures (B, F, T, T, T, 3) = textures × per-face light of ``faces`` (B, F, 3, 3) (not in place)."""
    light = face_light(faces, intensity_ambient, intensity_directional, color_ambient, color_directional, direction)
    return textures * light[:, :, None, None, None, :]
