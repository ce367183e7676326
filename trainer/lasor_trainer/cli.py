"""Command lines: `lasor-train`, `lasor-eval`, `lasor-predict` (click; LasorError → one line, exit 2).

Each command imports torch and its working modules inside its function, so that `--help` and bad
arguments answer without loading them.
"""

from __future__ import annotations

import json
import os
import platform

import click

from lasor_shared.cli_util import OneLineCommand, OneLineGroup, clean_errors
from lasor_shared.errors import LasorError

CTX = {"help_option_names": ["-h", "--help"]}


def _overrides(pairs):
    from lasor_trainer.config import parse_value

    out = {}
    for p in pairs:
        if "=" not in p:
            raise LasorError(f"--set {p!r}: expected section.field=value")
        k, v = p.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def _write_summary(out_dir, summary, cfg):
    """RUN/summary.json: steps, wall time, per-phase timing and the machine (read by the model card)."""
    import torch

    info = dict(summary, machine=f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
                device=cfg.train.device if cfg.train.device != "cuda" or not torch.cuda.is_available()
                else torch.cuda.get_device_name(0), threads=torch.get_num_threads(), torch=torch.__version__)
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(info, f, indent=1, default=str)


def _check_device(name: str):
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise LasorError(f"--device {name!r}: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LasorError(f"--device {name}: no CUDA device is available")
    if dev.type not in ("cpu", "cuda"):
        raise LasorError(f"--device {name!r}: expected cpu, cuda or cuda:N")


@click.command(cls=OneLineCommand, context_settings=CTX)
@click.option("--data", "data_dir", required=True, type=click.Path(), help="Dataset directory (shards + manifest.json).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory (checkpoints, logs).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="Trainer config YAML.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.FIELD=VALUE", help="Override a config field (repeatable).")
@click.option("--resume", is_flag=True, help="Continue the run in --out exactly where latest.pt left it.")
@click.option("--init", "init", type=click.Path(dir_okay=False), default=None,
              help="Fine-tune: start from this checkpoint's weights (new optimizer and schedule, step 0).")
@click.option("--steps", type=int, default=None, help="Shortcut for --set optim.steps=N.")
@click.option("--time-limit", type=float, default=None, help="Stop (and checkpoint) after this many seconds.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default=None, help="Overrides train.device.")
@click.option("--no-verify", is_flag=True, help="Skip re-hashing the shards against manifest.json.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True, help="Show full tracebacks.")
@clean_errors
def train_main(data_dir, out_dir, config_path, sets, resume, init, steps, time_limit, device, no_verify, no_progress, debug):
    """Train the LASOR regressor on lasor shards (silhouette + keypoint proxy → SMPL)."""
    from lasor_trainer.config import load_config
    from lasor_trainer.train import train

    ov = _overrides(sets)
    if steps is not None:
        ov["optim.steps"] = steps
    if init is not None:
        ov["train.init"] = init
    if time_limit is not None:
        ov["train.time_limit_s"] = time_limit
    if device is not None:
        ov["train.device"] = device
    cfg = load_config(config_path, ov)
    summary = train(data_dir, out_dir, cfg, resume=resume, verify=not no_verify, progress=not no_progress,
                    echo=click.echo)
    if int(os.environ.get("RANK", "0")) == 0:
        _write_summary(out_dir, summary, cfg)
    t = summary["timing_s"]
    steps_done = max(summary["step"], 1)
    click.echo(f"done: step {summary['step']}, best val PVE {summary['best_val_pve_mm']:.1f} mm, "
               f"{summary['elapsed_s']:.0f} s; per step (ms) " +
               ", ".join(f"{k} {1000 * v / steps_done:.0f}" for k, v in t.items()))


CHECKPOINT_HELP = "A lasor-train checkpoint (best.pt/latest.pt); default: the pretrained model shipped with lasor."


@click.command(cls=OneLineCommand, context_settings=CTX)
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help=CHECKPOINT_HELP)
@click.option("--data", "data_dir", default=None, type=click.Path(), help="lasor dataset directory.")
@click.option("--ssp3d", "ssp3d_dir", default=None, type=click.Path(), help="SSP-3D folder (labels.npz, silhouettes/).")
@click.option("--3dpw", "pw3d_path", default=None, type=click.Path(), help="3DPW sequence .pkl file or folder of them.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--shards", default="auto", show_default=True, help="auto | all | val | comma list of shard indices.")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@click.option("--max-samples", type=click.IntRange(0), default=0, show_default=True,
              help="Evaluate an evenly spaced subset (0 = all).")
@click.option("--no-silhouette", is_flag=True, help="Skip rendering (no IoU).")
@click.option("--body-model", default=None, type=click.Path(dir_okay=False), help="SMPL file (default: the checkpoint's).")
@click.option("--pve-t-sc", "pve_t_sc", type=click.Choice(["auto", "gendered", "neutral"]), default="auto",
              show_default=True, help="PVE-T-SC ground truth: the subject's gender model (SSP-3D's protocol) or the "
              "neutral model; auto = gendered when gender models exist. The report names the one used.")
@click.option("--male-model", default=None, type=click.Path(dir_okay=False), help="Male SMPL file (gendered PVE-T-SC with --body-model).")
@click.option("--female-model", default=None, type=click.Path(dir_okay=False), help="Female SMPL file (gendered PVE-T-SC with --body-model).")
@click.option("--keypoints", "keypoint_protocol", type=click.Choice(["detector", "native", "exact"]), default="detector",
              show_default=True,
              help="Test keypoints (--data): 'detector' = the documented protocol (lasor_trainer.inputs: detector-like "
                   "keypoints drawn with a fixed per-sample seed; a model of the older 'visible' convention gets those "
                   "with confidence >= 0.5); 'native' = what the checkpoint's own config says; 'exact' = a "
                   "perfect detector (a diagnostic of what keypoint noise costs).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--no-verify", is_flag=True)
@click.option("--debug", is_flag=True)
@clean_errors
def eval_main(checkpoint, data_dir, ssp3d_dir, pw3d_path, out_dir, shards, batch_size, max_samples, no_silhouette,
              body_model, pve_t_sc, male_model, female_model, keypoint_protocol, device, no_verify, debug):
    """Evaluate a checkpoint: JSON + Markdown + PNG plots, broken down by occlusion and viewpoint."""
    from lasor_trainer.pretrained import resolve_checkpoint

    if sum(x is not None for x in (data_dir, ssp3d_dir, pw3d_path)) != 1:
        raise LasorError("give exactly one of --data, --ssp3d, --3dpw")
    checkpoint = resolve_checkpoint(checkpoint)
    _check_device(device)
    if data_dir is not None:
        from lasor_trainer.evaluate import evaluate

        res = evaluate(checkpoint, data_dir, out_dir, shards, batch_size, max_samples, not no_silhouette, device,
                       not no_verify, body_model, pve_t_sc, male_model, female_model, keypoint_protocol)
    else:
        from lasor_trainer.evaluate import evaluate_benchmark

        res = evaluate_benchmark(checkpoint, out_dir, ssp3d_dir=ssp3d_dir, pw3d_path=pw3d_path, batch_size=batch_size,
                                 max_samples=max_samples, with_silhouette=not no_silhouette, device=device,
                                 body_model=body_model, pve_t_sc=pve_t_sc, male_model=male_model,
                                 female_model=female_model)
    a = res["table"]["all"]["all"]
    for p, s in a.items():
        click.echo(f"{p:>24}: n {s['n']}, MPJPE {s['mpjpe_mm']:.1f}, PA-MPJPE {s['pa_mpjpe_mm']:.1f}, "
                   f"PVE {s['pve_mm']:.1f}, PVE-T-SC {s['pve_t_sc_mm']:.1f} mm" +
                   (f", IoU pooled {s['sil_iou_pooled']:.3f}" if s.get("sil_iou_pooled") is not None else ""))
    click.echo(f"wrote {os.path.join(out_dir, 'report.md')}, metrics.json and plots")


@click.command(cls=OneLineCommand, context_settings=CTX)
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help=CHECKPOINT_HELP)
@click.option("--mask", "mask_path", default=None, type=click.Path(dir_okay=False), help="Binary person mask PNG.")
@click.option("--keypoints", "kp_path", default=None, type=click.Path(dir_okay=False),
              help="COCO-format (keypoints: 17×[x,y,v]) or OpenPose-format (people[].pose_keypoints_2d) JSON.")
@click.option("--image", "image_path", default=None, type=click.Path(),
              help="A photo or a folder of photos instead of --mask/--keypoints (needs: pip install 'lasor[photo]').")
@click.option("--max-people", type=click.IntRange(1), default=8, show_default=True,
              help="With --image: at most this many people per photo (the largest).")
@click.option("--min-score", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="With --image: person detections scoring below are ignored.")
@click.option("--verbose", is_flag=True, help="With --image: print model loading and per-person times per stage.")
@click.option("--no-progress", is_flag=True, help="With an --image folder: no progress bar.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--focal", type=float, default=None, help="Focal length in pixels (default: 1.2 × the longer image side).")
@click.option("--min-confidence", type=float, default=None,
              help="With --keypoints: keypoints scoring below are treated as missing [default: 0.1]. (--image hands "
                   "over the detector's own confidences: docs/photo.md.)")
@click.option("--person", type=click.IntRange(0), default=0, show_default=True, help="Which person of the JSON to use.")
@click.option("--debug", is_flag=True)
@clean_errors
def predict_main(checkpoint, mask_path, kp_path, image_path, max_people, min_score, verbose, no_progress, out_dir,
                 focal, min_confidence, person, debug):
    """Predict SMPL pose/shape from a mask + keypoints, or from photos (--image): params JSON, OBJ mesh, overlay PNG."""
    from lasor_trainer.pretrained import resolve_checkpoint

    checkpoint = resolve_checkpoint(checkpoint)
    if image_path is not None:
        if mask_path is not None or kp_path is not None:
            raise LasorError("give either --image or --mask with --keypoints, not both")
        if min_confidence is not None:
            raise LasorError("--min-confidence applies to --keypoints files; with --image the detector's "
                             "confidences are handed over as they are (docs/photo.md)")
        from lasor_trainer.photo import run

        out = run(image_path, out_dir, checkpoint, focal=focal, max_people=max_people, min_score=min_score,
                  progress=not no_progress, verbose=verbose)
        click.echo(json.dumps(out, indent=1))
        return
    if mask_path is None or kp_path is None:
        raise LasorError("give --mask and --keypoints, or --image")
    from lasor_trainer.predict import predict

    out = predict(checkpoint, mask_path, kp_path, out_dir, focal=focal,
                  min_confidence=0.1 if min_confidence is None else min_confidence, person=person)
    click.echo(json.dumps({k: v for k, v in out.items() if k.endswith("_path")}, indent=1))


@click.group(cls=OneLineGroup, context_settings=CTX)
def main():
    """lasor trainer commands (also installed as lasor-train, lasor-eval, lasor-predict)."""


main.add_command(train_main, "train")
main.add_command(eval_main, "eval")
main.add_command(predict_main, "predict")

if __name__ == "__main__":
    main()
