"""Trainer data path: shards → crops/proxy/targets, camera consistency, sampling, refusal of bad datasets."""

import os
import shutil

import numpy as np
import pytest
import torch

from lasor_shared.errors import LasorError
from lasor_trainer.config import load_config
from lasor_trainer.data import ShardBatchSampler, ShardDataset, collate, open_dataset, split_shards


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return tiny_dataset


def cfg(**kw):
    base = {"proxy.input_size": 64, "loss.silhouette_size": 64}
    base.update(kw)
    return load_config(None, base)


def test_open_and_split(dataset, bodies):
    info = open_dataset(dataset, expected_sha=bodies.expected_sha)
    assert len(info.shards) == 3 and info.n_samples == 24
    tr, va = split_shards(3, 1, 0.0)
    assert tr == [0, 1] and va == [2]
    assert split_shards(10, 1, 0.2) == (list(range(8)), [8, 9])


def test_sample_fields_and_camera_consistency(dataset, bodies):
    """The GT body rendered with the crop intrinsics lands on the cropped amodal mask; keypoints too."""
    from lasor_trainer.bodies import make_renderer, project_points, render_silhouettes

    c = cfg(**{"augment.enabled": False})
    info = open_dataset(dataset, expected_sha=bodies.expected_sha)
    ds = ShardDataset(info, [0], c, train=False)
    batch = collate([ds[i] for i in range(4)])
    assert batch["input"].shape == (4, 18, 64, 64)
    tgt = bodies.targets(batch)
    # root-relative camera-frame joints from (R_cam·R_global, pose) equal the stored camera joints
    rel = batch["joints3d"] - batch["joints3d"][:, :1]
    assert torch.allclose(tgt["joints"], rel, atol=2e-3)
    _, _, coco, _ = bodies.predict(tgt["rotmats"], batch["betas"])
    uv = project_points(coco + tgt["root"][:, None], batch["K"])
    assert (uv - batch["kp2d"]).norm(dim=-1).mean() < 0.5  # crop pixels
    sil = render_silhouettes(make_renderer(c.loss, 64), tgt["vertices"], tgt["root"], batch["K"], bodies.faces)
    gt = batch["sil_amodal"] > 0.5
    inter = ((sil > 0.5) & gt).sum((1, 2)).float()
    union = ((sil > 0.5) | gt).sum((1, 2)).float()
    iou = inter / union  # small masks at 64 px: a half-pixel boundary band alone costs 0.1 of IoU
    assert iou.min() > 0.8 and iou.mean() > 0.85, iou
    S = 64
    yy, xx = torch.meshgrid(torch.arange(S) + 0.5, torch.arange(S) + 0.5, indexing="ij")
    dx, dy = [], []
    for i in range(4):  # centroid offsets between the rendered body and the mask (crop pixels)
        m1, m2 = sil[i] > 0.5, gt[i]
        dx.append(float(xx[m1].mean() - xx[m2].mean()))
        dy.append(float(yy[m1].mean() - yy[m2].mean()))
    assert max(map(abs, dx + dy)) < 1.0  # per sample: boundary pixels of a ≈300 px mask
    assert abs(np.mean(dx)) < 0.4 and abs(np.mean(dy)) < 0.4  # no systematic (e.g. half-pixel) shift


def test_augmentation_is_deterministic_per_epoch_and_index(dataset, bodies):
    info = open_dataset(dataset, expected_sha=bodies.expected_sha)
    ds = ShardDataset(info, [0, 1], cfg(), train=True, seed=3)
    a, b, c2 = ds[(0, 5)], ds[(0, 5)], ds[(1, 5)]
    xa, xb, xc = (collate([s])["input"] for s in (a, b, c2))
    assert torch.equal(xa, xb)
    assert not torch.equal(xa, xc)


def test_sampler_shard_aware_and_resumable(dataset, bodies):
    info = open_dataset(dataset, expected_sha=bodies.expected_sha)
    ds = ShardDataset(info, [0, 1], cfg(), train=True)
    s = ShardBatchSampler(ds, 4, seed=1, group=1)
    it = iter(s)
    first = [next(it) for _ in range(6)]  # 4 batches per epoch → crosses into epoch 1
    # group=1: a batch never mixes shards
    for b in first[:4]:
        assert len({ds.locate(i)[0] for _, i in b}) == 1
    assert sorted(i for b in first[:4] for _, i in b) == list(range(16))
    s2 = ShardBatchSampler(ds, 4, seed=1, group=1, start_epoch=1, start_batch=0)
    assert next(iter(s2)) == first[4]


def test_refuses_altered_shard_and_other_body_model(dataset, bodies, tmp_path):
    bad = str(tmp_path / "bad")
    shutil.copytree(dataset, bad)
    with open(os.path.join(bad, "shard-00001.h5"), "r+b") as f:
        f.seek(-16, 2)
        f.write(b"\0" * 16)
    with pytest.raises(LasorError, match="shard-00001"):
        open_dataset(bad, expected_sha=bodies.expected_sha)
    with pytest.raises(LasorError, match="different body model"):
        open_dataset(dataset, expected_sha=lambda g: "0" * 64)
    with pytest.raises(LasorError, match="manifest"):
        open_dataset(str(tmp_path))


def test_a_shard_is_read_once_for_all_its_samples(dataset, bodies):
    """Why reading costs far less than a training step (timed in bench/bench_train.py): the first
    sample of a shard reads its fields from HDF5 in one go and every other sample of it comes from
    memory — checked by moving the shard's file away after the first read, so any later read would
    fail; no handle stays open (memory does not grow with the shards a run touches)."""
    info = open_dataset(dataset, expected_sha=bodies.expected_sha)
    ds = ShardDataset(info, [0, 1, 2], cfg(), train=True)
    first = ds[(0, 0)]
    shard, _ = ds.locate(0)
    path = info.shards[shard]
    os.rename(path, path + ".away")
    try:
        samples = [ds[(0, i)] for i in range(info.counts[shard])]
        assert {ds.locate(i)[0] for i in range(len(samples))} == {shard}
        assert all(np.array_equal(v, samples[0][k]) for k, v in first.items() if isinstance(v, np.ndarray))
        ds._cache.clear()  # control: without the in-memory copy the moved file is really unreadable
        with pytest.raises(LasorError, match="unreadable sample"):
            ds[(0, 1)]
    finally:
        os.rename(path + ".away", path)
