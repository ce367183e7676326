"""lasor-train end to end on tiny data: the loss falls, --resume is exact, bad input is refused."""

import json
import os

import pytest
from click.testing import CliRunner

from lasor_trainer.cli import eval_main, train_main
from lasor_trainer.config import load_config

CONFIG = os.path.join(os.path.dirname(__file__), "..", "trainer", "configs", "test-tiny.yaml")


@pytest.fixture(scope="module")
def dataset(tiny_dataset):
    return tiny_dataset


def _losses(run):
    with open(os.path.join(run, "log.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_training_lowers_the_loss_on_a_fixed_batch(dataset, tmp_path):
    from lasor_trainer.train import train

    cfg = load_config(CONFIG, {"optim.steps": 50, "optim.batch_size": 8, "augment.enabled": False,
                               "data.shuffle_group": 1, "optim.lr": 1e-3})
    # 2 training shards of 8 = 2 batches per epoch: the network sees the same 16 samples repeatedly
    train(dataset, str(tmp_path / "run"), cfg, progress=False)
    log = _losses(str(tmp_path / "run"))
    def avg(rows, k):
        return sum(r[k] for r in rows) / len(rows)

    assert avg(log[-6:], "loss") < 0.9 * avg(log[:6], "loss")
    assert avg(log[-6:], "vertices") < 0.85 * avg(log[:6], "vertices")
    assert {"silhouette", "vertices", "joints3d", "keypoints2d", "pose", "betas"} <= set(log[0])


def test_resume_continues_exactly(dataset, tmp_path):
    from lasor_trainer.train import train

    cfg = load_config(CONFIG)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    train(dataset, a, cfg, progress=False)
    train(dataset, b, cfg, progress=False, max_steps=5)  # "interrupted" after step 5
    train(dataset, b, cfg, resume=True, progress=False)
    la, lb = _losses(a), _losses(b)
    assert [r["step"] for r in lb] == list(range(1, 13))
    for ra, rb in zip(la, lb):
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5, abs=1e-7), (ra, rb)


def test_cli_train_eval_and_refusals(dataset, tmp_path):
    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "r"), "--config", CONFIG,
                                        "--steps", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert os.path.exists(tmp_path / "r" / "best.pt") and os.path.exists(tmp_path / "r" / "latest.pt")
    # a second run into the same folder without --resume is refused
    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "r"), "--config", CONFIG])
    assert r.exit_code == 2 and "--resume" in r.output
    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "x"), "--set", "optim.lr=-1"])
    assert r.exit_code == 2 and "optim.lr" in r.output
    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "x"), "--set", "model.depth=3"])
    assert r.exit_code == 2 and "model.depth" in r.output
    r = CliRunner().invoke(train_main, ["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "nope" in r.output
    rep = tmp_path / "rep"
    r = CliRunner().invoke(eval_main, ["--checkpoint", str(tmp_path / "r" / "best.pt"), "--data", dataset,
                                       "--out", str(rep)])
    assert r.exit_code == 0, r.output
    m = json.loads((rep / "metrics.json").read_text())
    assert m["info"]["shards"] == [2]  # the held-out shard
    overall = m["metrics"]["all"]["all"]
    assert {"model", "mean_body", "mean_body_oracle_orient"} <= set(overall)
    for k in ("mpjpe_mm", "pa_mpjpe_mm", "pve_mm", "pve_t_sc_mm", "sil_iou_pooled", "sil_iou_mean", "kp2d_vis_px"):
        assert overall["model"][k] is not None
    assert set(m["metrics"]) == {"all", "occluder_type", "occluded_fraction", "azimuth"}
    for png in ("azimuth.png", "occluder_type.png", "occluded_fraction.png"):
        assert (rep / png).stat().st_size > 1000
    assert "| model |" in (rep / "report.md").read_text()


@pytest.mark.parametrize("moves_camera,true_root", [(True, False), (False, False), (True, True)])
def test_silhouette_loss_can_leave_the_camera_alone(dataset, moves_camera, true_root):
    """`loss.silhouette_moves_camera: false` detaches the camera from the silhouette term only;
    `loss.silhouette_at_true_root` draws the body at the true root (no camera gradient either)."""

    from lasor_trainer.data import ShardDataset, collate, open_dataset
    import torch

    from lasor_trainer.bodies import Bodies, make_renderer, render_silhouettes
    from lasor_trainer.losses import compute_losses
    from lasor_trainer.model import Regressor

    cfg = load_config(CONFIG, {"augment.enabled": False, "loss.silhouette_moves_camera": moves_camera,
                               "loss.silhouette_at_true_root": true_root})
    bodies = Bodies()
    ds = ShardDataset(open_dataset(dataset, expected_sha=bodies.expected_sha), [0], cfg, train=False)
    batch = collate([ds[i] for i in range(4)])
    pred = Regressor(cfg.model)(batch["input"])
    pred["cam"].retain_grad()
    pred["rotmats"].retain_grad()
    only_sil = cfg.loss
    for name in ("pose", "betas", "joints3d", "vertices", "keypoints2d", "cam"):
        setattr(only_sil, name, 0.0)
    tgt = bodies.targets(batch)
    renderer = make_renderer(cfg.loss, cfg.proxy.input_size)
    total, values, extras = compute_losses(pred, tgt, batch, bodies, only_sil, cfg.proxy.input_size, renderer=renderer)
    total.backward()
    assert values["silhouette"] > 0 and pred["rotmats"].grad.abs().sum() > 0
    assert (pred["cam"].grad is not None and pred["cam"].grad.abs().sum() > 0) == (moves_camera and not true_root)
    if true_root:  # drawn where the true body stands: the true body itself would match the target mask
        true_sil = render_silhouettes(renderer, tgt["vertices"], tgt["root"], batch["K"], bodies.faces)
        expect = render_silhouettes(renderer, extras["vertices"].detach(), tgt["root"], batch["K"], bodies.faces)
        assert torch.allclose(extras["silhouette"].detach(), expect, atol=1e-5)
        inter = ((true_sil > 0.5) & (batch["sil_target"] > 0.5)).sum()
        assert inter / ((true_sil > 0.5) | (batch["sil_target"] > 0.5)).sum() > 0.8


def test_init_fine_tunes_from_a_checkpoints_weights(dataset, tmp_path):
    import torch

    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "a"), "--config", CONFIG,
                                        "--steps", "3", "--no-progress"])
    assert r.exit_code == 0, r.output
    a = str(tmp_path / "a" / "latest.pt")
    # lr 0: a fine-tune that cannot move the weights ends with exactly the checkpoint's (batch-norm
    # statistics still move)
    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "b"), "--config", CONFIG,
                                        "--init", a, "--steps", "2", "--set", "optim.lr=0", "--no-progress"])
    assert r.exit_code == 0 and "fine-tuning from" in r.output, r.output
    wa = torch.load(a, weights_only=True)["model"]
    b = torch.load(str(tmp_path / "b" / "latest.pt"), weights_only=True)
    learned = [k for k in wa if "running_" not in k and "num_batches" not in k]
    assert b["step"] == 2 and learned and all(torch.equal(wa[k], b["model"][k]) for k in learned)
    # another architecture is refused in one line, before anything is written
    r = CliRunner().invoke(train_main, ["--data", dataset, "--out", str(tmp_path / "c"), "--config", CONFIG,
                                        "--init", a, "--set", "model.hidden=48", "--no-progress"])
    assert r.exit_code != 0 and "train.init" in r.output and "model config" in r.output
    assert not os.path.exists(tmp_path / "c" / "latest.pt")


