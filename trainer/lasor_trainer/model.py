"""The regressor: input paths + iterative error feedback (IEF).

Two input paths, either or both (`ModelConfig.image_path`, `keypoint_path`; a checkpoint's saved
config says which, so older checkpoints load unchanged):
- image: a ResNet-18-style encoder on the proxy (silhouette + 17 heatmaps, or the silhouette alone);
- keypoints: a residual MLP on the keypoint vector (x, y, confidence per COCO-17 keypoint) and the
  crop's place in the camera (`lasor_trainer.inputs`) — the cheap, direct 2D → 3D path.

No torchvision here: the encoder is a small, plain ResNet (BasicBlocks, [2,2,2,2] by default) whose
base width is configurable (64 = ResNet-18; 16–32 for CPU demos). The IEF regressor starts from mean
parameters — the zero body pose, mean shape, the body upright and facing the camera, weak-perspective
scale s₀ — and refines them `ief_iters` times from [features, current estimate].

Outputs (camera frame, because the network only sees an image crop):
- `rotmats` (B,24,3,3): global orientation in the CAMERA frame (R_cam·R_global) then 23 body joints,
  from 6D rotations (Zhou et al.);
- `betas` (B,10);
- `cam` (B,3) = (s, tx, ty) weak-perspective in crop-normalised units (s > 0 through a softplus),
  turned into a perspective camera-frame translation with the crop intrinsics by `cam_to_translation`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lasor_trainer.rotations import matrix_to_rot6d, rot6d_to_matrix
from lasor_trainer.config import ModelConfig

N_JOINTS = 24
N_BETAS = 10
STATE = N_JOINTS * 6 + N_BETAS + 3
# body upright, facing the camera: body y up → camera −y, body +z (front) → camera −z
FACING_CAMERA = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNetEncoder(nn.Module):
    """ResNet-18 layout: 7×7/2 stem, 3×3/2 max-pool, four stages of BasicBlocks, global average pool."""

    def __init__(self, in_channels=18, width=64, layers=(2, 2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        stages, cin = [], width
        for i, n in enumerate(layers):
            cout = width * 2 ** i
            blocks = [BasicBlock(cin, cout, 1 if i == 0 else 2)] + [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.out_dim = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each block: residual starts as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.bn2.weight)

    def forward(self, x):
        return self.stages(self.stem(x)).mean((2, 3))


def _inv_softplus(y: float) -> float:
    return math.log(math.expm1(y))


class KeypointEncoder(nn.Module):
    """The keypoint path: (x, y, confidence) ×17 + crop info → features, a residual MLP
    (Martinez et al. 2017 style: Linear → [Linear-LN-ReLU ×2 + skip] × blocks)."""

    def __init__(self, hidden: int, blocks: int, n_in: int = 17 * 3 + 3):
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(inplace=True),
                          nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(inplace=True))
            for _ in range(blocks))
        self.out_dim = hidden

    def forward(self, kp: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(torch.cat([kp.flatten(1), info], 1)))
        for blk in self.blocks:
            h = h + blk(h)
        return h


class Regressor(nn.Module):
    """Input paths (image encoder and/or keypoint MLP) + IEF; see the module docstring."""

    def __init__(self, cfg: ModelConfig, in_channels: int | None = None):
        super().__init__()
        self.cfg = cfg
        if in_channels is None:
            in_channels = 1 if cfg.image_input == "silhouette" else 18
        d = 0
        self.encoder = None
        if cfg.image_path:
            self.encoder = ResNetEncoder(in_channels, cfg.width, tuple(cfg.layers))
            self.encoder.to(memory_format=torch.channels_last)  # NHWC: ≈ 1.5× faster convolutions on CPU
            d += self.encoder.out_dim + (3 * (in_channels - 1) if cfg.keypoint_features else 0)
        self.keypoints = KeypointEncoder(cfg.kp_hidden, cfg.kp_blocks) if cfg.keypoint_path else None
        if self.keypoints is not None:
            d += self.keypoints.out_dim
        self.fc1 = nn.Linear(d + STATE, cfg.hidden)
        self.fc2 = nn.Linear(cfg.hidden, cfg.hidden)
        # hidden layers beyond the first two (none by default: checkpoints without them load unchanged)
        self.fc_more = nn.ModuleList(nn.Linear(cfg.hidden, cfg.hidden) for _ in range(cfg.ief_layers - 2))
        self.out = nn.Linear(cfg.hidden, STATE)
        self.drop = nn.Dropout(cfg.dropout)
        nn.init.xavier_uniform_(self.out.weight, gain=0.01)
        nn.init.zeros_(self.out.bias)
        rot = torch.eye(3).expand(N_JOINTS, 3, 3).clone()
        rot[0] = FACING_CAMERA
        init = torch.cat([matrix_to_rot6d(rot).reshape(-1), torch.zeros(N_BETAS),
                          torch.tensor([_inv_softplus(cfg.cam_scale0), 0.0, 0.0])])
        self.register_buffer("init_state", init)

    def features(self, batch: dict) -> torch.Tensor:
        """The input paths' features of a batch ("input" image, "kp_feat" (B,17,3), "crop_info" (B,3))."""
        feats = []
        if self.encoder is not None:
            x = batch["input"]
            feats.append(self.encoder(x.contiguous(memory_format=torch.channels_last)))
            if self.cfg.keypoint_features:
                feats.append(keypoint_features(x[:, 1:]))
        if self.keypoints is not None:
            feats.append(self.keypoints(batch["kp_feat"], batch["crop_info"]))
        return feats[0] if len(feats) == 1 else torch.cat(feats, 1)

    def forward(self, batch):
        """batch: a dict as `data.collate` makes it (or, for image-only models, the input tensor)."""
        if isinstance(batch, torch.Tensor):
            batch = {"input": batch}
        feat = self.features(batch)
        state = self.init_state.expand(feat.shape[0], -1)
        for _ in range(self.cfg.ief_iters):
            h = self.drop(F.relu(self.fc1(torch.cat([feat, state], 1))))
            h = self.drop(F.relu(self.fc2(h)))
            for fc in self.fc_more:
                h = self.drop(F.relu(fc(h)))
            state = state + self.out(h)
        return decode_state(state)


