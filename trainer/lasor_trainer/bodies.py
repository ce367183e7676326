"""The bodies the trainer poses: the prediction's neutral model, each sample's ground-truth model (by
gender), the coarse mesh the training loss may use instead of every vertex; and how a posed body is
seen (keypoints projected, silhouettes rendered with the neural mesh renderer).

Targets live in the camera frame, root-relative (see `lasor_trainer.losses`).
"""

from __future__ import annotations

import numpy as np
import torch

from lasor_shared.body_model import embedded_model_path, load_body_model
from lasor_shared.hashing import sha256_file
from lasor_shared.shards import GENDER_CODES, GENDERS
from lasor_trainer.config import LossConfig
from lasor_trainer.decimate import coarse_body
from lasor_trainer.neural_renderer import Renderer
from lasor_trainer.rotations import axis_angle_to_matrix


class CoarseBody:
    """The training loss's view of the body: a coarse mesh on a subset of the vertices
    (`lasor_trainer.decimate`), weighted so that a mean over it stands for a mean over all vertices,
    and COCO keypoint regressors moved onto it. Posing ~30 % of the vertices makes the body model,
    the vertex loss and the silhouette renderer about 3× cheaper; evaluation always uses every vertex."""

    def __init__(self, model, cell: float):
        keep, faces, weight, owner = coarse_body(model, cell)
        # COCO keypoints: each vertex's regressor weight moves to the kept vertex standing for it
        cw = model.coco_vertex_weights.cpu().numpy()
        in_use = np.abs(cw).sum(0) > 0
        lost = np.flatnonzero((owner < 0) & in_use)  # rare: keep those vertices as they are
        ids = np.concatenate([keep, lost])
        owner = owner.copy()
        owner[lost] = len(keep) + np.arange(len(lost))
        coco_w = np.zeros((cw.shape[0], len(ids)))
        used = np.flatnonzero(in_use)
        np.add.at(coco_w.T, owner[used], cw[:, used].T)
        dev = model.v_template.device
        self.n_mesh = len(keep)  # ids[:n_mesh] carry the mesh and the vertex loss
        self.ids = torch.as_tensor(ids, device=dev)
        self.faces = torch.as_tensor(faces, device=dev)
        self.weight = torch.as_tensor(weight / weight.sum(), dtype=torch.float32, device=dev)
        self.coco_weights = torch.as_tensor(coco_w, dtype=torch.float32, device=dev)  # (17, len(ids))
        self._subsets = {}

    def subset(self, model):
        if id(model) not in self._subsets:
            self._subsets[id(model)] = model.vertex_subset(self.ids)
        return self._subsets[id(model)]


