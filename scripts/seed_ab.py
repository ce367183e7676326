"""An A/B comparison repeated over seeds: is a difference between two training variants beyond noise?

    python scripts/seed_ab.py --arm "off=RUN/eval-off-s1,RUN/eval-off-s2,RUN/eval-off-s3" \
        --arm "on=RUN/eval-on-s1,RUN/eval-on-s2,RUN/eval-on-s3" [--by occluder_type] [--out ab.md]

Each arm is a label and the lasor-eval output folders (metrics.json) of its runs, seed by seed in the
same order (run i of each arm shares its seed). Writes a Markdown table: per metric, each arm's mean ±
sample standard deviation over seeds, and the second arm minus the first per seed (paired), with how
many seeds agree on the sign. A difference whose paired values all share a sign and exceed the arms'
seed spread is one the seeds do not explain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

METRICS = (("mpjpe_mm", "MPJPE", 1), ("pa_mpjpe_mm", "PA-MPJPE", 1), ("pve_mm", "PVE", 1),
           ("pve_t_sc_mm", "PVE-T-SC", 2), ("sil_iou_pooled", "IoU pooled", 3))


def arm(text):
    label, _, dirs = text.partition("=")
    paths = [d for d in dirs.split(",") if d]
    if not label or not paths:
        raise argparse.ArgumentTypeError(f"expected LABEL=EVAL_DIR[,EVAL_DIR...], got {text!r}")
    return label, paths


def load(eval_dir: str, by: str | None) -> dict:
    """{bin: model metrics} of one lasor-eval output ('all' plus the bins of `by`)."""
    path = os.path.join(eval_dir, "metrics.json")
    try:
        with open(path) as f:
            m = json.load(f)["metrics"]
        out = {"all": m["all"]["all"]["model"]}
        if by:
            out.update({b: v["model"] for b, v in m[by].items()})
        return out
    except (OSError, ValueError, KeyError) as e:
        raise SystemExit(f"{path}: not a lasor-eval metrics.json with the needed fields ({e})")


def table(arms: list[tuple[str, list[dict]]], bins: list[str]) -> list[str]:
    (la, ra), (lb, rb) = arms
    L = [f"| bin | metric | {la} (mean ± sd, {len(ra)} seeds) | {lb} (mean ± sd) | {lb} − {la}, per seed | "
         "seeds with the same sign |", "|---|---|---|---|---|---|"]
    for b in bins:
        for key, name, nd in METRICS:
            va = [r[b].get(key) for r in ra]
            vb = [r[b].get(key) for r in rb]
            if any(v is None for v in va + vb):
                continue
            d = [y - x for x, y in zip(va, vb)]
            neg, pos = sum(x < 0 for x in d), sum(x > 0 for x in d)

            def ms(v):
                sd = statistics.stdev(v) if len(v) > 1 else 0.0
                return f"{statistics.mean(v):.{nd}f} ± {sd:.{nd}f}"
            L.append(f"| {b} | {name} | {ms(va)} | {ms(vb)} | " + " / ".join(f"{x:+.{nd}f}" for x in d)
                     + f" | {max(neg, pos)} / {len(d)} |")
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arm", type=arm, action="append", required=True,
                    help="LABEL=EVAL_DIR,EVAL_DIR,... (exactly two arms, runs in seed order)")
    ap.add_argument("--by", choices=["occluder_type", "occluded_fraction", "azimuth"], default=None,
                    help="also compare within the bins of this breakdown")
    ap.add_argument("--out", default=None, help="write the table here (Markdown) as well as printing it")
    a = ap.parse_args()
    if len(a.arm) != 2:
        ap.error(f"--arm: exactly two arms are compared, got {len(a.arm)}")
    if len(a.arm[0][1]) != len(a.arm[1][1]):
        ap.error(f"--arm: the arms need the same number of seeds, got {len(a.arm[0][1])} and {len(a.arm[1][1])}")
    arms = [(label, [load(d, a.by) for d in dirs]) for label, dirs in a.arm]
    bins = ["all"] + (list(arms[0][1][0].keys())[1:] if a.by else [])
    text = "\n".join(table(arms, bins)) + "\n"
    print(text, end="")
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(a.out + ".tmp", a.out)


if __name__ == "__main__":
    main()
