"""Trainer configuration: YAML → typed dataclasses; every error names the field.

A config file holds any subset of the sections below (unknown sections/fields are refused);
missing fields keep their defaults. ``load_config(path, overrides)`` also applies dotted overrides
such as ``{"optim.lr": 1e-3}`` (the CLI's ``--set optim.lr=1e-3``).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

import yaml

from lasor_shared.config import from_dict, load_yaml
from lasor_shared.errors import LasorError


@dataclass
class DataConfig:
    val_shards: int = 1            # last N shards (by index) of --data are held out for validation
    val_fraction: float = 0.0      # alternatively a fraction of the shards (used when > 0)
    num_workers: int = 0           # DataLoader workers (each opens its own HDF5 handles)
    shuffle_group: int = 4         # shard-aware shuffling: shards are shuffled, then samples within groups of this many shards
    shard_cache: int = 8           # shards whose small arrays a worker keeps in memory
    max_val_samples: int = 512     # validation subset size (0 = all)


@dataclass
class ProxyConfig:
    input_size: int = 256          # network input side (pixels)
    heatmap_sigma: float = 4.0     # Gaussian σ in pixels at 256² (scaled with input_size)
    input_visibility: list = field(default_factory=lambda: [4])  # keypoint codes a detector would return
    crop_scale: float = 1.2        # square crop side = crop_scale × bbox of the visible evidence
    silhouette: str = "visible"    # input silhouette: 'visible' (modal, what a segmenter sees)


@dataclass
class KeypointConfig:
    """How keypoints reach the model (see lasor_trainer.inputs): 'visible' = legacy (only the codes in
    proxy.input_visibility, exact, no confidences); 'detector' = all keypoints a detector returns, with
    confidences, drawn from the visibility codes in training and in the test protocol."""
    mode: str = "visible"
    min_confidence: float = 0.05       # below: the keypoint is missing
    # position noise σ (per axis) / person height; mediapipe on the shared photo with its joints covered
    # (bench/measure_detector_noise.py): hidden joints' error mean 0.18 / RMS 0.21 of the height, visible 0.047 / median 0.027
    noise_visible: float = 0.02        # visible (code 4)
    noise_self: float = 0.04           # self-occluded (code 1)
    noise_hidden: float = 0.15         # hidden by a person or an object (codes 2, 3): RMS 0.21, as mediapipe's
    drop_hidden: float = 0.2           # P(a hidden keypoint is not returned at all)
    drop_any: float = 0.02             # P(any keypoint is not returned)
    conf_visible: list = field(default_factory=lambda: [0.6, 1.0])
    conf_self: list = field(default_factory=lambda: [0.3, 0.95])
    conf_hidden: list = field(default_factory=lambda: [0.1, 0.9])   # mediapipe: hidden joints' scores mean 0.66
    false_conf_p: float = 0.05         # confidence drawn from the other range (hidden ↔ visible)
    outlier_p: float = 0.02            # gross error: anywhere in the person's box


@dataclass
class AugmentConfig:
    enabled: bool = True
    crop_scale_jitter: float = 0.2     # crop scale ± this (uniform)
    crop_shift: float = 0.05           # crop centre ± this × side
    kp_jitter_p: float = 1.0
    kp_jitter_px: float = 8.0          # ± pixels at 256² (scaled with input_size)
    kp_dropout_p: float = 0.1          # per keypoint
    lr_swap_p: float = 0.1             # swap a left/right pair (shoulders, hips, ...)
    sil_morph_p: float = 0.3           # erode or dilate the silhouette
    sil_morph_px: int = 2              # radius at 256² (scaled)
    sil_noise_p: float = 0.3           # flip random boundary pixels
    sil_noise_rate: float = 0.2
    box_p: float = 0.5                 # random occlusion box on the input (silhouette and heatmaps)
    box_size: float = 0.19             # box side as a fraction of the input (48/256)
    part_removal_p: float = 0.1        # remove one limb segment from the silhouette and its keypoints


@dataclass
class ModelConfig:
    width: int = 64                # ResNet-18 base width (64 = standard)
    layers: list = field(default_factory=lambda: [2, 2, 2, 2])
    ief_iters: int = 3
    hidden: int = 1024
    ief_layers: int = 2            # hidden layers of the IEF MLP (≥ 2)
    dropout: float = 0.5
    cam_scale0: float = 0.9
    keypoint_features: bool = False  # also feed the IEF the heatmaps' soft-argmax (x, y) + peak per keypoint
    image_path: bool = True        # the ResNet encoder on the proxy image
    image_input: str = "proxy"     # 'proxy' (silhouette + 17 heatmaps) or 'silhouette' (one channel)
    keypoint_path: bool = False    # an MLP on the keypoint vector (x, y, confidence) ×17 + crop info
    kp_hidden: int = 1024          # keypoint path width
    kp_blocks: int = 2             # residual blocks of the keypoint path


@dataclass
class LossConfig:
    pose: float = 1.0              # rotation matrices (24×9), camera-frame global orientation
    betas: float = 0.1
    joints3d: float = 1.0          # root-relative, camera frame (m)
    vertices: float = 1.0          # root-relative, camera frame (m)
    keypoints2d: float = 0.1       # COCO-17, normalised crop coordinates, only codes in keypoints2d_visibility
    keypoints2d_visibility: list = field(default_factory=lambda: [4])
    cam: float = 0.05              # weak-perspective camera vs the one implied by the true root position
    silhouette: float = 0.01       # rendered predicted body vs target mask (neural mesh renderer)
    silhouette_target: str = "amodal"  # 'amodal' (full body) or 'modal' (visible, occluder pixels ignored)
    silhouette_size: int = 64      # render/compare resolution
    silhouette_grad_clip: float = 3.0  # clamp renderer vertex-gradient components to k × their mean magnitude (0 = off)
    silhouette_every: int = 1      # apply the silhouette loss every N steps (renderer cost)
    silhouette_start: int = 0      # warm-up: no silhouette loss before this step (while the pose is still poor)
    silhouette_moves_camera: bool = True  # False: the silhouette loss shapes pose/betas only (camera detached)
    silhouette_at_true_root: bool = False  # render the predicted body at the TRUE root (synthetic labels): a pose/shape-only signal
    vertex_subsample: int = 1      # use every k-th vertex in the vertex loss (full body only)
    coarse_cell: float = 0.02      # >0: the loss poses a coarse body (cell in m, lasor_trainer.decimate) — ≈3× cheaper; 0: every vertex


@dataclass
class OptimConfig:
    lr: float = 1e-4
    weight_decay: float = 0.0
    batch_size: int = 32
    steps: int = 250000
    warmup_steps: int = 0
    schedule: str = "constant"     # 'constant' or 'cosine'
    grad_clip: float = 10.0


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "cpu"            # 'cpu', 'cuda', 'auto'
    amp: bool = False              # CUDA only
    threads: int = 0               # torch CPU threads (0 = leave torch's default)
    log_every: int = 20
    val_every: int = 500
    ckpt_every: int = 500
    time_limit_s: float = 0.0      # stop (and checkpoint) after this many seconds (0 = no limit)
    body_model: typing.Optional[str] = None  # SMPL file; None = the embedded model
    renderer_backend: typing.Optional[str] = None  # neural renderer backend ('auto','cpu','neural_renderer')
    init: typing.Optional[str] = None  # fine-tune: start from this checkpoint's weights (fresh optimizer, step 0)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    keypoints: KeypointConfig = field(default_factory=KeypointConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_CHOICES = {
    "proxy.silhouette": ("visible",),
    "keypoints.mode": ("visible", "detector"),
    "model.image_input": ("proxy", "silhouette"),
    "loss.silhouette_target": ("amodal", "modal"),
    "optim.schedule": ("constant", "cosine"),
    "train.device": ("cpu", "cuda", "auto"),
}


# physically sensible upper bounds: beyond them a run cannot fit in memory or cannot train
_UPPER = {
    "proxy.input_size": 1024, "proxy.heatmap_sigma": 64, "proxy.crop_scale": 10, "model.width": 512,
    "model.ief_iters": 20, "model.hidden": 16384, "model.ief_layers": 16, "model.kp_hidden": 16384, "model.kp_blocks": 16, "model.cam_scale0": 100, "model.dropout": 1,
    "loss.silhouette_size": 1024, "loss.coarse_cell": 0.1, "optim.lr": 1.0, "optim.batch_size": 4096, "optim.steps": 10**9,
    "optim.warmup_steps": 10**9, "optim.grad_clip": 1e6, "optim.weight_decay": 1.0, "data.num_workers": 256,
    "data.val_shards": 10**6, "data.shuffle_group": 10**6, "data.shard_cache": 10**4, "train.threads": 1024,
    "augment.crop_scale_jitter": 0.9, "augment.crop_shift": 1.0, "augment.kp_jitter_px": 256,
    "augment.sil_morph_px": 64, "augment.box_size": 1.0,
}


def validate(cfg: Config) -> Config:
    for key, choices in _CHOICES.items():
        sec, name = key.split(".")
        value = getattr(getattr(cfg, sec), name)
        if value not in choices:
            raise LasorError(f"config field {key}: expected one of {', '.join(choices)}, got {value!r}")
    positive = ["proxy.input_size", "model.width", "model.ief_iters", "model.hidden", "optim.batch_size",
                "optim.steps", "loss.silhouette_size", "loss.silhouette_every", "loss.vertex_subsample",
                "train.log_every", "train.val_every", "train.ckpt_every", "data.shuffle_group", "data.shard_cache"]
    for key in positive:
        sec, name = key.split(".")
        if getattr(getattr(cfg, sec), name) <= 0:
            raise LasorError(f"config field {key}: must be > 0, got {getattr(getattr(cfg, sec), name)!r}")
    nonneg = [(s, f.name) for s in ("loss", "augment") for f in dataclasses.fields(getattr(cfg, s))
              if isinstance(getattr(getattr(cfg, s), f.name), (int, float))
              and not isinstance(getattr(getattr(cfg, s), f.name), bool)]
    for sec, name in nonneg + [("optim", "lr"), ("optim", "weight_decay"), ("data", "num_workers"),
                               ("data", "val_shards"), ("train", "time_limit_s")]:
        if getattr(getattr(cfg, sec), name) < 0:
            raise LasorError(f"config field {sec}.{name}: must be ≥ 0, got {getattr(getattr(cfg, sec), name)!r}")
    for sec in ("augment",):
        for f in dataclasses.fields(getattr(cfg, sec)):
            if f.name.endswith("_p") and getattr(getattr(cfg, sec), f.name) > 1:
                raise LasorError(f"config field {sec}.{f.name}: a probability must be in [0, 1]")
    if not 0 <= cfg.data.val_fraction < 1:
        raise LasorError(f"config field data.val_fraction: must be in [0, 1), got {cfg.data.val_fraction}")
    if not isinstance(cfg.model.ief_layers, int) or cfg.model.ief_layers < 2:
        raise LasorError(f"config field model.ief_layers: expected an integer ≥ 2, got {cfg.model.ief_layers!r}")
    if len(cfg.model.layers) != 4 or any((not isinstance(n, int)) or not 1 <= n <= 64 for n in cfg.model.layers):
        raise LasorError(f"config field model.layers: expected 4 integers in 1..64, got {cfg.model.layers!r}")
    if not (cfg.model.image_path or cfg.model.keypoint_path):
        raise LasorError("config fields model.image_path / model.keypoint_path: at least one input path is needed")
    if cfg.model.keypoint_path and cfg.keypoints.mode != "detector":
        raise LasorError("config field keypoints.mode: the keypoint path needs 'detector' (confidences)")
    if cfg.model.kp_hidden <= 0 or cfg.model.kp_blocks < 0:
        raise LasorError("config fields model.kp_hidden / model.kp_blocks: must be > 0 / ≥ 0")
    k = cfg.keypoints
    for name in ("min_confidence", "noise_visible", "noise_self", "noise_hidden", "drop_hidden", "drop_any",
                 "false_conf_p", "outlier_p"):
        if not 0 <= getattr(k, name) <= 1:
            raise LasorError(f"config field keypoints.{name}: expected a value in [0, 1], got {getattr(k, name)!r}")
    for name in ("conf_visible", "conf_self", "conf_hidden"):
        r = getattr(k, name)
        if (not isinstance(r, list) or len(r) != 2 or not all(isinstance(x, (int, float)) for x in r)
                or not 0 <= r[0] <= r[1] <= 1):
            raise LasorError(f"config field keypoints.{name}: expected [low, high] within [0, 1], got {r!r}")
    for key in ("proxy.input_visibility", "loss.keypoints2d_visibility"):
        sec, name = key.split(".")
        codes = getattr(getattr(cfg, sec), name)
        if any((not isinstance(c, int)) or not 0 <= c <= 4 for c in codes):
            raise LasorError(f"config field {key}: expected visibility codes in 0..4, got {codes!r}")
    if cfg.proxy.crop_scale <= 0:
        raise LasorError("config field proxy.crop_scale: must be > 0")
    for key, hi in _UPPER.items():
        sec, name = key.split(".")
        if getattr(getattr(cfg, sec), name) > hi:
            raise LasorError(f"config field {key}: must be <= {hi:g}, got {getattr(getattr(cfg, sec), name)!r}")
    if not 0 <= cfg.train.seed <= 2**63 - 1:
        raise LasorError(f"config field train.seed: must be in [0, 2**63 - 1], got {cfg.train.seed!r}")
    return cfg


def parse_value(text: str):
    """A `--set key=value` value: YAML scalar/list syntax."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def config_from_dict(data: dict | None, overrides: dict | None = None) -> Config:
    data = dict(data or {})
    for key, value in (overrides or {}).items():
        parts = key.split(".")
        if len(parts) != 2:
            raise LasorError(f"override {key!r}: expected section.field, e.g. optim.lr")
        sec = data.setdefault(parts[0], {})
        if not isinstance(sec, dict):
            raise LasorError(f"config section {parts[0]}: expected a mapping")
        sec = dict(sec)
        sec[parts[1]] = value
        data[parts[0]] = sec
    return validate(from_dict(Config, data, ""))


def load_config(path: str | None = None, overrides: dict | None = None) -> Config:
    data = {}
    if path:
        data = load_yaml(path)
        if data is None:
            raise LasorError(f"config {path}: empty (omit --config for the defaults)")
        if not isinstance(data, dict):
            raise LasorError(f"config {path}: expected a mapping at the top level")
        try:
            config_from_dict(data)  # the file alone: its errors name the file
        except LasorError as e:
            raise LasorError(f"config {path}: {e}") from None
    return config_from_dict(data, overrides)
