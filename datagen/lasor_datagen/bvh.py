"""Motion capture import: a BVH reader, its forward kinematics, and retargeting onto SMPL's 24 joints.

Reading never executes anything: the file is tokenised and checked; a malformed file raises one
`LasorError` naming the file and line.

Retargeting copies bone directions, not local angles, so the two skeletons' rest poses and axes may
differ. With C the rotation taking the BVH world (its `up`, `forward`) to lasor's body frame (y up,
facing +z), and for each mapped SMPL joint j driven by BVH joint X:

    G_smpl[j] = C · G_bvh[X] · Cᵀ · Q_j

where G are global joint rotations and Q_j is the rest-pose correction: the smallest rotation taking
SMPL's rest bone j → child onto the BVH's rest bone X → (the joint mapped to that child), seen in
lasor's frame. At the BVH's rest pose every SMPL bone points where the BVH bone points, and when a
BVH bone turns, the SMPL bone turns with it. Local SMPL rotations follow as G[parent]ᵀ · G[j];
unmapped joints keep their parent's rotation (local identity). Frames are then thinned greedily:
a frame is kept when its mean per-joint rotation angle to the last kept frame reaches a threshold.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from lasor_shared.atomic import atomic_write
from lasor_shared.errors import LasorError
from lasor_shared.keypoints import SMPL24_NAMES

SMPL_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
SMPL_CHILD = {0: 3, 1: 4, 2: 5, 3: 6, 4: 7, 5: 8, 6: 9, 7: 10, 8: 11, 9: 12, 12: 15, 13: 16, 14: 17,
              16: 18, 17: 19, 18: 20, 19: 21, 20: 22, 21: 23}

# The CMU motion-capture database's 31-joint BVH skeleton (Y up, facing +Z, T-pose-like rest).
CMU_JOINT_MAP = {
    "up": "y", "forward": "z",
    "joints": {
        "pelvis": "Hips", "left_hip": "LeftUpLeg", "right_hip": "RightUpLeg", "spine1": "LowerBack",
        "left_knee": "LeftLeg", "right_knee": "RightLeg", "spine2": "Spine", "left_ankle": "LeftFoot",
        "right_ankle": "RightFoot", "spine3": "Spine1", "left_foot": "LeftToeBase", "right_foot": "RightToeBase",
        "neck": "Neck1", "left_collar": "LeftShoulder", "right_collar": "RightShoulder", "head": "Head",
        "left_shoulder": "LeftArm", "right_shoulder": "RightArm", "left_elbow": "LeftForeArm",
        "right_elbow": "RightForeArm", "left_wrist": "LeftHand", "right_wrist": "RightHand",
        "left_hand": "LeftFingerBase", "right_hand": "RightFingerBase",
    },
}

# SMPL joints whose mapped BVH joint sits at the same anatomical point (used to measure the error).
POSITION_JOINTS = ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
                   "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist")

_AXES = {"x": (1, 0, 0), "-x": (-1, 0, 0), "y": (0, 1, 0), "-y": (0, -1, 0), "z": (0, 0, 1), "-z": (0, 0, -1)}
_CHANNELS = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
MAX_BVH_BYTES = 512 * 1024 * 1024


@dataclass
class BVH:
    """A parsed BVH file: skeleton (parents before children; End Sites as joints without channels)."""
    path: str
    names: list = field(default_factory=list)
    parents: list = field(default_factory=list)
    offsets: np.ndarray = None                      # (J, 3) in the file's units
    channels: list = field(default_factory=list)    # per joint: channel names
    motion: np.ndarray = None                       # (F, total channels)
    frame_time: float = 0.0

    def index(self, name: str) -> int:
        return self.names.index(name)

    def rest_positions(self) -> np.ndarray:
        pos = np.zeros((len(self.names), 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] + (pos[p] if p >= 0 else 0.0)
        return pos


class _Tokens:
    def __init__(self, path, lines):
        self.path = path
        self.items = [(tok, n + 1) for n, line in enumerate(lines) for tok in line.split()]
        self.i = 0

    def fail(self, msg, line=None):
        if line is None:
            line = self.items[min(self.i, len(self.items) - 1)][1] if self.items else 1
        raise LasorError(f"{self.path}: line {line}: {msg}")

    def next(self, what):
        if self.i >= len(self.items):
            self.fail(f"unexpected end of file, expected {what}")
        tok = self.items[self.i]
        self.i += 1
        return tok

    def expect(self, word):
        tok, line = self.next(repr(word))
        if tok != word:
            self.fail(f"expected {word!r}, found {tok!r}", line)

    def number(self, what):
        tok, line = self.next(what)
        try:
            x = float(tok)
        except ValueError:
            self.fail(f"expected a number for {what}, found {tok!r}", line)
        if not np.isfinite(x):
            self.fail(f"{what} is not finite ({tok})", line)
        return x


def read_bvh(path: str) -> BVH:
    """Parse a BVH file (hierarchy + motion); LasorError with file and line on any malformation."""
    if not os.path.isfile(path):
        raise LasorError(f"{path}: BVH file not found")
    if os.path.getsize(path) > MAX_BVH_BYTES:
        raise LasorError(f"{path}: larger than {MAX_BVH_BYTES >> 20} MiB, not a BVH clip")
    try:
        with open(path, encoding="utf-8", errors="strict") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise LasorError(f"{path}: unreadable BVH file ({e.__class__.__name__}: {e})") from None
    try:
        motion_at = next(n for n, line in enumerate(lines) if line.strip() == "MOTION")
    except StopIteration:
        raise LasorError(f"{path}: no MOTION section (not a BVH file?)") from None
    bvh = BVH(path)
    offsets = []
    t = _Tokens(path, lines[:motion_at])
    t.expect("HIERARCHY")
    tok, line = t.next("ROOT")
    if tok != "ROOT":
        t.fail(f"expected 'ROOT', found {tok!r}", line)
    _read_joint(t, bvh, offsets, parent=-1)
    if t.i != len(t.items):
        t.fail(f"unexpected {t.items[t.i][0]!r} after the skeleton (a second ROOT is not supported)")
    bvh.offsets = np.array(offsets, dtype=np.float64)
    _read_motion(path, lines, motion_at, bvh)
    return bvh


def _read_joint(t, bvh, offsets, parent):
    name, line = t.next("a joint name")
    if name in bvh.names:
        t.fail(f"joint name {name!r} used twice", line)
    j = len(bvh.names)
    bvh.names.append(name)
    bvh.parents.append(parent)
    t.expect("{")
    t.expect("OFFSET")
    offsets.append([t.number(f"{name} OFFSET") for _ in range(3)])
    t.expect("CHANNELS")
    tok, line = t.next("a channel count")
    if not tok.isdigit() or int(tok) not in (0, 3, 6):
        t.fail(f"{name}: CHANNELS count must be 0, 3 or 6, found {tok!r}", line)
    chans = []
    for _ in range(int(tok)):
        c, line = t.next("a channel name")
        if c not in _CHANNELS or c in chans:
            t.fail(f"{name}: bad or repeated channel {c!r} (expected X/Y/Z position/rotation)", line)
        chans.append(c)
    if sum(c.endswith("rotation") for c in chans) not in (0, 3):
        t.fail(f"{name}: a joint needs all three rotation channels or none")
    bvh.channels.append(chans)
    while True:
        tok, line = t.next("JOINT, End Site or '}'")
        if tok == "}":
            return j
        if tok == "JOINT":
            _read_joint(t, bvh, offsets, j)
        elif tok == "End":
            t.expect("Site")
            t.expect("{")
            t.expect("OFFSET")
            bvh.names.append(f"{name}_end")
            bvh.parents.append(j)
            offsets.append([t.number(f"{name} End Site OFFSET") for _ in range(3)])
            bvh.channels.append([])
            t.expect("}")
        else:
            t.fail(f"expected JOINT, End Site or '}}', found {tok!r}", line)


def _read_motion(path, lines, at, bvh):
    def header(k, key):
        if k >= len(lines) or not lines[k].strip().startswith(key):
            raise LasorError(f"{path}: line {k + 1}: expected '{key}' after MOTION")
        value = lines[k].split(":", 1)[1].strip()
        return value

    frames_s, time_s = header(at + 1, "Frames:"), header(at + 2, "Frame Time:")
    if not frames_s.isdigit() or int(frames_s) < 1:
        raise LasorError(f"{path}: line {at + 2}: Frames must be a positive integer, found {frames_s!r}")
    try:
        bvh.frame_time = float(time_s)
    except ValueError:
        bvh.frame_time = float("nan")
    if not (np.isfinite(bvh.frame_time) and bvh.frame_time > 0):
        raise LasorError(f"{path}: line {at + 3}: Frame Time must be a positive number, found {time_s!r}")
    n, width = int(frames_s), sum(len(c) for c in bvh.channels)
    rows = [line for line in lines[at + 3:] if line.strip()]
    if len(rows) != n:
        raise LasorError(f"{path}: Frames says {n} but the file has {len(rows)} motion lines")
    data = np.empty((n, width))
    for k, row in enumerate(rows):
        parts = row.split()
        if len(parts) != width:
            raise LasorError(f"{path}: motion frame {k + 1}: {len(parts)} values, the skeleton has {width} channels")
        try:
            data[k] = [float(x) for x in parts]
        except ValueError:
            raise LasorError(f"{path}: motion frame {k + 1}: a value is not a number") from None
    if not np.all(np.isfinite(data)):
        bad = int(np.flatnonzero(~np.isfinite(data).all(1))[0]) + 1
        raise LasorError(f"{path}: motion frame {bad}: NaN or infinite values")
    bvh.motion = data


def forward_kinematics(bvh: BVH, frames=None):
    """Global rotations (F,J,3,3) and positions (F,J,3) of the chosen frames (default: all)."""
    motion = bvh.motion if frames is None else bvh.motion[np.asarray(frames)]
    F, J = len(motion), len(bvh.names)
    G = np.zeros((F, J, 3, 3))
    P = np.zeros((F, J, 3))
    col = 0
    for j, (p, chans) in enumerate(zip(bvh.parents, bvh.channels)):
        vals = motion[:, col:col + len(chans)]
        col += len(chans)
        rot = [c[0] for c in chans if c.endswith("rotation")]
        if rot:
            idx = [chans.index(f"{a}rotation") for a in rot]
            L = Rotation.from_euler("".join(rot), vals[:, idx], degrees=True).as_matrix()  # intrinsic, listed order
        else:
            L = np.broadcast_to(np.eye(3), (F, 3, 3))
        t = np.broadcast_to(bvh.offsets[j], (F, 3)).copy()
        for a, axis in enumerate("XYZ"):
            if f"{axis}position" in chans:
                t[:, a] += vals[:, chans.index(f"{axis}position")]
        if p < 0:
            G[:, j], P[:, j] = L, t
        else:
            G[:, j] = G[:, p] @ L
            P[:, j] = P[:, p] + np.einsum("fij,fj->fi", G[:, p], t)
    return G, P


# ---------------------------------------------------------------- joint maps

def read_joint_map(path: str | None) -> dict:
    """The CMU map (path None) or a YAML joint-map file: {up, forward, joints: {smpl_name: bvh_name}}."""
    if path is None:
        return CMU_JOINT_MAP
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise LasorError(f"{path}: unreadable joint map ({str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("joints"), dict):
        raise LasorError(f"{path}: a joint map needs 'joints: {{smpl_joint: bvh_joint, ...}}'")
    unknown = set(doc) - {"up", "forward", "joints"}
    if unknown:
        raise LasorError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))} (allowed: up, forward, joints)")
    out = {"up": doc.get("up", "y"), "forward": doc.get("forward", "z"), "joints": {}}
    for key in ("up", "forward"):
        if out[key] not in _AXES:
            raise LasorError(f"{path}: {key}: expected one of {', '.join(_AXES)}, got {out[key]!r}")
    if out["up"].strip("-") == out["forward"].strip("-"):
        raise LasorError(f"{path}: up and forward must be different axes")
    for smpl, name in doc["joints"].items():
        if smpl not in SMPL24_NAMES:
            raise LasorError(f"{path}: joints.{smpl}: not an SMPL joint (one of {', '.join(SMPL24_NAMES)})")
        if not isinstance(name, str):
            raise LasorError(f"{path}: joints.{smpl}: expected a BVH joint name, got {name!r}")
        out["joints"][smpl] = name
    if "pelvis" not in out["joints"]:
        raise LasorError(f"{path}: joints.pelvis: required (the BVH root or hips joint)")
    return out


def axis_change(joint_map: dict) -> Rotation:
    """C: the rotation taking the BVH world's (up, forward) onto lasor's (y, z)."""
    up, fwd = np.array(_AXES[joint_map["up"]], float), np.array(_AXES[joint_map["forward"]], float)
    src = np.stack([up, fwd, np.cross(up, fwd)])
    dst = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    return Rotation.from_matrix(dst.T @ src)


# ---------------------------------------------------------------- retargeting

class Retargeter:
    """Maps BVH frames of one skeleton onto SMPL poses (see the module docstring)."""

    def __init__(self, bvh: BVH, joint_map: dict, smpl_rest_joints: np.ndarray):
        missing = sorted({n for n in joint_map["joints"].values() if n not in bvh.names})
        if missing:
            raise LasorError(f"{bvh.path}: the joint map names joint(s) missing from the file: {', '.join(missing)}")
        self.bvh, self.map = bvh, joint_map
        self.C = axis_change(joint_map).as_matrix()
        self.driver = {SMPL24_NAMES.index(s): bvh.index(b) for s, b in joint_map["joints"].items()}
        rest_b = bvh.rest_positions() @ self.C.T
        children = {j: [k for k, p in enumerate(bvh.parents) if p == j] for j in range(len(bvh.names))}
        self.Q = np.tile(np.eye(3), (24, 1, 1))
        for j, x in self.driver.items():
            d_smpl = self._smpl_dir(j, smpl_rest_joints)
            d_bvh = self._bvh_dir(j, x, rest_b, children)
            if d_smpl is not None and d_bvh is not None:
                self.Q[j] = _align(d_smpl, d_bvh)
            elif j in (13, 14, 20, 21, 22, 23, 10, 11, 15) and SMPL_PARENTS[j] in self.driver:
                self.Q[j] = self.Q[SMPL_PARENTS[j]]

    def _smpl_dir(self, j, rest):
        if j == 0:
            return None                         # the pelvis keeps the BVH hips' frame
        c = SMPL_CHILD.get(j)
        return rest[c] - rest[j] if c is not None else None

    def _bvh_dir(self, j, x, rest_b, children):
        c = SMPL_CHILD.get(j)
        while c is not None and c not in self.driver:
            c = SMPL_CHILD.get(c)
        target = self.driver.get(c) if c is not None else None
        if target is not None and np.linalg.norm(rest_b[target] - rest_b[x]) > 1e-6:
            return rest_b[target] - rest_b[x]
        k = x                                   # else: down the first children to a point away from x
        while children[k]:
            k = children[k][0]
            if np.linalg.norm(rest_b[k] - rest_b[x]) > 1e-6:
                return rest_b[k] - rest_b[x] if j != 0 else None
        return None

    def global_rotations(self, frames=None) -> np.ndarray:
        """(F,24,3,3) SMPL global joint rotations in lasor's frame."""
        Gb, _ = forward_kinematics(self.bvh, frames)
        F = len(Gb)
        G = np.zeros((F, 24, 3, 3))
        for j in range(24):
            if j in self.driver:
                G[:, j] = self.C @ Gb[:, self.driver[j]] @ self.C.T @ self.Q[j]
            else:
                G[:, j] = G[:, SMPL_PARENTS[j]] if j else np.eye(3)
        return G

    def poses(self, frames=None) -> np.ndarray:
        """(F,72) SMPL axis-angle poses (root = the hips' global orientation in lasor's frame)."""
        G = self.global_rotations(frames)
        local = G.copy()
        par = np.array(SMPL_PARENTS[1:])
        local[:, 1:] = np.einsum("fjki,fjkl->fjil", G[:, par], G[:, 1:])
        F = len(G)
        return Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(F, 72)


