"""One table from several lasor-eval reports on the same test set (used by `make demo`).

    python scripts/compare_reports.py "LABEL=EVAL_DIR/metrics.json" ... [--out comparison.md]

Rows: each report's model, then the mean-body baselines of the first report (same test set, same code).
"""

from __future__ import annotations

import argparse
import json

from lasor_trainer.report_format import fmt

BASELINES = (("mean_body_oracle_orient", "mean body with the TRUE orientation"),
             ("mean_body", "mean body facing the camera"))


def row(name, s):
    return (f"| {name} | {s['n']} | {fmt(s['mpjpe_mm'])} | {fmt(s['pa_mpjpe_mm'])} | {fmt(s['pve_mm'])} | "
            f"{fmt(s['pve_t_sc_mm'])} | {fmt(s.get('sil_iou_pooled'), 3)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", metavar="LABEL=METRICS_JSON")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    lines = ["| predictor | n | MPJPE | PA-MPJPE | PVE | PVE-T-SC | IoU pooled |", "|---|---|---|---|---|---|---|"]
    first = None
    for spec in a.reports:
        label, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"error: {spec!r}: expected LABEL=path/to/metrics.json")
        with open(path) as f:
            m = json.load(f)["metrics"]["all"]["all"]
        first = first or m
        lines.append(row(label, m["model"]))
    for key, name in BASELINES:
        if key in first:
            lines.append(row(name, first[key]))
    text = "\n".join(lines) + "\n\nmm (root-aligned, camera frame); IoU: predicted body vs the full (amodal) mask.\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