def keypoint_features(heat: torch.Tensor) -> torch.Tensor:
    """(B, 3K): per heatmap its soft-argmax (x, y) in [−1, 1] crop units and its peak (0 = absent).

    The keypoints' coordinates, read back exactly from the Gaussians: a direct 2D → 3D path (lifting)
    the small encoder would otherwise have to learn to localise."""
    B, K, H, W = heat.shape
    h = heat.float()
    mass = h.sum((2, 3)).clamp_min(1e-6)
    gx = (torch.arange(W, dtype=h.dtype, device=h.device) + 0.5) * (2.0 / W) - 1.0
    gy = (torch.arange(H, dtype=h.dtype, device=h.device) + 0.5) * (2.0 / H) - 1.0
    x = (h.sum(2) * gx).sum(2) / mass
    y = (h.sum(3) * gy).sum(2) / mass
    peak = h.amax((2, 3))
    present = (peak > 0.05).to(h.dtype)
    return torch.cat([x * present, y * present, peak], 1)


def decode_state(state: torch.Tensor) -> dict:
    B = state.shape[0]
    rot6d = state[:, :N_JOINTS * 6].reshape(B, N_JOINTS, 6)
    betas = state[:, N_JOINTS * 6:N_JOINTS * 6 + N_BETAS]
    cam_raw = state[:, -3:]
    cam = torch.cat([F.softplus(cam_raw[:, :1]) + 1e-3, cam_raw[:, 1:]], 1)
    return {"rotmats": rot6d_to_matrix(rot6d.float()), "betas": betas.float(), "cam": cam.float()}


def cam_to_translation(cam: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """Weak-perspective (s, tx, ty) in a size² crop → camera-frame root translation T (B,3).

    u = S/2 + (S/2)·s·(X + t) must equal the perspective u = cx + f·(X + T)/T_z near the root, so
    T_z = 2f/(S·s) and T_xy = t + (S/2 − c)·2/(S·s) (c = the crop's principal point).
    """
    s, t = cam[:, 0], cam[:, 1:]
    f = K[:, 0, 0]
    c = K[:, :2, 2]
    Tz = 2.0 * f / (size * s)
    Txy = t + (size / 2.0 - c) * 2.0 / (size * s[:, None])
    return torch.cat([Txy, Tz[:, None]], 1)


def translation_to_cam(T: torch.Tensor, K: torch.Tensor, size: int) -> torch.Tensor:
    """Inverse of `cam_to_translation`."""
    f = K[:, 0, 0]
    c = K[:, :2, 2]
    s = 2.0 * f / (size * T[:, 2])
    t = T[:, :2] - (size / 2.0 - c) * 2.0 / (size * s[:, None])
    return torch.cat([s[:, None], t], 1)
