"""Benchmark of the CPU neural renderer (Kato-style) → JSON, plus a silhouette-fitting PNG.

Measures, for a batch of B posed copies of a ~27k-face body mesh (the embedded body model when
shared/lasor_shared/data/*.npz exists, else a body-like mesh) at 64/128/256 px on the CPU:
Times are the minimum over --repeats runs (median_ms beside them): the machine may be shared.
  * raster_ms       plain forward rasterisation (numba kernel only: face-index map + z-buffer) of
                    the same NDC faces at the same raster size (2S with anti-aliasing, fill_back on)
  * forward_ms      Renderer.render_silhouettes with vertices requiring grad (projection, fill_back,
                    rasterisation, anti-aliasing pool)
  * fwd_bwd_ms      forward + MSE loss to a target silhouette + backward (Kato gradient) to vertices
  * backward_ms     fwd_bwd − forward;  bwd_fwd_ratio = backward_ms / forward_ms
  * pyrender_ms     pyrender (EGL/OSMesa) forward of the same B meshes at S px: new mesh + render
                    per image (vertices change every training step), SEG pass (pixel-centre sampling)
and the scaling with face count (body-like meshes of 1.6k/6.4k/25.6k faces at 128 px), and textured
RGB (section "rgb"): Renderer.render → (rgb, depth, alpha) of the same mesh with textures of size T
(2 and 4), lighting on, at --rgb-batch × --rgb-size², forward and forward + backward (MSE to a target
image, gradients to vertices and textures), each measured interleaved with render_silhouettes on the
same batch (rgb_over_silhouettes ratios).

Usage:  PYTHONPATH=trainer:shared python bench/bench_neural_renderer.py [--out PATH] [--png PATH]
        ... --only rgb   (measure only the RGB section and update it in the existing JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (os.path.join(ROOT, "trainer"), os.path.join(ROOT, "shared"), os.path.join(ROOT, "tests")):
    if p not in sys.path:
        sys.path.insert(0, p)

from lasor_trainer import neural_renderer as nr  # noqa: E402
from nr_testing import (  # noqa: E402  (test-only meshes and fits, tests/nr_testing.py)
    body_like_mesh,
    body_mesh,
    fit_similarity,
    random_rotation,
    silhouette_iou,
)

ORIG = 512


def _timeit(fn, repeats):
    fn()  # warm (compile, allocator)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def make_batch(v0, f0, B, seed=0):
    """B random rigid poses of one mesh in front of one camera; targets from perturbed poses."""
    rng = np.random.default_rng(seed)
    v0 = v0 - v0.mean(0)
    extent = float(np.linalg.norm(v0, axis=1).max())
    focal = ORIG * 1.3
    dist = focal * 1.3 * extent / ORIG
    K = np.array([[focal, 0, ORIG / 2], [0, focal, ORIG / 2], [0, 0, 1]])
    verts, target_verts = [], []
    for _ in range(B):
        R = random_rotation(rng, np.pi / 3)
        verts.append(v0 @ R.T)
        R2 = random_rotation(rng, 0.15) @ R
        target_verts.append(v0 @ R2.T + rng.normal(scale=0.03 * extent, size=3))
    v = torch.tensor(np.stack(verts), dtype=torch.float32)
    vt = torch.tensor(np.stack(target_verts), dtype=torch.float32)
    f = torch.from_numpy(f0.astype(np.int32))[None].expand(B, -1, -1).contiguous()
    t = np.array([0.0, 0.0, dist])
    return v, vt, f, K, np.eye(3), t


def bench_nmr(v, vt, f, K, R, t, S, repeats, aa=True):
    r = nr.Renderer(image_size=S, anti_aliasing=aa, K=K, R=R, t=t, orig_size=ORIG, backend="cpu")
    with torch.no_grad():
        target = r.render_silhouettes(vt, f)
        faces_ndc = nr.vertices_to_faces(r.project(v), torch.cat((f, f.flip(-1)), dim=1))
    raster = S * (2 if aa else 1)

    def plain():
        nr.rasterize_face_index_map(faces_ndc, raster)

    def fwd():
        vv = v.clone().requires_grad_(True)
        return r.render_silhouettes(vv, f)

    def fwd_bwd():
        vv = v.clone().requires_grad_(True)
        img = r.render_silhouettes(vv, f)
        ((img - target) ** 2).sum().backward()
        return vv.grad

    # minimum over repeats: the machine is shared, and contention only ever adds time
    raster_med, raster_ms = _timeit(plain, repeats)
    fwd_med, forward_ms = _timeit(fwd, repeats)
    fb_med, fwd_bwd_ms = _timeit(fwd_bwd, repeats)
    with torch.no_grad():
        cov = float((r.render_silhouettes(v, f) > 0).float().mean())
    g = fwd_bwd()
    return {
        "image_size": S, "raster_size": raster, "anti_aliasing": aa,
        "raster_ms": round(raster_ms, 2), "forward_ms": round(forward_ms, 2),
        "fwd_bwd_ms": round(fwd_bwd_ms, 2), "backward_ms": round(fwd_bwd_ms - forward_ms, 2),
        "bwd_fwd_ratio": round((fwd_bwd_ms - forward_ms) / forward_ms, 3),
        "forward_over_raster": round(forward_ms / raster_ms, 3),
        "median_ms": {"raster": round(raster_med, 2), "forward": round(fwd_med, 2), "fwd_bwd": round(fb_med, 2)},
        "coverage": round(cov, 4), "grad_nonzero_vertices": int((g.abs().sum(-1) > 0).sum()),
    }


def bench_rgb(v, vt, f, K, R, t, S, T, repeats):
    """Textured RGB (render) vs silhouettes (render_silhouettes), forward and forward + backward."""
    B, Fn = v.shape[0], f.shape[1]
    r = nr.Renderer(image_size=S, K=K, R=R, t=t, orig_size=ORIG, backend="cpu", light_direction=(0.3, -0.6, 0.75))
    gen = torch.Generator().manual_seed(T)
    tex = torch.rand(B, Fn, T, T, T, 3, generator=gen)
    with torch.no_grad():
        target_rgb = r.render(vt, f, tex)[0]
        target_sil = r.render_silhouettes(vt, f)

    def rgb_fwd():
        return r.render(v.clone().requires_grad_(True), f, tex.clone().requires_grad_(True))

    def rgb_fwd_bwd():
        vv, tt = v.clone().requires_grad_(True), tex.clone().requires_grad_(True)
        rgb, _, _ = r.render(vv, f, tt)
        ((rgb - target_rgb) ** 2).sum().backward()
        return vv.grad, tt.grad

    def sil_fwd():
        return r.render_silhouettes(v.clone().requires_grad_(True), f)

    def sil_fwd_bwd():
        vv = v.clone().requires_grad_(True)
        ((r.render_silhouettes(vv, f) - target_sil) ** 2).sum().backward()
        return vv.grad

    # interleaved, minimum over repeats: the machine is shared, and contention only ever adds time
    fns = {"rgb_forward": rgb_fwd, "rgb_fwd_bwd": rgb_fwd_bwd, "sil_forward": sil_fwd, "sil_fwd_bwd": sil_fwd_bwd}
    for fn in fns.values():
        fn()  # warm
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3)
    ms = {k: min(x) for k, x in times.items()}
    gv, gt = rgb_fwd_bwd()
    return {
        "image_size": S, "texture_size": T, "batch": B, "faces": Fn, "anti_aliasing": True, "fill_back": True,
        **{f"{k}_ms": round(x, 1) for k, x in ms.items()},
        "rgb_backward_ms": round(ms["rgb_fwd_bwd"] - ms["rgb_forward"], 1),
        "rgb_over_silhouettes_forward": round(ms["rgb_forward"] / ms["sil_forward"], 2),
        "rgb_over_silhouettes_fwd_bwd": round(ms["rgb_fwd_bwd"] / ms["sil_fwd_bwd"], 2),
        "median_ms": {k: round(statistics.median(x), 1) for k, x in times.items()},
        "grad_nonzero_vertices": int((gv.abs().sum(-1) > 0).sum()), "grad_nonzero_texels": int((gt != 0).sum()),
    }


def bench_pyrender(v, f, K, R, t, S, repeats):
    try:
        import pyrender
        import trimesh
        from lasor_shared.camera import opengl_camera_pose
    except Exception as exc:  # pragma: no cover
        return {"error": f"pyrender unavailable: {exc}"}
    try:
        rend = pyrender.OffscreenRenderer(S, S)
    except Exception as exc:  # pragma: no cover
        return {"error": f"no offscreen GL: {exc}"}
    s = S / ORIG
    cam = pyrender.IntrinsicsCamera(K[0, 0] * s, K[1, 1] * s, K[0, 2] * s, K[1, 2] * s, znear=0.05, zfar=100)
    pose = opengl_camera_pose(R, t)
    fn = f[0].numpy()
    f2 = np.concatenate([fn, fn[:, ::-1]])  # two-sided, like fill_back
    vs = v.numpy()
    flags = pyrender.RenderFlags.SEG | pyrender.RenderFlags.SKIP_CULL_FACES

    def run():
        for i in range(len(vs)):
            scene = pyrender.Scene()
            node = scene.add(pyrender.Mesh.from_trimesh(trimesh.Trimesh(vs[i], f2, process=False), smooth=False))
            scene.add(cam, pose=pose)
            rend.render(scene, flags=flags, seg_node_map={node: (255, 255, 255)})

    med, ms = _timeit(run, max(2, repeats // 2))
    rend.delete()
    return {"image_size": S, "pyrender_ms": round(ms, 2), "pyrender_median_ms": round(med, 2),
            "platform": os.environ.get("PYOPENGL_PLATFORM")}


def fit_png(path, S=128, steps=300):
    """Fit translation, scale and rotation of the body to a target silhouette; save a PNG."""
    from PIL import Image, ImageDraw

    v0, f0, name = body_mesh()
    v0 = torch.tensor(v0 - v0.mean(0), dtype=torch.float32)
    f = torch.from_numpy(f0.astype(np.int32))[None]
    K = np.array([[ORIG * 1.3, 0, ORIG / 2], [0, ORIG * 1.3, ORIG / 2], [0, 0, 1]])
    z0 = torch.zeros(3)
    # front view of the y-up body: camera y (down) = −body y, camera z (forward) = −body z
    r = nr.Renderer(image_size=S, K=K, R=np.diag([1.0, -1.0, -1.0]), t=np.array([0.0, 0.0, 2.6]),
                    orig_size=ORIG, backend="cpu")

    with torch.no_grad():
        target = r.render_silhouettes((v0 + z0)[None], f)
    t0 = time.perf_counter()
    ious, start, final = fit_similarity(r, v0, f, target, z0, steps=steps, lr_drop_at=0.7)
    secs = time.perf_counter() - t0
    panels = [("target", target[0]), (f"start IoU {ious[0]:.3f}", start[0]),
              (f"result IoU {silhouette_iou(final, target):.3f}", final[0])]
    pad, top = 8, 22
    canvas = Image.new("RGB", (3 * S + 4 * pad, S + top + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (title, im) in enumerate(panels):
        arr = (255 - im.numpy() * 255).clip(0, 255).astype(np.uint8)
        rgb = np.stack([arr] * 3, -1)
        if i > 0:  # overlay the target outline in red
            tgt = target[0].numpy() > 0.5
            edge = tgt ^ np.roll(tgt, 1, 0) | tgt ^ np.roll(tgt, 1, 1)
            rgb[edge] = (220, 30, 30)
        x = pad + i * (S + pad)
        canvas.paste(Image.fromarray(rgb), (x, top))
        draw.text((x, 4), title, fill="black")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.resize((canvas.width * 2, canvas.height * 2), Image.NEAREST).save(path)
    return {"png": os.path.relpath(path, ROOT), "mesh": name, "image_size": S, "steps": steps,
            "iou_start": round(ious[0], 4), "iou_final": round(silhouette_iou(final, target), 4),
            "seconds": round(secs, 2), "ms_per_step": round(secs / steps * 1e3, 2)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "results", "neural_renderer.json"))
    ap.add_argument("--png", default=os.path.join(HERE, "results", "nmr_fit.png"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-pyrender", action="store_true")
    ap.add_argument("--no-fit", action="store_true")
    ap.add_argument("--rgb-batch", type=int, default=8)
    ap.add_argument("--rgb-size", type=int, default=256)
    ap.add_argument("--texture-sizes", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--only", choices=["rgb"], help="measure only this section; update it in the existing --out")
    args = ap.parse_args(argv)
    if args.only == "rgb":
        return main_rgb(args)

    import numba

    t0 = time.perf_counter()
    compile_s = nr.warmup()
    v0, f0, name = body_mesh()
    v, vt, f, K, R, t = make_batch(v0, f0, args.batch)
    result = {
        "mesh": name, "faces": int(f0.shape[0]), "vertices": int(v0.shape[0]), "batch": args.batch,
        "fill_back": True, "orig_size": ORIG,
        "machine": {"cpus": os.cpu_count(), "numba_threads": numba.get_num_threads(),
                    "numba_threading_layer": None, "torch_threads": torch.get_num_threads(),
                    "loadavg_start": list(os.getloadavg()), "python": platform.python_version(),
                    "torch": torch.__version__, "numba": numba.__version__},
        "warmup_s": round(compile_s, 2),
        "sizes": [], "sizes_no_aa": [], "pyrender": [], "face_scaling": [],
    }
    try:
        result["machine"]["numba_threading_layer"] = numba.threading_layer()
    except Exception:
        pass
    for S in args.sizes:
        row = bench_nmr(v, vt, f, K, R, t, S, args.repeats, aa=True)
        result["sizes"].append(row)
        print("AA   ", row, flush=True)
    row = bench_nmr(v, vt, f, K, R, t, max(args.sizes), args.repeats, aa=False)
    result["sizes_no_aa"].append(row)
    print("noAA ", row, flush=True)
    if not args.no_pyrender:
        for S in args.sizes:
            row = bench_pyrender(v, f, K, R, t, S, args.repeats)
            result["pyrender"].append(row)
            print("GL   ", row, flush=True)
    for detail in (2, 3, 4):
        bv, bf = body_like_mesh(detail)
        sv, svt, sf, sK, sR, st = make_batch(bv, bf, args.batch, seed=1)
        row = bench_nmr(sv, svt, sf, sK, sR, st, 128, args.repeats, aa=True)
        row = {"faces": int(bf.shape[0]), **row}
        result["face_scaling"].append(row)
        print("faces", row, flush=True)
    result["rgb"] = rgb_section(args, v0, f0)
    if not args.no_fit:
        result["fit"] = fit_png(args.png)
        print("fit  ", result["fit"], flush=True)
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["total_s"] = round(time.perf_counter() - t0, 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {args.out}")
    return result


def rgb_section(args, v0, f0):
    nr.warmup_rgb()
    v, vt, f, K, R, t = make_batch(v0, f0, args.rgb_batch, seed=2)
    rows = []
    for T in args.texture_sizes:
        row = bench_rgb(v, vt, f, K, R, t, args.rgb_size, T, args.repeats)
        rows.append(row)
        print("RGB  ", row, flush=True)
    return rows


def main_rgb(args):
    """Measure the RGB section only and write it into the existing JSON (other sections kept)."""
    import numba

    result = {}
    if os.path.exists(args.out):
        with open(args.out) as fh:
            result = json.load(fh)
    nr.warmup()
    v0, f0, _ = body_mesh()
    t0 = time.perf_counter()
    load = list(os.getloadavg())
    result["rgb"] = rgb_section(args, v0, f0)
    result["rgb_run"] = {"numba_threads": numba.get_num_threads(), "torch_threads": torch.get_num_threads(),
                         "loadavg_start": load, "loadavg_end": list(os.getloadavg()),
                         "seconds": round(time.perf_counter() - t0, 1)}
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
    print(f"wrote {os.path.relpath(args.out, ROOT)}")
    return result


if __name__ == "__main__":
    main()
