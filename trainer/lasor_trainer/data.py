"""Streaming access to lasor shards (HDF5) for training and evaluation.

- `open_dataset(dir)` reads and (optionally) verifies the dataset through `lasor_shared.shards` (the
  generator↔trainer contract); it refuses a dataset whose shards do not match the manifest or whose
  body model differs from the one the trainer uses.
- `ShardDataset` is map-style: an item is `(epoch, global_index)`. Each process (DataLoader worker)
  reads a shard's per-sample arrays (masks included) in one open of its file and keeps those of the
  `data.shard_cache` most recently used shards; no file handle stays open — the dataset is never
  loaded whole, and memory does not grow with its size.
- `ShardBatchSampler` does shard-aware shuffling: each epoch shuffles the shard order, then the
  samples within groups of `group` consecutive (shuffled) shards, so a worker touches few shards at a
  time. The order is a pure function of (seed, epoch), and `start_batch` skips what a resumed run
  already consumed — resuming gives exactly the same batches.
- Held-out split by shard: the last `val_shards` shards (or a fraction) never appear in training.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import h5py
import numpy as np
import torch

from lasor_shared import shards
from lasor_shared.errors import LasorError
from lasor_trainer import augment as aug
from lasor_trainer import inputs
from lasor_trainer import proxy
from lasor_trainer.config import Config

# the per-sample fields of the target person (fixed shape: no image, no other-person or object slots)
SMALL_FIELDS = tuple(k for k, (shape, _, _) in shards.FIELDS.items() if not {"H", "W", "KP", "KO"} & set(shape))
REQUIRED_FIELDS = ("mask",) + SMALL_FIELDS


@dataclass
class DatasetInfo:
    root: str
    manifest: dict
    shards: list            # absolute paths, sorted by index
    counts: list            # samples per shard
    image_size: tuple       # (H, W)
    body_model_sha256: str | None
    body_model_id: str | None
    extra: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(sum(self.counts))


def open_dataset(root: str, verify: bool = True, expected_sha=None) -> DatasetInfo:
    """Read (and verify) a dataset directory; refuse it if, for a gender it uses, its body model's sha256
    differs from `expected_sha(gender)` (the trainer's model for that gender)."""
    mpath = os.path.join(root, shards.MANIFEST)
    if not os.path.isdir(root):
        raise LasorError(f"dataset {root}: no such directory")
    if not os.path.isfile(mpath):
        raise LasorError(f"dataset {root}: no manifest.json (an unfinished or foreign dataset)")
    manifest = shards.read_manifest(root)
    if not manifest["shards"]:
        raise LasorError(f"{mpath}: no shards listed")
    if verify:
        problems = shards.verify_dataset(root)
        if problems:
            raise LasorError(f"dataset {root} does not verify: {problems[0]}")
    paths = [os.path.join(root, r["file"]) for r in manifest["shards"]]
    counts, size, sha, mid = _read_shards(root, paths)
    sha = sha or (manifest.get("body_model") or {}).get("sha256")
    mid = mid or (manifest.get("body_model") or {}).get("id")
    if isinstance(mid, bytes):
        mid = mid.decode()
    if expected_sha is not None:
        _check_body_model(root, manifest, sha, mid, expected_sha)
    return DatasetInfo(root, manifest, paths, counts, size, sha, None if mid is None else str(mid))


def _read_shards(root: str, paths: list) -> tuple[list, tuple, str | None, str | None]:
    """(samples per shard, mask size, body model sha256, body model id) from the shards' fields and attributes;
    refuses a missing or unreadable shard, missing fields, or shards made with different body models."""
    counts, sha, mid, size = [], None, None, None
    for p in paths:
        if not os.path.isfile(p):
            raise LasorError(f"{root}: shard {os.path.basename(p)} listed in manifest.json is missing")
        try:
            with h5py.File(p, "r") as f:
                missing = [k for k in REQUIRED_FIELDS if k not in f]
                if missing:
                    raise LasorError(f"{p}: missing field(s) {', '.join(missing)}; run lasor-datagen verify")
                counts.append(int(f["mask"].shape[0]))
                a = dict(f.attrs)
                size = tuple(f["mask"].shape[1:3])
        except (OSError, RuntimeError, KeyError, ValueError) as e:  # h5py's errors for a damaged file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LasorError(f"{p}: not a readable HDF5 shard ({first[:200]}); run lasor-datagen verify") from None
        s = a.get("body_model_sha256")
        s = s.decode() if isinstance(s, bytes) else s
        if sha is None:
            sha = s
        elif s is not None and s != sha:
            raise LasorError(f"{p}: body model sha256 differs from the other shards")
        mid = mid or a.get("body_model_id")
    return counts, size, sha, mid


def _check_body_model(root: str, manifest: dict, sha: str | None, mid, expected_sha) -> None:
    """Refuse a dataset whose body model (per gender it uses) is not the trainer's `expected_sha(gender)`."""
    per_gender = (manifest.get("inputs") or {}).get("body_models") or {}
    if not per_gender:
        if sha is None:
            raise LasorError(f"dataset {root}: manifest names no body model sha256; cannot check it matches the trainer's")
        per_gender = {"neutral": sha} if sha == expected_sha("neutral") else {"?": sha}
    for g, s in per_gender.items():
        want = expected_sha(g) if g in shards.GENDERS else None
        if s != want:
            raise LasorError(f"dataset {root} was made with a different body model ({mid}, {g}: sha256 "
                             f"{str(s)[:12]}) than the trainer's ({str(want)[:12] if want else 'none for ' + g}); "
                             "pass the same body model with train.body_model")


def split_shards(n_shards: int, val_shards: int, val_fraction: float):
    """(train shard ids, val shard ids): the last shards are held out."""
    n_val = int(round(n_shards * val_fraction)) if val_fraction > 0 else val_shards
    n_val = min(max(n_val, 0), n_shards - 1) if n_shards > 1 else 0
    return list(range(n_shards - n_val)), list(range(n_shards - n_val, n_shards))


class ShardDataset(torch.utils.data.Dataset):
    """Samples of the chosen shards as network inputs + targets (see the module docstring)."""

    def __init__(self, info: DatasetInfo, shard_ids, cfg: Config, train: bool, seed: int = 0):
        self.info, self.cfg, self.train, self.seed = info, cfg, train, seed
        self.shard_ids = list(shard_ids)
        counts = [info.counts[i] for i in self.shard_ids]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._pid = None
        self._cache: OrderedDict = OrderedDict()

    def __len__(self):
        return int(self.offsets[-1])

    # ---- per-process HDF5 access ----
    def _small(self, s: int):
        """Shard s's per-sample arrays, read whole in one open of its file (batches use all of it) and
        kept for the `shard_cache` most recently used shards; no file stays open, so memory does not
        grow with the number of shards a run touches."""
        if self._pid != os.getpid():  # a forked worker: never share the parent's cache
            self._pid, self._cache = os.getpid(), OrderedDict()
        if s in self._cache:
            self._cache.move_to_end(s)
            return self._cache[s]
        with h5py.File(self.info.shards[s], "r") as f:
            arrays = {k: f[k][()] for k in SMALL_FIELDS + ("mask",)}
        self._cache[s] = arrays
        while len(self._cache) > self.cfg.data.shard_cache:
            self._cache.popitem(last=False)
        return arrays

    def locate(self, gidx: int):
        j = int(np.searchsorted(self.offsets, gidx, side="right") - 1)
        return self.shard_ids[j], int(gidx - self.offsets[j])

    def raw(self, gidx: int) -> dict:
        s, i = self.locate(gidx)
        try:
            small = self._small(s)
            out = {k: v[i] for k, v in small.items()}
        except (OSError, RuntimeError, KeyError, ValueError, IndexError) as e:  # a damaged shard (--no-verify)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise LasorError(f"{self.info.shards[s]}: unreadable sample {i} ({first[:200]}); "
                             "run lasor-datagen verify") from None
        out["shard"], out["local"] = s, i
        return out

    def __getitem__(self, item):
        epoch, gidx = item if isinstance(item, tuple) else (0, item)
        rng = np.random.default_rng([self.seed, int(epoch), int(gidx)])
        return make_sample(self.raw(int(gidx)), self.cfg, rng if self.train else None, int(gidx))

    def close(self):
        self._cache.clear()


