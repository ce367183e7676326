"""Kato-style neural mesh renderer (Kato, Ushiku, Harada, "Neural 3D Mesh Renderer", CVPR 2018).

The public API of neural_renderer(_pytorch) 1.1.x on the CPU — same names, argument order, defaults,
shapes and conventions — so that code written as ``import neural_renderer as nr`` runs with
``import lasor_trainer.neural_renderer as nr``: ``Renderer`` (render → (rgb, depth, alpha),
render_rgb, render_silhouettes, render_depth; camera modes 'projection', 'look_at', 'look'),
``projection``, ``look_at``, ``look``, ``perspective``, ``get_points_from_angles``,
``vertices_to_faces``, ``lighting``, ``rasterize_rgbad``, ``rasterize``, ``rasterize_silhouettes``,
``rasterize_depth``, ``Rasterize``, ``load_obj``, ``save_obj``, ``Mesh``. Deliberate differences
from upstream (its documented oddities) are listed in each module's docstring.

One concern per module: ``projection`` (cameras → NDC), ``lighting``, ``rasterize`` (rasterisers and
their autograd), ``obj_io`` (OBJ/MTL files), ``mesh``, ``renderer`` (Renderer, backend choice, input
checks); ``cpu_kernels`` (raster, the edge gradient of silhouettes and images) and ``texture_kernels``
(texture sampling and its gradient) are the numba kernels; ``cuda_backend`` wraps the real CUDA package.

On CUDA tensors the Renderer uses ``neural_renderer`` itself when that package imports; otherwise
compiled, parallel numba kernels on the CPU. The choice is logged (logger
``lasor_trainer.neural_renderer``) and can be forced with ``Renderer(backend='auto'|'cpu'|
'neural_renderer')`` or the environment variable ``LASOR_NMR_BACKEND``.

Camera and pixel grid
---------------------
lasor's camera is OpenCV's: P = R·v + t (x right, y down, z forward), [u, v] = K·[x/z, y/z, 1].
Like neural_renderer, the rasteriser works in NDC: x_ndc = 2u/orig − 1, y_ndc = 1 − 2v/orig
(y up), z kept as camera depth. Output pixel (row r, col c) of an S×S image samples the point
u = (c + ½)·orig/S, v = (r + ½)·orig/S, i.e. pixel centres at integer + ½ exactly as in
lasor_shared.camera and pyrender's IntrinsicsCamera scaled by S/orig. Internally raster row 0 is
the bottom (NDC y = −1); images are flipped before they are returned.

Forward (exact)
---------------
Each face is a triangle in NDC. Faces with negative signed area (seen from behind) are skipped, as
are degenerate ones; ``fill_back`` appends every face again with reversed winding so that both sides
are drawn. A pixel centre belongs to a face when it lies on the inner side of all three edges (a
centre exactly on an edge counts as inside). Its barycentric weights are clamped to [0, 1] and
renormalised, the perspective-correct depth is z* = 1/Σ wₖ/zₖ, and the pixel is considered only if
near < z* < far (a per-pixel test, no clipping). A z-buffer keeps the nearest face (strictly nearer
wins, so ties go to the lower face index). Outputs are the face-index map (−1 = background), the
depth (``far`` for background) and the silhouette alpha = covered. With anti-aliasing the raster is
2S×2S and images are 2×2 average-pooled, so silhouette values are multiples of ¼.

The CPU kernel reads projected vertices and integer faces directly (no gathered per-face copy).
It first computes each face's drawing orientation and pixel bounding box. With fill_back, a face
seen from behind is drawn as its reversed copy with index F + f, exactly as in neural_renderer's
doubled face list, and "ties go to the lowest index" is applied explicitly, so no doubled list is
built. Then one parallel job per (image, band of rows) visits only the faces whose box meets its
band and tests only the pixels of that box. Jobs own disjoint rows of the z-buffer, so there are no
races and the result is deterministic. Work is proportional to the pixels inside face boxes, never
to pixels × faces.

Backward (Kato's approximate silhouette gradient)
--------------------------------------------------
Rasterisation is piecewise constant, so its true derivative is zero almost everywhere. Kato replaces
it by a linear ramp: if moving one vertex along x (or y) by δ would make a face edge sweep over the
centre of pixel j, changing its value from I_j to I′_j, the derivative of I_j w.r.t. that coordinate
is taken as (I′_j − I_j)/δ. Only moves that reduce the loss are kept: with G_j = ∂L/∂I_j, let
d = (I_j − I′_j)·G_j; the contribution −d/δ is added only when d > 0 (so the gradient is exactly zero
when no pixel change can lower the loss, e.g. when the loss is already satisfied).

Concretely, for each visible front face, each of its 3 edges and each axis, every integer scan line
the edge spans is visited (columns give gradients on y, rows on x). On that line the edge crosses
at c, between the pixel just inside the face (v_in) and just outside (v_out).
* OUT (the face grows): if v_in is owned by this face, every pixel v1 from v_out to the image
  border would take the value of v_in (for silhouettes: become covered); it contributes if d > 0.
  Which face is in front does not matter here: for a silhouette only background pixels (I = 0, with
  G < 0) can gain, and a grown face covers them whatever its depth — occluders along the way are
  ignored, as in the original.
* IN (the face shrinks): pixels from v_in to where the line leaves the face through another edge
  would be uncovered and take the value of v_out; only pixels this face wins in the z-buffer (it is
  the one in front there) count, and for silhouettes only when v_out is background.
The needed displacement along the axis is Δ = (v1 − c)·2/S in NDC. It is split between the edge's
two end vertices A, B by their linear weights λ_A, λ_B at the crossing: δ = Δ/λ (± eps to keep it
away from zero), and grad[vertex, axis] −= d/δ. Silhouettes give no z gradient. Gradient magnitudes
are heavy-tailed (≈ d/eps for pixels next to an edge) — optimise with Adam.

The CPU kernel runs one parallel job per (image, face) and skips faces that win no pixel (culled,
hidden), so it never races. Each job writes only its own face's corner gradients, and a second pass
(one job per image) adds them into the vertex gradients. OUT sweeps visit only useful pixels: the
background pixels with G < 0 on each scan line are collected once into sorted lists, and a binary
search finds the ones beyond v_out. Images whose G is zero everywhere are skipped. Small problems
run on one thread (PARALLEL_MIN_WORK), because spinning OpenMP barriers cost more than they save
there, and far more when the CPUs are shared.

Textured RGB (``render``/``rasterize_rgbad``) samples each face's T×T×T texture trilinearly at the
perspective-correct barycentrics, times the face's light (``texture_kernels``). Its gradient to the
vertices is the same edge rule with upstream's general pixel values: d = Σ_c (I_c − I′_c)·G_c summed
over the returned channels (RGB, and alpha when it is returned and has a gradient), gated on d > 0;
the textures (and the per-face light, hence the vertices through the normals) get the exact gradient
of the sampling. The RGB backward cannot use the silhouette shortcuts (any pixel may gain), so it
walks every pixel with a non-zero gradient beyond each edge.

Depth (``render_depth``) is differentiated analytically: z* = 1/Σ wₖ/zₖ is recomputed with torch
ops at the covered pixels (face choice fixed), so autograd gives ∂z*/∂zₖ = wₖ z*²/zₖ² and the
exact x/y terms through the barycentrics.

Autograd: the rasteriser takes already projected NDC faces; the projection (K, R, t, distortion),
fill_back and vertex gathering are plain torch ops, so gradients reach vertices and cameras.
"""

