"""Trainer configuration: YAML → typed dataclasses; every error names the field.

Validated like the recipe (`lasor_shared.config`): bounds in each field's metadata (`ge`/`gt`/`le`/`lt`),
choices as `Literal`, checks across fields in each dataclass's `validate(where)`.
A config file holds any subset of the sections below (unknown sections/fields are refused);
missing fields keep their defaults. ``load_config(path, overrides)`` also applies dotted overrides
such as ``{"optim.lr": 1e-3}`` (the CLI's ``--set optim.lr=1e-3``).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Literal

import yaml

from lasor_shared.config import from_dict, load_yaml
from lasor_shared.errors import LasorError


def _bounds(default, **limits):
    """A field with bounds `ge`/`gt`/`le`/`lt`, checked by `lasor_shared.config.from_dict` when it is given."""
    return field(default=default, metadata=limits)


def _probability(default):
    return _bounds(default, ge=0, le=1)


def _check_codes(codes: list, where: str) -> None:
    """Visibility codes (lasor_shared.keypoints: 0..4)."""
    if any((not isinstance(c, int)) or not 0 <= c <= 4 for c in codes):
        raise LasorError(f"{where}: expected visibility codes in 0..4, got {codes!r}")


@dataclass
class DataConfig:
    val_shards: int = _bounds(1, ge=0, le=10**6)   # last N shards (by index) of --data are held out for validation
    val_fraction: float = _bounds(0.0, ge=0, lt=1)  # alternatively a fraction of the shards (used when > 0)
    num_workers: int = _bounds(0, ge=0, le=256)     # DataLoader workers (each opens its own HDF5 handles)
    shuffle_group: int = _bounds(4, gt=0, le=10**6)  # shard-aware shuffling: shards are shuffled, then samples within groups of this many shards
    shard_cache: int = _bounds(8, gt=0, le=10**4)   # shards whose small arrays a worker keeps in memory
    max_val_samples: int = 512     # validation subset size (0 = all)


@dataclass
class ProxyConfig:
    input_size: int = _bounds(256, gt=0, le=1024)   # network input side (pixels)
    heatmap_sigma: float = _bounds(4.0, le=64)      # Gaussian σ in pixels at 256² (scaled with input_size)
    input_visibility: list = field(default_factory=lambda: [4])  # keypoint codes a detector would return
    crop_scale: float = _bounds(1.2, gt=0, le=10)   # square crop side = crop_scale × bbox of the visible evidence
    silhouette: Literal["visible"] = "visible"      # input silhouette: 'visible' (modal, what a segmenter sees)

    def validate(self, where: str) -> None:
        _check_codes(self.input_visibility, f"{where}.input_visibility")


@dataclass
class KeypointConfig:
    """How keypoints reach the model (see lasor_trainer.inputs): 'visible' = legacy (only the codes in
    proxy.input_visibility, exact, no confidences); 'detector' = all keypoints a detector returns, with
    confidences, drawn from the visibility codes in training and in the test protocol."""
    mode: Literal["visible", "detector"] = "visible"
    min_confidence: float = _probability(0.05)  # below: the keypoint is missing
    # position noise σ (per axis) / person height; mediapipe on the shared photo with its joints covered
    # (bench/measure_detector_noise.py): hidden joints' error mean 0.18 / RMS 0.21 of the height, visible 0.047 / median 0.027
    noise_visible: float = _probability(0.02)   # visible (code 4)
    noise_self: float = _probability(0.04)      # self-occluded (code 1)
    noise_hidden: float = _probability(0.15)    # hidden by a person or an object (codes 2, 3): RMS 0.21, as mediapipe's
    drop_hidden: float = _probability(0.2)      # P(a hidden keypoint is not returned at all)
    drop_any: float = _probability(0.02)        # P(any keypoint is not returned)
    conf_visible: list = field(default_factory=lambda: [0.6, 1.0])
    conf_self: list = field(default_factory=lambda: [0.3, 0.95])
    conf_hidden: list = field(default_factory=lambda: [0.1, 0.9])   # mediapipe: hidden joints' scores mean 0.66
    false_conf_p: float = _probability(0.05)    # confidence drawn from the other range (hidden ↔ visible)
    outlier_p: float = _probability(0.02)       # gross error: anywhere in the person's box

    def validate(self, where: str) -> None:
        for name in ("conf_visible", "conf_self", "conf_hidden"):
            r = getattr(self, name)
            if (len(r) != 2 or not all(isinstance(x, (int, float)) for x in r)
                    or not 0 <= r[0] <= r[1] <= 1):
                raise LasorError(f"{where}.{name}: expected [low, high] within [0, 1], got {r!r}")


@dataclass
class AugmentConfig:
    enabled: bool = True
    crop_scale_jitter: float = _bounds(0.2, ge=0, le=0.9)  # crop scale ± this (uniform)
    crop_shift: float = _bounds(0.05, ge=0, le=1.0)        # crop centre ± this × side
    kp_jitter_p: float = _probability(1.0)
    kp_jitter_px: float = _bounds(8.0, ge=0, le=256)       # ± pixels at 256² (scaled with input_size)
    kp_dropout_p: float = _probability(0.1)                # per keypoint
    lr_swap_p: float = _probability(0.1)                   # swap a left/right pair (shoulders, hips, ...)
    sil_morph_p: float = _probability(0.3)                 # erode or dilate the silhouette
    sil_morph_px: int = _bounds(2, ge=0, le=64)            # radius at 256² (scaled)
    sil_noise_p: float = _probability(0.3)                 # flip random boundary pixels
    sil_noise_rate: float = _bounds(0.2, ge=0)
    box_p: float = _probability(0.5)                       # random occlusion box on the input (silhouette and heatmaps)
    box_size: float = _bounds(0.19, ge=0, le=1.0)          # box side as a fraction of the input (48/256)
    part_removal_p: float = _probability(0.1)              # remove one limb segment from the silhouette and its keypoints


@dataclass
class ModelConfig:
    width: int = _bounds(64, gt=0, le=512)          # ResNet-18 base width (64 = standard)
    layers: list = field(default_factory=lambda: [2, 2, 2, 2])
    ief_iters: int = _bounds(3, gt=0, le=20)
    hidden: int = _bounds(1024, gt=0, le=16384)
    ief_layers: int = _bounds(2, ge=2, le=16)       # hidden layers of the IEF MLP (≥ 2)
    dropout: float = _bounds(0.5, le=1)
    cam_scale0: float = _bounds(0.9, le=100)
    keypoint_features: bool = False  # also feed the IEF the heatmaps' soft-argmax (x, y) + peak per keypoint
    image_path: bool = True        # the ResNet encoder on the proxy image
    image_input: Literal["proxy", "silhouette"] = "proxy"  # 'proxy' (silhouette + 17 heatmaps) or 'silhouette' (one channel)
    keypoint_path: bool = False    # an MLP on the keypoint vector (x, y, confidence) ×17 + crop info
    kp_hidden: int = _bounds(1024, gt=0, le=16384)  # keypoint path width
    kp_blocks: int = _bounds(2, ge=0, le=16)        # residual blocks of the keypoint path

    def validate(self, where: str) -> None:
        if len(self.layers) != 4 or any((not isinstance(n, int)) or not 1 <= n <= 64 for n in self.layers):
            raise LasorError(f"{where}.layers: expected 4 integers in 1..64, got {self.layers!r}")
        if not (self.image_path or self.keypoint_path):
            raise LasorError(f"{where}.image_path / {where}.keypoint_path: at least one input path is needed")


@dataclass
class LossConfig:
    pose: float = _bounds(1.0, ge=0)               # rotation matrices (24×9), camera-frame global orientation
    betas: float = _bounds(0.1, ge=0)
    joints3d: float = _bounds(1.0, ge=0)           # root-relative, camera frame (m)
    vertices: float = _bounds(1.0, ge=0)           # root-relative, camera frame (m)
    keypoints2d: float = _bounds(0.1, ge=0)        # COCO-17, normalised crop coordinates, only codes in keypoints2d_visibility
    keypoints2d_visibility: list = field(default_factory=lambda: [4])
    cam: float = _bounds(0.05, ge=0)               # weak-perspective camera vs the one implied by the true root position
    silhouette: float = _bounds(0.01, ge=0)        # rendered predicted body vs target mask (neural mesh renderer)
    silhouette_target: Literal["amodal", "modal"] = "amodal"  # 'amodal' (full body) or 'modal' (visible, occluder pixels ignored)
    silhouette_size: int = _bounds(64, gt=0, le=1024)  # render/compare resolution
    silhouette_grad_clip: float = _bounds(3.0, ge=0)   # clamp renderer vertex-gradient components to k × their mean magnitude (0 = off)
    silhouette_every: int = _bounds(1, gt=0)       # apply the silhouette loss every N steps (renderer cost)
    silhouette_start: int = _bounds(0, ge=0)       # warm-up: no silhouette loss before this step (while the pose is still poor)
    silhouette_moves_camera: bool = True  # False: the silhouette loss shapes pose/betas only (camera detached)
    silhouette_at_true_root: bool = False  # render the predicted body at the TRUE root (synthetic labels): a pose/shape-only signal
    vertex_subsample: int = _bounds(1, gt=0)       # use every k-th vertex in the vertex loss (full body only)
    coarse_cell: float = _bounds(0.02, ge=0, le=0.1)  # >0: the loss poses a coarse body (cell in m, lasor_trainer.decimate) — ≈3× cheaper; 0: every vertex

    def validate(self, where: str) -> None:
        _check_codes(self.keypoints2d_visibility, f"{where}.keypoints2d_visibility")


@dataclass
class OptimConfig:
    lr: float = _bounds(1e-4, ge=0, le=1.0)
    weight_decay: float = _bounds(0.0, ge=0, le=1.0)
    batch_size: int = _bounds(32, gt=0, le=4096)
    steps: int = _bounds(250000, gt=0, le=10**9)
    warmup_steps: int = _bounds(0, le=10**9)
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: float = _bounds(10.0, le=1e6)


@dataclass
class TrainConfig:
    seed: int = _bounds(0, ge=0, le=2**63 - 1)
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    amp: bool = False              # CUDA only
    threads: int = _bounds(0, le=1024)  # torch CPU threads (0 = leave torch's default)
    log_every: int = _bounds(20, gt=0)
    val_every: int = _bounds(500, gt=0)
    ckpt_every: int = _bounds(500, gt=0)
    time_limit_s: float = _bounds(0.0, ge=0)  # stop (and checkpoint) after this many seconds (0 = no limit)
    body_model: typing.Optional[str] = None  # SMPL file; None = the embedded model
    renderer_backend: typing.Optional[str] = None  # neural renderer backend ('auto','cpu','neural_renderer')
    init: typing.Optional[str] = None  # fine-tune: start from this checkpoint's weights (fresh optimizer, step 0)


def _section(cls):
    """A config section: its dataclass with every default."""
    return field(default_factory=cls)


@dataclass
class Config:
    data: DataConfig = _section(DataConfig)
    proxy: ProxyConfig = _section(ProxyConfig)
    keypoints: KeypointConfig = _section(KeypointConfig)
    augment: AugmentConfig = _section(AugmentConfig)
    model: ModelConfig = _section(ModelConfig)
    loss: LossConfig = _section(LossConfig)
    optim: OptimConfig = _section(OptimConfig)
    train: TrainConfig = _section(TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self, where: str) -> None:
        """Checks across sections (each section checks its own fields)."""
        if self.model.keypoint_path and self.keypoints.mode != "detector":
            raise LasorError("keypoints.mode: the keypoint path (model.keypoint_path) needs 'detector' (confidences)")


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
    return from_dict(Config, data, "")


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