def prepare_input(visible: np.ndarray, kp: np.ndarray, conf: np.ndarray, cfg: Config,
                  rng: np.random.Generator | None = None, scale: float | None = None, shift=(0.0, 0.0)):
    """What the model input is made of, from a visible mask and image keypoints with confidences
    (the convention of `lasor_trainer.inputs`; 'visible' mode: confidence 1 = present, 0 = absent).

    Returns ((silhouette (S,S), keypoints (17,2) crop px, present (17,), confidence (17,)) as fed to
    the model, (x0, y0, side) crop box, A image→crop affine, the given keypoints in crop pixels).
    With an rng the input is augmented (training); inference calls this with rng=None — the same crop.
    """
    S = cfg.proxy.input_size
    scale = cfg.proxy.crop_scale if scale is None else scale
    min_conf = cfg.keypoints.min_confidence if cfg.keypoints.mode == "detector" else 0.5
    kp, conf, present = inputs.sanitize(kp, conf, min_conf)
    x0, y0, side = proxy.crop_box(visible, kp, present, max(scale, 0.5), shift)
    A = proxy.crop_affine(x0, y0, side, S)
    sil = proxy.crop_mask(visible.astype(np.uint8), x0, y0, side, S) if cfg.model.image_path else None
    kp_crop = proxy.transform_points(A, kp).astype(np.float32)
    kp_in, present_in, conf_in = kp_crop, present, conf
    if rng is not None:
        sil, kp_in, present_in, conf_in = aug.augment_proxy(sil, kp_crop, present, kp_crop, cfg.augment, rng, S, conf)
    return (sil, kp_in, present_in, conf_in), (x0, y0, side), A, kp_crop