from .cuda_backend import available as neural_renderer_available
from .lighting import face_light, lighting
from .mesh import Mesh
from .obj_io import create_texture_image, load_mtl, load_obj, save_obj
from .projection import get_points_from_angles, look, look_at, perspective, projection, vertices_to_faces
from .rasterize import (
    DEFAULT_EPS,
    DEFAULT_FAR,
    DEFAULT_NEAR,
    Rasterize,
    rasterize,
    rasterize_depth,
    rasterize_face_index_map,
    rasterize_mesh,
    rasterize_rgbad,
    rasterize_silhouettes,
)
from .renderer import (
    BACKENDS,
    ENV_BACKEND,
    Renderer,
    RendererInputError,
    describe_backend,
    resolve_backend,
    warmup,
    warmup_rgb,
)

__version__ = "1.1.3"  # the neural_renderer_pytorch API this package mirrors
name = "neural_renderer_pytorch"

__all__ = [
    "BACKENDS", "DEFAULT_EPS", "DEFAULT_FAR", "DEFAULT_NEAR", "ENV_BACKEND", "Mesh", "Rasterize", "Renderer",
    "RendererInputError", "create_texture_image", "describe_backend", "face_light", "get_points_from_angles",
    "lighting", "load_mtl", "load_obj", "look", "look_at", "neural_renderer_available", "perspective", "projection",
    "rasterize", "rasterize_depth", "rasterize_face_index_map", "rasterize_mesh", "rasterize_rgbad",
    "rasterize_silhouettes", "resolve_backend", "save_obj", "vertices_to_faces", "warmup", "warmup_rgb",
]
