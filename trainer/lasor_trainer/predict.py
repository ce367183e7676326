"""`lasor-predict`: SMPL pose and shape from a person mask PNG + 2D keypoints JSON.

Keypoints: COCO format (`{"keypoints": [x, y, v] × 17}`, an annotation list, or
`{"annotations": [...]}`; integer flags v ∈ {0,1,2} become confidences 0 / 0.3 / 1 — a labelled
but hidden keypoint is a low-confidence one — float values are the source's scores) or OpenPose
format (`{"people": [{"pose_keypoints_2d": [...]}]}`, BODY_25 or COCO-18; the triplets' scores).
Scores below --min-confidence become 0 (missing). The model receives them by the input convention
of `lasor_trainer.inputs`, built by exactly the code used in training (`data.make_input`).

Outputs in --out: `smpl_params.json` (camera-frame global orientation, body pose, betas, smplx
`transl` placing the body in camera coordinates, K, crop), `mesh.obj` (camera coordinates) and
`overlay.png` (input mask grey, predicted body silhouette outline red, keypoints green).
"""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from lasor_shared.camera import intrinsics
from lasor_shared.errors import LasorError
from lasor_trainer.rotations import matrix_to_axis_angle
from lasor_trainer.data import make_input
from lasor_trainer.inputs import COCO_FLAG_CONFIDENCE
from lasor_trainer.checkpoint import load_model as load_checkpoint
from lasor_trainer.bodies import Bodies
from lasor_trainer.model import cam_to_translation
from lasor_trainer.neural_renderer import Renderer
from lasor_trainer.pretrained import resolve_checkpoint

BODY25_TO_COCO17 = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
COCO18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)


MAX_IMAGE_SIDE = 8192      # pixels; larger masks are refused before decoding
MAX_COORD = 1e5            # |keypoint coordinate| in pixels


