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

`train` orchestrates named steps: `setup` (device, data, model, optimizer, loaders, renderer) → `RunLog`
(rank 0's records) → per step `train_step`, `validate_and_log`, `save_checkpoint`.

TensorBoard (optional, slow to import) is imported only when a run starts logging.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from lasor_shared.errors import LasorError
from lasor_trainer import checkpoint as checkpoint_io
from lasor_trainer.bodies import Bodies, make_renderer
from lasor_trainer.config import Config
from lasor_trainer.data import ShardBatchSampler, ShardDataset, collate, open_dataset, split_shards, worker_init
from lasor_trainer.evaluate import quick_validate
from lasor_trainer.losses import compute_losses
from lasor_trainer.model import Regressor
from lasor_trainer.neural_renderer import describe_backend, resolve_backend

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
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
    return world, dist.get_rank(), local


def _global_mean(values: dict) -> dict:
    """The mean of each value over the data-parallel ranks (a collective: every rank calls it)."""
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


@dataclass
class Run:
    """What one training process holds: built by `setup`, advanced by `train_step`."""

    cfg: Config
    data_dir: str
    out_dir: str
    device: torch.device
    world: int
    rank: int
    bodies: Bodies
    train_ids: list
    val_ids: list
    model: Regressor
    net: torch.nn.Module  # `model`, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    use_amp: bool
    step: int
    best: float
    train_ds: ShardDataset
    loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    renderer: object
    renderer_backend: str | None


def setup_device(cfg: Config) -> tuple[int, int, torch.device]:
    """(world size, rank, device) of this process; joins the process group under torchrun."""
    world, rank, local = _distributed()
    device = resolve_device(cfg.train.device)
    if device.type == "cuda" and local is not None:
        device = torch.device("cuda", local)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    return world, rank, device


def check_out_dir(out_dir: str, resume: bool, rank: int) -> str:
    """The path of `latest.pt`; refuses to overwrite a run, or to resume one that is not there."""
    latest = os.path.join(out_dir, "latest.pt")
    if not resume and os.path.exists(latest) and rank == 0:
        raise LasorError(f"{out_dir} already holds a run (latest.pt): pass --resume to continue it or use a new --out")
    if resume and not os.path.exists(latest):
        raise LasorError(f"--resume: no checkpoint {latest}")
    return latest


def make_model(cfg: Config, device):
    """(model, optimizer, scheduler, grad scaler, AMP on?), the model initialised from the seeded RNGs."""
    torch.manual_seed(cfg.train.seed)
    random.seed(cfg.train.seed)
    np.random.seed(cfg.train.seed)
    model = Regressor(cfg.model).to(device)
    # fused: one kernel for all parameters (the per-tensor loop cost 10 ms a step on CPU, fused 2 ms)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
    use_amp = bool(cfg.train.amp and device.type == "cuda")
    return model, opt, sched, torch.amp.GradScaler("cuda", enabled=use_amp), use_amp


def make_train_loader(cfg: Config, train_ds: ShardDataset, step: int, world: int, rank: int, device):
    """The training batches from global batch `step * world` on (this rank's share of them under DDP)."""
    seed = cfg.train.seed
    inner = ShardBatchSampler(train_ds, cfg.optim.batch_size, seed, cfg.data.shuffle_group)
    nb = inner.batches_per_epoch()
    consumed = step * world  # global batches already used
    inner.start_epoch, inner.start_batch = consumed // nb, consumed % nb
    sampler = _RankSampler(inner, world, rank) if world > 1 else inner
    nw = cfg.data.num_workers
    return torch.utils.data.DataLoader(
        train_ds, batch_sampler=sampler, num_workers=nw, collate_fn=collate, worker_init_fn=worker_init,
        pin_memory=device.type == "cuda", persistent_workers=nw > 0, prefetch_factor=4 if nw > 0 else None,
        generator=torch.Generator().manual_seed(seed))  # own generator: the global RNG stays untouched


def make_val_loader(cfg: Config, info, val_ids: list):
    """At most `data.max_val_samples` held-out samples, evenly spread; None without held-out shards."""
    if not val_ids:
        return None
    val_ds = ShardDataset(info, val_ids, cfg, train=False, seed=cfg.train.seed)
    n_val = len(val_ds) if cfg.data.max_val_samples <= 0 else min(len(val_ds), cfg.data.max_val_samples)
    idx = np.linspace(0, len(val_ds) - 1, n_val).round().astype(int) if n_val < len(val_ds) else np.arange(len(val_ds))
    return torch.utils.data.DataLoader(torch.utils.data.Subset(val_ds, idx.tolist()), batch_size=cfg.optim.batch_size,
                                       shuffle=False, num_workers=0, collate_fn=collate,
                                       generator=torch.Generator().manual_seed(cfg.train.seed))


def make_silhouette_renderer(cfg: Config, device, use_amp: bool, say):
    """(renderer, resolved backend name), both None when the silhouette loss is off; `say` names the backend."""
    if cfg.loss.silhouette <= 0:
        return None, None
    renderer = make_renderer(cfg.loss, cfg.proxy.input_size, cfg.train.renderer_backend)
    say(describe_backend(cfg.train.renderer_backend, device) + (", AMP on" if use_amp else ""))
    return renderer, resolve_backend(cfg.train.renderer_backend, device)


def setup(data_dir: str, out_dir: str, cfg: Config, resume: bool, verify: bool, echo) -> Run:
    """Device, data, model (fresh, resumed or fine-tuned), optimizer, loaders and renderer of a run."""
    world, rank, device = setup_device(cfg)
    latest = check_out_dir(out_dir, resume, rank)
    bodies, info, train_ids, val_ids = build(cfg, data_dir, device, verify)
    os.makedirs(out_dir, exist_ok=True)  # only once the inputs are known to be good
    model, opt, sched, scaler, use_amp = make_model(cfg, device)
    step, best = 0, float("inf")
    if resume:
        step, best = checkpoint_io.resume(latest, cfg, model, opt, sched, scaler, device)
    elif cfg.train.init:
        checkpoint_io.init_weights(cfg.train.init, cfg, model, bodies.pred.sha256, device)
        if rank == 0:
            echo(f"fine-tuning from {cfg.train.init}")
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train_ds = ShardDataset(info, train_ids, cfg, train=True, seed=cfg.train.seed)
    loader = make_train_loader(cfg, train_ds, step, world, rank, device)
    val_loader = make_val_loader(cfg, info, val_ids) if rank == 0 else None
    renderer, backend = make_silhouette_renderer(cfg, device, use_amp, echo if rank == 0 else lambda _: None)
    return Run(cfg, data_dir, out_dir, device, world, rank, bodies, train_ids, val_ids, model, net, opt, sched,
               scaler, use_amp, step, best, train_ds, loader, val_loader, renderer, backend)


def _truncate_jsonl(path: str, step: int) -> list[str]:
    """Drop the lines of a JSON-lines log past `step` (a resumed run rewrites them); → the kept lines."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and json.loads(ln).get("step", 0) <= step]
    with open(path, "w") as f:
        f.writelines(lines)
    return lines


class RunLog:
    """Rank 0's records of a run: config.json, log.jsonl (one line per step), val.jsonl (the learning curve),
    TensorBoard scalars and the progress bar; and the clock of training seconds (validation excluded)."""

    def __init__(self, run: Run, resume: bool, progress: bool, echo):
        self.writer = self.logf = self.bar = None
        self.log_path = os.path.join(run.out_dir, "log.jsonl")
        self.val_path = os.path.join(run.out_dir, "val.jsonl")
        self.train_s0 = 0.0  # training seconds before this process: the curves' wall-clock axis
        if run.rank != 0:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(run.out_dir, "tb"), purge_step=run.step if resume else None)
        except Exception as e:  # tensorboard missing: keep training, say so
            echo(f"warning: no TensorBoard logging ({e})")
        with open(os.path.join(run.out_dir, "config.json"), "w") as f:
            json.dump({"config": run.cfg.to_dict(), "data": os.path.abspath(run.data_dir),
                       "train_shards": run.train_ids, "val_shards": run.val_ids,
                       "body_model_id": run.bodies.pred.model_id, "body_model_sha256": run.bodies.pred.sha256},
                      f, indent=1)
        if resume:
            _truncate_jsonl(self.log_path, run.step)
            kept = _truncate_jsonl(self.val_path, run.step)
            self.train_s0 = float(json.loads(kept[-1]).get("train_s", 0.0)) if kept else 0.0
        self.logf = open(self.log_path, "a")
        if progress:
            self.bar = tqdm(total=run.cfg.optim.steps, initial=run.step, unit="step", dynamic_ncols=True)

    def start_clock(self):
        self.t_start = self.window_t = time.perf_counter()
        self.val_s, self.window_n = 0.0, 0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def train_seconds(self) -> float:
        """Training seconds of the whole run so far (validation excluded)."""
        return self.train_s0 + self.elapsed() - self.val_s

    def step(self, run: Run, loss, parts: dict, n_samples: int, scalars: bool):
        """log.jsonl's line of this step; with `scalars`, TensorBoard scalars and the bar's loss and samples/s."""
        self.window_n += n_samples
        if self.logf is not None:
            self.logf.write(json.dumps({"step": run.step, "loss": parts.get("loss", float(loss.detach())),
                                        **{k: v for k, v in parts.items() if k != "loss"}}) + "\n")
        if run.rank == 0 and scalars:
            now = time.perf_counter()
            sps = self.window_n / max(now - self.window_t, 1e-9)
            self.window_t, self.window_n = now, 0
            if self.writer is not None:
                self.writer.add_scalar("train/loss", float(loss.detach()), run.step)
                for k, v in parts.items():
                    self.writer.add_scalar(f"train/{k}", v, run.step)
                self.writer.add_scalar("train/samples_per_s", sps, run.step)
                self.writer.add_scalar("train/lr", run.sched.get_last_lr()[0], run.step)
            if self.logf is not None:
                self.logf.flush()
            if self.bar is not None:
                self.bar.set_postfix(loss=f"{float(loss.detach()):.4f}", sps=f"{sps:.1f}")
        if self.bar is not None:
            self.bar.update(1)

    def validation(self, run: Run, val: dict, train_s: float):
        """TensorBoard scalars and val.jsonl's line (read by scripts/model_card.py) of one validation."""
        if self.writer is not None:
            for k, v in val.items():
                self.writer.add_scalar(f"val/{k}", v, run.step)
        if run.rank == 0:
            with open(self.val_path, "a") as f:
                f.write(json.dumps({"step": run.step, **val, "train_s": round(train_s, 2)}) + "\n")

    def close(self):
        for handle in (self.bar, self.writer, self.logf):
            if handle is not None:
                handle.close()


def train_step(run: Run, batch: dict, timer: Timer):
    """One optimisation step on `batch`: forward, losses (silhouette on its schedule), backward, optimizer;
    → (loss, its named parts, averaged over the ranks under DDP)."""
    cfg = run.cfg
    timer.start("forward")
    with torch.autocast(device_type=run.device.type, dtype=torch.float16, enabled=run.use_amp):
        pred = run.net(batch)
    timer.stop("forward")
    timer.start("body_gt")
    tgt = run.bodies.targets(batch, coarse=run.bodies.coarse is not None)
    timer.stop("body_gt")
    with_sil = (run.renderer is not None and run.step % cfg.loss.silhouette_every == 0
                and run.step >= cfg.loss.silhouette_start)
    # compute_losses times the prediction's body model and the renderer itself; the rest is "losses"
    t0 = time.perf_counter()
    inner0 = timer.total.get("body_pred", 0.0) + timer.total.get("renderer", 0.0)
    loss, parts, _ = compute_losses(pred, tgt, batch, run.bodies, cfg.loss, cfg.proxy.input_size,
                                    run.renderer if with_sil else None, timer)
    inner = timer.total.get("body_pred", 0.0) + timer.total.get("renderer", 0.0) - inner0
    timer.total["losses"] = timer.total.get("losses", 0.0) + time.perf_counter() - t0 - inner
    if not torch.isfinite(loss):
        raise LasorError(f"step {run.step}: the loss is not finite ({parts}); lower optim.lr or check the data")
    timer.start("backward")
    run.opt.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    timer.stop("backward")
    timer.start("optimizer")
    if cfg.optim.grad_clip > 0:
        run.scaler.unscale_(run.opt)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.optim.grad_clip, foreach=True)
    run.scaler.step(run.opt)
    run.scaler.update()
    run.sched.step()
    timer.stop("optimizer")
    run.step += 1
    if run.world > 1:  # log the loss of the whole (global) batch: every rank's mean, averaged
        parts = _global_mean({"loss": float(loss.detach()), **parts})
    return loss, parts


