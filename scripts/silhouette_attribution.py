"""Where a model's silhouette error comes from: its body (pose + shape) or where it puts the body.

Renders, for every test sample, at lasor-eval's IoU resolution and crop, and pools IoU with the full
(amodal) mask:

- model          the predicted body at the predicted root translation (what lasor-eval reports);
- model_at_depth the predicted body moved along its viewing ray to the true root depth (scale fixed);
- model_at_root  the predicted body at the true root (placement fixed: what pose + shape alone give);
- truth_at_model the true body at the predicted root (what placement alone costs);
- truth          the true body at the true root (the ceiling: 1 up to rendering of the label mesh).

    python scripts/silhouette_attribution.py --checkpoint CKPT --data TEST_SET --out OUT.json [--max-samples N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

ROWS = ("model", "model_at_depth", "model_at_root", "truth_at_model", "truth")


@torch.no_grad()
def attribute(checkpoint: str, data: str, max_samples: int = 0, batch_size: int = 32) -> dict:
    from lasor_trainer import metrics as M
    from lasor_trainer.checkpoint import load_model
    from lasor_trainer.data import EVAL_IOU_SIZE, ShardDataset, open_dataset
    from lasor_trainer.evaluate import subset_loader
    from lasor_trainer.bodies import Bodies, render_silhouettes
    from lasor_trainer.model import cam_to_translation
    from lasor_trainer.neural_renderer import Renderer

    model, cfg, ck = load_model(checkpoint)
    bodies = Bodies(ck.get("body_model", {}).get("path"))
    info = open_dataset(data, verify=False, expected_sha=bodies.expected_sha)
    ds = ShardDataset(info, list(range(len(info.shards))), cfg, train=False)
    _, loader = subset_loader(ds, max_samples, batch_size)
    renderer = Renderer(image_size=EVAL_IOU_SIZE, anti_aliasing=False, fill_back=False, camera_mode="projection",
                        orig_size=EVAL_IOU_SIZE, near=0.05, far=1000.0)
    counts = {r: [] for r in ROWS}
    depth_ratio = []
    for batch in loader:
        tgt = bodies.targets(batch)
        pred = model(batch)
        _, v, _, _ = bodies.predict(pred["rotmats"], pred["betas"])
        T = cam_to_translation(pred["cam"], batch["K"], cfg.proxy.input_size)
        root = tgt["root"]
        at_depth = T * (root[:, 2:] / T[:, 2:])
        depth_ratio.append((T[:, 2] / root[:, 2]).numpy())
        for name, verts, trans in (("model", v, T), ("model_at_depth", v, at_depth), ("model_at_root", v, root),
                                   ("truth_at_model", tgt["vertices"], T), ("truth", tgt["vertices"], root)):
            sil = render_silhouettes(renderer, verts, trans, batch["K_eval"], bodies.faces)
            counts[name].append(M.silhouette_counts(sil.numpy(), batch["sil_eval"].numpy()))
    out = {"checkpoint": os.path.abspath(checkpoint), "data": os.path.abspath(data), "samples": len(ds) if
           max_samples <= 0 else min(max_samples, len(ds))}
    for name in ROWS:
        c = np.concatenate(counts[name])
        out[name] = {k: round(float(v), 4) for k, v in M.silhouette_iou(c).items()}
    r = np.concatenate(depth_ratio)
    out["predicted_over_true_root_depth"] = {"median": round(float(np.median(r)), 4),
                                             "p10": round(float(np.percentile(r, 10)), 4),
                                             "p90": round(float(np.percentile(r, 90)), 4)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-samples", type=int, default=0)
    a = ap.parse_args(argv)
    res = attribute(a.checkpoint, a.data, a.max_samples)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    for name in ROWS:
        print(f"{name:>15}: IoU pooled {res[name]['iou_pooled']:.3f}, mean {res[name]['iou_mean']:.3f}")
    print("predicted / true root depth:", res["predicted_over_true_root_depth"])


if __name__ == "__main__":
    sys.exit(main())
