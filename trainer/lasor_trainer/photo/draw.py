"""Pictures of the results: meshes shaded over the photo (numbered like the per-person folders), the
mesh seen from the side, and a folder run's contact sheet."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from lasor_trainer.neural_renderer import projection, rasterize_face_index_map

MAX_RENDER_SIDE = 1600    # overlays of larger photos are drawn downscaled
MESH_RGB = np.array([150, 185, 235], np.float32)
LABEL_RGB = ((230, 60, 60), (40, 160, 40), (50, 90, 220), (220, 150, 0), (170, 60, 200), (0, 160, 170))


def _shade(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, H: int, W: int):
    """Lambert-shaded render of a camera-frame mesh: (H,W) float shade in [0,1] and (H,W) bool coverage."""
    side = max(H, W)
    v = torch.from_numpy(verts.astype(np.float32))[None]
    ndc = projection(v, torch.tensor(K, dtype=torch.float32)[None], torch.eye(3)[None], torch.zeros(1, 1, 3),
                     orig_size=side)
    f = torch.from_numpy(faces.astype(np.int64))[None]
    fim, _ = rasterize_face_index_map(f, side, near=0.01, far=1000.0, verts=ndc, fill_back=True)
    fim = fim[0].numpy()[:H, :W]
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    centre = tri.mean(1)
    view = -centre / (np.linalg.norm(centre, axis=1, keepdims=True) + 1e-12)
    light = np.abs((n * view).sum(1))  # head-light, two-sided
    cover = fim >= 0
    shade = np.zeros((H, W), np.float32)
    shade[cover] = 0.35 + 0.65 * light[fim[cover]]
    return shade, cover


def _composite(base: np.ndarray, shade: np.ndarray, cover: np.ndarray, alpha: float = 0.8) -> np.ndarray:
    out = base.astype(np.float32)
    mesh = shade[..., None] * MESH_RGB
    out[cover] = (1 - alpha) * out[cover] + alpha * mesh[cover]
    return out.clip(0, 255).astype(np.uint8)


def _render_scale(H: int, W: int) -> float:
    return min(1.0, MAX_RENDER_SIDE / max(H, W))


def overlay(rgb: np.ndarray, meshes, K: np.ndarray, people=None, numbers=None,
            min_confidence: float = 0.5) -> np.ndarray:
    """The photo with every (verts, faces) mesh drawn over it (nearest mesh last); with `people`, their
    keypoints of confidence ≥ min_confidence as dots and, with `numbers`, each person's number (its
    folder person_<n>) in a coloured tag above its mask."""
    H, W = rgb.shape[:2]
    s = _render_scale(H, W)
    h, w = max(1, round(H * s)), max(1, round(W * s))
    img = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR)) if s < 1 else rgb.copy()
    Ks = np.diag([s, s, 1.0]) @ K
    for verts, faces in sorted(meshes, key=lambda m: -float(np.median(m[0][:, 2]))):
        shade, cover = _shade(verts, faces, Ks, h, w)
        img = _composite(img, shade, cover)
    if not people:
        return img
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    r = max(2, round(max(h, w) / 200))
    for p in people:
        for (x, y), sc in zip(p.keypoints * s, p.confidence):
            if sc >= min_confidence:
                d.ellipse((x - r, y - r, x + r, y + r), fill=(40, 220, 40), outline=(0, 0, 0))
    if numbers is not None:
        size = max(12, round(max(h, w) / 40))
        font = ImageFont.load_default(size=size)
        for p, n in zip(people, numbers):
            ys, xs = np.nonzero(p.mask)
            x, y = float(np.median(xs)) * s, float(ys.min()) * s  # above the top of the mask, centred
            label = str(n)
            box = d.textbbox((0, 0), label, font=font)
            tw, th = box[2] - box[0], box[3] - box[1]
            x0 = min(max(x - tw / 2 - 4, 0), w - tw - 8)
            y0 = min(max(y - th - 12, 0), h - th - 8)
            d.rectangle((x0, y0, x0 + tw + 8, y0 + th + 8), fill=LABEL_RGB[n % len(LABEL_RGB)], outline=(0, 0, 0))
            d.text((x0 + 4 - box[0], y0 + 4 - box[1]), label, fill=(255, 255, 255), font=font)
    return np.asarray(pil)


def side_view(verts: np.ndarray, faces: np.ndarray, size: int = 512) -> np.ndarray:
    """The mesh turned 90° about the camera's vertical axis (seen from the photo's right-hand side), on white."""
    c = 0.5 * (verts.min(0) + verts.max(0))
    a = np.pi / 2
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    v = (verts - c) @ R.T
    extent = float(max(np.ptp(v[:, 0]), np.ptp(v[:, 1]), 1e-3))
    f = 2.0 * size
    depth = f * extent / (0.85 * size) + float(np.ptp(v[:, 2]))
    v = v + np.array([0.0, 0.0, depth])
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    shade, cover = _shade(v, faces, K, size, size)
    return _composite(np.full((size, size, 3), 255, np.uint8), shade, cover, alpha=1.0)


def contact_sheet(items: list[tuple[str, str]], path: str, thumb: int = 256, cols: int = 4):
    """A grid of (label, image path) thumbnails, labelled underneath."""
    cols = max(1, min(cols, len(items)))
    rows = (len(items) + cols - 1) // cols
    label_h = 16
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, (label, p) in enumerate(items):
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((thumb, thumb))
            x, y = (i % cols) * thumb, (i // cols) * (thumb + label_h)
            sheet.paste(im, (x + (thumb - im.width) // 2, y + thumb - im.height))  # just above its label
        d.text((x + 4, y + thumb + 2), label[:40], fill=(0, 0, 0))
    sheet.save(path)
