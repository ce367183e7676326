"""Are two checkpoints bit-identical? Compares every tensor of the model and optimizer state with torch.equal.

Used to prove a refactor changes no behaviour: train trainer/configs/test-tiny.yaml on the same dataset before and
after, then `python scripts/compare_checkpoints.py RUN_A/latest.pt RUN_B/latest.pt` (exit 1 on any difference).
"""
import sys

import torch


def _tensors(obj, prefix=""):
    """(path, tensor) for every tensor inside nested dicts/lists/tuples of `obj`."""
    if torch.is_tensor(obj):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key in sorted(obj, key=str):
            yield from _tensors(obj[key], f"{prefix}/{key}")
    elif isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            yield from _tensors(item, f"{prefix}/{i}")


def differences(path_a: str, path_b: str) -> list[str]:
    """One line per model/optimizer tensor that differs (or exists in only one of the two checkpoints)."""
    from lasor_trainer import checkpoint

    a, b = (checkpoint.load(p) for p in (path_a, path_b))  # tensors and plain types only: never runs code
    problems = []
    for part in ("model", "optimizer"):
        ta, tb = dict(_tensors(a[part], part)), dict(_tensors(b[part], part))
        problems += [f"{k}: only in one checkpoint" for k in sorted(set(ta) ^ set(tb))]
        problems += [f"{k}: differs" for k in sorted(set(ta) & set(tb)) if not torch.equal(ta[k], tb[k])]
        if not ta:
            problems.append(f"{part}: no tensors")
    return problems


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: compare_checkpoints.py A.pt B.pt")
    found = differences(sys.argv[1], sys.argv[2])
    print("\n".join(found) if found else "identical: every model and optimizer tensor is equal")
    sys.exit(1 if found else 0)
