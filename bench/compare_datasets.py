"""Compare two same-recipe, same-seed datasets (e.g. made before and after a generator speed-up).

Every field of every shard is compared sample by sample. A dataset passes when each field is
identical, or — where a faster exact method may change floating-point rounding — within the
independent audit's tolerances: 2D keypoints/joints within `REPROJECTION_PX` pixels, the target's
amodal silhouette (mask bit 1) with IoU ≥ `MIN_IOU` per sample, visibility codes equal for ≥
`MIN_VIS_EQUAL` of the keypoints, other float fields within `FLOAT_ATOL`, integer fields identical.
It also says whether the shard files are byte-identical. Exit 0 when it passes, 1 when not, 2 on bad
input (one line). The occlusion/interpenetration audit is `lasor-datagen stats DIR --audit N`.

    python bench/compare_datasets.py BEFORE_DIR AFTER_DIR [--out bench/results/datagen-labels.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

from lasor_shared.errors import LasorError
from lasor_shared.shards import open_shard, read_manifest

REPROJECTION_PX = 1e-3
MIN_IOU = 0.99
MIN_VIS_EQUAL = 0.999
FLOAT_ATOL = 1e-5
PIXEL_FIELDS = ("keypoints_coco", "joints2d")
VISIBILITY_FIELDS = ("visibility_coco", "visibility_joints")


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _amodal_iou(a, b):
    """Per-sample IoU of mask bit 1 (amodal target) of (N,H,W) masks; 1 where both are empty."""
    x, y = (a & 2) > 0, (b & 2) > 0
    inter = (x & y).sum((1, 2))
    union = (x | y).sum((1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def compare_field(name, a, b):
    """{identical, ...measure}: how field `name` of one shard differs between the two datasets."""
    out = {"identical": bool(a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))}
    if a.shape != b.shape:
        return {**out, "ok": False, "problem": f"shape {a.shape} vs {b.shape}"}
    if out["identical"]:
        return {**out, "ok": True}
    if name == "mask":
        iou = _amodal_iou(a, b)
        return {**out, "min_amodal_iou": float(iou.min()), "pixels_differing": int((a != b).sum()),
                "ok": bool(iou.min() >= MIN_IOU)}
    if name in VISIBILITY_FIELDS:
        eq = float((a == b).mean())
        return {**out, "equal_share": eq, "ok": eq >= MIN_VIS_EQUAL}
    if a.dtype.kind == "f":
        d = float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64))))
        tol = REPROJECTION_PX if name in PIXEL_FIELDS else FLOAT_ATOL
        return {**out, "max_abs_diff": d, "ok": d < tol}
    return {**out, "ok": False, "values_differing": int((a != b).sum())}


def compare(before, after):
    ma, mb = read_manifest(before), read_manifest(after)
    if ma["recipe_hash"] != mb["recipe_hash"]:
        raise LasorError(f"{after}: recipe hash differs from {before}'s (not the same recipe and seed)")
    files = [r["file"] for r in ma["shards"]]
    if files != [r["file"] for r in mb["shards"]]:
        raise LasorError(f"{after}: holds other shards than {before}")
    fields, byte_identical = {}, []
    for name in files:
        pa, pb = os.path.join(before, name), os.path.join(after, name)
        byte_identical.append(_sha256(pa) == _sha256(pb))
        with open_shard(pa) as fa, open_shard(pb) as fb:
            if set(fa) != set(fb):
                raise LasorError(f"{pb}: fields differ from {pa}'s")
            for key in sorted(fa):
                r = compare_field(key, fa[key][()], fb[key][()])
                prev = fields.setdefault(key, {"identical": True, "ok": True})
                for k, v in r.items():
                    if k in ("identical", "ok"):
                        prev[k] = prev[k] and v
                    elif k.startswith("min_") or k == "equal_share":
                        prev[k] = min(prev.get(k, v), v)
                    else:
                        prev[k] = max(prev.get(k, v), v) if not isinstance(v, str) else v
    return {"before": os.path.basename(os.path.normpath(before)), "after": os.path.basename(os.path.normpath(after)),
            "shards": len(files), "samples": sum(r["n_samples"] for r in ma["shards"]),
            "shards_byte_identical": sum(byte_identical),
            "tolerances": {"reprojection_px": REPROJECTION_PX, "min_amodal_iou": MIN_IOU,
                           "min_visibility_equal": MIN_VIS_EQUAL, "float_atol": FLOAT_ATOL},
            "fields_identical": sorted(k for k, v in fields.items() if v["identical"]),
            "fields_within_tolerance": {k: v for k, v in fields.items() if not v["identical"] and v["ok"]},
            "fields_failing": {k: v for k, v in fields.items() if not v["ok"]},
            "pass": all(v["ok"] for v in fields.values())}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--out", help="Also write the result as JSON here.")
    args = ap.parse_args(argv)
    try:
        result = compare(args.before, args.after)
    except LasorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    print(f"{'PASS' if result['pass'] else 'FAIL'}: {result['shards_byte_identical']}/{result['shards']} shards "
          f"byte-identical, {len(result['fields_identical'])} fields identical, "
          f"{len(result['fields_within_tolerance'])} within tolerance, {len(result['fields_failing'])} failing")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
