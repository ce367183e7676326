"""A contact sheet of a body model: shapes (each of the 10 betas at ±2σ) and poses, front and side, via pyrender.

pyrender is imported inside the functions that render: its OpenGL platform must be chosen first
(`lasor_datagen.gl.select_gl_platform`).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import trimesh
from PIL import Image, ImageDraw

from lasor_shared.camera import intrinsics, opengl_camera_pose, orbit_camera, project
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import SMPL24_NAMES
from lasor_shared.sheets import tile_grid
from lasor_datagen.bvh import POSITION_JOINTS, forward_kinematics
from lasor_datagen.poses import LIBRARY
from lasor_datagen.samplers import ground_transl


def render_mesh(renderer, vertices, faces, K, R, t, color=(0.75, 0.62, 0.52)):
    """RGB (H,W,3) uint8 of one mesh with a head light, white background."""
    import pyrender

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
    return _save_sheet(tiles, 4, size, out_png)


def _save_sheet(tiles, cols: int, size: int, path: str, title: str | None = None):
    """Save two-view tiles (2·size × size) in `cols` columns as the PNG `path`; returns the sheet's (w, h)."""
    sheet = tile_grid(tiles, cols, cell=(2 * size, size), title=title)
    sheet.save(path)
    return sheet.size


def _floor_mesh(centre, half=0.9):
    x, z = centre[0], centre[2]
    v = np.array([[x - half, 0, z - half], [x + half, 0, z - half], [x + half, 0, z + half], [x - half, 0, z + half]])
    return trimesh.Trimesh(v, [[0, 2, 1], [0, 3, 2]], process=False)


def render_posed(renderer, vertices, faces, size, views=((0.6, 0.25), (np.pi / 2, 0.12))):
    """Side-by-side renders (one per (azimuth, elevation) view) of a body standing on a grey floor at y = 0."""
    import pyrender

    centre = (vertices.min(0) + vertices.max(0)) / 2
    images = []
    for az, el in views:
        scene = pyrender.Scene(bg_color=(1.0, 1.0, 1.0, 1.0), ambient_light=(0.35, 0.35, 0.35))
        body = pyrender.MetallicRoughnessMaterial(baseColorFactor=(0.75, 0.62, 0.52, 1.0), metallicFactor=0.1,
                                                  roughnessFactor=0.8)
        floor = pyrender.MetallicRoughnessMaterial(baseColorFactor=(0.55, 0.6, 0.65, 1.0), metallicFactor=0.0,
                                                   roughnessFactor=1.0, doubleSided=True)
        scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(vertices, faces, process=False), material=body))
        scene.add(pyrender.Mesh.from_trimesh(_floor_mesh(centre), material=floor, smooth=False))
        K, R, t = _camera_for(vertices, size, az, el)
        pose = opengl_camera_pose(R, t)
        scene.add(pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2], K[1, 2], znear=0.05, zfar=50.0), pose=pose)
        scene.add(pyrender.DirectionalLight(intensity=3.0), pose=pose)
        images.append(renderer.render(scene)[0])
    return np.concatenate(images, axis=1)


def pose_library_sheets(model, out_dir: str, size: int = 192, cols: int = 5, groups=None):
    """One PNG per library group (`poses-GROUP.png`): every pose on the ground, two views. Returns the paths."""
    import pyrender

    os.makedirs(out_dir, exist_ok=True)
    order = list(dict.fromkeys(g for _, g, _ in LIBRARY))
    unknown = sorted(set(groups or ()) - set(order))
    if unknown:
        raise LasorError(f"--group: unknown pose group(s) {', '.join(unknown)} (known: {', '.join(order)})")
    renderer = pyrender.OffscreenRenderer(size, size)
    paths = []
    try:
        for group in [g for g in order if not groups or g in groups]:
            items = [(n, p) for n, g, p in LIBRARY if g == group]
            with torch.no_grad():
                out = model.pose(torch.tensor(np.stack([p for _, p in items]), dtype=torch.float32),
                                 torch.zeros(len(items), model.num_betas))
            tiles = []
            for (name, _), v in zip(items, out.vertices.numpy().astype(np.float64)):
                v = v + ground_transl(v)
                tile = Image.fromarray(render_posed(renderer, v, model.faces, size))
                ImageDraw.Draw(tile).text((4, 4), name, fill=(0, 0, 0))
                tiles.append(tile)
            paths.append(os.path.join(out_dir, f"poses-{group}.png"))
            _save_sheet(tiles, cols, size, paths[-1], title=f"{group}: {len(tiles)} poses")
    finally:
        renderer.delete()
    return paths


def _camera_for(vertices, size, az, el):
    lo, hi = vertices.min(0), vertices.max(0)
    centre = (lo + hi) / 2
    K = intrinsics(size * 1.6, size, size)
    R, t = orbit_camera(az, el, 0.0, 1.8 * max(float(np.linalg.norm(hi - lo)), 1.0), target=centre)
    return K, R, t


def mocap_sheet(model, bvh, joint_map, frames, poses, fit, out_png: str, size: int = 256, n: int = 6):
    """Side by side for n frames: the BVH skeleton (its own FK, aligned by `fit`) and the retargeted SMPL body."""
    import pyrender

    pick = np.unique(np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int))
    _, Pb = forward_kinematics(bvh, frames[pick])
    with torch.no_grad():
        out = model.pose(torch.tensor(poses[pick], dtype=torch.float32), torch.zeros(len(pick), model.num_betas))
    V, J = out.vertices.numpy().astype(np.float64), out.joints[:, :24].numpy().astype(np.float64)
    s, R = fit["scale"], fit["rotation"]
    names = [n for n in POSITION_JOINTS if n in joint_map["joints"]]
    si = [SMPL24_NAMES.index(n) for n in names]
    bi = [bvh.index(joint_map["joints"][n]) for n in names]
    renderer = pyrender.OffscreenRenderer(size, size)
    tiles = []
    try:
        for k in range(len(pick)):
            sk = Pb[k] @ (s * R).T                      # centroids of the matched joints coincide
            sk += J[k, si].mean(0) - sk[bi].mean(0)
            shift = ground_transl(V[k])
            v, sk = V[k] + shift, sk + shift
            K, Rc, tc = _camera_for(v, size, 0.6, 0.2)
            uv, _ = project(sk, K, Rc, tc)
            left = Image.new("RGB", (size, size), "white")
            right = Image.fromarray(render_posed(renderer, v, model.faces, size, views=((0.6, 0.2),)))
            for img, width in ((left, 3), (right, 1)):           # the skeleton, and over the body
                draw = ImageDraw.Draw(img)
                for j, p in enumerate(bvh.parents):
                    if p >= 0:
                        draw.line([tuple(uv[p]), tuple(uv[j])], fill=(30, 60, 200), width=width)
            for q in uv:
                ImageDraw.Draw(left).ellipse([q[0] - 2, q[1] - 2, q[0] + 2, q[1] + 2], fill=(200, 30, 30))
            tile = Image.new("RGB", (2 * size, size), "white")
            tile.paste(left, (0, 0))
            tile.paste(right, (size, 0))
            ImageDraw.Draw(tile).text((4, 4), f"frame {int(frames[pick[k]])}: BVH | SMPL", fill=(0, 0, 0))
            tiles.append(tile)
    finally:
        renderer.delete()
    return _save_sheet(tiles, 3, size, out_png)
