"""The real benchmarks users own — SSP-3D and 3DPW — as datasets for lasor's evaluation
(`evaluate.evaluate_benchmark` runs them).

Each loader yields "raw" samples with the same fields as a shard sample (mask bits, COCO-17
keypoints + visibility codes, pose/betas/gender, camera K/R/t, camera-frame joints3d, azimuth …),
so `data.make_sample` builds the same proxy/crop and `evaluate.run_evaluation` the same metrics.

SSP-3D (folder): `labels.npz` (fnames, shapes, poses, cam_trans, joints2D (N,17,3), genders …) and
`silhouettes/<fname>`. Poses are camera-frame (R = I), perspective f = 5000 px, principal point at
the image centre; the silhouette is both the visible and the full mask; keypoints with confidence
> 0 are inputs. PVE-T-SC is the benchmark's metric (with real SMPL: pass --body-model and note
that gendered ground truth then uses the same file unless it is the embedded family).

3DPW (a sequence .pkl or a folder of them), read with a restricted unpickler (numpy arrays and
plain containers only, nothing executed): per person `poses` (T,72) world frame, `betas`, `trans`,
`poses2d` (T,3,18 COCO-18 OpenPose detections), `campose_valid`; per frame `cam_poses` (T,4,4)
world→camera, `cam_intrinsics`. 3DPW has no masks: the silhouette input is the ground-truth body
rendered with the exact forward rasteriser (an oracle-silhouette protocol — say so when reporting),
at most `max_side` pixels (K scaled accordingly). 3DPW-Crowd = courtyard_hug_00 + courtyard_dancing_00.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import torch
from PIL import Image

from lasor_shared.errors import LasorError
from lasor_shared.pw3d import read_sequence
from lasor_shared.shards import GENDER_CODES
from lasor_trainer.config import Config
from lasor_trainer.data import make_sample
from lasor_trainer.neural_renderer import projection, rasterize_face_index_map, vertices_to_faces
from lasor_trainer.rotations import axis_angle_to_matrix, matrix_to_axis_angle

COCO18_TO_COCO17 = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
GENDER = {**GENDER_CODES, **{g[0]: code for g, code in GENDER_CODES.items()}}  # also "m", "f", "n"


def _gender_code(g) -> int:
    if isinstance(g, bytes):
        g = g.decode()
    if isinstance(g, (int, np.integer)):
        return int(g)
    return GENDER.get(str(g).strip().lower(), 0)


def azimuth_from_orient(global_orient_cam: np.ndarray) -> float:
    """Camera azimuth around the body's vertical axis (0 = in front) from a camera-frame orientation."""
    R = axis_angle_to_matrix(torch.as_tensor(global_orient_cam, dtype=torch.float64)).numpy()
    d = R.T @ np.array([0.0, 0.0, -1.0])  # direction body → camera, in the body frame
    return float(np.arctan2(d[0], d[2]))


def _base_raw(mask, kp, vis, pose, betas, gender, K, R, t, joints3d, azimuth):
    return {
        "mask": mask, "keypoints_coco": kp.astype(np.float32), "visibility_coco": vis.astype(np.uint8),
        "pose": pose.astype(np.float32), "betas": betas.astype(np.float32), "gender": np.uint8(gender),
        "cam_K": K.astype(np.float32), "cam_R": R.astype(np.float32), "cam_t": t.astype(np.float32),
        "joints3d": joints3d.astype(np.float32), "azimuth": np.float32(azimuth), "elevation": np.float32(0),
        "occluder_type": np.uint8(0), "visible_fraction": np.float32(1.0),
    }


def _joints(bodies, gender, pose, betas):
    m = bodies.model_for(int(gender))
    with torch.no_grad():
        out = m.pose(torch.as_tensor(pose, dtype=torch.float32)[None], torch.as_tensor(betas, dtype=torch.float32)[None])
    return out.joints[0, :24].numpy(), out.vertices[0].numpy()


