"""The training loop of `lasor-train`.

- data: `ShardDataset` + `ShardBatchSampler` (shard-aware shuffling, held-out shards for validation);
- model: `Regressor` (ResNet-18-style encoder + IEF), losses from `losses.compute_losses`, the
  silhouette loss through the neural mesh renderer;
- progress bar (loss, samples/s, ETA), TensorBoard scalars, `log.jsonl` (one line per step);
- checkpoints `latest.pt` and `best.pt` (lowest validation PVE), written atomically (tmp + rename);
- `--resume` restores model, optimizer, scheduler, step, RNG states and the data position, so the
  loss trajectory continues exactly as if the run had not stopped;
- CUDA: AMP (float16 autocast on the network, GradScaler; body model, losses and renderer stay in
  float32) and `torchrun` data-parallel training (DDP; each rank takes every world-th batch).
"""

from __future__ import annotations

import json
import math
import os
import random
import time

import numpy as np
import torch

from lasor_shared.errors import LasorError
from lasor_trainer import checkpoint as checkpoint_io
from lasor_trainer.config import Config
from lasor_trainer.data import ShardBatchSampler, ShardDataset, collate, open_dataset, split_shards, worker_init
from lasor_trainer.losses import Bodies, compute_losses, make_renderer
from lasor_trainer.model import Regressor

CKPT_VERSION = 1


class Timer:
    """Accumulated wall time per phase (for samples/s and the ms-per-step split)."""

    def __init__(self, sync=None):
        self.total, self._t0, self.sync = {}, {}, sync

    def start(self, name):
        if self.sync:
            self.sync()
        self._t0[name] = time.perf_counter()

    def stop(self, name):
        if self.sync:
            self.sync()
        self.total[name] = self.total.get(name, 0.0) + time.perf_counter() - self._t0.pop(name)

    def reset(self):
        self.total = {}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise LasorError("config field train.device: 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def lr_lambda(cfg: Config):
    o = cfg.optim

    def f(step):
        w = min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps > 0 else 1.0
        if o.schedule == "cosine":
            p = min(step / max(o.steps, 1), 1.0)
            w *= 0.5 * (1 + math.cos(math.pi * p))
        return w

    return f


def batch_to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _distributed():
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 1, 0, None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return world, dist.get_rank(), local


def _global_mean(values: dict) -> dict:
    """The mean of each value over the data-parallel ranks (a collective: every rank calls it)."""
    import torch.distributed as dist

    t = torch.tensor(list(values.values()), dtype=torch.float64)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist.get_world_size()).tolist()))


class _RankSampler(torch.utils.data.Sampler):
    """Every world-th batch of the shard-aware sampler, starting at `rank` (data-parallel)."""

    def __init__(self, inner, world, rank):
        self.inner, self.world, self.rank = inner, world, rank

    def __iter__(self):
        for i, b in enumerate(self.inner):
            if i % self.world == self.rank:
                yield b

    def __len__(self):
        return len(self.inner)


def build(cfg: Config, data_dir: str, device, verify=True):
    bodies = Bodies(cfg.train.body_model, device, coarse_cell=cfg.loss.coarse_cell)
    info = open_dataset(data_dir, verify=verify, expected_sha=bodies.expected_sha)
    train_ids, val_ids = split_shards(len(info.shards), cfg.data.val_shards, cfg.data.val_fraction)
    return bodies, info, train_ids, val_ids


