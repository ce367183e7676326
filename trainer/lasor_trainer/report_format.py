"""Markdown for evaluation reports: the one metric formatter and the ablation tables (used by the model
card, scripts/ablations.py and scripts/compare_reports.py)."""

from __future__ import annotations

ABLATION_METRICS = (("mpjpe_mm", "MPJPE", 1), ("pa_mpjpe_mm", "PA-MPJPE", 1), ("pve_mm", "PVE", 1),
                    ("pve_t_sc_mm", "PVE-T-SC", 1), ("sil_iou_pooled", "IoU pooled", 3))


def fmt(x, nd: int = 1) -> str:
    """A metric with `nd` decimals; '–' when it was not measured (None)."""
    return "–" if x is None else f"{x:.{nd}f}"


def ablation_tables(rows: list[dict]) -> list[str]:
    """One table per claim, its variants side by side in each cell ("A / B"), a row per subset."""
    claims: dict[str, dict[str, dict[str, dict]]] = {}  # claim → variant → subset → row (in file order)
    for r in rows:
        claims.setdefault(r["claim"], {}).setdefault(r["variant"], {})[r.get("subset", "all")] = r
    L = []
    for claim, variants in claims.items():
        names = list(variants)
        L += ["", f"### {claim}: {' vs '.join(names)}", "",
              "| subset | n | " + " | ".join(f"{t} ({' / '.join(names)})" for _, t, _ in ABLATION_METRICS) + " |",
              "|---|---|" + "---|" * len(ABLATION_METRICS)]
        for subset, first in variants[names[0]].items():
            cells = [" / ".join(fmt(variants[v].get(subset, {}).get(k), nd) for v in names)
                     for k, _, nd in ABLATION_METRICS]
            L.append(f"| {subset} | {first.get('n', '–')} | " + " | ".join(cells) + " |")
    return L
