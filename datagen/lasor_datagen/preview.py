"""`lasor-datagen preview`: a contact sheet of samples (masks, keypoints coloured by visibility)."""

from __future__ import annotations

import os

import h5py
import numpy as np
from PIL import Image, ImageDraw

from lasor_shared.errors import LasorError
from lasor_shared.keypoints import COCO17_EDGES
from lasor_shared.shards import read_manifest
from lasor_shared.sheets import tile_grid

# mask colours: background, target visible, target hidden (amodal − modal), person, object
BG, VISIBLE, HIDDEN, PERSON, OBJECT = (250, 250, 250), (214, 160, 120), (240, 190, 190), (90, 130, 200), (150, 150, 150)
# keypoint colours by visibility code: outside (not drawn), self, person, object, visible
VIS_COLOURS = {1: (30, 90, 255), 2: (255, 140, 0), 3: (170, 0, 200), 4: (0, 170, 0)}
LEGEND = [("visible", VIS_COLOURS[4]), ("self", VIS_COLOURS[1]), ("by person", VIS_COLOURS[2]),
          ("by object", VIS_COLOURS[3]), ("hidden body", HIDDEN), ("occluder person", PERSON),
          ("occluder object", OBJECT)]


def colour_mask(mask: np.ndarray) -> np.ndarray:
    img = np.empty((*mask.shape, 3), np.uint8)
    img[:] = BG
    img[(mask & 4) > 0] = PERSON
    img[(mask & 8) > 0] = OBJECT
    img[((mask & 2) > 0) & ((mask & 1) == 0) & ((mask & 12) == 0)] = HIDDEN
    hidden_behind = ((mask & 2) > 0) & ((mask & 1) == 0) & ((mask & 12) > 0)
    img[hidden_behind] = (img[hidden_behind] * 0.6 + np.array(HIDDEN) * 0.4).astype(np.uint8)
    img[(mask & 1) > 0] = VISIBLE
    return img


def tile(mask, kp, vis, text, scale):
    im = Image.fromarray(colour_mask(mask)).resize((mask.shape[1] * scale, mask.shape[0] * scale), Image.NEAREST)
    d = ImageDraw.Draw(im)
    p = kp * scale
    for a, b in COCO17_EDGES:
        if vis[a] and vis[b]:
            d.line([tuple(p[a]), tuple(p[b])], fill=(60, 60, 60), width=1)
    for k in range(len(kp)):
        if vis[k] in VIS_COLOURS:
            x, y = p[k]
            d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=VIS_COLOURS[int(vis[k])], outline=(0, 0, 0))
    d.text((3, 2), text, fill=(0, 0, 0))
    return im


def contact_sheet(dataset_dir: str, out_png: str, n: int = 64, cols: int = 8, seed: int = 0, tile_px: int = 192):
    """Write a PNG of n samples drawn evenly across the shards; returns its size."""
    manifest = read_manifest(dataset_dir)
    total = sum(r["n_samples"] for r in manifest["shards"])
    if total == 0:
        raise LasorError(f"{dataset_dir}: dataset has no samples")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(total, size=min(n, total), replace=False))
    offsets = np.cumsum([0] + [r["n_samples"] for r in manifest["shards"]])
    S = manifest["image_size"]
    scale = max(1, int(round(tile_px / S)))
    tiles = []
    for rec_i, rec in enumerate(manifest["shards"]):
        local = picks[(picks >= offsets[rec_i]) & (picks < offsets[rec_i + 1])] - offsets[rec_i]
        if len(local) == 0:
            continue
        with h5py.File(os.path.join(dataset_dir, rec["file"]), "r") as h:
            for i in local:
                text = (f"az {np.rad2deg(h['azimuth'][i]):.0f} el {np.rad2deg(h['elevation'][i]):.0f} "
                        f"vf {h['visible_fraction'][i]:.2f}")
                tiles.append(tile(h["mask"][i], h["keypoints_coco"][i], h["visibility_coco"][i], text, scale))
    cols = min(cols, len(tiles))
    T = S * scale
    sheet = tile_grid(tiles, cols, cell=(T + 2, T + 2), top=18)  # 2 px between tiles, the legend above
    d = ImageDraw.Draw(sheet)
    x = 4
    for name, colour in LEGEND:
        d.rectangle([x, 4, x + 10, 14], fill=colour, outline=(0, 0, 0))
        d.text((x + 14, 3), name, fill=(0, 0, 0))
        x += 20 + 7 * len(name)
    try:
        sheet.save(out_png)
    except OSError as e:
        raise LasorError(f"{out_png}: cannot write ({e})") from None
    return sheet.size