def read_mask(path: str) -> np.ndarray:
    try:
        img = Image.open(path)
        if max(img.size) > MAX_IMAGE_SIDE or min(img.size) < 1:
            raise LasorError(f"--mask {path}: image is {img.size[0]}×{img.size[1]}, expected 1..{MAX_IMAGE_SIDE} px a side")
        img.load()
    except LasorError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise LasorError(f"--mask {path}: not a readable image ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    a = np.asarray(img.convert("L"))
    mask = a > (127 if a.max() > 1 else 0)
    if not mask.any():
        raise LasorError(f"--mask {path}: the mask is empty")
    return mask


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _triples(path: str, field: str, values, n_joints: int) -> np.ndarray:
    """(n_joints, 3) float array of a flat [x, y, score] × n list of finite numbers; LasorError otherwise."""
    if not isinstance(values, list) or len(values) != 3 * n_joints:
        size = len(values) if isinstance(values, list) else type(values).__name__
        raise LasorError(f"--keypoints {path}: {field} must be a flat list of {3 * n_joints} numbers, got {size}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise LasorError(f"--keypoints {path}: {field} must hold numbers only")
    arr = np.asarray(values, dtype=np.float64).reshape(n_joints, 3)
    if not np.all(np.isfinite(arr)) or np.abs(arr[:, :2]).max() > MAX_COORD:
        raise LasorError(f"--keypoints {path}: {field} must hold finite coordinates within ±{MAX_COORD:g} px")
    if arr[:, 2].min() < 0:
        raise LasorError(f"--keypoints {path}: {field} has a negative score/visibility")
    return arr


def read_keypoints(path: str, person: int = 0, min_confidence: float = 0.1):
    """(17,2) COCO-17 pixel coordinates and (17,) confidences in [0, 1] (0 = missing; below
    min_confidence → 0), from COCO or OpenPose JSON."""
    if person < 0:
        raise LasorError(f"--person {person}: must be >= 0")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f, parse_constant=_refuse_constant)
    except (OSError, ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LasorError(f"--keypoints {path}: unreadable JSON ({str(e).splitlines()[0][:200]})") from None
    if isinstance(data, dict) and "people" in data:
        people = data["people"]
        if not isinstance(people, list):
            raise LasorError(f"--keypoints {path}: 'people' must be a list, got {type(people).__name__}")
        if person >= len(people):
            raise LasorError(f"--keypoints {path}: no person {person} in 'people' ({len(people)} found)")
        if not isinstance(people[person], dict):
            raise LasorError(f"--keypoints {path}: people[{person}] must be an object with pose_keypoints_2d")
        flat = people[person].get("pose_keypoints_2d", [])
        n = len(flat) if isinstance(flat, list) else 0
        if n == 75:
            arr = _triples(path, "pose_keypoints_2d", flat, 25)[list(BODY25_TO_COCO17)]
        elif n == 54:
            arr = _triples(path, "pose_keypoints_2d", flat, 18)[list(COCO18_TO_COCO17)]
        else:
            raise LasorError(f"--keypoints {path}: pose_keypoints_2d has {n if isinstance(flat, list) else 'no list of'} "
                             "values, expected 75 (BODY_25) or 54 (COCO-18)")
        return arr[:, :2].astype(np.float32), _confidence(arr[:, 2], min_confidence)
    anns = data
    if isinstance(data, dict) and "annotations" in data:
        anns = data["annotations"]
    if isinstance(anns, dict):
        anns = [anns]
    if (not isinstance(anns, list) or person >= len(anns) or not isinstance(anns[person], dict)
            or "keypoints" not in anns[person]):
        raise LasorError(f"--keypoints {path}: expected COCO 'keypoints' (17×[x,y,v]) or OpenPose 'people'"
                         + (f" for person {person}" if isinstance(anns, list) and anns else ""))
    arr = _triples(path, "'keypoints'", anns[person]["keypoints"], 17)
    v = arr[:, 2]
    if np.all(np.isin(v, (0, 1, 2))):  # COCO flags: 2 visible, 1 labelled but hidden, 0 absent
        v = np.array([COCO_FLAG_CONFIDENCE[int(x)] for x in v])
    return arr[:, :2].astype(np.float32), _confidence(v, min_confidence)


def _confidence(score: np.ndarray, min_confidence: float) -> np.ndarray:
    c = np.clip(np.asarray(score, np.float64), 0.0, 1.0)
    return np.where((c >= min_confidence) & (c > 0), c, 0.0).astype(np.float32)


def write_obj(path: str, vertices: np.ndarray, faces: np.ndarray):
    with open(path, "w") as f:
        f.write("# lasor-predict: SMPL-topology mesh in camera coordinates (OpenCV: x right, y down, z forward)\n")
        for v in vertices:
            f.write(f"v {v[0]:.5f} {v[1]:.5f} {v[2]:.5f}\n")
        for t in faces + 1:
            f.write(f"f {t[0]} {t[1]} {t[2]}\n")


def predict(checkpoint: str, mask_path: str, kp_path: str, out_dir: str, focal: float | None = None,
            min_confidence: float = 0.1, person: int = 0, device: str = "cpu") -> dict:
    if not (math.isfinite(min_confidence) and 0 <= min_confidence <= 1):
        raise LasorError(f"--min-confidence {min_confidence}: must be a number in [0, 1]")
    if focal is not None and not (math.isfinite(focal) and focal > 0):
        raise LasorError(f"--focal {focal}: must be a finite number of pixels > 0")
    mask = read_mask(mask_path)
    kp, conf = read_keypoints(kp_path, person, min_confidence)
    return _predict(checkpoint, mask, kp, conf, out_dir, focal, device)


def predict_person(checkpoint: str, mask: np.ndarray, keypoints: np.ndarray, confidence: np.ndarray, out_dir: str,
                   focal: float | None = None, device: str = "cpu", timing: dict | None = None) -> dict:
    """One person from the photo front end: bool (H, W) mask, (17, 2) keypoints, (17,) confidences in [0, 1]
    — fed to the model by the input convention of `lasor_trainer.inputs`, like every other input.
    `timing` receives "regress" and "write" as (wall, cpu) seconds."""
    return _predict(checkpoint, mask, keypoints, np.asarray(confidence, np.float32), out_dir, focal, device, timing)


_LOADED: dict = {}


def _load(checkpoint: str, dev: torch.device):
    """(model, cfg, checkpoint dict, Bodies), loaded once per file (a folder of photos reuses them)."""
    st = os.stat(checkpoint)
    key = (os.path.abspath(checkpoint), st.st_mtime_ns, st.st_size, str(dev))
    if key not in _LOADED:
        model, cfg, ck = load_checkpoint(checkpoint, dev)
        _LOADED.clear()
        _LOADED[key] = (model, cfg, ck, Bodies(ck.get("body_model", {}).get("path"), dev))
    return _LOADED[key]


@torch.no_grad()
def _predict(checkpoint, mask, kp, conf, out_dir, focal, device, timing=None) -> dict:
    t0 = np.array([time.perf_counter(), time.process_time()])
    H, W = mask.shape
    f = float(focal) if focal is not None else 1.2 * max(H, W)
    if not 0.05 * max(H, W) <= f <= 100 * max(H, W):
        raise LasorError(f"--focal {f:g}: expected between 0.05 and 100 × the longer image side ({max(H, W)} px)")
    dev = torch.device(device)
    checkpoint = resolve_checkpoint(checkpoint)  # None: the shipped model
    model, cfg, ck, bodies = _load(checkpoint, dev)
    K = intrinsics(f, W, H)
    batch, (x0, y0, side), A = make_input(mask, kp.astype(np.float64), conf, cfg, K)
    present = conf >= (cfg.keypoints.min_confidence if cfg.keypoints.mode == "detector" else 0.5)
    Kc = torch.tensor(A @ K, dtype=torch.float32)[None]
    pred = model({k: v.to(dev) for k, v in batch.items()})
    joints, verts, _, pelvis_rest = bodies.predict(pred["rotmats"], pred["betas"])
    T = cam_to_translation(pred["cam"], Kc.to(dev), cfg.proxy.input_size)
    verts_cam = (verts + T[:, None])[0].cpu().numpy()
    aa = matrix_to_axis_angle(pred["rotmats"][0]).cpu().numpy()  # (24,3)
    # smplx puts the pelvis at J0(betas) + transl (rotations are about the pelvis): transl = T − J0
    transl = (T[0] - pelvis_rest[0]).cpu().numpy()
    outputs = [aa, pred["betas"], pred["cam"], T, joints, verts_cam]
    if not all(np.all(np.isfinite(o.cpu().numpy() if torch.is_tensor(o) else o)) for o in outputs):
        raise LasorError("the prediction is not finite (nothing written): check the mask and keypoints")
    if float(T[0, 2]) <= 0:
        raise LasorError("the predicted body lies behind the camera (nothing written): check --focal and the inputs")
    t1 = np.array([time.perf_counter(), time.process_time()])
    os.makedirs(out_dir, exist_ok=True)
    params = {
        "global_orient": aa[0].tolist(), "body_pose": aa[1:].reshape(-1).tolist(),
        "betas": pred["betas"][0].cpu().tolist(), "transl": transl.tolist(),
        "frame": "camera (OpenCV: x right, y down, z forward); global_orient = camera-frame orientation",
        "camera": {"K": K.tolist(), "R": np.eye(3).tolist(), "t": [0.0, 0.0, 0.0], "image_size": [H, W]},
        "weak_perspective_cam": pred["cam"][0].cpu().tolist(), "crop": {"x0": x0, "y0": y0, "side": side},
        "joints3d_camera": (joints + T[:, None])[0].cpu().tolist(),
        "body_model": ck.get("body_model", {}).get("id"), "checkpoint": os.path.abspath(checkpoint),
        "keypoints_used": present.astype(int).tolist(), "keypoint_confidence": conf.round(3).tolist(),
    }
    params_path = os.path.join(out_dir, "smpl_params.json")
    with open(params_path, "w") as fh:
        json.dump(params, fh, indent=1)
    obj_path = os.path.join(out_dir, "mesh.obj")
    write_obj(obj_path, verts_cam, bodies.pred.faces.astype(np.int64))
    overlay_path = os.path.join(out_dir, "overlay.png")
    _overlay(overlay_path, mask, kp, present, verts_cam, bodies.pred.faces, K)
    if timing is not None:
        timing["regress"], timing["write"] = t1 - t0, np.array([time.perf_counter(), time.process_time()]) - t1
    return {"params": params, "params_path": params_path, "mesh_path": obj_path, "overlay_path": overlay_path,
            "vertices": verts_cam, "faces": bodies.pred.faces.astype(np.int64)}


def _overlay(path, mask, kp, present, verts_cam, faces, K):
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
