"""The pretrained model shipped inside the package (`lasor_trainer/pretrained/`).

`lasor-eval` and `lasor-predict` use it when no `--checkpoint` is given. Its model card
(`MODEL_CARD.md`, same folder) says how it was trained, on what, and how well it does.
`export_checkpoint` turns a training checkpoint into this inference-only form: model weights, the
trainer config, the body model's id/sha256 and provenance — no optimizer, RNG or data paths.
"""

from __future__ import annotations

import os
import sys
from importlib import resources

import torch

from lasor_shared.errors import LasorError
from lasor_trainer import checkpoint

SHIPPED_NAME = "standard.pt"
CARD_NAME = "MODEL_CARD.md"


def shipped_dir() -> str:
    return str(resources.files("lasor_trainer") / "pretrained")


def shipped_checkpoint() -> str:
    """Path of the shipped checkpoint; a one-line error when this install has none."""
    path = os.path.join(shipped_dir(), SHIPPED_NAME)
    if not os.path.isfile(path):
        raise LasorError(f"no --checkpoint given and this install ships no pretrained model ({path} is missing)")
    return path


def resolve_checkpoint(path: str | None) -> str:
    """The user's --checkpoint, or the shipped model when none is given."""
    return shipped_checkpoint() if path is None else path


def export_checkpoint(src: str, dst: str, provenance: dict | None = None, half: bool = True) -> dict:
    """Write an inference-only copy of training checkpoint `src` to `dst`. half: floating-point weights
    stored as float16 (half the file; `load_state_dict` turns them back into the model's float32 — the
    largest output difference this rounding makes is measured in the model card)."""
    ck = checkpoint.load(src)
    out = {
        "version": ck.get("version", 1),
        "kind": "lasor-pretrained",
        "step": ck.get("step"),
        "val_pve": ck.get("val_pve"),
        "model": {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()).contiguous()
                  for k, v in ck["model"].items()},
        "config": ck["config"],
        "body_model": {"id": ck["body_model"]["id"], "sha256": ck["body_model"]["sha256"], "path": None},
        "data": {"root": None, "train_shards": [], "val_shards": []},
        "provenance": dict(provenance or {}),
    }
    checkpoint.save(out, dst)
    return out


def _main():  # python -m lasor_trainer.pretrained SRC DST
    if len(sys.argv) != 3:
        sys.exit("usage: python -m lasor_trainer.pretrained TRAIN_CHECKPOINT OUT.pt")
    try:
        out = export_checkpoint(sys.argv[1], sys.argv[2])
    except LasorError as e:
        sys.exit(f"error: {e}")
    n = sum(v.numel() for v in out["model"].values())
    print(f"wrote {sys.argv[2]}: step {out['step']}, {n / 1e6:.2f} M values, {os.path.getsize(sys.argv[2]) / 1e6:.1f} MB")


if __name__ == "__main__":
    _main()
