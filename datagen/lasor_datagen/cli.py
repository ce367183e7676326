"""The `lasor-datagen` command line.

Each command imports its working modules (torch, pyrender/OpenGL, Dask, the generator) inside its
function, so that `--help` and the light commands start without loading what they do not use.
"""

from __future__ import annotations

import glob
import os
import sys
import time

import click
import numpy as np

from lasor_shared.cli_util import OneLineGroup, clean_errors
from lasor_shared.errors import LasorError
from lasor_shared.shards import GENDERS, read_manifest


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def main(debug):
    """Generate panoramic, occlusion-aware synthetic SMPL datasets (sharded HDF5)."""


@main.group("body-model")
def body_model():
    """Inspect, render and build body models (real SMPL files or the embedded anny-derived model)."""


@body_model.command("show")
@click.option("--body-model", "path", type=click.Path(dir_okay=False), default=None,
              help="SMPL .npz/.pkl file; default: the embedded free model.")
@click.option("--gender", type=click.Choice(GENDERS), default="neutral", show_default=True)
@click.option("--out", "out_png", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG contact sheet of shapes and poses (front and side views).")
@click.option("--size", type=click.IntRange(16, 2048), default=256, show_default=True, help="Tile size in pixels.")
@clean_errors
def show(path, gender, out_png, size):
    """Print a body model's summary; optionally render it in several shapes and poses."""
    import torch

    from lasor_shared.body_model import load_body_model

    model = load_body_model(path, gender=gender, batch_size=64)
    click.echo(model.summary())
    with torch.no_grad():
        pose, betas = torch.zeros(64, 72), torch.randn(64, 10)
        model.pose(pose, betas)
        t = time.perf_counter()
        model.pose(pose, betas)
        click.echo(f"  smplx forward, batch 64, CPU: {1000 * (time.perf_counter() - t):.1f} ms")
    if out_png:
        from lasor_datagen.gl import select_gl_platform
        from lasor_datagen.showcase import body_model_sheet

        platform = select_gl_platform()
        w, h = body_model_sheet(model, out_png, size)
        click.echo(f"wrote {out_png} ({w}x{h}, rendered with pyrender/{platform})")


@body_model.command("build")
@click.option("--from-anny", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Output .npz path (SMPL file format).")
@click.option("--gender", type=click.Choice(GENDERS), default="neutral", show_default=True)
@click.option("--shapes", "n_shapes", type=click.IntRange(20, 100000), default=600, show_default=True,
              help="Sampled adult bodies for PCA and J_regressor.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True)
@click.option("--cache-dir", default=None, help="anny's cache (ANNY_CACHE_DIR); the first build takes minutes.")
@click.option("--histograms", "histograms_png", default=None, type=click.Path(dir_okay=False),
              help="Also write the sampled population's height and BMI histograms to this PNG.")
@clean_errors
def build(out_path, gender, n_shapes, seed, cache_dir, histograms_png):
    """Build an SMPL-format body model from the free anny model (needs `pip install 'lasor[anny]'`)."""
    from lasor_datagen.anny_builder import build_from_anny

    build_from_anny(out_path, gender=gender, n_shapes=n_shapes, seed=seed, cache_dir=cache_dir,
                    histograms_png=histograms_png, log=click.echo)


# ---------------------------------------------------------------- poses

@main.group("poses")
def poses_group():
    """The authored pose library and motion-capture import."""


@poses_group.command("list")
@clean_errors
def poses_list():
    """Print the library's groups and pose names."""
    from lasor_datagen.poses import LIBRARY

    groups = list(dict.fromkeys(g for _, g, _ in LIBRARY))
    for g in groups:
        names = [n for n, gg, _ in LIBRARY if gg == g]
        click.echo(f"{g} ({len(names)}): {', '.join(names)}")
    click.echo(f"{len(LIBRARY)} poses in {len(groups)} groups")


@poses_group.command("sheet")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for the PNGs.")
@click.option("--group", "groups", multiple=True, help="Only these groups (repeatable); default: all.")
@click.option("--size", default=192, show_default=True, help="View size in pixels (two views per pose).")
@click.option("--body-model", "path", type=click.Path(dir_okay=False), default=None,
              help="SMPL .npz/.pkl file; default: the embedded free model.")
@clean_errors
def poses_sheet(out_dir, groups, size, path):
    """Render the pose library group by group (poses-GROUP.png), each pose on the floor from two sides."""
    from lasor_datagen.gl import select_gl_platform
    from lasor_datagen.showcase import pose_library_sheets
    from lasor_shared.body_model import load_body_model

    select_gl_platform()
    paths = pose_library_sheets(load_body_model(path, batch_size=1), out_dir, size, groups=groups)
    click.echo(f"wrote {len(paths)} sheet(s) to {out_dir}")


@poses_group.command("import")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Pose set to write (.npz with `poses` (N,72); a recipe source of kind 'array').")
@click.option("--joint-map", default=None, type=click.Path(dir_okay=False),
              help="YAML joint map for non-CMU skeletons (up, forward, joints: {smpl_joint: bvh_joint}); "
                   "default: CMU's 31-joint skeleton.")
@click.option("--min-change-deg", default=5.0, show_default=True, type=click.FloatRange(0.0, 90.0),
              help="Keep a frame when its mean joint-rotation change to the last kept frame reaches this.")
@click.option("--skip-bad", is_flag=True, help="Warn about unreadable files and go on (default: stop).")
@click.option("--sheet", "sheet_png", default=None, type=click.Path(dir_okay=False),
              help="Also write a BVH-skeleton vs SMPL-body sheet of the first clip.")
@click.option("--body-model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="SMPL .npz/.pkl file for rest joints, the error check and the sheet; default: embedded.")
@clean_errors
def poses_import(inputs, out_path, joint_map, min_change_deg, skip_bad, sheet_png, model_path):
    """Retarget BVH motion capture (files or folders of .bvh) onto SMPL and write a pose set.

    Prints, per clip, the frames kept and the joint error of the retargeted SMPL body against the
    BVH's own joints after one scale + rotation alignment (the skeletons' proportions differ, so
    a few centimetres remain).
    """
    import torch

    from lasor_datagen.bvh import import_bvh, read_joint_map, retarget_error, write_pose_set
    from lasor_shared.body_model import load_body_model

    files = []
    for p in inputs:
        if os.path.isdir(p):
            found = sorted(glob.glob(os.path.join(p, "**", "*.bvh"), recursive=True))
            if not found:
                raise LasorError(f"{p}: no .bvh files in the folder")
            files += found
        elif os.path.isfile(p):
            files.append(p)
        else:
            raise LasorError(f"{p}: no such file or folder")
    jmap = read_joint_map(joint_map)
    model = load_body_model(model_path)
    rest = (model.J_regressor @ model.v_template).detach().numpy().astype(np.float64)

    def smpl_joints(poses):
        with torch.no_grad():
            out = model.pose(torch.tensor(poses, dtype=torch.float32), torch.zeros(len(poses), model.num_betas))
        return out.joints[:, :24].numpy().astype(np.float64)

    all_poses, sources, frames, fps = [], [], [], []
    for path in files:
        try:
            bvh, poses, keep = import_bvh(path, jmap, rest, min_change_deg)
        except LasorError as e:
            if not skip_bad:
                raise
            click.echo(f"warning: skipped {e}", err=True)
            continue
        err = retarget_error(bvh, jmap, keep, smpl_joints(poses))
        click.echo(f"{path}: kept {len(keep)} frames; " + (
            f"joint error {err['mean_mm']:.1f} mm mean, {err['p95_mm']:.1f} mm p95 (scale {err['scale']:.4f} m "
            "per unit)" if err else "joint error not measured (fewer than 4 limb joints mapped)"))
        if sheet_png and not all_poses:
            if err is None:
                click.echo("no sheet: it needs at least 4 mapped limb joints to align the skeletons", err=True)
            else:
                from lasor_datagen.gl import select_gl_platform
                from lasor_datagen.showcase import mocap_sheet

                select_gl_platform()
                w, h = mocap_sheet(model, bvh, jmap, keep, poses, err, sheet_png)
                click.echo(f"wrote {sheet_png} ({w}x{h})")
        all_poses.append(poses)
        sources += [os.path.basename(path)] * len(poses)
        frames.append(keep)
        fps += [1.0 / bvh.frame_time] * len(poses)
    if not all_poses:
        raise LasorError("no clip could be imported")
    poses = np.concatenate(all_poses)
    write_pose_set(out_path, poses, sources, np.concatenate(frames), np.array(fps))
    click.echo(f"wrote {out_path}: {len(poses)} poses from {len(all_poses)} clip(s)")


# ---------------------------------------------------------------- datasets

@main.command("generate")
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Dataset folder.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Dask scheduler (tcp://HOST:8786); default: a LocalCluster on this machine.")
@click.option("--workers", type=click.IntRange(1, 1024), default=None,
              help="LocalCluster worker processes (default: one per CPU core).")
@click.option("--overwrite", is_flag=True, help="Replace a dataset of a different recipe in --out.")
@click.option("--shards", type=click.IntRange(1, 1_000_000), default=None, help="Override the recipe's shard count.")
@click.option("--samples-per-shard", type=click.IntRange(1), default=None, help="Override samples per shard.")
@click.option("--image-size", type=click.IntRange(32, 2048), default=None, help="Override the image size.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=None, help="Override the recipe seed.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@clean_errors
def generate_cmd(recipe, out, scheduler, workers, overwrite, shards, samples_per_shard, image_size, seed, quiet):
    """Generate (or finish) a sharded dataset from a YAML RECIPE.

    Re-running the same command after an interruption finishes only the missing shards.
    """
    from lasor_datagen.orchestrate import generate

    overrides = {"shards": shards, "samples_per_shard": samples_per_shard, "image_size": image_size, "seed": seed}
    generate(recipe, out, scheduler=scheduler, workers=workers, overwrite=overwrite, overrides=overrides,
             progress=not quiet, log=click.echo)


@main.command("verify")
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("--recipe", default=None, type=click.Path(dir_okay=False),
              help="Also check that the dataset was generated from this recipe.")
@clean_errors
def verify_cmd(dataset, recipe):
    """Re-hash every shard of DATASET against manifest.json and check the schema (exit 1 on problems)."""
    from lasor_datagen.orchestrate import verify

    problems = verify(dataset, recipe)
    if problems:
        for p in problems:
            click.echo(f"problem: {p}", err=True)
        click.echo(f"{dataset}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    m = read_manifest(dataset)
    click.echo(f"{dataset}: ok ({m['totals']['n_shards']} shards, {m['totals']['n_samples']} samples, "
               f"recipe {m['recipe_hash'][:12]})")


@main.command("preview")
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("-n", "n", type=click.IntRange(1, 4096), default=64, show_default=True, help="Number of samples.")
@click.option("--out", "out_png", default="preview.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--cols", type=click.IntRange(1, 64), default=8, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Which samples to draw.")
@clean_errors
def preview_cmd(dataset, n, out_png, cols, seed):
    """Contact sheet of DATASET: masks, COCO keypoints coloured by visibility code."""
    from lasor_datagen.preview import contact_sheet

    w, h = contact_sheet(dataset, out_png, n=n, cols=cols, seed=seed)
    click.echo(f"wrote {out_png} ({w}x{h})")


@main.command("stats")
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", default="stats", show_default=True, type=click.Path(file_okay=False))
@click.option("--audit", "audit_n", type=click.IntRange(0), default=0, show_default=True,
              help="Also audit the first N samples' scenes (penetration, ground, object sizes; slow).")
@clean_errors
def stats_cmd(dataset, out_dir, audit_n):
    """Histograms of DATASET (viewpoints, occlusion, visibility) as stats.png + stats.json in --out."""
    from lasor_datagen.stats import dataset_stats

    s = dataset_stats(dataset, out_dir, audit_n)
    occ, rej = s["occluded_fraction"], s["rejections"]
    click.echo(f"wrote {out_dir}/stats.png and stats.json: {s['n_samples']} samples, unoccluded share "
               f"{s['unoccluded_share']:.2f}, median visible fraction of occluded "
               f"{s['visible_fraction_of_occluded'].get('median', float('nan')):.2f}")
    click.echo(f"hidden share of {occ['n']} front-occluded samples, p10/p50/p90: target "
               + "/".join(f"{x:.3f}" for x in occ["target"]) + ", achieved "
               + "/".join(f"{x:.3f}" for x in occ["achieved"]))
    click.echo(f"rejections: poses {rej['pose_rejected']} of {rej['pose_draws']} "
               f"({rej['pose_rejection_rate']:.1%}); occluders pushed out of the target {rej['occluder_pushes']} "
               f"times, dropped {rej['occluders_dropped']} of {rej['occluders_planned']}; occlusion retries "
               f"{rej['occlusion_retry_rate']:.2f} per sample")
    if "audit" in s:
        a = s["audit"]
        click.echo(f"audit of {a['samples']} samples: {a['penetrating']} with penetration > 1 cm (max "
                   f"{100 * a['max_penetration_m']:.2f} cm over {a['occluders']} occluders), {a['off_ground']} "
                   f"off the ground, {a['objects_out_of_size']} of {a['objects']} objects outside the recipe's size")


if __name__ == "__main__":
    main()