def model_inputs(parts, box, K_image: np.ndarray, cfg: Config) -> dict:
    """The per-sample model inputs (numpy) from `prepare_input`'s parts: the proxy's pieces for the image
    path (`collate` draws the heatmaps of a whole batch), the keypoint vector and crop info for the
    keypoint path (`lasor_trainer.inputs`)."""
    sil, kp_in, present_in, conf_in = parts
    out = {}
    if cfg.model.image_path:
        heat = cfg.model.image_input == "proxy"  # 'silhouette': one channel, no heatmaps
        out.update(sil_in=np.asarray(sil, np.float32),
                   kp_in=np.asarray(kp_in, np.float32) if heat else np.zeros((0, 2), np.float32),
                   present_in=np.asarray(present_in, bool) if heat else np.zeros(0, bool),
                   heatmap_sigma=np.float32(proxy.heatmap_sigma(cfg.proxy.heatmap_sigma, cfg.proxy.input_size)))
    if cfg.model.keypoint_path:
        out.update(kp_feat=inputs.keypoint_vector(np.asarray(kp_in, np.float32), conf_in, present_in,
                                                  cfg.proxy.input_size),
                   crop_info=inputs.crop_info(*box, K_image))
    return out


def make_input(visible: np.ndarray, kp: np.ndarray, conf: np.ndarray, cfg: Config, K_image: np.ndarray):
    """Inference: a batch of one (torch tensors) from a mask, keypoints and confidences — exactly the
    evaluation path of `make_sample`. Returns (batch, crop box, A image→crop)."""
    parts, box, A, _ = prepare_input(visible, kp, conf, cfg)
    return collate([model_inputs(parts, box, K_image, cfg)]), box, A


def source_keypoints(raw: dict, cfg: Config, rng: np.random.Generator | None, index: int):
    """(keypoints (17,2) image px, confidence (17,)) a keypoint source would give for a shard sample:
    'detector' mode draws them (`inputs.simulate_detector`; the test protocol with a fixed per-sample
    seed), 'visible' mode gives the exact keypoints whose codes are in proxy.input_visibility."""
    kp = raw["keypoints_coco"].astype(np.float64)
    vis = raw["visibility_coco"].astype(np.int64)
    if cfg.keypoints.mode == "detector":
        det_rng = rng if rng is not None else np.random.default_rng([inputs.EVAL_SEED, int(index)])
        return inputs.simulate_detector(kp, vis, cfg.keypoints, det_rng)
    return kp, np.isin(vis, cfg.proxy.input_visibility).astype(np.float32)


def make_sample(raw: dict, cfg: Config, rng: np.random.Generator | None, index: int = 0) -> dict:
    """One training/eval item: model inputs, crop intrinsics and targets (all numpy)."""
    ss = cfg.loss.silhouette_size
    a = cfg.augment
    mask = raw["mask"]
    visible, amodal = (mask & 1) > 0, (mask & 2) > 0
    occl = (mask & 12) > 0
    kp_true = raw["keypoints_coco"].astype(np.float64)
    vis = raw["visibility_coco"].astype(np.int64)
    kp_src, conf = source_keypoints(raw, cfg, rng, index)
    scale, shift = cfg.proxy.crop_scale, (0.0, 0.0)
    augmenting = rng is not None and a.enabled
    if augmenting:
        scale = scale + rng.uniform(-a.crop_scale_jitter, a.crop_scale_jitter)
        shift = tuple(rng.uniform(-a.crop_shift, a.crop_shift, 2))
    parts, (x0, y0, side), A, _ = prepare_input(visible, kp_src, conf, cfg, rng if augmenting else None, scale, shift)
    K = (A @ raw["cam_K"].astype(np.float64)).astype(np.float32)
    out = model_inputs(parts, (x0, y0, side), raw["cam_K"], cfg)
    if cfg.loss.silhouette > 0 or rng is None:
        if cfg.loss.silhouette_target == "amodal":
            target = proxy.crop_mask(amodal.astype(np.uint8), x0, y0, side, ss)
            weight = np.ones_like(target)
        else:  # modal: the visible mask; pixels an occluder covers (where the body may hide) are ignored
            target = proxy.crop_mask(visible.astype(np.uint8), x0, y0, side, ss)
            weight = 1.0 - proxy.crop_mask((occl & ~visible).astype(np.uint8), x0, y0, side, ss)
        amodal_t = target if cfg.loss.silhouette_target == "amodal" else proxy.crop_mask(amodal.astype(np.uint8), x0, y0, side, ss)
        out.update(sil_target=target.astype(np.float32), sil_weight=weight.astype(np.float32),
                   sil_amodal=amodal_t.astype(np.float32))
    out.update({
        "K": K,
        "kp2d": proxy.transform_points(A, kp_true).astype(np.float32),
        "kp_vis": vis.astype(np.int64),
        # real benchmarks (SSP-3D, 3DPW) carry no per-joint visibility: their joints count as visible (4)
        "joint_vis": np.asarray(raw.get("visibility_joints", np.full(24, 4)), np.int64),
        "kp_conf": np.asarray(parts[3], np.float32),
        "pose": raw["pose"].astype(np.float32),
        "betas": raw["betas"].astype(np.float32),
        "gender": np.int64(raw["gender"]),
        "cam_R": raw["cam_R"].astype(np.float32),
        "joints3d": raw["joints3d"].astype(np.float32),
        "occluder_type": np.int64(raw["occluder_type"]),
        "visible_fraction": np.float32(raw["visible_fraction"]),
        "azimuth": np.float32(raw["azimuth"]),
        "index": np.int64(index),
        "crop_scale": np.float32(A[0, 0]),
        **({} if rng is not None else eval_silhouette(amodal, raw["cam_K"])),
    })
    return out