def _align(a, b):
    """Smallest rotation matrix taking direction a onto direction b."""
    R, _ = Rotation.align_vectors([b / np.linalg.norm(b)], [a / np.linalg.norm(a)])
    return R.as_matrix()


def pose_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean per-joint rotation angle (radians) between (…,72) poses, root included."""
    ra = Rotation.from_rotvec(np.asarray(a).reshape(-1, 3))
    rb = Rotation.from_rotvec(np.asarray(b).reshape(-1, 3))
    return (ra.inv() * rb).magnitude().reshape(*np.shape(a)[:-1], 24).mean(-1)


def select_frames(poses: np.ndarray, min_change: float) -> np.ndarray:
    """Greedy thinning: indices of frames whose mean joint-rotation change to the last kept ≥ min_change."""
    keep = [0]
    for k in range(1, len(poses)):
        if pose_distance(poses[keep[-1]], poses[k]) >= min_change:
            keep.append(k)
    return np.array(keep, dtype=np.int64)


def similarity_fit(src: np.ndarray, dst: np.ndarray):
    """Scale s, rotation R and translation t minimising Σ|s·R·src + t − dst|² over (N,3) points (Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    R = U @ D @ Vt
    s = float(np.trace(np.diag(S) @ D) / (a * a).sum())
    return s, R, md - s * R @ ms


def retarget_error(bvh: BVH, joint_map: dict, frames: np.ndarray, smpl_joints: np.ndarray) -> dict | None:
    """Joint position error of retargeted SMPL bodies against the BVH's own joints (FK).

    Each frame's joints are centred on their centroid (the two skeletons' roots are different points);
    ONE similarity (scale + rotation) fitted over all frames and the mapped limb joints aligns the BVH
    to SMPL, so a wrong root orientation or limb direction shows up as error, while the skeletons'
    different proportions (bone lengths, hip width) remain as a floor.
    """
    names = [n for n in POSITION_JOINTS if n in joint_map["joints"]]
    if len(names) < 4:
        return None                             # too few limb joints mapped to measure anything
    si = [SMPL24_NAMES.index(n) for n in names]
    bi = [bvh.index(joint_map["joints"][n]) for n in names]
    _, Pb = forward_kinematics(bvh, frames)
    src, dst = Pb[:, bi], smpl_joints[:, si]
    src = (src - src.mean(1, keepdims=True)).reshape(-1, 3)
    dst = (dst - dst.mean(1, keepdims=True)).reshape(-1, 3)
    s, R, t = similarity_fit(src, dst)
    err = np.linalg.norm(src @ (s * R).T + t - dst, axis=1).reshape(len(frames), len(si))
    return {"mean_mm": float(1000 * err.mean()), "p95_mm": float(1000 * np.percentile(err, 95)),
            "per_joint_mm": dict(zip(names, (1000 * err.mean(0)).round(1).tolist())), "scale": s,
            "rotation": R, "translation": t}


def import_bvh(path: str, joint_map: dict, smpl_rest_joints: np.ndarray, min_change_deg: float = 5.0):
    """(the parsed BVH, poses (N,72), their frame indices (N,)) of one clip, retargeted and thinned."""
    bvh = read_bvh(path)
    poses = Retargeter(bvh, joint_map, smpl_rest_joints).poses()
    keep = select_frames(poses, np.deg2rad(min_change_deg))
    return bvh, poses[keep], keep


def write_pose_set(out: str, poses: np.ndarray, sources: list, frames: np.ndarray, fps: np.ndarray):
    """The `.npz` pose source recipes read (`poses` (N,72) plus provenance), written atomically."""
    if not len(poses) or not np.all(np.isfinite(poses)):
        raise LasorError(f"{out}: no finite poses to write")
    os.makedirs(os.path.dirname(os.path.abspath(out)) or ".", exist_ok=True)
    with atomic_write(out, suffix=".npz") as tmp:  # np.savez would append .npz to any other name
        np.savez(tmp, poses=poses.astype(np.float64), source=np.array(sources), frame=frames.astype(np.int64),
                 mocap_framerate=fps.astype(np.float64))