def train(data_dir: str, out_dir: str, cfg: Config, resume: bool = False, verify: bool = True,
          progress: bool = True, max_steps: int | None = None, echo=print) -> dict:
    """Train; returns a summary dict. `max_steps` stops early (a simulated interruption, for tests)."""
    world, rank, local = _distributed()
    device = resolve_device(cfg.train.device)
    if device.type == "cuda" and local is not None:
        device = torch.device("cuda", local)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    latest = os.path.join(out_dir, "latest.pt")
    if not resume and os.path.exists(latest) and rank == 0:
        raise LasorError(f"{out_dir} already holds a run (latest.pt): pass --resume to continue it or use a new --out")
    if resume and not os.path.exists(latest):
        raise LasorError(f"--resume: no checkpoint {latest}")

    bodies, info, train_ids, val_ids = build(cfg, data_dir, device, verify)
    os.makedirs(out_dir, exist_ok=True)  # only once the inputs are known to be good
    seed = cfg.train.seed
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    model = Regressor(cfg.model).to(device)
    # fused: one kernel for all parameters (the per-tensor loop cost 10 ms a step on CPU, fused 2 ms)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    use_amp = bool(cfg.train.amp and device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, best = 0, float("inf")
    if resume:
        step, best = checkpoint_io.resume(latest, cfg, model, opt, sched, scaler, device)
    elif cfg.train.init:
        checkpoint_io.init_weights(cfg.train.init, cfg, model, bodies.pred.sha256, device)
        if rank == 0:
            echo(f"fine-tuning from {cfg.train.init}")
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local] if device.type == "cuda" else None)

    train_ds = ShardDataset(info, train_ids, cfg, train=True, seed=seed)
    bs = cfg.optim.batch_size
    inner = ShardBatchSampler(train_ds, bs, seed, cfg.data.shuffle_group)
    nb = inner.batches_per_epoch()
    consumed = step * world  # global batches already used
    inner.start_epoch, inner.start_batch = consumed // nb, consumed % nb
    sampler = _RankSampler(inner, world, rank) if world > 1 else inner
    nw = cfg.data.num_workers
    loader = torch.utils.data.DataLoader(
        train_ds, batch_sampler=sampler, num_workers=nw, collate_fn=collate, worker_init_fn=worker_init,
        pin_memory=device.type == "cuda", persistent_workers=nw > 0, prefetch_factor=4 if nw > 0 else None,
        generator=torch.Generator().manual_seed(seed))  # own generator: the global RNG stays untouched
    val_loader = None
    if val_ids and rank == 0:
        val_ds = ShardDataset(info, val_ids, cfg, train=False, seed=seed)
        n_val = len(val_ds) if cfg.data.max_val_samples <= 0 else min(len(val_ds), cfg.data.max_val_samples)
        idx = np.linspace(0, len(val_ds) - 1, n_val).round().astype(int) if n_val < len(val_ds) else np.arange(len(val_ds))
        val_loader = torch.utils.data.DataLoader(torch.utils.data.Subset(val_ds, idx.tolist()), batch_size=bs,
                                                 shuffle=False, num_workers=0, collate_fn=collate,
                                                 generator=torch.Generator().manual_seed(seed))
    renderer = make_renderer(cfg.loss, cfg.proxy.input_size, cfg.train.renderer_backend) if cfg.loss.silhouette > 0 else None
    renderer_backend = None
    if renderer is not None:
        from lasor_trainer.neural_renderer import describe_backend, resolve_backend

        renderer_backend = resolve_backend(cfg.train.renderer_backend, device)
        if rank == 0:
            echo(describe_backend(cfg.train.renderer_backend, device) + (", AMP on" if use_amp else ""))

    writer = None
    if rank == 0:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(os.path.join(out_dir, "tb"), purge_step=step if resume else None)
        except Exception as e:  # tensorboard missing: keep training, say so
            echo(f"warning: no TensorBoard logging ({e})")
        with open(os.path.join(out_dir, "config.json"), "w") as f:
            json.dump({"config": cfg.to_dict(), "data": os.path.abspath(data_dir), "train_shards": train_ids,
                       "val_shards": val_ids, "body_model_id": bodies.pred.model_id,
                       "body_model_sha256": bodies.pred.sha256}, f, indent=1)
    log_path = os.path.join(out_dir, "log.jsonl")      # one line per step (losses)
    val_path = os.path.join(out_dir, "val.jsonl")      # one line per validation: the learning curve
    train_s0 = 0.0  # training seconds (validation excluded) before this process: the curves' wall-clock axis
    if resume and rank == 0:  # drop lines past the checkpoint
        for path in (log_path, val_path):
            if os.path.exists(path):
                with open(path) as f:
                    lines = [ln for ln in f if ln.strip() and json.loads(ln).get("step", 0) <= step]
                with open(path, "w") as f:
                    f.writelines(lines)
                if path == val_path and lines:
                    train_s0 = float(json.loads(lines[-1]).get("train_s", 0.0))
    logf = open(log_path, "a") if rank == 0 else None

    def checkpoint(path, val_pve=None):
        if rank != 0:
            return
        checkpoint_io.save({
            "version": CKPT_VERSION, "step": step, "best_val_pve": best, "val_pve": val_pve,
            "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(), "config": cfg.to_dict(),
            "rng": checkpoint_io.rng_state(device),
            "body_model": {"id": bodies.pred.model_id, "sha256": bodies.pred.sha256, "path": cfg.train.body_model},
            "data": {"root": os.path.abspath(data_dir), "train_shards": train_ids, "val_shards": val_ids},
        }, path)

    total_steps = cfg.optim.steps if max_steps is None else min(cfg.optim.steps, max_steps)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    timer = Timer(sync)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.optim.steps, initial=step, unit="step", dynamic_ncols=True)
    t_start, val_s = time.perf_counter(), 0.0
    it = iter(loader)
    window_t, window_n = time.perf_counter(), 0
    last_val = None
    model.train()
    while step < total_steps:
        timer.start("data")
        batch = batch_to(next(it), device)
        timer.stop("data")
        timer.start("forward")
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            pred = net(batch)
        timer.stop("forward")
        timer.start("body_gt")
        tgt = bodies.targets(batch, coarse=bodies.coarse is not None)
        timer.stop("body_gt")
        with_sil = (renderer is not None and step % cfg.loss.silhouette_every == 0
                    and step >= cfg.loss.silhouette_start)
        # compute_losses times the prediction's body model and the renderer itself; the rest is "losses"
        t0 = time.perf_counter()
        inner0 = timer.total.get("body_pred", 0.0) + timer.total.get("renderer", 0.0)
        loss, parts, _ = compute_losses(pred, tgt, batch, bodies, cfg.loss, cfg.proxy.input_size,
                                        renderer if with_sil else None, timer)
        inner = timer.total.get("body_pred", 0.0) + timer.total.get("renderer", 0.0) - inner0
        timer.total["losses"] = timer.total.get("losses", 0.0) + time.perf_counter() - t0 - inner
        if not torch.isfinite(loss):
            raise LasorError(f"step {step}: the loss is not finite ({parts}); lower optim.lr or check the data")
        timer.start("backward")
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        timer.stop("backward")
        timer.start("optimizer")
        if cfg.optim.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip, foreach=True)
        scaler.step(opt)
        scaler.update()
        sched.step()
        timer.stop("optimizer")
        step += 1
        window_n += batch["K"].shape[0] * world
        if world > 1:  # log the loss of the whole (global) batch: every rank's mean, averaged
            parts = _global_mean({"loss": float(loss.detach()), **parts})
        if logf is not None:
            logf.write(json.dumps({"step": step, "loss": parts.get("loss", float(loss.detach())),
                                   **{k: v for k, v in parts.items() if k != "loss"}}) + "\n")
        if rank == 0 and (step % cfg.train.log_every == 0 or step == total_steps):
            now = time.perf_counter()
            sps = window_n / max(now - window_t, 1e-9)
            window_t, window_n = now, 0
            if writer is not None:
                writer.add_scalar("train/loss", float(loss.detach()), step)
                for k, v in parts.items():
                    writer.add_scalar(f"train/{k}", v, step)
                writer.add_scalar("train/samples_per_s", sps, step)
                writer.add_scalar("train/lr", sched.get_last_lr()[0], step)
            if logf is not None:
                logf.flush()
            if bar is not None:
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}", sps=f"{sps:.1f}")
        if bar is not None:
            bar.update(1)
        timed_out = cfg.train.time_limit_s > 0 and time.perf_counter() - t_start > cfg.train.time_limit_s
        if val_loader is not None and (step % cfg.train.val_every == 0 or step == total_steps or timed_out):
            from lasor_trainer.evaluate import quick_validate

            t_val = time.perf_counter()
            train_s = train_s0 + t_val - t_start - val_s
            last_val = quick_validate(model, val_loader, bodies, cfg, device)
            model.train()
            val_s += time.perf_counter() - t_val
            if writer is not None:
                for k, v in last_val.items():
                    writer.add_scalar(f"val/{k}", v, step)
            if rank == 0:  # the learning curve (read by scripts/model_card.py)
                with open(val_path, "a") as f:
                    f.write(json.dumps({"step": step, **last_val, "train_s": round(train_s, 2)}) + "\n")
            if last_val["pve_mm"] < best:
                best = last_val["pve_mm"]
                checkpoint(os.path.join(out_dir, "best.pt"), last_val["pve_mm"])
            if bar is not None:
                bar.write(f"step {step}: val PVE {last_val['pve_mm']:.1f} mm, MPJPE {last_val['mpjpe_mm']:.1f} mm "
                          f"(best PVE {best:.1f})")
        if step % cfg.train.ckpt_every == 0 or step == total_steps or timed_out:
            checkpoint(latest, None if last_val is None else last_val["pve_mm"])
        if timed_out:
            echo(f"time limit {cfg.train.time_limit_s:.0f}s reached at step {step}")
            break
    if val_loader is None and rank == 0:  # no held-out shards: best = latest
        checkpoint(os.path.join(out_dir, "best.pt"))
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    if logf is not None:
        logf.close()
    train_ds.close()
    elapsed = time.perf_counter() - t_start
    return {"step": step, "best_val_pve_mm": best, "last_val": last_val, "elapsed_s": elapsed,
            "timing_s": dict(timer.total), "batch_size": bs, "world_size": world, "amp": use_amp,
            "renderer_backend": renderer_backend}
