"""Metric implementations against hand-computed cases."""

import numpy as np
import pytest

from lasor_trainer import metrics as M


def _rot(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


@pytest.fixture
def joints():
    return np.random.default_rng(0).normal(size=(2, 24, 3))


def test_pa_mpjpe_zero_for_similarity_transform(joints):
    R = _rot([1, 2, 3], 0.7)
    pred = 1.7 * joints @ R.T + np.array([0.3, -2.0, 5.0])
    assert np.allclose(M.pa_mpjpe(pred, joints), 0, atol=1e-9)
    assert M.mpjpe(pred, joints).min() > 0.1  # MPJPE does not forgive rotation/scale


def test_pa_mpjpe_uses_no_reflection(joints):
    mirrored = joints * np.array([-1, 1, 1])
    assert M.pa_mpjpe(mirrored, joints).min() > 0.1


def test_mpjpe_known_offsets():
    gt = np.zeros((1, 4, 3))
    gt[0, 1:] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    pred = gt + np.array([5.0, 5.0, 5.0])  # a global offset is removed by root alignment
    assert M.mpjpe(pred, gt)[0] == pytest.approx(0)
    pred = gt.copy()
    pred[0, 2] += [0, 0.3, 0.4]  # one joint 0.5 away, 4 joints → 0.125
    assert M.mpjpe(pred, gt)[0] == pytest.approx(0.125)
    assert M.mpjpe(gt + 1.0, gt, root=None)[0] == pytest.approx(np.sqrt(3))


def test_pve_root_alignment():
    gt = np.random.default_rng(1).normal(size=(1, 50, 3))
    pred = gt + 2.0
    assert M.pve(pred, gt, pred_root=np.full((1, 3), 2.0), gt_root=np.zeros((1, 3)))[0] == pytest.approx(0)
    assert M.pve(gt + np.array([0.1, 0, 0]), gt)[0] == pytest.approx(0.1)


def test_pve_t_sc_scale_and_translation_invariant_not_rotation():
    v = np.random.default_rng(2).normal(size=(1, 100, 3))
    assert M.pve_t_sc(3.0 * v + 7.0, v)[0] == pytest.approx(0, abs=1e-9)
    # the error is measured at the ground truth's scale: a shape error scales with the GT
    noisy = v + 0.1 * np.random.default_rng(3).normal(size=v.shape)
    e1 = M.pve_t_sc(noisy, v)[0]
    assert M.pve_t_sc(noisy * 5, v)[0] == pytest.approx(e1)
    assert M.pve_t_sc(noisy, 2 * v)[0] == pytest.approx(2 * M.pve_t_sc(noisy / 2, v)[0])
    R = _rot([0, 1, 0], 0.5)
    assert M.pve_t_sc(v @ R.T, v)[0] > 0.05


def test_silhouette_iou_pooled_vs_mean():
    pred = np.zeros((2, 4, 4))
    gt = np.zeros((2, 4, 4))
    gt[0, :2] = 1  # 8 px
    pred[0, :1] = 1  # 4 px inside → IoU 0.5
    gt[1, 0, 0] = 1  # 1 px
    pred[1, 0, 0] = 1  # IoU 1
    counts = M.silhouette_counts(pred, gt)
    assert counts.tolist() == [[4, 0, 4], [1, 0, 0]]
    iou = M.silhouette_iou(counts)
    assert iou["iou_mean"] == pytest.approx(0.75)
    assert iou["iou_pooled"] == pytest.approx(5 / 9)


def test_keypoint_error_2d():
    gt = np.zeros((1, 3, 2))
    pred = gt + np.array([[[3, 4], [0, 0], [100, 100]]])
    use = np.array([[True, True, False]])
    assert M.keypoint_error_2d(pred, gt, use)[0] == pytest.approx(2.5)
    assert np.isnan(M.keypoint_error_2d(pred, gt, np.zeros((1, 3), bool))[0])
