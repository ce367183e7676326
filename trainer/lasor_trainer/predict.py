"""`lasor-predict`: SMPL pose and shape from a person mask PNG + 2D keypoints JSON.

Keypoints: COCO format (`{"keypoints": [x, y, v] × 17}`, an annotation list, or
`{"annotations": [...]}`; integer v ∈ {0,1,2} → only v = 2 (visible) is used, float scores are
thresholded) or OpenPose format (`{"people": [{"pose_keypoints_2d": [...]}]}`, BODY_25 or COCO-18).
The crop and proxy are built by exactly the code used in training (`data.make_input`).

Outputs in --out: `smpl_params.json` (camera-frame global orientation, body pose, betas, smplx
`transl` placing the body in camera coordinates, K, crop), `mesh.obj` (camera coordinates) and
`overlay.png` (input mask grey, predicted body silhouette outline red, keypoints green).
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
from PIL import Image

from lasor_shared.camera import intrinsics
from lasor_shared.errors import LasorError
from lasor_shared.rotations import matrix_to_axis_angle
from lasor_trainer.data import make_input
from lasor_trainer.evaluate import load_checkpoint
from lasor_trainer.losses import Bodies
from lasor_trainer.model import cam_to_translation

BODY25_TO_COCO17 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
COCO18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


def read_mask(path: str) -> np.ndarray:
    try:
        img = Image.open(path)
        img.load()
    except (OSError, ValueError) as e:
        raise LasorError(f"--mask {path}: not a readable image ({e})") from None
    a = np.asarray(img.convert("L"))
    mask = a > (127 if a.max() > 1 else 0)
    if not mask.any():
        raise LasorError(f"--mask {path}: the mask is empty")
    return mask


def read_keypoints(path: str, person: int = 0, min_confidence: float = 0.1):
    """(17,2) COCO-17 pixel coordinates and (17,) bool present, from COCO or OpenPose JSON."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise LasorError(f"--keypoints {path}: unreadable JSON ({e})") from None
    if isinstance(data, dict) and "people" in data:
        people = data["people"]
        if not people or person >= len(people):
            raise LasorError(f"--keypoints {path}: no person {person} in 'people' ({len(people)} found)")
        flat = np.asarray(people[person].get("pose_keypoints_2d", []), dtype=np.float64)
        if flat.size == 75:
            arr = flat.reshape(25, 3)[list(BODY25_TO_COCO17)]
        elif flat.size == 54:
            arr = flat.reshape(18, 3)[list(COCO18_TO_COCO17)]
        else:
            raise LasorError(f"--keypoints {path}: pose_keypoints_2d has {flat.size} values, expected 75 (BODY_25) or 54 (COCO-18)")
        present = (arr[:, 2] >= min_confidence) & (arr[:, 2] > 0)
        return arr[:, :2].astype(np.float32), present
    anns = data
    if isinstance(data, dict) and "annotations" in data:
        anns = data["annotations"]
    if isinstance(anns, dict):
        anns = [anns]
    if not isinstance(anns, list) or not anns or person >= len(anns) or "keypoints" not in anns[person]:
        raise LasorError(f"--keypoints {path}: expected COCO 'keypoints' (17×[x,y,v]) or OpenPose 'people'")
    flat = np.asarray(anns[person]["keypoints"], dtype=np.float64)
    if flat.size != 51:
        raise LasorError(f"--keypoints {path}: 'keypoints' has {flat.size} values, expected 51 (17×[x,y,v])")
    arr = flat.reshape(17, 3)
    v = arr[:, 2]
    if np.all(np.isin(v, (0, 1, 2))):
        present = v == 2  # COCO flags: 2 visible, 1 labelled but hidden, 0 absent
    else:
        present = v >= min_confidence
    return arr[:, :2].astype(np.float32), present


def write_obj(path: str, vertices: np.ndarray, faces: np.ndarray):
    with open(path, "w") as f:
        f.write("# lasor-predict: SMPL-topology mesh in camera coordinates (OpenCV: x right, y down, z forward)\n")
        for v in vertices:
            f.write(f"v {v[0]:.5f} {v[1]:.5f} {v[2]:.5f}\n")
        for t in faces + 1:
            f.write(f"f {t[0]} {t[1]} {t[2]}\n")


