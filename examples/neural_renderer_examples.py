"""neural_renderer's four examples, on the CPU, with one changed line:

    import lasor_trainer.neural_renderer as nr      # was: import neural_renderer as nr

1. draw a mesh from a ring of look_at cameras;   2. optimise vertices to a reference silhouette;
3. optimise textures to a reference image;        4. optimise the camera position to a reference image.

The mesh is lasor's embedded body, written to an OBJ file and read back with ``nr.load_obj`` (upstream
uses a teapot). Run from the repository root (PYTHONPATH=trainer:shared):

    python examples/neural_renderer_examples.py [--out docs/neural_renderer_examples.png]

The tests (tests/test_nr_examples.py) run the same functions at low resolution.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import torch

import lasor_trainer.neural_renderer as nr

HERE = os.path.dirname(os.path.abspath(__file__))


def body_obj(folder):
    """Write lasor's embedded body (template mesh) as an OBJ file; returns its path."""
    from lasor_shared.body_model import embedded_model_path, read_model_file

    data = read_model_file(embedded_model_path())
    path = os.path.join(folder, "body.obj")
    nr.save_obj(path, torch.tensor(data["v_template"], dtype=torch.float32), torch.tensor(data["f"].astype(np.int32)))
    return path


def sphere_obj(folder, subdivisions=2):
    """Write an icosphere of radius 0.5 as an OBJ file; returns its path."""
    t = (1.0 + 5.0 ** 0.5) / 2.0
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                  [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], np.float64)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
                  [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
                  [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    for _ in range(subdivisions):
        edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
        uniq, inv = np.unique(edges, axis=0, return_inverse=True)
        m = inv.reshape(3, -1).T + len(v)
        v = np.concatenate([v, v[uniq].mean(1)])
        a, b, c = f.T
        ab, bc, ca = m.T
        f = np.concatenate([np.stack(x, 1) for x in ([a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca])])
    v = 0.5 * v / np.linalg.norm(v, axis=1, keepdims=True)
    path = os.path.join(folder, "sphere.obj")
    nr.save_obj(path, torch.tensor(v, dtype=torch.float32), torch.tensor(f, dtype=torch.int32))
    return path


def example1(filename_obj, image_size=128, n_views=8, elevation=30.0, camera_distance=2.732):
    """Drawing a mesh from a ring of cameras: → RGB images (n_views, 3, S, S) and the camera eyes."""
    vertices, faces = nr.load_obj(filename_obj)
    vertices, faces = vertices[None], faces[None]
    textures = torch.ones(1, faces.shape[1], 2, 2, 2, 3)
    renderer = nr.Renderer(image_size=image_size, camera_mode="look_at")
    images, eyes = [], []
    for azimuth in np.linspace(0, 360, n_views, endpoint=False):
        renderer.eye = nr.get_points_from_angles(camera_distance, elevation, azimuth)
        rgb, _, _ = renderer(vertices, faces, textures)  # [1, RGB, S, S]
        images.append(rgb[0])
        eyes.append(renderer.eye)
    return torch.stack(images), eyes


def example2(filename_obj, filename_ref_obj, image_size=64, steps=100, lr=0.01):
    """Optimising vertices (of a sphere) to a reference silhouette (of the body), azimuth 90°.

    → (losses, reference silhouette, first and final silhouettes)."""
    vertices, faces = nr.load_obj(filename_obj)
    ref_v, ref_f = nr.load_obj(filename_ref_obj)
    renderer = nr.Renderer(image_size=image_size, camera_mode="look_at")
    renderer.eye = nr.get_points_from_angles(2.732, 0, 90)
    with torch.no_grad():
        image_ref = renderer.render_silhouettes(ref_v[None], ref_f[None])
    vertices = torch.nn.Parameter(vertices[None])
    optimizer = torch.optim.Adam([vertices], lr=lr)
    losses, first = [], None
    for _ in range(steps):
        optimizer.zero_grad()
        image = renderer.render_silhouettes(vertices, faces[None])
        first = image.detach() if first is None else first
        loss = torch.sum((image - image_ref) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = renderer.render_silhouettes(vertices, faces[None])
    return losses, image_ref, first, final


def example3(filename_obj, image_size=64, steps=60, texture_size=4, seed=0):
    """Optimising textures to reference images (random azimuth each step, ambient light only).

    → (losses, reference images at 4 azimuths, renders of the initial and final textures there)."""
    torch.manual_seed(seed)
    vertices, faces = nr.load_obj(filename_obj)
    vertices, faces = vertices[None], faces[None]
    F = faces.shape[1]
    # a reference "painted" body: colour varies smoothly with the face's height and side
    centre = nr.vertices_to_faces(vertices, faces).mean(2)[0]
    ref_colour = torch.stack([0.5 + 0.45 * torch.sin(4 * centre[:, 1]), 0.5 + 0.45 * torch.cos(5 * centre[:, 0]),
                              0.5 + 0.45 * torch.sin(3 * centre[:, 2] + 1)], -1)
    ref_textures = ref_colour[None, :, None, None, None, :].expand(1, F, texture_size, texture_size, texture_size, 3)
    renderer = nr.Renderer(image_size=image_size, camera_mode="look_at")
    renderer.perspective = False
    renderer.light_intensity_directional = 0.0
    renderer.light_intensity_ambient = 1.0
    textures = torch.nn.Parameter(torch.zeros(1, F, texture_size, texture_size, texture_size, 3))
    optimizer = torch.optim.Adam([textures], lr=0.1, betas=(0.5, 0.999))
    rng = np.random.default_rng(seed)
    losses = []
    views = (0, 90, 180, 270)

    def draw(tex):
        out = []
        for az in views:
            renderer.eye = nr.get_points_from_angles(2.732, 0, az)
            out.append(renderer.render(vertices, faces, tex)[0][0])
        return torch.stack(out)

    with torch.no_grad():
        refs, first = draw(ref_textures), draw(torch.tanh(textures))
    for _ in range(steps):
        renderer.eye = nr.get_points_from_angles(2.732, 0, rng.uniform(0, 360))
        with torch.no_grad():
            image_ref = renderer.render(vertices, faces, ref_textures)[0]
        optimizer.zero_grad()
        image, _, _ = renderer.render(vertices, faces, torch.tanh(textures))
        loss = torch.sum((image - image_ref) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = draw(torch.tanh(textures))
    return losses, refs, first, final


def example4(filename_obj, image_size=64, steps=150, start=None, lr=0.1):
    """Finding the camera position from a reference silhouette (taken at distance 2.732, elevation 30°,
    azimuth −15°), from ``start`` (default: distance 3.5, elevation 15°, azimuth −35°).
    → (losses, eyes, reference, first and final RGB).

    Upstream starts at (6, 10, −14) with its teapot; with this body at 64 px that start does not
    converge (measured: loss 228 → 225 in 120 steps; the eye drifts), nearer ones do."""
    if start is None:
        start = nr.get_points_from_angles(3.5, 15, -35)
    vertices, faces = nr.load_obj(filename_obj)
    vertices, faces = vertices[None], faces[None]
    textures = torch.ones(1, faces.shape[1], 2, 2, 2, 3)
    renderer = nr.Renderer(image_size=image_size, camera_mode="look_at")
    renderer.eye = nr.get_points_from_angles(2.732, 30, -15)
    with torch.no_grad():
        image_ref = renderer.render_silhouettes(vertices, faces)
        ref_rgb = renderer.render(vertices, faces, textures)[0][0]
    camera_position = torch.nn.Parameter(torch.tensor(start, dtype=torch.float32))
    renderer.eye = camera_position
    optimizer = torch.optim.Adam([camera_position], lr=lr)
    losses, eyes = [], []
    with torch.no_grad():
        first = renderer.render(vertices, faces, textures)[0][0]
    for _ in range(steps):
        optimizer.zero_grad()
        image = renderer(vertices, faces, mode="silhouettes")
        loss = torch.sum((image - image_ref) ** 2)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        eyes.append(camera_position.detach().clone())
    with torch.no_grad():
        final = renderer.render(vertices, faces, textures)[0][0]
    return losses, eyes, ref_rgb, first, final


def _tile(rows, titles, path, scale=2):
    """Save rows of (3,S,S) / (S,S) images with row titles as one PNG."""
    from PIL import Image, ImageDraw

    def rgb8(im):
        a = im.detach().cpu().numpy()
        a = np.stack([a] * 3, -1) if a.ndim == 2 else a.transpose(1, 2, 0)
        return (np.clip(a, 0, 1) * 255).astype(np.uint8)

    S = max(max(im.shape[-1] for im in row) for row in rows)
    pad, top, left = 6, 4, 190
    width = left + max(len(r) for r in rows) * (S + pad)
    canvas = Image.new("RGB", (width, len(rows) * (S + pad + top) + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (row, title) in enumerate(zip(rows, titles)):
        y = pad + i * (S + pad + top)
        for k, line in enumerate(title.split("\n")):
            draw.text((6, y + 4 + 12 * k), line, fill="black")
        for j, im in enumerate(row):
            tile = Image.fromarray(rgb8(im)).resize((S, S), Image.NEAREST)
            canvas.paste(tile, (left + j * (S + pad), y))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    canvas.resize((canvas.width * scale, canvas.height * scale), Image.NEAREST).save(path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="neural_renderer's four examples on lasor's CPU renderer")
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "neural_renderer_examples.png"))
    ap.add_argument("--image-size", type=int, default=96)
    args = ap.parse_args(argv)
    S = args.image_size
    with tempfile.TemporaryDirectory() as tmp:
        body, sphere = body_obj(tmp), sphere_obj(tmp)
        ring, _ = example1(body, S, 6)
        l2, ref2, first2, final2 = example2(sphere, body, S, 150)
        l3, refs3, first3, final3 = example3(body, S, 60, texture_size=2)
        l4, eyes4, ref4, first4, final4 = example4(body, S, 200)
    d4 = float(torch.linalg.norm(eyes4[-1] - torch.tensor(nr.get_points_from_angles(2.732, 30, -15))))
    rows = [list(ring), [ref2[0], first2[0], final2[0]], [*refs3[:2], *first3[:1], *final3[:2]],
            [ref4, first4, final4]]
    titles = ["1. ring of look_at cameras\n(6 azimuths, elevation 30)",
              f"2. vertices -> silhouette\nreference | start | step {len(l2)}\nloss {l2[0]:.0f} -> {l2[-1]:.0f}",
              f"3. textures -> images\nref 0/90 | start (all 0) | result 0/90\nloss {l3[0]:.0f} -> {l3[-1]:.0f}",
              f"4. camera -> silhouette\nreference | start | step {len(l4)}\nloss {l4[0]:.0f} -> {l4[-1]:.0f}\n"
              f"eye error {d4:.3f}"]
    _tile(rows, titles, args.out)
    print(f"wrote {os.path.relpath(args.out)}: example 2 loss {l2[0]:.0f} -> {l2[-1]:.0f}, example 3 loss "
          f"{l3[0]:.0f} -> {l3[-1]:.0f}, example 4 loss {l4[0]:.0f} -> {l4[-1]:.0f} (eye error {d4:.3f})")


if __name__ == "__main__":
    main()
