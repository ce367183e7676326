"""A contact sheet of a body model: shapes (each of the 10 betas at ±2σ) and poses, front and side, via pyrender."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from lasor_shared.camera import intrinsics, opengl_camera_pose, orbit_camera


def render_mesh(renderer, vertices, faces, K, R, t, color=(0.75, 0.62, 0.52)):
    """RGB (H,W,3) uint8 of one mesh with a head light, white background."""
    import pyrender
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    material = pyrender.MetallicRoughnessMaterial(baseColorFactor=(*color, 1.0), metallicFactor=0.1,
                                                  roughnessFactor=0.8)
    scene = pyrender.Scene(bg_color=(1.0, 1.0, 1.0, 1.0), ambient_light=(0.35, 0.35, 0.35))
    scene.add(pyrender.Mesh.from_trimesh(mesh, material=material, smooth=True))
    pose = opengl_camera_pose(R, t)
    scene.add(pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], znear=0.05, zfar=50.0), pose=pose)
    scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
    color_img, _ = renderer.render(scene)
    return color_img


def showcase_poses():
    """Named (72,) axis-angle poses: T-pose, walking, arms down, sitting-like, reaching."""
    def pose(**joints):
        from lasor_shared.keypoints import SMPL24_NAMES
        p = np.zeros(72)
        for name, aa in joints.items():
            p[3 * SMPL24_NAMES.index(name):3 * SMPL24_NAMES.index(name) + 3] = aa
        return p
    return {
        "T-pose": pose(),
        "arms down": pose(left_shoulder=[0, 0, -1.2], right_shoulder=[0, 0, 1.2]),
        "walking": pose(left_hip=[-0.5, 0, 0], right_hip=[0.4, 0, 0], right_knee=[0.6, 0, 0],
                        left_shoulder=[0.3, 0, -1.2], right_shoulder=[-0.3, 0, 1.2],
                        left_elbow=[0, -0.4, 0], right_elbow=[0, 0.4, 0]),
        "sitting": pose(left_hip=[-1.5, 0, 0.1], right_hip=[-1.5, 0, -0.1], left_knee=[1.5, 0, 0],
                        right_knee=[1.5, 0, 0], left_shoulder=[0, 0, -1.1], right_shoulder=[0, 0, 1.1]),
        "reaching": pose(right_shoulder=[0, 0, -0.9], left_shoulder=[0, 0, -1.1], spine2=[0.2, 0, 0.1],
                         left_elbow=[0, -1.2, 0]),
    }


def body_model_sheet(model, out_png: str, size: int = 256):
    """Write a PNG: rows of shapes and poses, each front and side view. Returns the image size."""
    import pyrender

    K = intrinsics(size * 1.6, size, size)
    cells = []
    for k in range(min(10, model.shapedirs.shape[-1])):  # every shape component, two per row
        for sign in (-2, 2):
            b = np.zeros(10)
            b[k] = sign
            cells.append((f"beta{k + 1} {sign:+d} sd", np.zeros(72), b))
    for name, p in showcase_poses().items():
        cells.append((name, p, np.zeros(10)))
    renderer = pyrender.OffscreenRenderer(size, size)
    tiles = []
    try:
        for label, p, b in cells:
            with torch.no_grad():
                out = model.pose(torch.tensor(p[None], dtype=torch.float32), torch.tensor(b[None], dtype=torch.float32))
            v = out.vertices[0].numpy()
            centre = (v.max(0) + v.min(0)) / 2
            pair = []
            for az in (0.0, np.pi / 2):
                R, t = orbit_camera(az, 0.0, 0.0, 3.6, target=centre)
                pair.append(render_mesh(renderer, v, model.faces, K, R, t))
            tile = Image.fromarray(np.concatenate(pair, axis=1))
            ImageDraw.Draw(tile).text((6, 6), label, fill=(0, 0, 0))
            tiles.append(tile)
    finally:
        renderer.delete()
    cols = 4
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * 2 * size, rows * size), "white")
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % cols) * 2 * size, (i // cols) * size))
    sheet.save(out_png)
    return sheet.size
