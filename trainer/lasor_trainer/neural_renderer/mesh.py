"""neural_renderer's ``Mesh``: vertices and textures as parameters, faces fixed.

Upstream's class does not work as published (``fromobj`` refers to an undefined name, given textures
are dropped and ``texture_size`` is read from the wrong axis); this one does what it evidently meant.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .obj_io import load_obj


class Mesh:
    """vertices (N, 3) → ``nn.Parameter``; faces (F, 3); textures (F, T, T, T, 3) → ``nn.Parameter``
    (0.05·N(0, 1) of size ``texture_size`` when None)."""

    def __init__(self, vertices, faces, textures=None, texture_size=4):
        self.vertices = nn.Parameter(torch.as_tensor(vertices, dtype=torch.float32))
        self.faces = torch.as_tensor(faces, dtype=torch.int32)
        self.num_vertices = self.vertices.shape[0]
        self.num_faces = self.faces.shape[0]
        if textures is None:
            shape = (self.num_faces, texture_size, texture_size, texture_size, 3)
            textures = 0.05 * torch.randn(*shape)
        self.textures = nn.Parameter(torch.as_tensor(textures, dtype=torch.float32))
        self.texture_size = self.textures.shape[1]

    @classmethod
    def fromobj(cls, filename_obj, normalization=True, load_texture=False, texture_size=4):
        """A Mesh from an OBJ file (textures from its materials when ``load_texture``)."""
        out = load_obj(filename_obj, normalization=normalization, texture_size=texture_size, load_texture=load_texture)
        return cls(out[0], out[1], out[2] if load_texture else None, texture_size)
