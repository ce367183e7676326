"""Evaluation metrics (numpy, batched; per-sample values so that any breakdown can be pooled later).

All distances in the input's units (metres in lasor; reports multiply by 1000 for mm).
- `mpjpe`: mean joint distance after aligning the root joints (index `root`).
- `mpjpe_scale_aligned`: root-aligned, then the prediction scaled by the least-squares factor (body
  size is ambiguous from a crop: this separates it from pose errors).
- `joint_errors`: per-joint root-aligned distances (B,J), for per-joint / per-visibility breakdowns.
- `rotation_angle`: geodesic angle between rotation matrices (e.g. the global orientation).
- `pa_mpjpe`: after a similarity Procrustes fit (rotation + uniform scale + translation, SVD with the
  reflection fix) of the prediction onto the ground truth.
- `pve`: mean vertex distance after aligning the roots (pass the root positions, e.g. the pelvis).
- `pve_t_sc`: SSP-3D's shape metric: both meshes in the neutral T-pose, each centred at zero mean
  and scaled to unit RMS, the prediction then rescaled to the ground truth's RMS; mean vertex distance.
- `silhouette_iou`: pooled IoU TP/(TP+FP+FN) over all pixels of the set (STRAPS' tracker) and the
  mean of per-image IoUs; both are returned and named. An image where both silhouettes are empty
  has no IoU: it is left out of the mean (not counted as 0).
- `keypoint_error_2d`: mean pixel distance over the keypoints selected by a mask.
"""

from __future__ import annotations

import numpy as np
import torch


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int | None = 0) -> np.ndarray:
    """(B,J,3) × (B,J,3) → (B,) mean joint error after root alignment (root=None: no alignment)."""
    if root is not None:
        pred = pred - pred[:, root:root + 1]
        gt = gt - gt[:, root:root + 1]
    return np.linalg.norm(pred - gt, axis=-1).mean(-1)


def joint_errors(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> np.ndarray:
    """(B,J) root-aligned per-joint distances."""
    return np.linalg.norm((pred - pred[:, root:root + 1]) - (gt - gt[:, root:root + 1]), axis=-1)


def mpjpe_scale_aligned(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> np.ndarray:
    """(B,) MPJPE after root alignment and the least-squares scale of the prediction."""
    p = pred - pred[:, root:root + 1]
    g = gt - gt[:, root:root + 1]
    s = (p * g).sum((1, 2)) / np.maximum((p * p).sum((1, 2)), 1e-12)
    return np.linalg.norm(s[:, None, None] * p - g, axis=-1).mean(-1)


def rotation_angle(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """(B,) geodesic angle (radians) between rotation matrices (B,3,3)."""
    c = (np.einsum("bij,bij->b", Ra, Rb) - 1.0) / 2.0
    return np.arccos(np.clip(c, -1.0, 1.0))


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity transform of each pred (B,N,3) onto gt minimising the squared error (Umeyama)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mp, mg = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    X, Y = pred - mp, gt - mg
    var = (X ** 2).sum((1, 2))
    M = np.einsum("bni,bnj->bij", Y, X)  # Σ y xᵀ
    U, s, Vt = np.linalg.svd(M)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.ones_like(s)
    D[:, -1] = d
    R = U @ (D[:, :, None] * Vt)
    scale = (s * D).sum(-1) / np.maximum(var, 1e-12)
    return scale[:, None, None] * np.einsum("bij,bnj->bni", R, X) + mg


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    return np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean(-1)


def pve(pred_v: np.ndarray, gt_v: np.ndarray, pred_root=None, gt_root=None) -> np.ndarray:
    """(B,V,3) → (B,) mean vertex error after subtracting the given roots (B,3) (None: as given)."""
    if pred_root is not None:
        pred_v = pred_v - pred_root[:, None]
    if gt_root is not None:
        gt_v = gt_v - gt_root[:, None]
    return np.linalg.norm(pred_v - gt_v, axis=-1).mean(-1)


def scale_translation_correct(pred_v: np.ndarray, gt_v: np.ndarray):
    pc = pred_v - pred_v.mean(1, keepdims=True)
    gc = gt_v - gt_v.mean(1, keepdims=True)
    rms_p = np.sqrt((pc ** 2).sum(-1).mean(-1))
    rms_g = np.sqrt((gc ** 2).sum(-1).mean(-1))
    return pc / np.maximum(rms_p, 1e-12)[:, None, None] * rms_g[:, None, None], gc


def pve_t_sc(pred_tpose_v: np.ndarray, gt_tpose_v: np.ndarray) -> np.ndarray:
    """(B,V,3) T-pose vertices (from betas) → (B,) scale-and-translation-corrected vertex error."""
    p, g = scale_translation_correct(np.asarray(pred_tpose_v, np.float64), np.asarray(gt_tpose_v, np.float64))
    return np.linalg.norm(p - g, axis=-1).mean(-1)


def tpose_vertices(model, betas):
    """Neutral T-pose vertices (B,V,3) of betas (B,10) with a lasor BodyModel (numpy in, numpy out)."""
    with torch.no_grad():
        b = torch.as_tensor(np.asarray(betas), dtype=torch.float32)
        out = model.pose(torch.zeros(b.shape[0], 72), b)
        return out.vertices.cpu().numpy()


def silhouette_counts(pred: np.ndarray, gt: np.ndarray, weight: np.ndarray | None = None, thresh: float = 0.5):
    """Per-image (TP, FP, FN) of binarised (B,H,W) silhouettes; weight 0 pixels are ignored."""
    p, g = pred >= thresh, gt >= thresh
    w = np.ones(p.shape, bool) if weight is None else weight >= 0.5
    tp = (p & g & w).sum((1, 2))
    fp = (p & ~g & w).sum((1, 2))
    fn = (~p & g & w).sum((1, 2))
    return np.stack([tp, fp, fn], 1).astype(np.int64)


def silhouette_iou(counts: np.ndarray) -> dict:
    """{'iou_pooled': ΣTP/Σ(TP+FP+FN), 'iou_mean': mean of per-image IoUs} from (B,3) counts."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    if len(counts) == 0:
        return {"iou_pooled": float("nan"), "iou_mean": float("nan")}
    tp, fp, fn = counts.sum(0)
    per = per_image_iou(counts)
    per = per[np.isfinite(per)]
    return {"iou_pooled": float(tp / (tp + fp + fn)) if tp + fp + fn > 0 else float("nan"),
            "iou_mean": float(per.mean()) if len(per) else float("nan")}


def per_image_iou(counts: np.ndarray) -> np.ndarray:
    """(B,) IoU per image; NaN where both silhouettes are empty (no IoU defined)."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 3)
    union = counts.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, counts[:, 0] / np.maximum(union, 1), np.nan)


def keypoint_error_2d(pred: np.ndarray, gt: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(B,K,2) → (B,) mean pixel distance over keypoints with use=True (NaN where none)."""
    d = np.linalg.norm(pred - gt, axis=-1)
    n = use.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (d * use).sum(-1) / np.maximum(n, 1), np.nan)