def save_checkpoint(run: Run, path: str, val_pve=None):
    """Everything `--resume` needs (written by rank 0 only, atomically)."""
    if run.rank != 0:
        return
    checkpoint_io.save({
        "version": CKPT_VERSION, "step": run.step, "best_val_pve": run.best, "val_pve": val_pve,
        "model": run.model.state_dict(), "optimizer": run.opt.state_dict(), "scheduler": run.sched.state_dict(),
        "scaler": run.scaler.state_dict(), "config": run.cfg.to_dict(),
        "rng": checkpoint_io.rng_state(run.device),
        "body_model": {"id": run.bodies.pred.model_id, "sha256": run.bodies.pred.sha256,
                       "path": run.cfg.train.body_model},
        "data": {"root": os.path.abspath(run.data_dir), "train_shards": run.train_ids, "val_shards": run.val_ids},
    }, path)


def validate_and_log(run: Run, log: RunLog) -> dict:
    """Validation PVE/MPJPE on the held-out samples, logged; a new best is saved to best.pt."""
    t_val = time.perf_counter()
    train_s = log.train_seconds()
    val = quick_validate(run.model, run.val_loader, run.bodies, run.cfg, run.device)
    run.model.train()
    log.val_s += time.perf_counter() - t_val
    log.validation(run, val, train_s)
    if val["pve_mm"] < run.best:
        run.best = val["pve_mm"]
        save_checkpoint(run, os.path.join(run.out_dir, "best.pt"), val["pve_mm"])
    if log.bar is not None:
        log.bar.write(f"step {run.step}: val PVE {val['pve_mm']:.1f} mm, MPJPE {val['mpjpe_mm']:.1f} mm "
                      f"(best PVE {run.best:.1f})")
    return val


