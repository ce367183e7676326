"""Body-model costs, and whether decimating the embedded model towards SMPL's size would pay.

Measures: smplx forward (batch 1/64) on CPU; pyrender depth-pass time at 256² for the full
embedded mesh and for quadric-decimated versions (6,890 vertices = SMPL's size, and half that);
and the fidelity lost (distance of the full mesh's vertices to the decimated mesh's nearest vertex, an upper bound).
Writes JSON (default bench/results/body_model.json). Decimation needs `pip install fast-simplification`.
"""

import argparse
import json
import os
import time

import numpy as np
import torch

from lasor_shared.body_model import load_body_model
from lasor_shared.camera import intrinsics, opengl_camera_pose, orbit_camera


def timed(fn, repeat):
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return 1000 * (time.perf_counter() - t) / repeat


def render_ms(vertices, faces, size=256, repeat=20):
    import pyrender
    import trimesh

    renderer = pyrender.OffscreenRenderer(size, size)
    K = intrinsics(size * 1.6, size, size)
    R, t = orbit_camera(0.5, 0.1, 0.0, 3.5, target=vertices.mean(0))
    scene = pyrender.Scene()
    scene.add(pyrender.IntrinsicsCamera(K[0, 0], K[1, 1], K[0, 2], K[1, 2]), pose=opengl_camera_pose(R, t))

    def new_mesh_and_render():
        node = scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(vertices, faces, process=False)))
        renderer.render(scene, flags=pyrender.RenderFlags.DEPTH_ONLY)
        scene.remove_node(node)

    ms = timed(new_mesh_and_render, repeat)
    renderer.delete()
    return ms


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="bench/results/body_model.json")
    args = ap.parse_args()
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    result = {"torch_threads": torch.get_num_threads()}
    for B in (1, 64):
        m = load_body_model(batch_size=B)
        pose, betas = torch.randn(B, 72) * 0.3, torch.randn(B, 10)
        with torch.no_grad():
            result[f"smplx_forward_ms_batch{B}"] = timed(lambda: m.pose(pose, betas), 10)
    m = load_body_model()
    with torch.no_grad():
        out = m.pose(torch.randn(1, 72) * 0.3, torch.zeros(1, 10))
    v, f = out.vertices[0].numpy().astype(np.float64), m.faces.astype(np.int64)
    result["full"] = {"vertices": len(v), "faces": len(f), "pyrender_depth_ms_256": render_ms(v, f)}
    try:
        import fast_simplification
        import trimesh
        from scipy.spatial import cKDTree
    except ImportError:
        result["decimation"] = "skipped: pip install fast-simplification"
    else:
        full = trimesh.Trimesh(v, f, process=False)
        for name, n_vertices in (("smpl_size", 6890), ("half_smpl_size", 3445)):
            vd, fd = fast_simplification.simplify(v.astype(np.float32), f.astype(np.int32),
                                                  target_reduction=1 - n_vertices / len(v))
            dist, _ = cKDTree(vd).query(full.vertices)  # vertex-to-vertex: an upper bound of surface error
            result[name] = {"vertices": len(vd), "faces": len(fd), "pyrender_depth_ms_256": render_ms(vd, fd),
                            "error_to_full_mesh_mm_mean": float(dist.mean() * 1000),
                            "error_to_full_mesh_mm_max": float(dist.max() * 1000)}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
