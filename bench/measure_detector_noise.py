"""How far mediapipe's keypoints are from the truth when the joint is hidden by an occluder.

The shared real photo (COCO 785, a skier, every keypoint labelled visible) is covered with grey boxes
(objects) over one body region at a time — legs, left arm, right arm, hips, head — and mediapipe
Pose (the `[photo]` extra) is run on each; per keypoint, its error against COCO's label as a fraction
of the person's height (the longer side of the labelled keypoints' box) and its visibility score,
split into keypoints under a box (hidden) and the others (visible). These numbers set the test
protocol's noise for hidden keypoints (`keypoints.noise_hidden`, lasor_trainer.inputs), which must be
no kinder than a real detector. Writes bench/results/detector_noise.json.

    python bench/measure_detector_noise.py
"""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO = os.path.join(HERE, "..", "tests", "data", "real", "coco_000000000785.jpg")
REGIONS = {"legs": (13, 14, 15, 16), "left arm": (7, 9), "right arm": (8, 10), "hips+knees": (11, 12, 13, 14),
           "head": (0, 1, 2, 3, 4), "left leg": (13, 15), "right leg": (14, 16)}


def main():
    from lasor_trainer.inputs import person_height
    from lasor_trainer.photo import MP33_TO_COCO17, Detector, coco_annotation

    photo = PHOTO if os.path.exists(PHOTO) else os.path.join(HERE, "..", "..", "shared", "data", "real",
                                                               "coco_000000000785.jpg")
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    H, W = rgb.shape[:2]
    ann = json.load(open(os.path.splitext(photo)[0] + ".json"))
    a = ann["annotations"][0] if "annotations" in ann else ann
    gt = np.asarray(a["keypoints"], float).reshape(17, 3)[:, :2]
    h = person_height(gt)
    pad = 0.06 * h
    rows = {"hidden": [], "visible": []}
    per_region = {}
    with Detector() as det:
        for name, ids in REGIONS.items():
            img = rgb.copy()
            p = gt[list(ids)]
            x0, y0 = np.floor(p.min(0) - pad).astype(int)
            x1, y1 = np.ceil(p.max(0) + pad).astype(int)
            img[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = (128, 128, 128)
            res = det.one(img)
            if res is None:
                per_region[name] = "no person found"
                continue
            lm = res[1]
            kp, score = lm[list(MP33_TO_COCO17), :2], lm[list(MP33_TO_COCO17), 2]
            hidden = np.zeros(17, bool)
            inside = (gt[:, 0] >= x0) & (gt[:, 0] < x1) & (gt[:, 1] >= y0) & (gt[:, 1] < y1)
            hidden |= inside
            err = np.linalg.norm(kp - gt, axis=1) / h
            for k in range(17):
                rows["hidden" if hidden[k] else "visible"].append((float(err[k]), float(score[k])))
            per_region[name] = {"hidden_err_frac": [round(float(e), 4) for e in err[hidden]],
                                "hidden_score": [round(float(s), 3) for s in score[hidden]]}
    out = {"photo": "COCO val2017 000000000785 (CC BY 2.0), grey boxes over one region at a time",
           "person_height_px": round(h, 1), "regions": per_region}
    for k, v in rows.items():
        e = np.array([r[0] for r in v])
        s = np.array([r[1] for r in v])
        out[k] = {"n": len(v), "err_frac_mean": float(e.mean()), "err_frac_rms": float(np.sqrt((e ** 2).mean())),
                  "err_frac_median": float(np.median(e)), "err_frac_p90": float(np.quantile(e, 0.9)),
                  "score_mean": float(s.mean()), "score_median": float(np.median(s))}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "detector_noise.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(json.dumps({k: out[k] for k in ("hidden", "visible")}, indent=1))


if __name__ == "__main__":
    main()
