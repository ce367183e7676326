"""Multi-person scenes composed from one annotated photo, with every person's true mask and keypoints
(used by tests/test_photo_people.py and bench/bench_photo.py).

From the annotated person (mask polygon, 17 keypoints, bbox) the scenes put the photo next to its
mirror image, tile it, crop it and paste cut-out copies of the person over others. Each person's true
mask is what remains visible of it; its keypoints keep COCO's flags, recomputed: 2 = visible, 1 = behind
a person pasted in front (still labelled: the occluded-joint measure), 0 = outside the scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLIP17 = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)  # left ↔ right in a mirror image


@dataclass
class Layer:
    rgb: np.ndarray        # (H, W, 3) the source picture, aligned with the scene
    mask: np.ndarray       # (H, W) the person's full silhouette in the scene
    keypoints: np.ndarray  # (17, 3) x, y, COCO flag
    height: float          # the person's bbox height in the scene (px)


@dataclass
class Scene:
    name: str
    about: str
    rgb: np.ndarray        # (H, W, 3) uint8
    masks: np.ndarray      # (N, H, W) bool: what is visible of each person
    keypoints: np.ndarray  # (N, 17, 3) x, y, flag (2 visible, 1 occluded by a person in front, 0 outside)
    heights: np.ndarray    # (N,) bbox height of each person (px)


def _mirror(rgb, mask, kp):
    W = rgb.shape[1]
    k = kp[list(FLIP17)].copy()
    k[:, 0] = W - k[:, 0]
    return rgb[:, ::-1], mask[:, ::-1], k


def _shift(rgb, mask, kp, dx, dy, H, W):
    """The picture moved by (dx, dy) onto an (H, W) canvas (zeros where it does not reach)."""
    out_rgb, out_mask = np.zeros((H, W, 3), np.uint8), np.zeros((H, W), bool)
    h, w = rgb.shape[:2]
    ys, xs = slice(max(dy, 0), min(dy + h, H)), slice(max(dx, 0), min(dx + w, W))
    src_y, src_x = slice(ys.start - dy, ys.stop - dy), slice(xs.start - dx, xs.stop - dx)
    out_rgb[ys, xs], out_mask[ys, xs] = rgb[src_y, src_x], mask[src_y, src_x]
    k = kp.copy()
    k[:, 0] += dx
    k[:, 1] += dy
    return out_rgb, out_mask, k


def build(background: np.ndarray, people: list[Layer], name: str, about: str) -> Scene:
    """`people` painted over `background` in order (later ones in front, cut out by their masks)."""
    H, W = background.shape[:2]
    rgb = background.copy()
    for p in people:
        if p.rgb is not background:
            rgb[p.mask] = p.rgb[p.mask]
    masks, kps = [], []
    for i, p in enumerate(people):
        front = np.zeros((H, W), bool)
        for q in people[i + 1:]:
            front |= q.mask
        masks.append(p.mask & ~front)
        k = p.keypoints.copy()
        xi, yi = np.floor(k[:, 0]).astype(int), np.floor(k[:, 1]).astype(int)
        inside = (k[:, 0] >= 0) & (k[:, 0] < W) & (k[:, 1] >= 0) & (k[:, 1] < H) & (k[:, 2] > 0)
        hidden = np.zeros(17, bool)
        hidden[inside] = front[yi[inside], xi[inside]]
        k[:, 2] = np.where(~inside, 0, np.where(hidden, 1, k[:, 2]))
        kps.append(k)
    return Scene(name, about, rgb, np.array(masks), np.array(kps), np.array([p.height for p in people]))


def scenes(rgb: np.ndarray, mask: np.ndarray, kp: np.ndarray, bbox) -> list[Scene]:
    """The composed scenes of one annotated person (photo `rgb`, true `mask`, (17, 3) `kp`, COCO bbox)."""
    H, W = rgb.shape[:2]
    h = float(bbox[3])
    x0, x1 = float(bbox[0]), float(bbox[0] + bbox[2])
    mrgb, mmask, mkp = _mirror(rgb, mask, kp)
    out = [build(rgb, [Layer(rgb, mask, kp, h)], "photo", "the photo itself: one person")]

    wide = np.concatenate([rgb, mrgb], 1)
    left = Layer(wide, np.concatenate([mask, np.zeros_like(mask)], 1), kp, h)
    k = mkp.copy()
    k[:, 0] += W
    right = Layer(wide, np.concatenate([np.zeros_like(mask), mmask], 1), k, h)
    out.append(build(wide, [left, right], "pair", "the photo next to its mirror image: two people in a wide photo"))

    tiles = np.concatenate([wide, np.concatenate([mrgb, rgb], 1)], 0)
    layers = []
    for row, order in enumerate((((mask, kp), (mmask, mkp)), ((mmask, mkp), (mask, kp)))):
        for col, (m, kk) in enumerate(order):
            full = np.zeros(tiles.shape[:2], bool)
            full[row * H:(row + 1) * H, col * W:(col + 1) * W] = m
            layers.append(Layer(tiles, full, kk + [col * W, row * H, 0], h))
    out.append(build(tiles, layers, "tiles", "a 2×2 tiling of the photo and its mirror image: four people"))

    # overlap: the mirrored person cut out and pasted in front of the photo's person, covering about a third of it
    dx = int(round((x0 + 0.33 * (x1 - x0)) - (W - x0)))
    srgb, smask, skp = _shift(mrgb, mmask, mkp, dx, 0, H, W)
    out.append(build(rgb, [Layer(rgb, mask, kp, h), Layer(srgb, smask, skp, h)], "overlap",
                     "a mirrored copy pasted in front of the person, covering a third of its width: two people, one partly hidden"))

    # group: the wide pair plus a third copy pasted in front of the right-hand person, a quarter overlapping
    cx = W + (W - x1)  # left edge of the mirrored person in the wide photo
    dx = int(round(cx + 0.75 * (x1 - x0) - x0))
    grgb, gmask, gkp = _shift(rgb, mask, kp, dx, 0, H, 2 * W)
    out.append(build(wide, [left, right, Layer(grgb, gmask, gkp, h)], "group",
                     "the pair plus a third copy in front of the right-hand person, a quarter overlapping: three people"))

    # partial: cut above the knees, and one also cut through the arm at the side
    cut_y = int(round(float(np.mean(kp[[13, 14], 1])) + 0.02 * h))  # just below the knees
    cut_x = int(round(float(kp[10, 0]) + 0.3 * (float(kp[8, 0]) - float(kp[10, 0]))))  # through the forearm nearer the edge
    a = Layer(rgb[:cut_y, cut_x:], mask[:cut_y, cut_x:], kp - [cut_x, 0, 0], h)
    b = Layer(mrgb[:cut_y], mmask[:cut_y], mkp, h)
    wide2 = np.concatenate([a.rgb, b.rgb], 1)
    la = Layer(wide2, np.concatenate([a.mask, np.zeros_like(b.mask)], 1), a.keypoints, h)
    kb = b.keypoints.copy()
    kb[:, 0] += a.rgb.shape[1]
    lb = Layer(wide2, np.concatenate([np.zeros_like(a.mask), b.mask], 1), kb, h)
    out.append(build(wide2, [la, lb], "partial",
                     "two people cut off just below the knees, one also through its forearm at the photo's edge"))
    return out


def occlusion_scenes(rgb: np.ndarray, mask: np.ndarray, kp: np.ndarray, bbox) -> list[Scene]:
    """The person partly hidden, with its hidden joints' true positions known (flag 1): behind a copy of
    itself pasted in front at 5 places (from the left, the right and below, covering a third to two
    thirds of it), and behind a plain board over its legs, its left half, its right half or one arm."""
    H, W = rgb.shape[:2]
    h, w = float(bbox[3]), float(bbox[2])
    x0, y0, x1 = float(bbox[0]), float(bbox[1]), float(bbox[0] + bbox[2])
    mrgb, mmask, mkp = _mirror(rgb, mask, kp)
    back = Layer(rgb, mask, kp, h)
    out = []
    for f in (0.5, 0.66):  # mirrored copy from the left (a third: the "overlap" scene): right edge at x0 + f·w
        srgb, smask, skp = _shift(mrgb, mmask, mkp, int(round(x0 + f * w - (W - x0))), 0, H, W)
        out.append(build(rgb, [back, Layer(srgb, smask, skp, h)], f"person_left_{f:g}",
                         f"a mirrored copy in front, from the left, over {f:.0%} of the width"))
    for f in (0.33, 0.5):  # the copy itself from the right: its left edge at x1 − f·w
        srgb, smask, skp = _shift(rgb, mask, kp, int(round(-f * w + w)), 0, H, W)
        out.append(build(rgb, [back, Layer(srgb, smask, skp, h)], f"person_right_{f:g}",
                         f"a copy in front, from the right, over {f:.0%} of the width"))
    srgb, smask, skp = _shift(mrgb, mmask, mkp, int(round(x0 - (W - x1))), int(round(0.45 * h)), H, W)
    out.append(build(rgb, [back, Layer(srgb, smask, skp, h)], "person_below",
                     "a mirrored copy in front and lower (nearer the camera), over the legs"))
    hip_y = float(kp[[11, 12], 1].mean())
    knee_y = float(kp[[13, 14], 1].mean())
    arm = kp[[8, 10], :2]  # right elbow and wrist
    boards = {
        "board_legs": (x0 - 0.1 * w, hip_y + 0.3 * (knee_y - hip_y), x1 + 0.1 * w, H),
        "board_left_half": (0, y0 - 0.1 * h, x0 + 0.5 * w, H),
        "board_right_half": (x0 + 0.5 * w, y0 - 0.1 * h, W, H),
        "board_arm": (arm[:, 0].min() - 0.06 * h, arm[:, 1].min() - 0.06 * h, arm[:, 0].max() + 0.06 * h,
                      arm[:, 1].max() + 0.06 * h),
    }
    for name, (bx0, by0, bx1, by1) in boards.items():
        m = np.zeros((H, W), bool)
        m[max(int(by0), 0):int(np.ceil(by1)), max(int(bx0), 0):int(np.ceil(bx1))] = True
        board = np.zeros((H, W, 3), np.uint8)
        board[:] = (120, 90, 60)
        s = build(rgb, [back, Layer(board, m, np.zeros((17, 3)), 0.0)], name, f"a plain board over the {name[6:].replace('_', ' ')}")
        out.append(Scene(s.name, s.about, s.rgb, s.masks[:1], s.keypoints[:1], s.heights[:1]))
    return out
