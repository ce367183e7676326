"""The proxy input: crops resampled as PIL does, heatmaps as exact Gaussians, batch = per sample,
and the regressor's keypoint features read the keypoints back from the heatmaps."""

import numpy as np
import pytest
import torch
from PIL import Image

from lasor_trainer import proxy
from lasor_trainer.config import ModelConfig
from lasor_trainer.model import Regressor, keypoint_features


def _pil_crop(mask, x0, y0, side, size):
    """The reference: PIL resizing the zero-padded crop (BOX shrinking, BILINEAR enlarging)."""
    H, W = mask.shape
    canvas = np.zeros((side, side), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, W), min(y0 + side, H)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = mask[sy0:sy1, sx0:sx1]
    if side == size:
        return canvas.astype(np.float32)
    f = Image.Resampling.BOX if side > size else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(canvas * 255).resize((size, size), f), np.float32) / 255.0


def _blobs(rng, H, W):
    yy, xx = np.mgrid[:H, :W]
    m = np.zeros((H, W), np.uint8)
    for _ in range(3):
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(5, 50)
        m |= (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    return m


def test_crop_mask_matches_pil_within_one_8bit_step():
    rng = np.random.default_rng(0)
    differing = total = 0
    for _ in range(150):
        H, W = (int(v) for v in rng.integers(30, 200, 2))
        m = _blobs(rng, H, W)
        side = int(rng.integers(8, 300))
        x0, y0 = int(rng.integers(-side, W + 5)), int(rng.integers(-side, H + 5))
        size = int(rng.choice([48, 64, 128]))
        ours, ref = proxy.crop_mask(m, x0, y0, side, size), _pil_crop(m, x0, y0, side, size)
        assert ours.shape == (size, size) and ours.dtype == np.float32
        assert np.abs(ours - ref).max() <= 1.0 / 255 + 1e-6
        differing += int((ours != ref).sum())
        total += ours.size
    assert differing < 1e-3 * total  # PIL's fixed-point rounding differs in rare pixels only


def test_heatmaps_are_gaussians_and_batch_equals_single():
    rng = np.random.default_rng(1)
    B, S, sigma = 5, 64, 1.5
    sil = (rng.random((B, S, S)) > 0.5).astype(np.float32)
    kp = rng.uniform(-10, S + 10, (B, 17, 2)).astype(np.float32)
    present = rng.random((B, 17)) > 0.3
    x = proxy.make_proxy_batch(sil, kp, present, sigma)
    assert x.shape == (B, 18, S, S) and x.is_contiguous(memory_format=torch.channels_last)
    g = np.arange(S) + 0.5
    d2 = (g[None, None, None, :] - kp[..., 0, None, None]) ** 2 + (g[None, None, :, None] - kp[..., 1, None, None]) ** 2
    ref = np.exp(-d2 / (2 * sigma ** 2)) * present[..., None, None]
    np.testing.assert_allclose(x[:, 1:].numpy(), ref, atol=2e-6)
    assert np.array_equal(x[:, 0].numpy(), sil)
    for b in range(B):
        single = proxy.make_proxy(sil[b], kp[b], present[b], S, sigma * 256 / S)
        assert np.array_equal(single, x[b].numpy())


def test_keypoint_features_read_back_the_keypoints():
    rng = np.random.default_rng(2)
    S = 64
    kp = rng.uniform(4, S - 4, (3, 17, 2)).astype(np.float32)
    present = rng.random((3, 17)) > 0.3
    x = proxy.make_proxy_batch(np.zeros((3, S, S), np.float32), kp, present, 1.0)
    f = keypoint_features(x[:, 1:]).numpy()
    xy = np.stack([f[:, :17], f[:, 17:34]], -1)
    np.testing.assert_allclose(((xy + 1) * S / 2)[present], kp[present], atol=0.05)
    assert np.all(xy[~present] == 0) and np.all(f[:, 34:][~present] == 0) and np.all(f[:, 34:][present] > 0.7)
    model = Regressor(ModelConfig(width=8, hidden=32, keypoint_features=True))
    out = model(x)
    assert torch.isfinite(out["rotmats"]).all() and model.fc1.in_features == model.encoder.out_dim + 51 + 157


def test_ief_layers_adds_hidden_layers_and_old_checkpoints_still_load():
    torch.manual_seed(0)
    two = Regressor(ModelConfig(width=8, hidden=32))
    three = Regressor(ModelConfig(width=8, hidden=32, ief_layers=3))
    assert len(two.fc_more) == 0 and len(three.fc_more) == 1
    extra = set(three.state_dict()) - set(two.state_dict())
    assert extra == {"fc_more.0.weight", "fc_more.0.bias"}
    # a checkpoint written before the field existed has exactly the default model's keys
    Regressor(ModelConfig(width=8, hidden=32)).load_state_dict(two.state_dict(), strict=True)
    x = torch.rand(2, 18, 64, 64)
    three.eval()
    assert torch.isfinite(three(x)["rotmats"]).all()
    with torch.no_grad():  # the extra layer is used: changing it changes the output
        before = three(x)["rotmats"].clone()
        three.fc_more[0].weight.mul_(2.0)
        assert not torch.allclose(three(x)["rotmats"], before)


def test_ief_layers_below_two_is_a_one_line_config_error():
    from lasor_shared.errors import LasorError
    from lasor_trainer.config import config_from_dict

    with pytest.raises(LasorError, match="model.ief_layers"):
        config_from_dict({"model": {"ief_layers": 1}})