@torch.no_grad()
def predict(checkpoint: str, mask_path: str, kp_path: str, out_dir: str, focal: float | None = None,
            min_confidence: float = 0.1, person: int = 0, device: str = "cpu") -> dict:
    dev = torch.device(device)
    model, cfg, ck = load_checkpoint(checkpoint, dev)
    mask = read_mask(mask_path)
    kp, present = read_keypoints(kp_path, person, min_confidence)
    H, W = mask.shape
    f = float(focal) if focal else 1.2 * max(H, W)
    K = intrinsics(f, W, H)
    x, (x0, y0, side), A, _ = make_input(mask, kp.astype(np.float64), present, cfg)
    Kc = torch.tensor(A @ K, dtype=torch.float32)[None]
    pred = model(torch.from_numpy(x)[None].to(dev))
    bodies = Bodies(ck.get("body_model", {}).get("path"), dev)
    joints, verts, _, pelvis_rest = bodies.predict(pred["rotmats"], pred["betas"])
    T = cam_to_translation(pred["cam"], Kc.to(dev), cfg.proxy.input_size)
    verts_cam = (verts + T[:, None])[0].cpu().numpy()
    aa = matrix_to_axis_angle(pred["rotmats"][0]).cpu().numpy()  # (24,3)
    # smplx puts the pelvis at J0(betas) + transl (rotations are about the pelvis): transl = T − J0
    transl = (T[0] - pelvis_rest[0]).cpu().numpy()
    os.makedirs(out_dir, exist_ok=True)
    params = {
        "global_orient": aa[0].tolist(), "body_pose": aa[1:].reshape(-1).tolist(),
        "betas": pred["betas"][0].cpu().tolist(), "transl": transl.tolist(),
        "frame": "camera (OpenCV: x right, y down, z forward); global_orient = camera-frame orientation",
        "camera": {"K": K.tolist(), "R": np.eye(3).tolist(), "t": [0.0, 0.0, 0.0], "image_size": [H, W]},
        "weak_perspective_cam": pred["cam"][0].cpu().tolist(), "crop": {"x0": x0, "y0": y0, "side": side},
        "joints3d_camera": (joints + T[:, None])[0].cpu().tolist(),
        "body_model": ck.get("body_model", {}).get("id"), "checkpoint": os.path.abspath(checkpoint),
        "keypoints_used": present.astype(int).tolist(),
    }
    params_path = os.path.join(out_dir, "smpl_params.json")
    with open(params_path, "w") as fh:
        json.dump(params, fh, indent=1)
    obj_path = os.path.join(out_dir, "mesh.obj")
    write_obj(obj_path, verts_cam, bodies.pred.faces.astype(np.int64))
    overlay_path = os.path.join(out_dir, "overlay.png")
    _overlay(overlay_path, mask, kp, present, verts_cam, bodies.pred.faces, K)
    return {"params": params, "params_path": params_path, "mesh_path": obj_path, "overlay_path": overlay_path,
            "vertices": verts_cam, "faces": bodies.pred.faces.astype(np.int64)}


def _overlay(path, mask, kp, present, verts_cam, faces, K):
    from scipy import ndimage

    from lasor_trainer.neural_renderer import Renderer

    H, W = mask.shape
    side = max(H, W)
    r = Renderer(image_size=side, anti_aliasing=False, fill_back=False, orig_size=side, near=0.05, far=1000.0)
    v = torch.from_numpy(verts_cam.astype(np.float32))[None]
    sil = r.render_silhouettes(v, torch.as_tensor(faces.astype(np.int64))[None], K=torch.tensor(K, dtype=torch.float32)[None],
                               R=torch.eye(3)[None], t=torch.zeros(1, 1, 3))[0].numpy()[:H, :W] > 0.5
    img = np.zeros((H, W, 3), np.uint8)
    img[mask] = (110, 110, 110)
    edge = sil & ~ndimage.binary_erosion(sil, iterations=max(1, side // 256))
    img[edge] = (255, 40, 40)
    rad = max(2, side // 128)
    for (x, y), p in zip(kp, present):
        if p:
            c, rr = int(x), int(y)
            img[max(rr - rad, 0):rr + rad + 1, max(c - rad, 0):c + rad + 1] = (40, 220, 40)
    Image.fromarray(img).save(path)