class SSP3D(torch.utils.data.Dataset):
    def __init__(self, root: str, cfg: Config, bodies):
        path = os.path.join(root, "labels.npz")
        if not os.path.isfile(path):
            raise LasorError(f"--ssp3d {root}: no labels.npz")
        try:
            z = np.load(path, allow_pickle=False)
            self.lab = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError) as e:
            raise LasorError(f"{path}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
        need = ("fnames", "shapes", "poses", "cam_trans", "joints2D", "genders")
        missing = [k for k in need if k not in self.lab]
        if missing:
            raise LasorError(f"{path}: missing key(s) {', '.join(missing)}")
        n = len(self.lab["fnames"])
        for k, shape in (("shapes", (n, 10)), ("poses", (n, 72)), ("cam_trans", (n, 3)), ("joints2D", (n, 17, 3))):
            if self.lab[k].shape != shape:
                raise LasorError(f"{path}: {k} has shape {self.lab[k].shape}, expected {shape}")
            if self.lab[k].dtype.kind not in "iuf" or not np.all(np.isfinite(self.lab[k])):
                raise LasorError(f"{path}: {k} must hold finite numbers")
        self.root, self.cfg, self.bodies = root, cfg, bodies

    def __len__(self):
        return len(self.lab["fnames"])

    def raw(self, i):
        fname = str(self.lab["fnames"][i])
        spath = os.path.join(self.root, "silhouettes", fname)
        if not os.path.isfile(spath):
            alt = os.path.splitext(spath)[0] + ".png"
            if not os.path.isfile(alt):
                raise LasorError(f"SSP-3D: silhouette {spath} not found")
            spath = alt
        try:
            sil = np.asarray(Image.open(spath).convert("L")) > 0
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise LasorError(f"SSP-3D: silhouette {spath} is not a readable image ({e})") from None
        H, W = sil.shape
        K = np.array([[5000.0, 0, W / 2], [0, 5000.0, H / 2], [0, 0, 1]])
        pose, betas = self.lab["poses"][i], self.lab["shapes"][i]
        g = _gender_code(self.lab["genders"][i])
        j, _ = _joints(self.bodies, g, pose, betas)
        kp = self.lab["joints2D"][i]
        vis = np.where(kp[:, 2] > 0, 4, 0)
        mask = (sil * 3).astype(np.uint8)
        return _base_raw(mask, kp[:, :2], vis, pose, betas, g, K, np.eye(3), np.zeros(3),
                         j + self.lab["cam_trans"][i], azimuth_from_orient(pose[:3]))

    def __getitem__(self, i):
        return make_sample(self.raw(i), self.cfg, None, i)


MIN_2D_JOINTS = 6  # official 3DPW evaluation: frames with fewer detected 2D joints are dropped


class PW3D(torch.utils.data.Dataset):
    def __init__(self, path: str, cfg: Config, bodies, stride: int = 1, max_side: int = 512):
        files = sorted(glob.glob(os.path.join(path, "*.pkl"))) if os.path.isdir(path) else [path]
        if not files or not all(os.path.isfile(f) for f in files):
            raise LasorError(f"--3dpw {path}: no sequence .pkl files")
        self.cfg, self.bodies, self.max_side = cfg, bodies, max_side
        self.seqs, self.items = [], []
        n_total = n_campose = 0
        for f in files:
            d = read_sequence(f)
            self.seqs.append(d)
            s = len(self.seqs) - 1
            for p in range(len(d["poses"])):
                campose = d["campose_valid"][p] > 0
                detected = (d["poses2d"][p][:, 2, :] > 0).sum(1)  # (T,) joints with a 2D detection
                valid = campose & (detected >= MIN_2D_JOINTS)
                n_total, n_campose = n_total + len(campose), n_campose + int(campose.sum())
                for t in np.flatnonzero(valid)[::stride]:
                    self.items.append((s, p, int(t)))
        self.frame_filter = (f"campose_valid and >= {MIN_2D_JOINTS} detected 2D joints (official 3DPW evaluation): "
                             f"{n_campose} of {n_total} person-frames have a valid camera pose, "
                             f"{len(self.items)} kept"
                             + (f" (every {stride}th)" if stride > 1 else ""))
        if not self.items:
            raise LasorError(f"--3dpw {path}: no valid frames ({self.frame_filter})")

    def __len__(self):
        return len(self.items)

    def raw(self, i):
        s, p, t = self.items[i]
        d = self.seqs[s]
        pose = np.asarray(d["poses"][p][t], np.float64)
        betas = np.asarray(d["betas"][p], np.float64)[:10]
        trans = np.asarray(d["trans"][p][t], np.float64)
        E = np.asarray(d["cam_poses"][t], np.float64)
        R, tt = E[:3, :3], E[:3, 3]
        K = np.asarray(d["cam_intrinsics"], np.float64).copy()
        W, H = int(round(2 * K[0, 2])), int(round(2 * K[1, 2]))
        scale = min(1.0, self.max_side / max(H, W))
        K[:2] *= scale
        H, W = max(int(round(H * scale)), 1), max(int(round(W * scale)), 1)
        g = _gender_code(d["genders"][p])
        j, v = _joints(self.bodies, g, pose, betas)
        side = max(H, W)
        vt = torch.as_tensor(v + trans, dtype=torch.float32)[None]
        ndc = projection(vt, torch.tensor(K, dtype=torch.float32)[None], torch.tensor(R, dtype=torch.float32)[None],
                         torch.tensor(tt, dtype=torch.float32)[None, None], orig_size=side)
        faces = self.bodies.faces[None].cpu()
        fim, _ = rasterize_face_index_map(vertices_to_faces(ndc, faces), side)
        sil = fim[0].numpy()[:H, :W] >= 0
        kp18 = np.asarray(d["poses2d"][p][t], np.float64)  # (3,18)
        kp = kp18.T[list(COCO18_TO_COCO17)]
        kp[:, :2] *= scale
        vis = np.where(kp[:, 2] > 0, 4, 0)
        joints_cam = (j + trans) @ R.T + tt
        orient_cam = (torch.as_tensor(R) @ axis_angle_to_matrix(torch.as_tensor(pose[:3]))).numpy()
        az = azimuth_from_orient(matrix_to_axis_angle(torch.as_tensor(orient_cam)).numpy())
        return _base_raw((sil * 3).astype(np.uint8), kp[:, :2], vis, pose, betas, g, K, R, tt, joints_cam, az)

    def __getitem__(self, i):
        return make_sample(self.raw(i), self.cfg, None, i)
