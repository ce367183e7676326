"""The training losses (the bodies they compare, projected and rendered, come from `lasor_trainer.bodies`).

Targets live in the CAMERA frame, root-relative: the network sees an image crop, so the global
orientation it can know is R_cam·R_global (camera rotation times the body's world orientation);
3D joints/vertices are compared after subtracting the pelvis. SMPL rotates about the pelvis, so the
root-relative camera-frame body is the SMPL forward pass with the camera-frame global orientation.

Losses (weights in `LossConfig`):
- pose: MSE of the 24 rotation matrices; betas: MSE;
- joints3d, vertices: mean Euclidean distance (m) of root-relative points;
- keypoints2d: mean Euclidean distance of the COCO-17 keypoints, projected with the crop intrinsics
  and the predicted translation, in crop-normalised units (±1 at the crop border), only keypoints
  whose visibility code is in `keypoints2d_visibility`;
- cam: MSE between the predicted weak-perspective camera and the one implied by the true pelvis;
- silhouette: the predicted body rendered with the neural mesh renderer (Kato gradient) with the
  crop intrinsics K′ and the predicted translation — the data's own perspective camera — compared
  (weighted MSE) with the target mask at `silhouette_size`². Target: the AMODAL (full-body) mask by
  default. The renderer draws the whole predicted body, so the full-body mask is the like-for-like
  target, and it asks the network to complete what occluders hide — LASOR's point. 'modal' compares
  with the visible mask and ignores pixels covered by an occluder (where the body may or may not be).
  Measured on the demo data: while the predicted pose is still poor (IoU ≈ 0.4), most pixels a
  larger body would add are false positives, so the pixel loss pulls the body away from the camera
  (1,500 steps: median predicted/true depth 1.04 without it, 1.35 at weight 0.01). With
  `silhouette_moves_camera: false` the camera is detached from this term, which then shapes only
  pose and betas. With `silhouette_at_true_root: true` the predicted body is drawn at the TRUE root
  (known for synthetic data): a misplaced body cannot mislead the pose through the pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lasor_trainer.bodies import Bodies, project_points, render_silhouettes
from lasor_trainer.config import LossConfig
from lasor_trainer.model import cam_to_translation, translation_to_cam

def compute_losses(pred: dict, tgt: dict, batch: dict, bodies: Bodies, cfg: LossConfig, input_size: int,
                   renderer=None, timer=None) -> tuple[torch.Tensor, dict, dict]:
    """(total loss, {name: detached value}, extras (predicted joints/vertices/T/silhouette))."""
    S = input_size
    if timer is not None:
        timer.start("body_pred")
    coarse = bodies.coarse if tgt.get("coarse") else None  # targets posed on the coarse body: so is the prediction
    joints, verts, coco, _ = bodies.predict(pred["rotmats"], pred["betas"], coarse=coarse is not None)
    if timer is not None:
        timer.stop("body_pred")
    T = cam_to_translation(pred["cam"], batch["K"], S)
    losses = {}
    losses["pose"] = F.mse_loss(pred["rotmats"], tgt["rotmats"])
    losses["betas"] = F.mse_loss(pred["betas"], tgt["betas"])
    losses["joints3d"] = (joints - tgt["joints"]).norm(dim=-1).mean()
    if coarse is not None:  # weighted mean over the coarse body = mean over all vertices
        n = coarse.n_mesh
        losses["vertices"] = ((verts[:, :n] - tgt["vertices"][:, :n]).norm(dim=-1) @ coarse.weight).mean()
    else:
        k = cfg.vertex_subsample
        losses["vertices"] = (verts[:, ::k] - tgt["vertices"][:, ::k]).norm(dim=-1).mean()
    uv = project_points(coco + T[:, None], batch["K"])
    half = S / 2.0
    use = torch.zeros_like(batch["kp_vis"], dtype=torch.bool)
    for c in cfg.keypoints2d_visibility:
        use |= batch["kp_vis"] == c
    d = ((uv - batch["kp2d"]) / half).norm(dim=-1)
    losses["keypoints2d"] = (d * use).sum() / use.sum().clamp_min(1)
    cam_gt = translation_to_cam(tgt["root"], batch["K"], S)
    losses["cam"] = F.mse_loss(torch.cat([pred["cam"][:, :1].log(), pred["cam"][:, 1:]], 1),
                               torch.cat([cam_gt[:, :1].clamp_min(1e-3).log(), cam_gt[:, 1:]], 1))
    sil = None
    if renderer is not None and cfg.silhouette > 0:
        if timer is not None:
            timer.start("renderer")
        if cfg.silhouette_at_true_root:  # placement errors cannot mislead the pose; the camera gets no gradient
            T_sil = tgt["root"].to(T.dtype)
        else:
            T_sil = T if cfg.silhouette_moves_camera else T.detach()
        if coarse is not None:
            sil = render_silhouettes(renderer, verts[:, :coarse.n_mesh], T_sil, batch["K"], coarse.faces,
                                     cfg.silhouette_grad_clip)
        else:
            sil = render_silhouettes(renderer, verts, T_sil, batch["K"], bodies.faces, cfg.silhouette_grad_clip)
        w = batch["sil_weight"]
        losses["silhouette"] = ((sil - batch["sil_target"]) ** 2 * w).sum() / w.sum().clamp_min(1)
        if timer is not None:
            timer.stop("renderer")
    total = sum(getattr(cfg, name) * value for name, value in losses.items())
    return total, {k: float(v.detach()) for k, v in losses.items()}, {"joints": joints, "vertices": verts,
                                                                     "T": T, "silhouette": sil, "coco": coco}