EVAL_IOU_SIZE = 256     # silhouette IoU resolution, the same for every model
EVAL_IOU_SCALE = 1.2    # crop side = this × the longer side of the full-body mask's bounding box


def eval_silhouette(amodal: np.ndarray, cam_K: np.ndarray) -> dict:
    """Evaluation-only fields: the full-body mask in a fixed EVAL_IOU_SIZE² crop around its own
    bounding box (independent of the model's input crop and silhouette size) and that crop's K."""
    if amodal.any():
        x0, y0, side = proxy.crop_box(amodal, None, None, EVAL_IOU_SCALE)
    else:
        x0, y0, side = 0, 0, max(amodal.shape)
    A = proxy.crop_affine(x0, y0, side, EVAL_IOU_SIZE)
    return {"sil_eval": (proxy.crop_mask(amodal.astype(np.uint8), x0, y0, side, EVAL_IOU_SIZE) >= 0.5),
            "K_eval": (A @ cam_K.astype(np.float64)).astype(np.float32)}


class ShardBatchSampler(torch.utils.data.Sampler):
    """Shard-aware shuffled batches of (epoch, index) items, endless, deterministic in (seed, epoch)."""

    def __init__(self, dataset: ShardDataset, batch_size: int, seed: int, group: int = 4,
                 start_epoch: int = 0, start_batch: int = 0, drop_last: bool = True):
        self.ds, self.bs, self.seed, self.group = dataset, batch_size, seed, group
        self.start_epoch, self.start_batch, self.drop_last = start_epoch, start_batch, drop_last
        if len(dataset) < batch_size:
            raise LasorError(f"training set has {len(dataset)} samples, fewer than batch size {batch_size}")

    def batches_per_epoch(self) -> int:
        return len(self.ds) // self.bs

    def epoch_order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 7919, epoch])
        n = len(self.ds.shard_ids)
        order = rng.permutation(n)
        out = []
        for g in range(0, n, self.group):
            idx = np.concatenate([np.arange(self.ds.offsets[j], self.ds.offsets[j + 1]) for j in order[g:g + self.group]])
            out.append(rng.permutation(idx))
        return np.concatenate(out)

    def __iter__(self):
        epoch, b0 = self.start_epoch, self.start_batch
        while True:
            order = self.epoch_order(epoch)
            nb = self.batches_per_epoch()
            for b in range(b0, nb):
                yield [(epoch, int(i)) for i in order[b * self.bs:(b + 1) * self.bs]]
            epoch, b0 = epoch + 1, 0

    def __len__(self):  # endless; DataLoader only needs this for its own bookkeeping
        return 1 << 30


def collate(items):
    """Stack samples into a batch; the proxy's parts become the network's "input" (B,18,S,S)."""
    parts = ("sil_in", "kp_in", "present_in", "heatmap_sigma")
    out = {k: torch.as_tensor(np.stack([it[k] for it in items])) for k in items[0] if k not in parts}
    if "sil_in" in items[0]:  # the image path's input
        out["input"] = proxy.make_proxy_batch(*(np.stack([it[k] for it in items]) for k in parts[:3]),
                                              float(items[0]["heatmap_sigma"]))
    return out


def worker_init(_):
    torch.set_num_threads(1)