def test_training_steps_work_alone(dataset, tmp_path):
    """set-up, one step, validation and checkpoint are separate functions: each does its one job."""
    import torch

    from lasor_trainer.train import RunLog, Timer, batch_to, save_checkpoint, setup, train_step, validate_and_log

    cfg = load_config(CONFIG)
    out = str(tmp_path / "run")
    run = setup(dataset, out, cfg, resume=False, verify=False, echo=lambda *_: None)
    assert run.step == 0 and run.val_loader is not None and run.renderer is not None
    before = [p.detach().clone() for p in run.model.parameters()]
    timer = Timer()
    batch = batch_to(next(iter(run.loader)), run.device)
    loss, parts = train_step(run, batch, timer)
    assert run.step == 1 and torch.isfinite(loss) and "silhouette" in parts
    assert {"forward", "body_gt", "body_pred", "renderer", "losses", "backward", "optimizer"} == set(timer.total)
    assert any(not torch.equal(a, b) for a, b in zip(before, run.model.parameters()))
    log = RunLog(run, resume=False, progress=False, echo=lambda *_: None)
    log.start_clock()
    val = validate_and_log(run, log)
    log.close()
    assert run.best == val["pve_mm"] > 0 and os.path.exists(os.path.join(out, "best.pt"))
    line = json.loads(open(os.path.join(out, "val.jsonl")).read())
    assert line["step"] == 1 and line["train_s"] >= 0
    save_checkpoint(run, os.path.join(out, "latest.pt"))
    again = setup(dataset, out, cfg, resume=True, verify=False, echo=lambda *_: None)
    assert again.step == 1 and again.best == run.best
    assert all(torch.equal(a, b) for a, b in zip(again.model.parameters(), run.model.parameters()))
    run.train_ds.close()
    again.train_ds.close()
