"""Check that the built neural_renderer works here before training relies on it (one line out).

Renders a body-like mesh with lasor's Renderer on both backends (backend='neural_renderer' on CUDA,
backend='cpu'), requires the silhouettes to agree (IoU > 0.99) and the silhouette loss to give
finite, non-zero vertex gradients through neural_renderer; prints forward+backward ms per batch of
each. Exit 0 when usable, 1 (with the reason) when not. Needs lasor_trainer on PYTHONPATH.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import torch

TESTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests")


def _timed(fn, reps=5):
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t0) / reps


def main() -> int:
    from lasor_trainer.neural_renderer import Renderer
    from lasor_trainer.neural_renderer.cuda_backend import unavailable_reason
    sys.path.insert(0, TESTS)
    from nr_testing import body_like_mesh  # test-only meshes live in tests/

    if not torch.cuda.is_available():
        print("neural_renderer check: no CUDA device", file=sys.stderr)
        return 1
    why = unavailable_reason()
    if why:
        print(f"neural_renderer check: {why}", file=sys.stderr)
        return 1
    vb, fb = body_like_mesh(3)
    B = 128
    K = np.array([[60.0, 0, 32], [0, 60, 32], [0, 0, 1]])
    v = (torch.from_numpy(vb).float()[None] + torch.tensor([0.0, 0.0, 3.0])).repeat(B, 1, 1)
    v[:, :, 0] += torch.linspace(-0.3, 0.3, B)[:, None]  # different images per batch entry
    f = torch.from_numpy(fb).int()[None]
    kw = dict(image_size=48, K=K, R=np.eye(3), t=np.zeros(3), orig_size=64, anti_aliasing=False)
    try:
        cpu = Renderer(backend="cpu", **kw).render_silhouettes(v, f)
        gpu_r = Renderer(backend="neural_renderer", **kw)
        vc = v.cuda().requires_grad_(True)
        img = gpu_r.render_silhouettes(vc, f.cuda())
        target = torch.roll(img.detach(), 2, dims=-1)  # a shifted silhouette: the loss must move vertices
        ((img - target) ** 2).sum().backward()
    except Exception as e:
        print(f"neural_renderer check: rendering failed ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    a, b = cpu > 0.5, img.detach().cpu() > 0.5
    iou = ((a & b).sum() / (a | b).sum().clamp_min(1)).item()
    g = vc.grad
    if not (iou > 0.99 and g is not None and torch.isfinite(g).all() and g.abs().sum() > 0):
        print(f"neural_renderer check: disagrees with lasor's renderer (IoU {iou:.4f}, "
              f"grad {'none' if g is None else f'finite={bool(torch.isfinite(g).all())} sum|g|={g.abs().sum():.3g}'})",
              file=sys.stderr)
        return 1

    def step(r, verts):
        x = verts.detach().requires_grad_(True)
        r.render_silhouettes(x, f.to(verts.device)).sum().backward()

    rgb_note = _rgb_agreement(Renderer, v[:4], f, kw)
    ms_gpu = _timed(lambda: step(gpu_r, v.cuda()))
    ms_cpu = _timed(lambda: step(Renderer(backend="cpu", **kw), v.cuda()), reps=2)
    print(f"neural_renderer OK: IoU vs lasor's renderer {iou:.4f}; forward+backward of {B} silhouettes "
          f"({vb.shape[0]} vertices, 48 px): neural_renderer {ms_gpu:.1f} ms, lasor's CPU kernels from CUDA "
          f"tensors {ms_cpu:.1f} ms; {rgb_note}")
    return 0


def _rgb_agreement(Renderer, v, f, kw):
    """Textured RGB through neural_renderer vs lasor's CPU kernels (informational: training uses
    silhouettes only, so a difference here does not fail the check)."""
    try:
        torch.manual_seed(0)
        tex = torch.rand(v.shape[0], f.shape[1], 2, 2, 2, 3)
        cpu = Renderer(backend="cpu", **kw).render(v, f, tex)
        gpu = Renderer(backend="neural_renderer", **kw).render(v.cuda(), f.cuda(), tex.cuda())
        both = (cpu[2] > 0) & (gpu[2].cpu() > 0)
        err = (cpu[0] - gpu[0].cpu()).abs().amax(1)[both]
        return f"textured RGB vs lasor's: median |diff| {err.median():.2e}, p99 {err.quantile(0.99):.2e}"
    except Exception as e:  # noqa: BLE001 - informational only
        return f"textured RGB comparison failed ({type(e).__name__}: {e})"


if __name__ == "__main__":
    sys.exit(main())
