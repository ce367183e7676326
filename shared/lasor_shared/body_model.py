"""Body models: one entry point, `load_body_model`, returning a ready `smplx.SMPL`.

Either a user's real SMPL file (`.npz`, or the official `.pkl`, read with a restricted unpickler
that never runs code) or, when no path is given, lasor's embedded free model built from anny
(see `lasor_datagen.anny_builder`). Both go through the same `smplx.SMPL` code path.

The returned model is a `BodyModel` (a `smplx.SMPL` subclass) that also carries:
- `keypoints(output)` → COCO-17 keypoints (B,17,3) of a forward pass,
- `model_id` and `sha256` of the file it came from,
- `output.joints` holds exactly the 24 SMPL joints,
- `skin(rotmats, betas)`: a lean forward pass from rotation matrices for training (same result as
  the smplx call up to float rounding, several times faster: joints regressed from precomputed
  joint shape blends, the pose-corrective blend skipped when posedirs are all zero, as in the
  embedded model, and skinning as a sparse product with the few non-zero weights per vertex).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
from dataclasses import dataclass
from importlib import resources

import numpy as np
import smplx
import torch

from lasor_shared import safe_pickle
from lasor_shared import skinning
from lasor_shared.errors import LasorError
from lasor_shared.hashing import sha256_file
from lasor_shared.keypoints import COCO17_FROM_SMPL24, COCO17_NAMES, SMPL24_NAMES, SMPL_FACE_VERTEX_IDS
from lasor_shared.shards import GENDERS

EMBEDDED_MODEL = "anny_neutral_smpl.npz"
_REQUIRED = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")


def embedded_model_path(gender: str = "neutral") -> str:
    """Path of the embedded anny-derived model file for `gender`."""
    name = EMBEDDED_MODEL.replace("neutral", gender)
    path = str(resources.files("lasor_shared") / "data" / name)
    if not os.path.exists(path):
        raise LasorError(f"embedded body model for gender {gender!r} not found: {path} "
                         f"(build it with: lasor-datagen body-model build --from-anny {path})")
    return path


def read_model_file(path: str) -> dict:
    """Arrays of an SMPL model file (.npz or .pkl), validated. Errors name the file."""
    if not os.path.isfile(path):
        raise LasorError(f"body model file not found: {path}")
    ext = os.path.splitext(path)[1].lower()
    try:
        if ext == ".npz":
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        elif ext == ".pkl":
            with open(path, "rb") as f, contextlib.redirect_stderr(io.StringIO()):
                data = safe_pickle.load(f, sparse=True)
            if not isinstance(data, dict):
                raise LasorError(f"{path}: expected a dict of SMPL arrays in the pickle, got {type(data).__name__}")
        else:
            raise LasorError(f"{path}: expected an SMPL model file ending in .npz or .pkl")
    except LasorError:
        raise
    except (pickle.UnpicklingError, ValueError, OSError, EOFError, KeyError, AttributeError) as e:
        raise LasorError(f"{path}: not a readable SMPL model file ({e})") from None
    _validate(path, data)
    return data


def _validate(path, d):
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise LasorError(f"{path}: missing SMPL key(s) {', '.join(missing)}")
    for k in _REQUIRED:
        try:
            d[k] = np.asarray(d[k])
        except (ValueError, TypeError):
            raise LasorError(f"{path}: {k} is not an array") from None
        if d[k].dtype.kind not in "biuf":
            raise LasorError(f"{path}: {k} is not a numeric array (dtype {d[k].dtype})")
    V = d["v_template"].shape[0] if d["v_template"].ndim == 2 else -1
    expect = {
        "v_template": (V, 3), "weights": (V, 24), "J_regressor": (24, V), "kintree_table": (2, 24),
    }
    for k, shape in expect.items():
        if d[k].shape != shape or V <= 0:
            raise LasorError(f"{path}: {k} has shape {d[k].shape}, expected {shape}")
    if d["shapedirs"].ndim != 3 or d["shapedirs"].shape[:2] != (V, 3) or d["shapedirs"].shape[2] < 10:
        raise LasorError(f"{path}: shapedirs has shape {d['shapedirs'].shape}, expected ({V}, 3, >=10)")
    if d["posedirs"].shape not in ((V, 3, 207), (V * 3, 207)):
        raise LasorError(f"{path}: posedirs has shape {d['posedirs'].shape}, expected ({V}, 3, 207)")
    parents = d["kintree_table"][0, 1:].astype(np.int64)
    if np.any(parents < 0) or np.any(parents >= np.arange(1, 24)):
        raise LasorError(f"{path}: kintree_table parents must precede their joints (SMPL's order)")
    f = d["f"]
    if f.ndim != 2 or f.shape[1] != 3 or f.min() < 0 or f.max() >= V:
        raise LasorError(f"{path}: f must be (F, 3) vertex indices in [0, {V}), got shape {f.shape}")
    for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights"):
        if not np.all(np.isfinite(d[k])):
            raise LasorError(f"{path}: {k} contains NaN or infinite values")


@dataclass
class VertexSubset:
    """What `BodyModel.skin` needs for some of the vertices: their template, shape and pose blend
    shapes and their rows of the sparse skinning weights (CSR)."""

    template: torch.Tensor      # (V',3)
    shapedirs: torch.Tensor     # (V',3,L)
    posedirs: torch.Tensor | None  # (207, V'*3), None when the model has no pose blend shapes
    skin_ptr: torch.Tensor      # (V'+1,)
    skin_joint: torch.Tensor    # (nnz,)
    skin_weight: torch.Tensor   # (nnz,)
    ids: torch.Tensor | None    # (V',) vertex ids, None = all

    @classmethod
    def of(cls, model: "BodyModel", ids: torch.Tensor) -> "VertexSubset":
        a = model._all_vertices
        counts = a.skin_ptr[1:] - a.skin_ptr[:-1]
        c = counts[ids]
        ptr = torch.zeros(len(ids) + 1, dtype=torch.int64, device=ids.device)
        ptr[1:] = torch.cumsum(c, 0)
        rows = torch.repeat_interleave(a.skin_ptr[:-1][ids], c) + (
            torch.arange(int(ptr[-1]), device=ids.device) - torch.repeat_interleave(ptr[:-1], c))
        posedirs = None
        if a.posedirs is not None:
            posedirs = a.posedirs.reshape(a.posedirs.shape[0], -1, 3)[:, ids].reshape(a.posedirs.shape[0], -1).contiguous()
        return cls(a.template[ids].contiguous(), a.shapedirs[ids].contiguous(), posedirs, ptr,
                   a.skin_joint[rows].contiguous(), a.skin_weight[rows].contiguous(), ids)


@dataclass
class _Joints24Only:
    """smplx joint_mapper keeping the 24 kinematic joints (extra joints need SMPL's vertex ids)."""

    def __call__(self, joints, vertices=None):
        return joints[:, :24]


class BodyModel(smplx.SMPL):
    """`smplx.SMPL` plus COCO-17 keypoints, the model id and file hash."""

    def __init__(self, data: dict, path: str, model_id: str, gender: str, batch_size: int):
        struct = smplx.utils.Struct(**{k: data[k] for k in _REQUIRED})
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a <300 betas warning
            super().__init__(model_path="", data_struct=struct, batch_size=batch_size, gender=gender,
                             num_betas=10, joint_mapper=_Joints24Only())
        self.model_path, self.model_id, self.gender = path, model_id, gender
        self.sha256 = sha256_file(path)
        V = data["v_template"].shape[0]
        cv, cj = coco_regressors(data, V)
        self.register_buffer("coco_vertex_weights", torch.tensor(cv, dtype=torch.float32))
        self.register_buffer("coco_joint_weights", torch.tensor(cj, dtype=torch.float32))
        self.meta = json.loads(str(data["lasor_meta"])) if "lasor_meta" in data else {}
        self._init_lean()

    def _init_lean(self):
        """Constants of `skin`: joint shape blends, sparse skinning and keypoint weights."""
        Jr = self.J_regressor.double()
        self.register_buffer("lean_joint_template", (Jr @ self.v_template.double()).float(), persistent=False)
        self.register_buffer("lean_joint_shapedirs",
                             torch.einsum("jv,vcb->jcb", Jr, self.shapedirs.double()).float(), persistent=False)
        self.has_pose_blend = bool(self.posedirs.abs().max() > 0)
        w = self.lbs_weights
        v_idx, j_idx = torch.nonzero(w, as_tuple=True)  # row-major: CSR by vertex
        ptr = torch.zeros(w.shape[0] + 1, dtype=torch.int64)
        ptr[1:] = torch.cumsum(torch.bincount(v_idx, minlength=w.shape[0]), 0)
        self.register_buffer("lean_skin_ptr", ptr, persistent=False)
        self.register_buffer("lean_skin_joint", j_idx.to(torch.int64), persistent=False)
        self.register_buffer("lean_skin_weight", w[v_idx, j_idx].contiguous(), persistent=False)
        cols = torch.nonzero(self.coco_vertex_weights.abs().sum(0), as_tuple=True)[0]
        self.register_buffer("lean_coco_vertices", cols, persistent=False)
        self.register_buffer("lean_coco_weights", self.coco_vertex_weights[:, cols].contiguous(), persistent=False)

    def skin(self, rotmats: torch.Tensor, betas: torch.Tensor, subset: "VertexSubset | None" = None):
        """Lean forward pass: rotmats (B,24,3,3), betas (B,10) → vertices (B,V,3), joints (B,24,3).

        No translation; equals `self(global_orient=rotmats[:, :1], body_pose=rotmats[:, 1:],
        betas=betas, pose2rot=False)` (vertices, joints[:, :24]) up to float rounding. With a
        `subset` (from `vertex_subset`) only those vertices are skinned: (B,len(subset),3)."""
        B = rotmats.shape[0]
        nb = betas.shape[1]
        J = self.lean_joint_template + torch.einsum("bl,jcl->bjc", betas, self.lean_joint_shapedirs[..., :nb])
        joints, A = smplx.lbs.batch_rigid_transform(rotmats, J, self.parents)
        s = subset if subset is not None else self._all_vertices
        V = s.template.shape[0]
        v = s.template + (betas @ s.shapedirs[..., :nb].reshape(V * 3, nb).T).reshape(B, V, 3)
        if self.has_pose_blend:
            eye = torch.eye(3, dtype=rotmats.dtype, device=rotmats.device)
            v = v + ((rotmats[:, 1:] - eye).reshape(B, -1) @ s.posedirs).reshape(B, V, 3)
        verts = skinning.skin(A, v, s.skin_ptr, s.skin_joint, s.skin_weight)
        return verts, joints

    @property
    def _all_vertices(self) -> "VertexSubset":
        return VertexSubset(self.v_template, self.shapedirs, self.posedirs if self.has_pose_blend else None,
                            self.lean_skin_ptr, self.lean_skin_joint, self.lean_skin_weight, None)

    def vertex_subset(self, ids) -> "VertexSubset":
        """The constants `skin` needs to pose only the vertices `ids` (in that order; make it after
        moving the model to its device)."""
        ids = torch.as_tensor(ids, dtype=torch.int64, device=self.v_template.device)
        return VertexSubset.of(self, ids)

    def skin_keypoints(self, vertices: torch.Tensor, joints: torch.Tensor) -> torch.Tensor:
        """COCO-17 keypoints (B,17,3) from `skin`'s vertices and joints (same as `keypoints`)."""
        return (torch.einsum("kv,bvc->bkc", self.lean_coco_weights, vertices[:, self.lean_coco_vertices])
                + torch.einsum("kj,bjc->bkc", self.coco_joint_weights, joints))

    def keypoints(self, output) -> torch.Tensor:
        """COCO-17 keypoints (B,17,3) of a forward pass's vertices and joints."""
        return (torch.einsum("kv,bvc->bkc", self.coco_vertex_weights, output.vertices)
                + torch.einsum("kj,bjc->bkc", self.coco_joint_weights, output.joints[:, :24]))

    def pose(self, pose: torch.Tensor, betas: torch.Tensor, transl: torch.Tensor | None = None):
        """Forward pass from (B,72) axis-angle pose and (B,10) betas."""
        if transl is None:
            transl = pose.new_zeros(pose.shape[0], 3)
        return self(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas, transl=transl)

    def summary(self) -> str:
        V, F = self.v_template.shape[0], self.faces.shape[0]
        text = f"{self.model_id} ({self.gender}): {V} vertices, {F} triangles, 24 joints, sha256 {self.sha256[:12]}"
        ev = self.meta.get("explained_variance_ratio_10")
        if ev:
            text += f"\n  shape components explain {sum(ev):.2%} of the population's variance: " + \
                " ".join(f"{e:.3f}" for e in ev)
        return text


def coco_regressors(data: dict, V: int):
    """(17,V) vertex weights and (17,24) joint weights giving COCO-17 keypoints for this model."""
    if "coco_vertex_weights" in data:
        cv = np.asarray(data["coco_vertex_weights"], dtype=np.float64)
        cj = np.asarray(data.get("coco_joint_weights", np.zeros((17, 24))), dtype=np.float64)
        if cv.shape != (17, V) or cj.shape != (17, 24):
            raise LasorError(f"coco regressor shapes {cv.shape}, {cj.shape}: expected (17, {V}), (17, 24)")
        return cv, cj
    if V != 6890:
        raise LasorError(f"no COCO keypoint regressor for a {V}-vertex model (SMPL has 6890)")
    cv, cj = np.zeros((17, V)), np.zeros((17, 24))
    for k, name in enumerate(COCO17_NAMES):
        if name in SMPL_FACE_VERTEX_IDS:
            cv[k, SMPL_FACE_VERTEX_IDS[name]] = 1.0
        else:
            cj[k, SMPL24_NAMES.index(COCO17_FROM_SMPL24[name])] = 1.0
    return cv, cj


def load_body_model(path: str | None = None, gender: str = "neutral", batch_size: int = 1,
                    device: str | torch.device = "cpu"):
    """A ready `smplx.SMPL` (a `BodyModel`) from a real SMPL file, or the embedded model if no path.

    path: an SMPL `.npz` or `.pkl` (official files; chumpy objects are read as arrays, nothing is
    executed). gender: 'neutral', 'male' or 'female' (for the embedded model, which file to use).
    """
    if gender not in GENDERS:
        raise LasorError(f"gender: expected one of {', '.join(GENDERS)}, got {gender!r}")
    if path is None:
        path = embedded_model_path(gender)
        model_id = f"lasor-anny-{gender}"
    else:
        model_id = f"smpl-{gender}:{os.path.basename(path)}"
    data = read_model_file(path)
    model = BodyModel(data, path, model_id, gender, batch_size)
    return model.to(device)
