"""Dataset recipes: the YAML schema (dataclasses), loading, CLI overrides and the recipe hash.

Angles in recipes are in degrees (`*_deg`), stored in shards in radians. `camera.focal` is the focal
length in units of the image width (1.0 = 53° horizontal field of view), so a recipe keeps its look
when `image_size` changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from lasor_shared.body_model import embedded_model_path
from lasor_shared.config import from_dict, load_yaml, to_dict
from lasor_shared.errors import LasorError
from lasor_shared.hashing import sha256_file
from lasor_shared.shards import GENDERS, recipe_hash

MAX_SEED = 2**63 - 1        # stored as an HDF5 int64 attribute
MAX_SHARDS = 1_000_000
MAX_DISTANCE_M = 50.0
MAX_FOCAL = 20.0            # × image width (≈ 2.9° field of view)
MIN_BODY_PX = 4             # smallest projected body height the camera ranges may give


def _unit(**extra):
    return field(default=0.0, metadata={"ge": 0.0, "le": 1.0, **extra})


@dataclass
class BodyModelCfg:
    path: str | None = None          # SMPL .npz/.pkl for every gender not in `paths`; None = embedded
    paths: dict[str, str] = field(default_factory=dict)   # per-gender SMPL files
    genders: dict[str, float] = field(default_factory=lambda: {"neutral": 1.0})  # sampling weights

    def validate(self, where):
        for g in list(self.genders) + list(self.paths):
            if g not in GENDERS:
                raise LasorError(f"{where}.genders: unknown gender {g!r} (use {', '.join(GENDERS)})")
        if any(w < 0 for w in self.genders.values()) or sum(self.genders.values()) <= 0:
            raise LasorError(f"{where}.genders: weights must be >= 0 and not all zero")

    def used_genders(self):
        return [g for g in GENDERS if self.genders.get(g, 0) > 0]

    def path_for(self, gender):
        return self.paths.get(gender, self.path)


@dataclass
class PoseSourceCfg:
    kind: Literal["library", "amass", "3dpw", "array"] = "library"
    path: str | None = None
    weight: float = field(default=1.0, metadata={"gt": 0.0})
    stride: int = field(default=1, metadata={"ge": 1})          # use every stride-th frame
    up_axis: Literal["y", "z", "-y", "auto"] = "auto"           # auto: amass z, 3dpw -y, others y

    def validate(self, where):
        if self.kind != "library" and not self.path:
            raise LasorError(f"{where}.path: required for pose source kind {self.kind!r}")


@dataclass
class PosesCfg:
    sources: list[PoseSourceCfg] = field(default_factory=lambda: [PoseSourceCfg()])
    interpolate: bool = True                                    # blend two library poses of a group
    noise_deg: float = field(default=6.0, metadata={"ge": 0.0, "le": 45.0})  # per-joint noise (std)
    mirror_prob: float = _unit()

    def validate(self, where):
        if not self.sources:
            raise LasorError(f"{where}.sources: at least one pose source is needed")


@dataclass
class ShapesCfg:
    betas_std: float = field(default=1.5, metadata={"gt": 0.0, "le": 5.0})


@dataclass
class CameraCfg:
    azimuth_deg: tuple[float, float] = (0.0, 360.0)  # around the body, 0 = in front; stratified over the range
    elevation_deg: tuple[float, float] = (-10.0, 35.0)
    roll_deg: tuple[float, float] = (-10.0, 10.0)
    distance: tuple[float, float] = (2.5, 6.0)      # metres; raised when the body would not fit
    focal: tuple[float, float] = (1.2, 2.4)         # × image width
    margin: float = field(default=0.05, metadata={"ge": 0.0, "lt": 0.4})   # free border, × image size
    truncation_prob: float = _unit()
    max_truncation: float = field(default=0.25, metadata={"ge": 0.0, "le": 0.6})  # × body bbox size

    def validate(self, where):
        lo, hi = self.azimuth_deg
        if not (-360 <= lo < hi <= 720 and hi - lo <= 360):
            raise LasorError(f"{where}.azimuth_deg: need -360 <= min < max <= 720 spanning at most 360°, got [{lo}, {hi}]")
        for name in ("elevation_deg", "roll_deg"):
            lo, hi = getattr(self, name)
            if lo < -80 or hi > 80:
                raise LasorError(f"{where}.{name}: must lie within [-80, 80], got [{lo}, {hi}]")
        if self.distance[0] <= 0.5 or self.distance[1] > MAX_DISTANCE_M:
            raise LasorError(f"{where}.distance: must lie within (0.5, {MAX_DISTANCE_M:g}] m, got {list(self.distance)}")
        if self.focal[0] <= 0.1 or self.focal[1] > MAX_FOCAL:
            raise LasorError(f"{where}.focal: must lie within (0.1, {MAX_FOCAL:g}] (× image width), got {list(self.focal)}")


@dataclass
class PersonOccCfg:
    max_count: int = field(default=1, metadata={"ge": 0, "le": 8})
    gap: tuple[float, float] = (0.6, 1.5)        # metres in front of the target, along the view ray
    background_prob: float = _unit()             # extra person behind/beside the target

    def validate(self, where):
        if self.gap[0] < 0.1 or self.gap[1] > 10:
            raise LasorError(f"{where}.gap: must lie within [0.1, 10] m, got {list(self.gap)}")


@dataclass
class ObjectOccCfg:
    max_count: int = field(default=1, metadata={"ge": 0, "le": 8})
    kinds: list[Literal["box", "cylinder", "sphere", "slab", "prism"]] = field(
        default_factory=lambda: ["box", "cylinder", "sphere", "slab", "prism"])
    # Every extent of an object (box/slab edges, sphere diameter, cylinder diameter and height, prism
    # width, depth and height) is drawn uniformly from `size` × the target's height (its posed bounding
    # box's height, at least 0.6 × its longest side); a slab's thinnest edge is 2–6 cm instead.
    size: tuple[float, float] = (0.15, 0.5)
    gap: tuple[float, float] = (0.2, 0.8)        # metres in front of the occluded body part (grows to
                                                 # reach the occlusion goal, never through the target)
    held_prob: float = field(default=0.3, metadata={"ge": 0.0, "le": 1.0})  # share of objects held or
    # hung in front of a body part (any orientation, lowest point above the ground); the others stand
    # on the ground plane (upright, turned about the vertical only)

    def validate(self, where):
        if not self.kinds:
            raise LasorError(f"{where}.kinds: at least one object kind is needed")
        if self.size[0] <= 0 or self.size[1] < self.size[0] or self.size[1] > 3:
            raise LasorError(f"{where}.size: need 0 < min <= max <= 3 (× the target's height), got {list(self.size)}")
        if self.gap[0] < 0.05 or self.gap[1] > 10:
            raise LasorError(f"{where}.gap: must lie within [0.05, 10] m, got {list(self.gap)}")


@dataclass
class OcclusionCfg:
    unoccluded_share: float = field(default=0.3, metadata={"ge": 0.0, "le": 1.0})
    occluded_fraction: tuple[float, float] = (0.1, 0.7)   # target share hidden by occluders
    type_weights: dict[str, float] = field(default_factory=lambda: {"person": 0.4, "object": 0.4, "both": 0.2})
    person: PersonOccCfg = field(default_factory=PersonOccCfg)
    object: ObjectOccCfg = field(default_factory=ObjectOccCfg)

    def validate(self, where):
        lo, hi = self.occluded_fraction
        if lo < 0 or hi > 0.95:
            raise LasorError(f"{where}.occluded_fraction: must lie within [0, 0.95], got [{lo}, {hi}]")
        for k, w in self.type_weights.items():
            if k not in ("person", "object", "both"):
                raise LasorError(f"{where}.type_weights.{k}: unknown occluder type (use person, object, both)")
            if w < 0:
                raise LasorError(f"{where}.type_weights.{k}: must be >= 0, got {w}")
        usable = {"person": self.person.max_count > 0, "object": self.object.max_count > 0,
                  "both": self.person.max_count > 0 and self.object.max_count > 0}
        if self.unoccluded_share < 1 and not any(w > 0 and usable[k] for k, w in self.type_weights.items()):
            raise LasorError(f"{where}.type_weights: no usable occluder type (check person/object max_count)")


@dataclass
class OutputCfg:
    depth: bool = False
    part_seg: bool = False
    compression_level: int = field(default=4, metadata={"ge": 0, "le": 9})


@dataclass
class Recipe:
    name: str = "dataset"
    seed: int = field(default=0, metadata={"ge": 0, "le": MAX_SEED})
    shards: int = field(default=1, metadata={"ge": 1, "le": MAX_SHARDS})
    samples_per_shard: int = field(default=64, metadata={"ge": 1, "le": 100000})
    image_size: int = field(default=256, metadata={"ge": 32, "le": 2048})
    body_model: BodyModelCfg = field(default_factory=BodyModelCfg)
    poses: PosesCfg = field(default_factory=PosesCfg)
    shapes: ShapesCfg = field(default_factory=ShapesCfg)
    camera: CameraCfg = field(default_factory=CameraCfg)
    occlusion: OcclusionCfg = field(default_factory=OcclusionCfg)
    output: OutputCfg = field(default_factory=OutputCfg)

    def validate(self, where):
        # the smallest body (1 m tall, e.g. a child-sized betas draw) at the farthest distance and
        # shortest focal length must still cover a few pixels, or targets come out empty
        px = self.camera.focal[0] * self.image_size * 1.0 / self.camera.distance[1]
        if px < MIN_BODY_PX:
            raise LasorError(f"{where + '.' if where else ''}camera: a body at distance {self.camera.distance[1]:g} m "
                             f"with focal {self.camera.focal[0]:g} × {self.image_size} px spans only {px:.1f} px "
                             f"(need >= {MIN_BODY_PX}); lower camera.distance or raise camera.focal")

    @property
    def max_persons(self) -> int:
        return self.occlusion.person.max_count + (1 if self.occlusion.person.background_prob > 0 else 0)

    @property
    def max_objects(self) -> int:
        return self.occlusion.object.max_count


def _resolve_paths(recipe: Recipe, base: str) -> None:
    """Relative file paths in a recipe are relative to the recipe file's folder."""
    def fix(p):
        return p if p is None or os.path.isabs(p) else os.path.normpath(os.path.join(base, p))
    recipe.body_model.path = fix(recipe.body_model.path)
    recipe.body_model.paths = {g: fix(p) for g, p in recipe.body_model.paths.items()}
    for s in recipe.poses.sources:
        s.path = fix(s.path)