def train(data_dir: str, out_dir: str, cfg: Config, resume: bool = False, verify: bool = True,
          progress: bool = True, max_steps: int | None = None, echo=print) -> dict:
    """Train; returns a summary dict. `max_steps` stops early (a simulated interruption, for tests)."""
    run = setup(data_dir, out_dir, cfg, resume, verify, echo)
    log = RunLog(run, resume, progress, echo)
    latest = os.path.join(out_dir, "latest.pt")
    total_steps = cfg.optim.steps if max_steps is None else min(cfg.optim.steps, max_steps)
    timer = Timer(torch.cuda.synchronize if run.device.type == "cuda" else None)
    log.start_clock()
    batches, last_val = iter(run.loader), None
    run.model.train()
    while run.step < total_steps:
        timer.start("data")
        batch = batch_to(next(batches), run.device)
        timer.stop("data")
        loss, parts = train_step(run, batch, timer)
        log.step(run, loss, parts, batch["K"].shape[0] * run.world,
                 scalars=run.step % cfg.train.log_every == 0 or run.step == total_steps)
        timed_out = cfg.train.time_limit_s > 0 and log.elapsed() > cfg.train.time_limit_s
        last = run.step == total_steps or timed_out
        if run.val_loader is not None and (run.step % cfg.train.val_every == 0 or last):
            last_val = validate_and_log(run, log)
        if run.step % cfg.train.ckpt_every == 0 or last:
            save_checkpoint(run, latest, None if last_val is None else last_val["pve_mm"])
        if timed_out:
            echo(f"time limit {cfg.train.time_limit_s:.0f}s reached at step {run.step}")
            break
    if run.val_loader is None:  # no held-out shards: best = latest
        save_checkpoint(run, os.path.join(out_dir, "best.pt"))
    log.close()
    run.train_ds.close()
    return {"step": run.step, "best_val_pve_mm": run.best, "last_val": last_val, "elapsed_s": log.elapsed(),
            "timing_s": dict(timer.total), "batch_size": cfg.optim.batch_size, "world_size": run.world,
            "amp": run.use_amp, "renderer_backend": run.renderer_backend}
