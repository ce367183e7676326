"""The `lasor-datagen` command line."""

from __future__ import annotations

import click

from lasor_shared.cli_util import clean_errors


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def main(debug):
    """Generate panoramic, occlusion-aware synthetic SMPL datasets (sharded HDF5)."""


@main.group("body-model")
def body_model():
    """Inspect, render and build body models (real SMPL files or the embedded anny-derived model)."""


@body_model.command("show")
@click.option("--body-model", "path", type=click.Path(dir_okay=False), default=None,
              help="SMPL .npz/.pkl file; default: the embedded free model.")
@click.option("--gender", type=click.Choice(["neutral", "male", "female"]), default="neutral", show_default=True)
@click.option("--out", "out_png", type=click.Path(dir_okay=False), default=None,
              help="Also write a PNG contact sheet of shapes and poses (front and side views).")
@click.option("--size", default=256, show_default=True, help="Tile size in pixels.")
@clean_errors
def show(path, gender, out_png, size):
    """Print a body model's summary; optionally render it in several shapes and poses."""
    import time

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
@click.option("--gender", type=click.Choice(["neutral", "male", "female"]), default="neutral", show_default=True)
@click.option("--shapes", "n_shapes", default=600, show_default=True, help="Sampled adult bodies for PCA and J_regressor.")
@click.option("--seed", default=0, show_default=True)
@click.option("--cache-dir", default=None, help="anny's cache (ANNY_CACHE_DIR); the first build takes minutes.")
@clean_errors
def build(out_path, gender, n_shapes, seed, cache_dir):
    """Build an SMPL-format body model from the free anny model (needs `pip install 'lasor[anny]'`)."""
    from lasor_shared.anny_builder import build_from_anny

    build_from_anny(out_path, gender=gender, n_shapes=n_shapes, seed=seed, cache_dir=cache_dir, log=click.echo)
