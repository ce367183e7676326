"""Learning curves and the budget they imply: validation error against steps and against dataset size.

    python scripts/learning_curves.py --steps standard=out/standard/run [--steps other=DIR ...] \
        [--size 4096=out/ablations/run-full --size 8192=out/size-8k/run ...] [--target 90] --out DIR

--steps NAME=RUN: a run whose RUN/val.jsonl (validation MPJPE/PVE every val_every steps) is a curve
  against steps. A power law MPJPE ≈ A·steps^(−c) is fitted to the points from 2,000 steps on (after
  the warm-up and the silhouette loss's start) and extrapolated to the step count where it reaches
  --target: no error floor is assumed, so that count is a LOWER bound of the budget the target needs.
--size N=RUN: runs with the same steps on N training samples: the last validation MPJPE against N.
--size-test N=EVAL_DIR / --size-train N=EVAL_DIR: lasor-eval outputs (metrics.json) of the run trained on
  N samples, scored on the held-out test set / on some of its own training shards: the test error against
  N, and the gap between them (how much of the error is generalisation rather than fitting).

Writes DIR/learning_curves.png, learning_curves.json and learning_curves.md (a model-card section).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def read_val(run_dir: str) -> list[dict]:
    rows = []
    path = os.path.join(run_dir, "val.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(ln) for ln in f if ln.strip()]
    else:  # older runs: 'val' lines of log.jsonl
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            rows = [{"step": r["step"], **r["val"]} for r in map(json.loads, f) if "val" in r]
    rows = [{"step": r["step"], **(r["val"] if "val" in r else r)} for r in rows]
    if not rows:
        raise SystemExit(f"{run_dir}: no validation lines (val.jsonl / log.jsonl)")
    return rows


def fit_power(steps, err, min_step=2000):
    s, e = np.asarray(steps, float), np.asarray(err, float)
    keep = s >= min_step
    if keep.sum() < 3:
        return None
    slope, icpt = np.polyfit(np.log(s[keep]), np.log(e[keep]), 1)
    return {"A": float(np.exp(icpt)), "c": float(-slope), "from_step": min_step, "points": int(keep.sum())}


def steps_for(fit, target):
    if fit is None or fit["c"] <= 0:
        return None
    return float((fit["A"] / target) ** (1.0 / fit["c"]))


def read_eval(eval_dir: str) -> dict:
    """The model's pooled metrics and the checkpoint's step from a lasor-eval output folder."""
    path = os.path.join(eval_dir, "metrics.json")
    try:
        with open(path) as f:
            m = json.load(f)
        return {"step": m["info"]["step"], "samples": m["info"]["samples"], **m["metrics"]["all"]["all"]["model"]}
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"{path}: not a lasor-eval metrics.json ({e})")


def size_eval(tests, trains) -> list[dict]:
    """Per training-set size: held-out test metrics and, where given, the same on training shards."""
    train = {int(n): read_eval(d) for n, d in trains}
    unmatched = sorted(set(train) - {int(n) for n, _ in tests})
    if unmatched:
        raise SystemExit(f"--size-train {unmatched[0]}: no --size-test for that many samples (the gap needs both)")
    rows = []
    for n, d in tests:
        n = int(n)
        rows.append({"n_samples": n, "test_dir": d, "test": read_eval(d), "train": train.get(n)})
    return sorted(rows, key=lambda r: r["n_samples"])


def pair(text):
    name, _, path = text.partition("=")
    if not path:
        raise argparse.ArgumentTypeError(f"expected NAME=RUN_DIR, got {text!r}")
    return name, path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=pair, action="append", default=[], help="NAME=RUN_DIR (curve against steps)")
    ap.add_argument("--size", type=pair, action="append", default=[], help="N_SAMPLES=RUN_DIR (same steps)")
    ap.add_argument("--size-test", type=pair, action="append", default=[],
                    help="N_SAMPLES=EVAL_DIR (lasor-eval on the held-out test set)")
    ap.add_argument("--size-train", type=pair, action="append", default=[],
                    help="N_SAMPLES=EVAL_DIR (lasor-eval on the run's own training shards)")
    ap.add_argument("--target", type=float, default=90.0, help="MPJPE target (mm)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    res = {"target_mpjpe_mm": a.target, "steps": {}, "size": []}
    for name, run in a.steps:
        rows = read_val(run)
        st = [r["step"] for r in rows]
        fit = fit_power(st, [r["mpjpe_mm"] for r in rows])
        res["steps"][name] = {"run": run, "curve": rows, "fit": fit, "steps_to_target": steps_for(fit, a.target)}
    for n, run in a.size:
        last = read_val(run)[-1]
        res["size"].append({"n_samples": int(n), "run": run, "step": last["step"], "mpjpe_mm": last["mpjpe_mm"],
                            "pve_mm": last.get("pve_mm")})
    res["size"].sort(key=lambda r: r["n_samples"])
    res["size_eval"] = size_eval(a.size_test, a.size_train)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    has_size = bool(res["size"] or res["size_eval"])
    fig, axes = plt.subplots(1, 2 if has_size else 1, figsize=(11 if has_size else 6, 5.2), squeeze=False)
    ax = axes[0, 0]
    for name, r in res["steps"].items():
        st = np.array([c["step"] for c in r["curve"]])
        ax.plot(st, [c["mpjpe_mm"] for c in r["curve"]], "o-", label=f"{name}: val MPJPE")
        ax.plot(st, [c["pve_mm"] for c in r["curve"]], "s--", alpha=0.6, label=f"{name}: val PVE")
        if r["fit"]:
            xs = np.geomspace(r["fit"]["from_step"], max(st.max() * 4, r["fit"]["from_step"] * 2), 50)
            ax.plot(xs, r["fit"]["A"] * xs ** (-r["fit"]["c"]), ":", color="k", alpha=0.7,
                    label=f"{name}: fit {r['fit']['A']:.0f}·steps^-{r['fit']['c']:.3f}")
    ax.axhline(a.target, color="r", lw=0.8, label=f"target MPJPE {a.target:.0f} mm")
    ax.set_xscale("log")
    ax.set_xlabel("training steps (batch 32)")
    ax.set_ylabel("mm (validation shards)")
    ax.set_title("validation error against steps")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    ax.grid(alpha=0.3, which="both")
    if has_size:
        ax = axes[0, 1]
        if res["size"]:
            ns = [r["n_samples"] for r in res["size"]]
            steps = sorted({r["step"] for r in res["size"]})
            at = ", ".join(f"{s:,}" for s in steps)
            ax.plot(ns, [r["mpjpe_mm"] for r in res["size"]], "o-", label=f"val MPJPE at {at} steps")
            ax.plot(ns, [r["pve_mm"] for r in res["size"]], "s--", label=f"val PVE at {at} steps")
        if res["size_eval"]:
            ev = res["size_eval"]
            ns = [r["n_samples"] for r in ev]
            ax.plot(ns, [r["test"]["mpjpe_mm"] for r in ev], "^-", label="test MPJPE (best checkpoint: step "
                    + ", ".join(f"{r['test']['step']:,}" for r in ev) + ")")
            tr = [r for r in ev if r["train"]]
            if tr:
                ax.plot([r["n_samples"] for r in tr], [r["train"]["mpjpe_mm"] for r in tr], "v:",
                        label="same, on its training shards")
        ax.set_xscale("log")
        all_n = sorted({r["n_samples"] for r in res["size"] + res["size_eval"]})
        ax.set_xticks(all_n, [f"{n:,}" for n in all_n])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("training samples")
        ax.set_ylabel("MPJPE / PVE (mm)")
        ax.set_title("against dataset size")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15))
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "learning_curves.png"), dpi=110)

    with open(os.path.join(a.out, "learning_curves.json"), "w") as f:
        json.dump(res, f, indent=1)
    L = ["## Learning curves and the budget they imply", "",
         "![learning curves](learning_curves.png)", ""]
    for name, r in res["steps"].items():
        L += [f"**{name}** (`{r['run']}`): validation MPJPE / PVE (mm) at each validation:", "",
              "| step | " + " | ".join(str(c["step"]) for c in r["curve"]) + " |",
              "|---" * (len(r["curve"]) + 1) + "|",
              "| MPJPE | " + " | ".join(f"{c['mpjpe_mm']:.1f}" for c in r["curve"]) + " |",
              "| PVE | " + " | ".join(f"{c['pve_mm']:.1f}" for c in r["curve"]) + " |", ""]
        if r["fit"]:
            s = r["steps_to_target"]
            L.append(f"Power-law fit from step {r['fit']['from_step']}: MPJPE ≈ {r['fit']['A']:.0f} · steps^−"
                     f"{r['fit']['c']:.3f}; it reaches {a.target:.0f} mm at ≈ {s:,.0f} steps "
                     f"({s / r['curve'][-1]['step']:.0f}× this run) — a lower bound, since no error floor is assumed.")
            L.append("")
    if res["size"]:
        L += ["Same steps, different dataset sizes (last validation):", "",
              "| training samples | step | val MPJPE | val PVE |", "|---|---|---|---|"]
        L += [f"| {r['n_samples']} | {r['step']} | {r['mpjpe_mm']:.1f} | {r['pve_mm']:.1f} |" for r in res["size"]]
        L.append("")
    if res["size_eval"]:
        L += ["Held-out test set (and the same checkpoint on its own training shards) against dataset size:", "",
              "| training samples | step | test MPJPE | PA-MPJPE | PVE | PVE-T-SC | on training shards: MPJPE "
              "| PVE-T-SC | generalisation gap (MPJPE) |", "|---|---|---|---|---|---|---|---|---|"]
        for r in res["size_eval"]:
            t, tr = r["test"], r["train"]
            tail = (f"{tr['mpjpe_mm']:.1f} | {tr['pve_t_sc_mm']:.1f} | {t['mpjpe_mm'] - tr['mpjpe_mm']:+.1f}"
                    if tr else "– | – | –")
            L.append(f"| {r['n_samples']} | {t['step']} | {t['mpjpe_mm']:.1f} | {t['pa_mpjpe_mm']:.1f} | "
                     f"{t['pve_mm']:.1f} | {t['pve_t_sc_mm']:.1f} | {tail} |")
        L.append("")
    with open(os.path.join(a.out, "learning_curves.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"wrote {a.out}/learning_curves.png, .json, .md")


if __name__ == "__main__":
    main()
