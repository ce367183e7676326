"""The CUDA path: Kato's own ``neural_renderer`` (neural_renderer_pytorch) when it imports.

Only its rasterisers are used (``vertices_to_faces``, ``rasterize_silhouettes``,
``rasterize_depth``, ``rasterize_rgbad``): projection, lighting, fill_back and input checking are
shared with the CPU path, so the two backends see identical NDC faces. Calling the rasterisers directly (instead of
``nr.Renderer.render_silhouettes``) also lets this path honour the Renderer's own near/far, where
upstream's render_silhouettes/render_depth silently use the module defaults (0.1, 100).
neural_renderer wants float32 vertices and int32 faces on a CUDA device.
"""

from __future__ import annotations

import functools

import torch


@functools.lru_cache(maxsize=1)
def _load():
    """(module, None) or (None, why it is unusable)."""
    try:
        import neural_renderer as nr  # noqa: PLC0415
    except Exception as e:  # ImportError, or a CUDA extension that fails to load
        return None, f"import neural_renderer failed ({type(e).__name__}: {e})"
    missing = [n for n in ("vertices_to_faces", "rasterize_silhouettes", "rasterize_depth") if not hasattr(nr, n)]
    if missing:
        return None, f"the installed neural_renderer lacks {', '.join(missing)}"
    return nr, None


def load():
    """The imported ``neural_renderer`` module, or None when it is not installed/importable."""
    return _load()[0]


def unavailable_reason() -> str | None:
    """Why ``load()`` returns None (one line), or None when neural_renderer imports."""
    return _load()[1]


def available() -> bool:
    return load() is not None and torch.cuda.is_available()


def _faces(nr, vertices_ndc: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    return nr.vertices_to_faces(vertices_ndc.float().contiguous(), faces.int().contiguous())


def render_silhouettes(vertices_ndc, faces, image_size, anti_aliasing, near, far, eps):
    nr = load()
    f = _faces(nr, vertices_ndc, faces)
    return nr.rasterize_silhouettes(f, int(image_size), bool(anti_aliasing), float(near), float(far), float(eps))


def render_depth(vertices_ndc, faces, image_size, anti_aliasing, near, far, eps):
    nr = load()
    f = _faces(nr, vertices_ndc, faces)
    return nr.rasterize_depth(f, int(image_size), bool(anti_aliasing), float(near), float(far), float(eps))


def render_rgbad(vertices_ndc, faces, textures, image_size, anti_aliasing, near, far, eps, background_color,
                 want_all):
    """{'rgb', 'alpha', 'depth'} of NDC faces with already lit (and, for fill_back, doubled) textures."""
    nr = load()
    if not hasattr(nr, "rasterize_rgbad"):
        raise RuntimeError("the installed neural_renderer lacks rasterize_rgbad")
    f = _faces(nr, vertices_ndc, faces)
    return nr.rasterize_rgbad(f, textures.float().contiguous(), int(image_size), bool(anti_aliasing), float(near),
                              float(far), float(eps), background_color, True, bool(want_all), bool(want_all))