def parse_recipe(data, base_dir: str = ".", overrides: dict | None = None) -> Recipe:
    """A validated Recipe from a plain mapping (+ CLI overrides of top-level fields)."""
    data = dict(data or {})
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    recipe = from_dict(Recipe, data)
    _resolve_paths(recipe, base_dir)
    return recipe


def load_recipe(path: str, overrides: dict | None = None) -> Recipe:
    """Read and validate a YAML recipe; LasorError names the file or the field."""
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise LasorError(f"{path}: a recipe must be a YAML mapping")
    try:
        return parse_recipe(data, os.path.dirname(os.path.abspath(path)), overrides)
    except LasorError as e:
        raise LasorError(f"{os.path.basename(path)}: {e}") from None


def recipe_dict(recipe: Recipe) -> dict:
    return to_dict(recipe)


def input_hashes(recipe: Recipe) -> dict:
    """sha256 of every file the recipe reads (body models and pose files), for the recipe hash."""
    out = {"body_models": {}, "pose_files": {}}
    for g in recipe.body_model.used_genders():
        path = recipe.body_model.path_for(g) or embedded_model_path(g)
        out["body_models"][g] = sha256_file(path)
    for s in recipe.poses.sources:
        if s.path:
            if not os.path.isfile(s.path):
                raise LasorError(f"poses.sources: pose file not found: {s.path}")
            out["pose_files"][s.path] = sha256_file(s.path)
    return out


def full_hash(recipe: Recipe, inputs: dict) -> str:
    return recipe_hash(recipe_dict(recipe), inputs)
