"""Checkpoints: the one place that writes and reads `.pt` files.

A checkpoint holds tensors and plain types only (dict with str/int keys, list, tuple, str, int, float,
bool, None): `save` refuses anything else before writing, and `load` reads with
`torch.load(weights_only=True)`, so a crafted file can never run code — it is refused with a
one-line error. RNG states are stored in plain form (`rng_state` / `restore_rng`).
"""

from __future__ import annotations

import os
import pickle
import random
import re

import numpy as np
import torch

from lasor_shared.atomic import atomic_write
from lasor_shared.errors import LasorError
from lasor_trainer.config import config_from_dict
from lasor_trainer.model import Regressor

_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_plain(obj, where="checkpoint"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: key {k!r} is not a string or integer")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(obj, _PLAIN):
        raise TypeError(f"{where}: {type(obj).__name__} is not a tensor or plain type")


def save(obj: dict, path: str) -> None:
    """Write a checkpoint atomically (temporary file + rename); only tensors and plain types."""
    _check_plain(obj)
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)


def load(path: str, device="cpu", require=("model", "config"), what: str = "checkpoint") -> dict:
    """Read a checkpoint with `weights_only=True`; LasorError (one line) for anything else,
    or when a key of `require` is missing."""
    if not os.path.isfile(path):
        raise LasorError(f"{what} {path}: no such file")
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if m:
            raise LasorError(f"{what} {path}: refused, it holds more than tensors and plain types "
                             f"(a {m.group(1)} object)") from None
        raise LasorError(f"{what} {path}: unreadable (not a torch checkpoint of tensors and plain types)") from None
    except Exception as e:  # truncated, not a torch file, wrong device …
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LasorError(f"{what} {path}: unreadable ({first[:200]})") from None
    if not isinstance(ck, dict):
        raise LasorError(f"{what} {path}: not a lasor-train checkpoint (not a mapping)")
    missing = [k for k in require if k not in ck]
    if missing:
        raise LasorError(f"{what} {path}: not a lasor-train checkpoint (missing {', '.join(missing)})")
    for key in ("config", "body_model", "data", "rng"):
        if not isinstance(ck.get(key, {}), dict):
            raise LasorError(f"{what} {path}: not a lasor-train checkpoint ({key} is not a mapping)")
    return ck


def rng_state(device=None) -> dict:
    """torch / numpy / Python / CUDA RNG states as tensors and plain types."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]), "has_gauss": int(np_state["has_gauss"]),
                  "gauss": float(np_state["gauss"])},
        "python": [py_version, list(py_internal), py_gauss],
        "cuda": torch.cuda.get_rng_state(device) if device is not None and device.type == "cuda" else None,
    }


def restore_rng(state: dict, device=None) -> None:
    """Inverse of `rng_state`."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state({"bit_generator": n["bit_generator"],
                         "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
                         "has_gauss": n["has_gauss"], "gauss": n["gauss"]})
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if device is not None and device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


RESUME_KEYS = ("step", "best_val_pve", "model", "optimizer", "scheduler", "scaler", "config", "rng")


def resume(path: str, cfg, model, opt, sched, scaler, device) -> tuple[int, float]:
    """Restore a run from `latest.pt` (model, optimizer, scheduler, scaler, RNGs); → (step, best val PVE)."""
    ck = load(path, device, require=RESUME_KEYS, what="--resume: checkpoint")
    if ck["config"].get("model") != cfg.to_dict()["model"]:
        raise LasorError("--resume: the checkpoint's model config differs from this config")
    try:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        restore_rng(ck["rng"], device)
        step, best = int(ck["step"]), float(ck["best_val_pve"])
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LasorError(f"--resume: checkpoint {path} does not fit this run ({first[:200]})") from None
    return step, best


def init_weights(path: str, cfg, model, body_sha256: str, device) -> None:
    """Fine-tuning: load a checkpoint's weights into `model` (its model config and body model must match)."""
    ck = load(path, device, what="train.init: checkpoint")
    if ck["config"].get("model") != cfg.to_dict()["model"]:
        raise LasorError(f"train.init: checkpoint {path} has another model config than this run")
    sha = (ck.get("body_model") or {}).get("sha256")
    if sha is not None and sha != body_sha256:
        raise LasorError(f"train.init: checkpoint {path} was trained on another body model (sha256 {sha[:12]}…)")
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        raise LasorError(f"train.init: checkpoint {path} does not fit this model "
                         f"({str(e).strip().splitlines()[0][:200]})") from None


def load_model(path: str, device="cpu"):
    """(model in eval mode, Config, checkpoint dict) of a lasor-train checkpoint."""
    ck = load(path, device)
    try:
        cfg = config_from_dict(ck["config"])
    except LasorError as e:
        raise LasorError(f"checkpoint {path}: {e}") from None
    weights = ck["model"] if isinstance(ck["model"], dict) else {}
    if not all(torch.isfinite(v).all() for v in weights.values() if torch.is_tensor(v) and v.is_floating_point()):
        raise LasorError(f"checkpoint {path}: model weights contain NaN or infinite values")
    model = Regressor(cfg.model).to(device)
    try:
        model.load_state_dict(ck["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        raise LasorError(f"checkpoint {path}: model weights do not match its config "
                         f"({str(e).strip().splitlines()[0][:200]})") from None
    model.eval()
    return model, cfg, ck
