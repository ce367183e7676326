"""Dataset statistics: per-shard summaries (kept in sidecars and the manifest) and `lasor-datagen stats`.

matplotlib and the scene audit (torch) are imported inside the functions that draw and audit: the workers
import this module for `ShardStats` and need neither.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np

from lasor_shared.errors import LasorError
from lasor_shared.keypoints import COCO17_NAMES, VISIBILITY_NAMES
from lasor_shared.shards import OBJECT_KINDS, OCCLUDER_TYPES, read_manifest

AZ_BINS = 12
# per-shard counters summed into the manifest: renders per sample (occlusion retries), occluders
# planned / pushed out of the target / dropped (could not be freed), pose draws / self-penetrating ones
COUNTERS = ("placement_renders", "occluders_planned", "occluder_pushes", "occluders_dropped")
VF_BINS = 10


class ShardStats:
    """Running counts for one shard; `summary()` is plain JSON (deterministic: no timings)."""

    def __init__(self):
        self.n = 0
        self.vf = np.zeros(VF_BINS, np.int64)
        self.az = np.zeros(AZ_BINS, np.int64)
        self.occ = np.zeros(4, np.int64)
        self.vis = np.zeros(5, np.int64)
        self.vf_sum = 0.0
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.pose_draws = self.pose_rejected = 0

    def add_placement(self, attempt, planner, n_planned):
        """Occluder placement of one sample: `attempt` retries, the planner's pushes and drops."""
        c = self.counts
        c["placement_renders"] += attempt + 1
        c["occluders_planned"] += n_planned
        c["occluder_pushes"] += planner.pushes
        c["occluders_dropped"] += planner.drops

    def add(self, row, _outside=None):
        self.n += 1
        vf = float(row["visible_fraction"])
        self.vf_sum += vf
        self.vf[min(int(vf * VF_BINS), VF_BINS - 1)] += 1
        self.az[min(int(float(row["azimuth"]) / (2 * np.pi) * AZ_BINS), AZ_BINS - 1)] += 1
        self.occ[int(row["occluder_type"])] += 1
        self.vis += np.bincount(np.asarray(row["visibility_coco"]), minlength=5)[:5]

    def summary(self):
        return {"n_samples": self.n, "mean_visible_fraction": round(self.vf_sum / max(self.n, 1), 6),
                "visible_fraction_hist": self.vf.tolist(), "azimuth_hist": self.az.tolist(),
                "occluder_type_counts": dict(zip(OCCLUDER_TYPES, self.occ.tolist())),
                "visibility_coco_counts": dict(zip(VISIBILITY_NAMES, self.vis.tolist())),
                **self.counts, "pose_draws": self.pose_draws, "pose_rejected": self.pose_rejected}


def totals(records):
    """Sum of per-shard summaries (for the manifest)."""
    out = {"n_shards": len(records), "n_samples": sum(r["n_samples"] for r in records),
           "bytes": sum(r["bytes"] for r in records)}
    keys = ("visible_fraction_hist", "azimuth_hist")
    for k in keys:
        out[k] = np.sum([r["stats"][k] for r in records], 0).tolist() if records else []
    for k in ("occluder_type_counts", "visibility_coco_counts"):
        acc = {}
        for r in records:
            for name, v in r["stats"][k].items():
                acc[name] = acc.get(name, 0) + v
        out[k] = acc
    for k in COUNTERS + ("pose_draws", "pose_rejected"):
        out[k] = sum(r["stats"].get(k, 0) for r in records)
    n = max(out["n_samples"], 1)
    out["mean_visible_fraction"] = round(sum(r["stats"]["mean_visible_fraction"] * r["n_samples"]
                                             for r in records) / n, 6)
    return out


def load_fields(dataset_dir, fields, limit=None):
    """Concatenate some small fields over the dataset's shards (in manifest order)."""
    manifest = read_manifest(dataset_dir)
    out = {f: [] for f in fields}
    count = 0
    for rec in manifest["shards"]:
        with h5py.File(os.path.join(dataset_dir, rec["file"]), "r") as h:
            for f in fields:
                out[f].append(h[f][:])
        count += rec["n_samples"]
        if limit and count >= limit:
            break
    return {f: np.concatenate(v)[:limit] if v else np.zeros(0) for f, v in out.items()}, manifest


