"""Equal-time comparison of designs: validation error against training wall-clock minutes.

    python scripts/equal_time.py --run cnn=out/cmp/cnn-s0 --run cnn=out/cmp/cnn-s1 \
        --run keypoints=out/cmp/kp-s0 --run keypoints=out/cmp/kp-s1 --out DIR [--title ...]

Each --run NAME=RUN_DIR is one training run (its val.jsonl: validation MPJPE / PVE with `train_s`, the
training seconds so far, validation excluded); several runs under one NAME are seeds of that design:
the plot draws each run and the table gives, at common minute marks, the mean over the seeds and
their spread (max − min), interpolated between validations. Runs must share data and machine —
write how they were run in --note. Writes DIR/equal_time.png, .json and .md (a model-card section).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
from learning_curves import pair  # NAME=RUN_DIR arguments, as learning_curves.py reads them (same folder)


def read_curve(run_dir: str) -> list[dict]:
    path = os.path.join(run_dir, "val.jsonl")
    try:
        with open(path) as f:
            rows = [json.loads(ln) for ln in f if ln.strip()]
    except OSError as e:
        raise SystemExit(f"{path}: unreadable ({e})")
    rows = [r for r in rows if "train_s" in r]
    if not rows:
        raise SystemExit(f"{path}: no validation lines with train_s (runs from before the wall-clock log)")
    return rows


def at_minutes(rows: list[dict], key: str, minutes: np.ndarray) -> np.ndarray:
    t = np.array([r["train_s"] for r in rows]) / 60.0
    y = np.array([r[key] for r in rows])
    out = np.interp(minutes, t, y)
    out[(minutes < t[0]) | (minutes > t[-1])] = np.nan
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=pair, action="append", required=True, help="NAME=RUN_DIR (repeat NAME for seeds)")
    ap.add_argument("--marks", default="", help="comma list of minutes for the table (default: 5 evenly spaced)")
    ap.add_argument("--note", default="", help="how the runs were made (data, machine, threads)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs: dict[str, list] = {}
    for name, d in a.run:
        runs.setdefault(name, []).append((d, read_curve(d)))
    t_end = min(max(r["train_s"] for r in rows) for lst in runs.values() for _, rows in lst) / 60.0
    marks = (np.array([float(x) for x in a.marks.split(",")]) if a.marks
             else np.round(np.linspace(t_end / 5, t_end, 5), 1))
    res = {"note": a.note, "marks_min": marks.tolist(), "designs": {}}
    import warnings

    warnings.filterwarnings("ignore", "Mean of empty slice|All-NaN slice")
    for name, lst in runs.items():
        m = np.stack([at_minutes(rows, "mpjpe_mm", marks) for _, rows in lst])
        p = np.stack([at_minutes(rows, "pve_mm", marks) for _, rows in lst])
        res["designs"][name] = {"runs": [d for d, _ in lst], "curves": [rows for _, rows in lst],
                                "mpjpe_mean": np.nanmean(m, 0).tolist(), "mpjpe_spread": (np.nanmax(m, 0) - np.nanmin(m, 0)).tolist(),
                                "pve_mean": np.nanmean(p, 0).tolist()}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.6))
    for i, (name, lst) in enumerate(runs.items()):
        for j, (d, rows) in enumerate(lst):
            ax.plot([r["train_s"] / 60 for r in rows], [r["mpjpe_mm"] for r in rows], "o-", ms=3, color=f"C{i}",
                    alpha=0.9 if j == 0 else 0.55, label=name if j == 0 else None)
    ax.set_xlabel("training wall-clock minutes (validation excluded)")
    ax.set_ylabel("validation MPJPE (mm)")
    ax.set_title("equal-time comparison (each line one seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(a.out, exist_ok=True)
    fig.savefig(os.path.join(a.out, "equal_time.png"), dpi=110)
    with open(os.path.join(a.out, "equal_time.json"), "w") as f:
        json.dump(res, f, indent=1)
    L = ["## Equal-time comparison", "", "![equal-time learning curves](equal_time.png)", ""]
    if a.note:
        L += [a.note, ""]
    L += ["Validation MPJPE (mm) at equal training minutes: mean over seeds (spread max − min):", "",
          "| design | seeds | " + " | ".join(f"{x:g} min" for x in marks) + " |", "|---|---|" + "---|" * len(marks)]
    for name, r in res["designs"].items():
        cells = [("–" if not np.isfinite(mu) else f"{mu:.1f} ({sp:.1f})") for mu, sp in zip(r["mpjpe_mean"], r["mpjpe_spread"])]
        L.append(f"| {name} | {len(r['runs'])} | " + " | ".join(cells) + " |")
    L += ["", "Each run (validation MPJPE at the same marks; `–` = before its first or after its last validation):", "",
          "| run | " + " | ".join(f"{x:g} min" for x in marks) + " |", "|---|" + "---|" * len(marks)]
    for name, lst in runs.items():
        for d, rows in lst:
            v = at_minutes(rows, "mpjpe_mm", marks)
            L.append(f"| {name}: `{d}` | " + " | ".join("–" if not np.isfinite(x) else f"{x:.1f}" for x in v) + " |")
    with open(os.path.join(a.out, "equal_time.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print(f"wrote {a.out}/equal_time.png, .json, .md")


if __name__ == "__main__":
    main()