class Bodies:
    """The prediction model (neutral) and, for ground truth, the model of each sample's gender.
    With `coarse_cell` > 0 the training loss poses only a `CoarseBody` (`coarse=True` calls)."""

    def __init__(self, path: str | None = None, device="cpu", coarse_cell: float = 0.0):
        self.path, self.device = path, device
        self.pred = load_body_model(path, "neutral", device=device)
        self.models = {GENDER_CODES["neutral"]: self.pred}
        self.faces = self.pred.faces_tensor.long().to(device)
        self.coarse = CoarseBody(self.pred, coarse_cell) if coarse_cell > 0 else None

    def expected_sha(self, gender: str) -> str:
        """sha256 of the file this trainer uses as ground-truth body for `gender` (neutral/male/female)."""
        if self.path is not None:
            return self.pred.sha256
        if gender == "neutral":
            return self.pred.sha256
        try:
            return sha256_file(embedded_model_path(gender))
        except Exception:
            return None

    def model_for(self, gender: int):
        if gender not in self.models:
            name = GENDERS[gender] if 0 <= gender < len(GENDERS) else "neutral"
            self.models[gender] = self.pred if self.path is not None else load_body_model(None, name, device=self.device)
        return self.models[gender]

    def run(self, model, rotmats, betas, with_coco=True, coarse=False):
        """Root-relative (joints (B,24,3), vertices (B,V,3), coco (B,17,3) or None) and the pelvis (B,3).
        coarse: vertices of the `CoarseBody` only (B,len(coarse.ids),3)."""
        c = self.coarse if coarse else None
        verts, joints = model.skin(rotmats, betas, subset=None if c is None else c.subset(model))
        coco = None
        if with_coco:
            coco = (model.skin_keypoints(verts, joints) if c is None else
                    torch.einsum("kv,bvc->bkc", c.coco_weights, verts)
                    + torch.einsum("kj,bjc->bkc", model.coco_joint_weights, joints))
        root = joints[:, :1]
        return joints - root, verts - root, None if coco is None else coco - root, root[:, 0]

    def predict(self, rotmats, betas, coarse=False):
        return self.run(self.pred, rotmats, betas, coarse=coarse)

    @torch.no_grad()
    def targets(self, batch, coarse=False) -> dict:
        pose, betas, gender = batch["pose"], batch["betas"], batch["gender"]
        B = pose.shape[0]
        rot = axis_angle_to_matrix(pose.reshape(B, 24, 3))
        rot = torch.cat([batch["cam_R"][:, None] @ rot[:, :1], rot[:, 1:]], 1)
        genders = gender.unique().tolist()
        if len(genders) == 1:  # the usual case: no gathering and scattering
            joints, verts, _, _ = self.run(self.model_for(int(genders[0])), rot, betas, with_coco=False, coarse=coarse)
        else:
            joints = torch.zeros(B, 24, 3, device=pose.device)
            verts = None
            for g in genders:
                sel = gender == g
                j, v, _, _ = self.run(self.model_for(int(g)), rot[sel], betas[sel], with_coco=False, coarse=coarse)
                if verts is None:
                    verts = torch.zeros(B, v.shape[1], 3, device=pose.device)
                joints[sel], verts[sel] = j, v
        return {"rotmats": rot, "betas": betas, "joints": joints, "vertices": verts,
                "root": batch["joints3d"][:, 0], "coarse": coarse}


def make_renderer(cfg: LossConfig, input_size: int, backend=None):
    return Renderer(image_size=cfg.silhouette_size, anti_aliasing=False, fill_back=False, camera_mode="projection",
                    orig_size=input_size, near=0.05, far=1000.0, backend=backend)


def _clip_tail(g: torch.Tensor, k: float) -> torch.Tensor:
    """Tame Kato's heavy-tailed vertex gradients (≈ d/eps next to edges): per sample, clamp each
    component to k × the mean magnitude of the non-zero components."""
    a = g.abs()
    nz = (a > 0).sum((1, 2), keepdim=True).clamp_min(1)
    limit = k * a.sum((1, 2), keepdim=True) / nz
    return torch.maximum(torch.minimum(g, limit), -limit)


def render_silhouettes(renderer, vertices_rel, T, K, faces, tail_clip: float = 0.0):
    """Silhouettes of root-relative vertices placed at camera-frame T, rendered with crop intrinsics K.

    tail_clip > 0 clamps the heavy tail of the renderer's vertex gradients (see `_clip_tail`)."""
    B = vertices_rel.shape[0]
    T = torch.cat([T[:, :2], T[:, 2:].clamp_min(0.3)], 1)
    v = (vertices_rel + T[:, None]).float()
    if v.requires_grad and tail_clip > 0:
        v.register_hook(lambda g: _clip_tail(g, tail_clip))
    eye = torch.eye(3, device=v.device).expand(B, 3, 3)
    return renderer.render_silhouettes(v, faces[None], K=K.float(), R=eye,
                                       t=torch.zeros(B, 1, 3, device=v.device))


def project_points(points_cam, K):
    z = points_cam[..., 2:].clamp_min(1e-3)
    uv = points_cam[..., :2] / z
    return torch.einsum("bij,bnj->bni", K[:, :2, :2], uv) + K[:, None, :2, 2]