def dataset_stats(dataset_dir: str, out_dir: str, audit_samples: int = 0) -> dict:
    """Histograms of a dataset as stats.json and stats.png in out_dir (with a scene audit of the first
    `audit_samples` samples when > 0); returns the JSON."""
    fields = ("azimuth", "elevation", "roll", "distance", "focal", "visible_fraction", "occluder_type",
              "n_person_occluders", "n_object_occluders", "visibility_coco", "visibility_joints", "betas",
              "object_kind", "person_role")
    data, manifest = load_fields(dataset_dir, fields)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise LasorError(f"{out_dir}: cannot create output folder ({e.strerror})") from None
    result = _numbers(data, manifest)
    if audit_samples:
        from lasor_datagen.audit import audit_dataset

        result["audit"] = audit_dataset(dataset_dir, audit_samples)
    _plot(data, result, f"{os.path.basename(os.path.abspath(dataset_dir))}: {result['n_samples']} samples",
          os.path.join(out_dir, "stats.png"))
    with open(os.path.join(out_dir, "stats.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def _numbers(data: dict, manifest: dict) -> dict:
    """The JSON part of `dataset_stats` from the loaded fields."""
    n = len(data["azimuth"])
    vis_c = data["visibility_coco"]
    occ_types = np.bincount(data["occluder_type"], minlength=4)
    occluded = data["occluder_type"] > 0
    kinds = np.bincount(data["object_kind"].reshape(-1), minlength=len(OBJECT_KINDS))
    return {
        "n_samples": int(n),
        "recipe_hash": manifest["recipe_hash"],
        "azimuth_deg_hist_30deg": np.histogram(np.rad2deg(data["azimuth"]), bins=12, range=(0, 360))[0].tolist(),
        "elevation_deg": _summary(np.rad2deg(data["elevation"])),
        "roll_deg": _summary(np.rad2deg(data["roll"])),
        "distance_m": _summary(data["distance"]),
        "focal_px": _summary(data["focal"]),
        "visible_fraction": _summary(data["visible_fraction"]),
        "visible_fraction_of_occluded": _summary(data["visible_fraction"][occluded]),
        "unoccluded_share": float(np.mean(~occluded)) if n else 0.0,
        "occluder_type_counts": dict(zip(OCCLUDER_TYPES, occ_types.tolist())),
        "object_kind_counts": dict(zip(OBJECT_KINDS[1:], kinds[1:].tolist())),
        "visibility_coco_share": dict(zip(VISIBILITY_NAMES, (np.bincount(vis_c.reshape(-1), minlength=5)
                                                             / max(vis_c.size, 1)).round(4).tolist())),
        "visibility_joints_share": dict(zip(VISIBILITY_NAMES, (np.bincount(data["visibility_joints"].reshape(-1),
                                                                           minlength=5)
                                                               / max(data["visibility_joints"].size, 1)).round(4).tolist())),
        "visibility_coco_per_keypoint": {name: np.bincount(vis_c[:, k], minlength=5).tolist()
                                         for k, name in enumerate(COCO17_NAMES)},
        "betas_std": data["betas"].std(0).round(3).tolist() if n else [],
        "occluded_fraction": occluded_fraction(data, manifest["recipe"]["occlusion"]["occluded_fraction"]),
        "rejections": rejection_rates(manifest["totals"]),
    }


def _plot(data: dict, result: dict, title: str, path: str):
    """stats.png: the histograms and bars of `dataset_stats`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = result["n_samples"]
    vis_c = data["visibility_coco"]
    occ_types = np.bincount(data["occluder_type"], minlength=4)
    occluded = data["occluder_type"] > 0
    fig, axes = plt.subplots(3, 4, figsize=(17, 10))
    ax = axes[0, 0]
    ax.remove()
    ax = fig.add_subplot(3, 3, 1, projection="polar")
    h, e = np.histogram(data["azimuth"], bins=24, range=(0, 2 * np.pi))
    ax.bar(e[:-1], h, width=2 * np.pi / 24, align="edge", color="tab:blue", alpha=0.8)
    ax.set_theta_zero_location("S")
    ax.set_title("camera azimuth (0 = front of body, at bottom)", fontsize=9)
    _hist(axes[0, 1], np.rad2deg(data["elevation"]), "elevation (deg)")
    _hist(axes[0, 2], np.rad2deg(data["roll"]), "roll (deg)")
    _hist(axes[1, 0], data["distance"], "camera distance (m)")
    _hist(axes[1, 1], data["focal"], "focal length (px)")
    ax = axes[1, 2]
    ax.hist([data["visible_fraction"][~occluded], data["visible_fraction"][occluded]], bins=20, range=(0, 1),
            stacked=True, label=["no occluder", "occluded"], color=["tab:green", "tab:red"])
    ax.legend(fontsize=8)
    ax.set_title(f"target visible fraction (unoccluded share {result['unoccluded_share']:.2f})", fontsize=9)
    ax = axes[2, 0]
    ax.bar(OCCLUDER_TYPES, occ_types, color=["tab:gray", "tab:orange", "tab:purple", "tab:brown"])
    ax.set_title("occluder type (measured)", fontsize=9)
    ax = axes[2, 1]
    counts = np.stack([np.bincount(vis_c[:, k], minlength=5) for k in range(17)]) if n else np.zeros((17, 5))
    bottom = np.zeros(17)
    colors = ["lightgray", "tab:blue", "tab:orange", "tab:purple", "tab:green"]
    for c in range(5):
        ax.bar(range(17), counts[:, c], bottom=bottom, color=colors[c], label=VISIBILITY_NAMES[c])
        bottom += counts[:, c]
    ax.set_xticks(range(17))
    ax.set_xticklabels([nm.replace("left_", "L").replace("right_", "R") for nm in COCO17_NAMES], rotation=90,
                       fontsize=7)
    ax.legend(fontsize=7)
    ax.set_title("COCO keypoint visibility codes", fontsize=9)
    ax = axes[2, 2]
    ax.boxplot(data["betas"] if n else np.zeros((1, 10)), showfliers=False)
    ax.set_title("betas (per component)", fontsize=9)
    _plot_occluded_fraction(axes[0, 3], result["occluded_fraction"], data)
    ax = axes[1, 3]
    rej = result["rejections"]
    names = [k for k in rej if k.endswith("rate")]
    ax.barh(names, [rej[k] for k in names], color="tab:blue")
    for y, k in enumerate(names):
        ax.text(rej[k], y, f" {rej[k]:.3f}", va="center", fontsize=8)
    ax.set_title("sampling rejections and retries", fontsize=9)
    ax.tick_params(labelsize=7)
    axes[2, 3].axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


FRONT_QUANTILES = (10, 50, 90)


def front_occluded(data):
    """Samples with an occluder placed in front of the target (a person of role 1 or an object)."""
    return ((data["person_role"] == 1).sum(1) + data["n_object_occluders"]) > 0


def occluded_fraction(data, target):
    """Achieved hidden share (1 − visible fraction) of samples with front occluders against the recipe's
    target (uniform over `occluded_fraction`), at the 10th/50th/90th percentiles."""
    hidden = 1 - data["visible_fraction"][front_occluded(data)]
    lo, hi = target
    out = {"target_range": [lo, hi], "n": int(hidden.size), "percentiles": list(FRONT_QUANTILES),
           "target": [round(lo + q / 100 * (hi - lo), 4) for q in FRONT_QUANTILES]}
    out["achieved"] = np.percentile(hidden, FRONT_QUANTILES).round(4).tolist() if hidden.size else []
    return out


def rejection_rates(totals):
    """Rates of the sampler's rejections and retries from the manifest's summed shard counters."""
    t = {k: totals.get(k, 0) for k in COUNTERS + ("pose_draws", "pose_rejected")}
    n = max(totals.get("n_samples", 0), 1)
    return {**t, "pose_rejection_rate": round(t["pose_rejected"] / max(t["pose_draws"], 1), 4),
            "occluder_push_rate": round(t["occluder_pushes"] / max(t["occluders_planned"], 1), 4),
            "occluder_drop_rate": round(t["occluders_dropped"] / max(t["occluders_planned"], 1), 4),
            "occlusion_retry_rate": round(t["placement_renders"] / n - 1, 4)}


def _plot_occluded_fraction(ax, occ, data):
    hidden = 1 - data["visible_fraction"][front_occluded(data)]
    lo, hi = occ["target_range"]
    ax.hist(hidden, bins=20, range=(0, 1), density=True, color="tab:red", alpha=0.6, label="achieved")
    ax.plot([0, lo, lo, hi, hi, 1], [0, 0, 1 / (hi - lo), 1 / (hi - lo), 0, 0], color="k", label="target")
    for t, a in zip(occ["target"], occ["achieved"]):
        ax.axvline(t, color="k", ls=":", lw=0.8)
        ax.axvline(a, color="tab:red", ls="--", lw=0.8)
    ax.legend(fontsize=8)
    ax.set_title("hidden share, front-occluded samples\np10/50/90 target "
                 + "/".join(f"{x:.2f}" for x in occ["target"]) + ", achieved "
                 + "/".join(f"{x:.2f}" for x in occ["achieved"]), fontsize=9)


def _summary(x):
    x = np.asarray(x, float)
    if x.size == 0:
        return {}
    q = np.percentile(x, [5, 50, 95])
    return {"min": round(float(x.min()), 4), "p5": round(float(q[0]), 4), "median": round(float(q[1]), 4),
            "p95": round(float(q[2]), 4), "max": round(float(x.max()), 4), "mean": round(float(x.mean()), 4)}


def _hist(ax, x, title):
    ax.hist(x, bins=24, color="tab:blue", alpha=0.8)
    ax.set_title(title, fontsize=9)
