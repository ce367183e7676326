"""`lasor-eval`: metrics of a checkpoint on held-out data, with breakdowns, baselines and plots.

Per sample: MPJPE, PA-MPJPE, PVE (root-aligned, camera frame, 24 SMPL joints / all vertices),
PVE-T-SC (T-pose shape; the ground-truth T-pose protocol is named in the report, see
`PVE_T_SC_PROTOCOLS`), silhouette IoU counts (the predicted body rendered vs the full-body mask in a
fixed 256² crop around that mask — `data.eval_silhouette` — so numbers do not depend on the model's
input or silhouette size; pooled and per-image mean are both reported, images where both masks are
empty have no IoU and are left out) and 2D keypoint error (original image pixels; over visible
keypoints, and over all keypoints inside the image).

The same numbers are computed for two reference predictors, by the same code:
- `mean_body`: the regressor's starting point (zero body pose, mean shape, upright and facing the
  camera) — what the network would say without looking at the input;
- `mean_body_oracle_orient`: mean pose/shape but with the TRUE camera-frame global orientation —
  a much stronger reference that isolates articulated pose and shape.
Baseline silhouettes are placed at the true root position.

Breakdowns: occluder type (none/person/object/both), occluded fraction (1 − visible fraction) bins,
camera azimuth bins (0° = in front of the body). Writes metrics.json, report.md and PNG plots.
`evaluate_benchmark` does the same on the real benchmarks (SSP-3D, 3DPW: `lasor_trainer.benchmarks`).
matplotlib is imported where the plots are drawn, after choosing its non-interactive backend.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch

from lasor_shared.body_model import load_body_model
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import SMPL24_NAMES, VISIBILITY_NAMES
from lasor_shared.shards import GENDER_CODES, GENDERS
from lasor_trainer import metrics as M
from lasor_trainer.benchmarks import PW3D, SSP3D
from lasor_trainer.bodies import Bodies, project_points, render_silhouettes
from lasor_trainer.checkpoint import load_model as load_checkpoint
from lasor_trainer.config import Config, KeypointConfig
from lasor_trainer.data import EVAL_IOU_SIZE, ShardDataset, collate, open_dataset
from lasor_trainer.inputs import test_protocol
from lasor_trainer.model import FACING_CAMERA, cam_to_translation
from lasor_trainer.neural_renderer import Renderer
from lasor_trainer.report_format import fmt

OCCLUDER_NAMES = ("none", "person", "object", "both")
OCC_BINS = (0.0, 0.1, 0.3, 0.5, 0.7, 1.0001)
AZ_BINS = 8
METRICS = ("mpjpe_mm", "pa_mpjpe_mm", "pve_mm", "pve_t_sc_mm", "kp2d_vis_px", "kp2d_all_px", "mpjpe_sc_mm",
           "mpjpe_true_orient_mm", "orient_err_deg")


@torch.no_grad()
def quick_validate(model, loader, bodies: Bodies, cfg: Config, device) -> dict:
    """Mean PVE and MPJPE (mm) over a loader — the training loop's model selection."""
    model.eval()
    pves, mpj = [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        pred = model(batch)
        j, v, _, _ = bodies.predict(pred["rotmats"], pred["betas"])
        tgt = bodies.targets(batch)
        pves.append((v - tgt["vertices"]).norm(dim=-1).mean(-1).cpu())
        mpj.append((j - tgt["joints"]).norm(dim=-1).mean(-1).cpu())
    return {"pve_mm": 1000 * float(torch.cat(pves).mean()), "mpjpe_mm": 1000 * float(torch.cat(mpj).mean())}


def _sample_metrics(joints, verts, coco, T, sil, tgt, batch, bodies, tpose_pred, tpose_gt, betas_pred,
                    rotmats=None, joints_true_orient=None):
    gj, gv = tgt["joints"].cpu().numpy(), tgt["vertices"].cpu().numpy()
    pj, pv = joints.cpu().numpy(), verts.cpu().numpy()
    out = {
        "mpjpe_mm": 1000 * M.mpjpe(pj, gj),
        "mpjpe_sc_mm": 1000 * M.mpjpe_scale_aligned(pj, gj),
        "joint_err_mm": 1000 * M.joint_errors(pj, gj),
        "pa_mpjpe_mm": 1000 * M.pa_mpjpe(pj, gj),
        "pve_mm": 1000 * M.pve(pv, gv),
        "pve_t_sc_mm": 1000 * M.pve_t_sc(tpose_pred, tpose_gt),
        "betas_pred": betas_pred.cpu().numpy(), "betas_gt": batch["betas"].cpu().numpy(),
    }
    if rotmats is not None:  # orientation vs articulation: the global orientation's error, and MPJPE without it
        out["orient_err_deg"] = np.degrees(M.rotation_angle(rotmats[:, 0].cpu().numpy(), tgt["rotmats"][:, 0].cpu().numpy()))
        out["mpjpe_true_orient_mm"] = 1000 * M.mpjpe(joints_true_orient.cpu().numpy(), gj)
    else:
        out["orient_err_deg"] = out["mpjpe_true_orient_mm"] = np.full(len(pj), np.nan)
    uv = project_points(coco + T[:, None], batch["K"]).cpu().numpy()
    gt2 = batch["kp2d"].cpu().numpy()
    scale = batch["crop_scale"].cpu().numpy()[:, None, None]
    vis = batch["kp_vis"].cpu().numpy()
    out["kp2d_vis_px"] = M.keypoint_error_2d(uv / scale, gt2 / scale, vis == 4)
    out["kp2d_all_px"] = M.keypoint_error_2d(uv / scale, gt2 / scale, vis >= 1)
    if sil is not None:
        counts = M.silhouette_counts(sil.cpu().numpy(), batch["sil_eval"].cpu().numpy())
        out["sil_counts"] = counts
        out["sil_iou"] = M.per_image_iou(counts)
    return out


@torch.no_grad()
def subset_loader(ds, max_samples: int, batch_size: int):
    """(indices, ordered DataLoader) over `ds`, or over an evenly spaced subset of `max_samples`."""
    idx = np.arange(len(ds))
    if max_samples and max_samples < len(ds):
        idx = np.linspace(0, len(ds) - 1, max_samples).round().astype(int)
    return idx, torch.utils.data.DataLoader(torch.utils.data.Subset(ds, idx.tolist()), batch_size=batch_size,
                                            shuffle=False, collate_fn=collate, generator=torch.Generator())


PVE_T_SC_PROTOCOLS = {
    "gendered": "ground-truth T-pose built with the subject's gender model (SSP-3D's own evaluation code)",
    "neutral": "ground-truth T-pose built with the neutral model from the true betas",
}


def tpose_protocol(bodies: Bodies, protocol: str = "auto", male: str | None = None, female: str | None = None):
    """(protocol name, {gender code: body model for the ground-truth T-pose}) for PVE-T-SC.

    'auto' is 'gendered' when gender models exist (the embedded family, or --male-model and
    --female-model with a real SMPL --body-model), else 'neutral'."""
    if protocol not in ("auto", *PVE_T_SC_PROTOCOLS):
        raise LasorError(f"--pve-t-sc: expected auto, {', '.join(PVE_T_SC_PROTOCOLS)}, got {protocol!r}")
    have_gendered = bodies.path is None or (male is not None and female is not None)
    if protocol == "auto":
        protocol = "gendered" if have_gendered else "neutral"
    if protocol == "neutral":
        return protocol, {GENDER_CODES[g]: bodies.pred for g in GENDERS}
    if not have_gendered:
        raise LasorError("--pve-t-sc gendered with a real SMPL --body-model needs --male-model and --female-model")
    if bodies.path is None:
        return protocol, {GENDER_CODES[g]: bodies.model_for(GENDER_CODES[g]) for g in GENDERS}
    given = {"neutral": bodies.pred, "male": load_body_model(male, "male", device=bodies.device),
             "female": load_body_model(female, "female", device=bodies.device)}
    return protocol, {GENDER_CODES[g]: given[g] for g in GENDERS}


@torch.no_grad()
def run_evaluation(model, loader, bodies: Bodies, cfg: Config, device, with_silhouette=True, baselines=True,
                   tpose_models: dict | None = None):
    """Per-sample metrics for the model (and the baselines) over a loader → dict of arrays.
    tpose_models: {gender code: model} for the ground-truth T-pose (default: `tpose_protocol` auto)."""
    model.eval()
    if tpose_models is None:
        tpose_models = tpose_protocol(bodies)[1]
    renderer = Renderer(image_size=EVAL_IOU_SIZE, anti_aliasing=False, fill_back=False, camera_mode="projection",
                        orig_size=EVAL_IOU_SIZE, near=0.05, far=1000.0,
                        backend=cfg.train.renderer_backend) if with_silhouette else None
    S = cfg.proxy.input_size
    rows = {"model": [], "mean_body": [], "mean_body_oracle_orient": []}
    meta = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        B = batch["K"].shape[0]
        tgt = bodies.targets(batch)
        tpose_gt = np.concatenate([M.tpose_vertices(tpose_models.get(int(g), bodies.pred), batch["betas"][i:i + 1].cpu())
                                   for i, g in enumerate(batch["gender"].tolist())])
        pred = model(batch)
        j, v, c, _ = bodies.predict(pred["rotmats"], pred["betas"])
        T = cam_to_translation(pred["cam"], batch["K"], S)
        sil = render_silhouettes(renderer, v, T, batch["K_eval"], bodies.faces) if renderer else None
        tpose_pred = M.tpose_vertices(bodies.pred, pred["betas"].cpu())
        rot_true = torch.cat([tgt["rotmats"][:, :1], pred["rotmats"][:, 1:]], 1)
        j_true_orient = bodies.run(bodies.pred, rot_true, pred["betas"], with_coco=False)[0]
        rows["model"].append(_sample_metrics(j, v, c, T, sil, tgt, batch, bodies, tpose_pred, tpose_gt, pred["betas"],
                                             pred["rotmats"], j_true_orient))
        if baselines:
            tpose_mean = M.tpose_vertices(bodies.pred, torch.zeros(B, 10))
            eye = torch.eye(3, device=device).expand(B, 24, 3, 3).clone()
            for name in ("mean_body", "mean_body_oracle_orient"):
                rot = eye.clone()
                rot[:, 0] = FACING_CAMERA.to(device) if name == "mean_body" else tgt["rotmats"][:, 0]
                bj, bv, bc, _ = bodies.predict(rot, torch.zeros(B, 10, device=device))
                bsil = render_silhouettes(renderer, bv, tgt["root"], batch["K_eval"], bodies.faces) if renderer else None
                rows[name].append(_sample_metrics(bj, bv, bc, tgt["root"], bsil, tgt, batch, bodies,
                                                  tpose_mean, tpose_gt, torch.zeros(B, 10)))
        meta.append({k: batch[k].cpu().numpy() for k in ("occluder_type", "visible_fraction", "azimuth", "index",
                                                         "joint_vis")})
    out = {}
    for name, lst in rows.items():
        if lst:
            out[name] = {k: np.concatenate([r[k] for r in lst]) for k in lst[0]}
    out["meta"] = {k: np.concatenate([m[k] for m in meta]) for k in meta[0]}
    return out


def _summary(rows: dict, sel: np.ndarray) -> dict:
    s = {"n": int(sel.sum())}
    for k in METRICS:
        x = rows[k][sel]
        x = x[np.isfinite(x)]
        s[k] = float(x.mean()) if len(x) else None
    if "sil_counts" in rows:
        iou = M.silhouette_iou(rows["sil_counts"][sel]) if sel.any() else {"iou_pooled": None, "iou_mean": None}
        s.update({f"sil_{k}": v if v is not None and np.isfinite(v) else None for k, v in iou.items()})
    return s


def breakdowns(res: dict) -> dict:
    meta = res["meta"]
    n = len(meta["index"])
    occ_frac = 1.0 - meta["visible_fraction"]
    az = np.degrees(meta["azimuth"]) % 360.0
    groups = {"all": {"all": np.ones(n, bool)}}
    groups["occluder_type"] = {OCCLUDER_NAMES[t]: meta["occluder_type"] == t for t in range(4)
                               if (meta["occluder_type"] == t).any()}
    groups["occluded_fraction"] = {}
    for lo, hi in zip(OCC_BINS[:-1], OCC_BINS[1:]):
        sel = (occ_frac >= lo) & (occ_frac < hi)
        if sel.any():
            groups["occluded_fraction"][f"{lo:.1f}-{min(hi, 1.0):.1f}"] = sel
    w = 360.0 / AZ_BINS
    groups["azimuth"] = {}
    for b in range(AZ_BINS):  # bins centred on 0°, 45°, ...
        centre = b * w
        d = (az - centre + 180.0) % 360.0 - 180.0
        sel = np.abs(d) < w / 2
        if sel.any():
            groups["azimuth"][f"{centre:.0f}°"] = sel
    out = {}
    for gname, bins in groups.items():
        out[gname] = {}
        for bname, sel in bins.items():
            out[gname][bname] = {p: _summary(res[p], sel) for p in res if p != "meta"}
    return out


def joint_breakdowns(res: dict) -> dict:
    """What is left, per joint: the model's mean joint error (mm) by the joint's visibility code and per
    SMPL joint, and the per-component |β error| against the prior's (the mean shape, β = 0)."""
    err, vis = res["model"]["joint_err_mm"], res["meta"]["joint_vis"]
    by_vis = {VISIBILITY_NAMES[c]: {"n": int((vis == c).sum()), "mpjpe_mm": float(err[vis == c].mean())}
              for c in range(len(VISIBILITY_NAMES)) if (vis == c).any()}
    per_joint = {name: float(err[:, j].mean()) for j, name in enumerate(SMPL24_NAMES)}
    bp, bg = res["model"]["betas_pred"], res["model"]["betas_gt"]
    betas = {"model": np.abs(bp - bg).mean(0).tolist(), "prior": np.abs(bg).mean(0).tolist()}
    return {"by_visibility": by_vis, "per_joint": per_joint, "betas_abs_err": betas}


def markdown_report(table: dict, title: str, info: dict) -> str:
    lines = [f"# {title}", ""]
    for k, v in info.items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    a = table["all"]["all"]
    lines += ["## Overall (held-out)", "",
              "| predictor | n | MPJPE | scale-aligned MPJPE | MPJPE with true orientation | orientation error (°) | "
              "PA-MPJPE | PVE | PVE-T-SC | sil IoU pooled | sil IoU mean | 2D kp err vis (px) | 2D kp err all (px) |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p, s in a.items():
        lines.append(f"| {p} | {s['n']} | {fmt(s['mpjpe_mm'])} | {fmt(s.get('mpjpe_sc_mm'))} | "
                     f"{fmt(s.get('mpjpe_true_orient_mm'))} | {fmt(s.get('orient_err_deg'))} | "
                     f"{fmt(s['pa_mpjpe_mm'])} | {fmt(s['pve_mm'])} | "
                     f"{fmt(s['pve_t_sc_mm'])} | {fmt(s.get('sil_iou_pooled'), 3)} | {fmt(s.get('sil_iou_mean'), 3)} | "
                     f"{fmt(s['kp2d_vis_px'])} | {fmt(s['kp2d_all_px'])} |")
    lines += ["", "Distances in mm (3D; root-aligned, 24 SMPL joints, camera frame) and original-image pixels (2D). "
              "IoU pooled = ΣTP/Σ(TP+FP+FN) over all pixels of the set; IoU mean = mean of per-image IoUs "
              "(predicted full body vs the full-body mask, in a 256² crop around that mask; images where both "
              "are empty have no IoU and are left out). PVE-T-SC protocol: see pve_t_sc_protocol above.", ""]
    for g, title_g in (("occluder_type", "By occluder type"), ("occluded_fraction", "By occluded fraction"),
                       ("azimuth", "By camera azimuth (0° = front)")):
        lines += [f"## {title_g}", "", "| bin | n | MPJPE | PA-MPJPE | PVE | PVE-T-SC | IoU pooled | baseline MPJPE | baseline PVE |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for b, per in table[g].items():
            s, base = per["model"], per.get("mean_body", {})
            lines.append(f"| {b} | {s['n']} | {fmt(s['mpjpe_mm'])} | {fmt(s['pa_mpjpe_mm'])} | {fmt(s['pve_mm'])} | "
                         f"{fmt(s['pve_t_sc_mm'])} | {fmt(s.get('sil_iou_pooled'), 3)} | {fmt(base.get('mpjpe_mm'))} | "
                         f"{fmt(base.get('pve_mm'))} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plots(table: dict, out_dir: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for g in ("occluder_type", "occluded_fraction", "azimuth"):
        bins = list(table[g].keys())
        if not bins:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        for ax, metric in zip(axes, ("mpjpe_mm", "pve_mm")):
            preds = [p for p in ("model", "mean_body_oracle_orient", "mean_body") if p in table[g][bins[0]]]
            width = 0.8 / len(preds)
            for i, p in enumerate(preds):
                vals = [table[g][b][p][metric] or 0 for b in bins]
                ax.bar(np.arange(len(bins)) + i * width, vals, width, label=p)
            ax.set_xticks(np.arange(len(bins)) + width * (len(preds) - 1) / 2)
            ax.set_xticklabels(bins, rotation=30)
            ax.set_ylabel(metric.replace("_mm", " (mm)"))
            ax.set_title(f"{metric.replace('_mm', '').upper()} by {g.replace('_', ' ')}")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{g}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def joint_report(jb: dict) -> str:
    lines = ["## What is left, per joint", "", "Mean joint error (mm, root-aligned) by the joint's visibility code "
             "in the image:", "", "| visibility | joints | MPJPE |", "|---|---|---|"]
    lines += [f"| {k} | {v['n']} | {fmt(v['mpjpe_mm'])} |" for k, v in jb["by_visibility"].items()]
    lines += ["", "Per SMPL joint (mm): " + ", ".join(f"{k} {fmt(v)}" for k, v in jb["per_joint"].items()), "",
              "Shape: mean |β error| per component, model vs the prior (mean shape):", "",
              "| | " + " | ".join(f"β{i}" for i in range(len(jb["betas_abs_err"]["model"]))) + " |",
              "|---|" + "---|" * len(jb["betas_abs_err"]["model"])]
    for name in ("model", "prior"):
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in jb["betas_abs_err"][name]) + " |")
    return "\n".join(lines) + "\n"


def write_reports(res: dict, out_dir: str, title: str, info: dict) -> dict:
    os.makedirs(out_dir, exist_ok=True)
    table = breakdowns(res)
    jb = joint_breakdowns(res)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(_jsonable({"info": info, "metrics": table, "joints": jb}), f, indent=1)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(markdown_report(table, title, info) + "\n" + joint_report(jb))
    plots(table, out_dir)
    np.savez_compressed(os.path.join(out_dir, "per_sample.npz"),
                        **{f"{p}/{k}": v for p, d in res.items() for k, v in d.items()})
    return table


def set_test_keypoints(cfg: Config, protocol: str) -> str:
    """Set the test keypoints of `cfg` (in place) and say what they are. 'detector': the documented test
    protocol (lasor_trainer.inputs) — a model of the older 'visible' convention gets the same detector-like
    keypoints, those with confidence ≥ 0.5 as present; 'native': the checkpoint's own convention; 'exact':
    a perfect detector (every in-image keypoint exact, confidence 1) — a diagnostic of what the keypoint
    noise costs, never the reported protocol."""
    if protocol not in ("detector", "native", "exact"):
        raise LasorError(f"--keypoints: expected detector, native or exact, got {protocol!r}")
    if protocol == "exact":  # a diagnostic: what the error would be with a perfect detector
        legacy = cfg.keypoints.mode != "detector"
        cfg.keypoints = KeypointConfig(mode="detector", min_confidence=0.5 if legacy else cfg.keypoints.min_confidence,
                                       noise_visible=0.0, noise_self=0.0, noise_hidden=0.0, drop_hidden=0.0,
                                       drop_any=0.0, conf_visible=[1.0, 1.0], conf_self=[1.0, 1.0],
                                       conf_hidden=[1.0, 1.0], false_conf_p=0.0, outlier_p=0.0)
        return "exact (a diagnostic, not the test protocol): every in-image keypoint at its true position, confidence 1"
    if protocol == "native":
        return (f"{cfg.keypoints.mode} (the checkpoint's own convention): "
                + ("its training detector simulation, fixed per-sample seed" if cfg.keypoints.mode == "detector"
                   else f"exact keypoints with visibility codes {cfg.proxy.input_visibility}"))
    legacy = cfg.keypoints.mode != "detector"
    cfg.keypoints = test_protocol(0.5 if legacy else cfg.keypoints.min_confidence)
    k = cfg.keypoints
    return (f"detector (lasor_trainer.inputs.test_protocol, fixed per-sample seed): position noise σ {k.noise_visible:g} / "
            f"{k.noise_self:g} / {k.noise_hidden:g} × the person's height for visible / self-occluded / hidden keypoints, "
            f"confidences {k.conf_visible} / {k.conf_self} / {k.conf_hidden}, hidden ones missing with p {k.drop_hidden:g}"
            + ("; this model of the 'visible' convention receives the keypoints with confidence ≥ 0.5 as present"
               if legacy else ""))


def evaluate(checkpoint: str, data_dir: str, out_dir: str, shards: str = "auto", batch_size: int = 32,
             max_samples: int = 0, with_silhouette: bool = True, device: str = "cpu", verify: bool = True,
             body_model: str | None = None, pve_t_sc: str = "auto", male_model: str | None = None,
             female_model: str | None = None, keypoint_protocol: str = "detector") -> dict:
    """Evaluate a checkpoint on a dataset directory. shards: 'auto' (the checkpoint's held-out shards
    when data_dir is its training set, else all), 'all', 'val', or a comma list of shard indices.
    pve_t_sc: the PVE-T-SC ground-truth protocol (see `tpose_protocol`)."""
    dev = torch.device(device)
    model, cfg, ck = load_checkpoint(checkpoint, dev)
    protocol_note = set_test_keypoints(cfg, keypoint_protocol)
    bm = body_model if body_model is not None else ck.get("body_model", {}).get("path")
    bodies = Bodies(bm, dev)
    if ck.get("body_model", {}).get("sha256") not in (None, bodies.pred.sha256):
        raise LasorError(f"checkpoint {checkpoint} was trained with body model {ck['body_model'].get('id')}, "
                         "not the one given; pass the same --body-model")
    protocol, tpose_models = tpose_protocol(bodies, pve_t_sc, male_model, female_model)
    info = open_dataset(data_dir, verify=verify, expected_sha=bodies.expected_sha)
    n = len(info.shards)
    same = os.path.abspath(data_dir) == ck.get("data", {}).get("root")
    if shards == "auto":
        ids = ck["data"]["val_shards"] if same and ck["data"].get("val_shards") else list(range(n))
    elif shards == "all":
        ids = list(range(n))
    elif shards == "val":
        ids = ck["data"]["val_shards"]
    else:
        try:
            ids = [int(s) for s in shards.split(",")]
        except ValueError:
            raise LasorError(f"--shards: expected auto, all, val or a comma list of indices, got {shards!r}") from None
        if any(not 0 <= i < n for i in ids):
            raise LasorError(f"--shards: indices must be in [0, {n})")
    if same and set(ids) & set(ck["data"].get("train_shards", [])):
        print("warning: evaluating on shards the checkpoint was trained on")
    ds = ShardDataset(info, ids, cfg, train=False)
    idx, loader = subset_loader(ds, max_samples, batch_size)
    res = run_evaluation(model, loader, bodies, cfg, dev, with_silhouette, tpose_models=tpose_models)
    meta = {"checkpoint": os.path.abspath(checkpoint), "step": ck.get("step"), "data": os.path.abspath(data_dir),
            "shards": ids, "samples": int(len(idx)), "body_model": bodies.pred.model_id,
            "pve_t_sc_protocol": f"{protocol}: {PVE_T_SC_PROTOCOLS[protocol]}",
            "input_size": cfg.proxy.input_size, "silhouette_target_in_training": cfg.loss.silhouette_target,
            "test_keypoints": protocol_note}
    table = write_reports(res, out_dir, "lasor-eval report", meta)
    return {"table": table, "info": meta}


def evaluate_benchmark(checkpoint: str, out_dir: str, ssp3d_dir: str | None = None, pw3d_path: str | None = None,
                       batch_size: int = 32, max_samples: int = 0, with_silhouette: bool = True, device: str = "cpu",
                       body_model: str | None = None, stride: int = 1, pve_t_sc: str = "auto",
                       male_model: str | None = None, female_model: str | None = None) -> dict:
    """lasor-eval --ssp3d/--3dpw: a checkpoint on SSP-3D (folder) or 3DPW (oracle silhouettes); reports in `out_dir`."""
    dev = torch.device(device)
    model, cfg, ck = load_checkpoint(checkpoint, dev)
    bodies = Bodies(body_model if body_model is not None else ck.get("body_model", {}).get("path"), dev)
    protocol, tpose_models = tpose_protocol(bodies, pve_t_sc, male_model, female_model)
    if ssp3d_dir is not None:
        ds, name = SSP3D(ssp3d_dir, cfg, bodies), "SSP-3D"
        frames = "all SSP-3D images"
    else:
        ds, name = PW3D(pw3d_path, cfg, bodies, stride), "3DPW (oracle silhouettes)"
        frames = ds.frame_filter
    idx, loader = subset_loader(ds, max_samples, batch_size)
    res = run_evaluation(model, loader, bodies, cfg, dev, with_silhouette, tpose_models=tpose_models)
    info = {"benchmark": name, "source": os.path.abspath(ssp3d_dir or pw3d_path), "samples": int(len(idx)),
            "frame_filter": frames, "pve_t_sc_protocol": f"{protocol}: {PVE_T_SC_PROTOCOLS[protocol]}",
            "checkpoint": os.path.abspath(checkpoint), "body_model": bodies.pred.model_id,
            "note": "24 SMPL joints (H36M-14 regressor protocols need real SMPL); numbers are comparable to "
                    "published ones only with the real SMPL model"}
    table = write_reports(res, out_dir, f"lasor-eval on {name}", info)
    return {"table": table, "info": info}
