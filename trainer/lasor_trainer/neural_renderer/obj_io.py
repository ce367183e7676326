"""Wavefront OBJ files: neural_renderer's ``load_obj`` (with .mtl colours and image textures),
``save_obj`` (with a texture atlas) and ``create_texture_image``. numpy + PIL, CPU tensors.

Reading follows upstream: ``v`` and ``f`` lines (polygons fanned into triangles from their first
corner), ``mtllib``/``usemtl``/``newmtl``/``Kd``/``map_Kd``; texel (i, j, k) of a face's T×T×T
texture samples the face's texture coordinates at weights (i, j, k)/(T − 1) (rescaled to sum 1 when
they sum to more), image rows bottom-up (v = 0 is the last row), faces without a material colour
0.5. ``normalization`` maps the mesh into [-1, 1] as upstream (shift to min 0, divide by the largest
coordinate, ×2, subtract half of the per-axis maximum).

Differences from upstream, on purpose (its versions read outside the image or give NaN):
* bilinear sampling clamps the neighbour texel to the image; 'REPEAT' keeps coordinates in [0, 1]
  and wraps others with period 1 (upstream wraps with period 2); 'MIRRORED_REPEAT' mirrors with
  period 2; 'CLAMP_TO_BORDER' gives black outside [0, 1] (upstream almost never does);
* corners without texture coordinates keep the material colour (upstream uses the last ``vt``);
  negative (relative) OBJ indices are resolved; T = 1 samples the face centre;
* malformed files raise a one-line ``RendererInputError`` naming the file and line.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .renderer import _bad

WRAPPINGS = ("REPEAT", "MIRRORED_REPEAT", "CLAMP_TO_EDGE", "CLAMP_TO_BORDER")


def _index(tok, count, path, ln):
    """1-based (or negative, relative) OBJ index → 0-based."""
    try:
        i = int(tok)
    except ValueError:
        _bad(f"{path}:{ln}: bad index {tok!r}")
    i = i - 1 if i > 0 else count + i
    if not 0 <= i < count:
        _bad(f"{path}:{ln}: index {tok} out of range (1..{count})")
    return i


def _parse(path):
    """(vertices (N,3), faces (F,3), uv (M,2), face uv indices (F,3) (−1 = none), face materials, mtllibs)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        _bad(f"cannot read OBJ file {path}: {e.strerror or e}")
    verts, uvs, faces, fuv, mats, libs = [], [], [], [], [], []
    material = ""
    for ln, line in enumerate(lines, 1):
        tok = line.split()
        if not tok or tok[0].startswith("#"):
            continue
        try:
            if tok[0] == "v":
                verts.append([float(x) for x in tok[1:4]])
                if len(verts[-1]) != 3:
                    raise ValueError
            elif tok[0] == "vt":
                uvs.append([float(x) for x in tok[1:3]])
                if len(uvs[-1]) != 2:
                    raise ValueError
        except ValueError:
            _bad(f"{path}:{ln}: bad '{tok[0]}' line {line.strip()[:60]!r}")
        if tok[0] == "f":
            if len(tok) < 4:
                _bad(f"{path}:{ln}: a face needs at least 3 corners")
            corners = [c.split("/") for c in tok[1:]]
            vi = [_index(c[0], len(verts), path, ln) for c in corners]
            ti = [_index(c[1], len(uvs), path, ln) if len(c) > 1 and c[1] else -1 for c in corners]
            for k in range(len(corners) - 2):
                faces.append((vi[0], vi[k + 1], vi[k + 2]))
                fuv.append((ti[0], ti[k + 1], ti[k + 2]))
                mats.append(material)
        elif tok[0] == "usemtl" and len(tok) > 1:
            material = tok[1]
        elif tok[0] == "mtllib" and len(tok) > 1:
            libs.append(line.strip()[len("mtllib"):].strip())
    if not verts or not faces:
        _bad(f"{path}: no {'vertices' if not verts else 'faces'} (v/f lines) found")
    return (np.asarray(verts, np.float32), np.asarray(faces, np.int64), np.asarray(uvs, np.float32).reshape(-1, 2),
            np.asarray(fuv, np.int64), mats, libs)


def load_mtl(filename_mtl):
    """Material colours ``Kd`` and texture file names ``map_Kd`` of an .mtl file → (colors, texture_filenames)."""
    colors, textures, name = {}, {}, ""
    try:
        with open(filename_mtl, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        _bad(f"cannot read material file {filename_mtl}: {e.strerror or e}")
    for ln, line in enumerate(lines, 1):
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "newmtl" and len(tok) > 1:
            name = tok[1]
        elif tok[0] == "map_Kd" and len(tok) > 1:
            textures[name] = tok[-1]  # options such as -s u v w come before the file name
        elif tok[0] == "Kd":
            try:
                colors[name] = np.array([float(x) for x in tok[1:4]], np.float32)
                assert colors[name].shape == (3,)
            except (ValueError, AssertionError):
                _bad(f"{filename_mtl}:{ln}: bad 'Kd' line {line.strip()[:60]!r}")
    return colors, textures


def _read_image(path):
    """Texture image → float32 (H, W, 3) in [0, 1], rows bottom-up (grey → 3 channels, alpha dropped)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError) as e:
        _bad(f"cannot read texture image {path}: {e}")
    return np.ascontiguousarray(arr[::-1])


def _wrap(uv, mode):
    if mode == "REPEAT":
        return np.where((uv >= 0) & (uv <= 1), uv, uv - np.floor(uv))
    if mode == "MIRRORED_REPEAT":
        m = np.mod(uv, 2.0)
        return np.where(m > 1, 2.0 - m, m)
    if mode == "CLAMP_TO_EDGE":
        return np.clip(uv, 0.0, 1.0)
    return uv  # CLAMP_TO_BORDER: handled by the sampler


def _texel_weights(T):
    """(T³, 3) corner weights of the texels: (i, j, k)/(T − 1), rescaled to sum 1 when above 1."""
    i = np.indices((T, T, T)).reshape(3, -1).T.astype(np.float64)
    d = i / (T - 1) if T > 1 else np.full_like(i, 1.0 / 3.0)
    s = d.sum(1, keepdims=True)
    return np.where(s > 1, d / np.maximum(s, 1e-12), d)


def _sample_image(image, uv, mode, bilinear):
    """Colours (…, 3) of image (H, W, 3) at texture coordinates uv (…, 2)."""
    H, W = image.shape[:2]
    border = mode == "CLAMP_TO_BORDER"
    outside = ((uv < 0) | (uv > 1)).any(-1) if border else None
    uv = np.clip(_wrap(uv, mode), 0.0, 1.0)
    px, py = uv[..., 0] * (W - 1), uv[..., 1] * (H - 1)
    if bilinear:
        x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
        fx, fy = (px - x0)[..., None], (py - y0)[..., None]
        x1, y1 = np.minimum(x0 + 1, W - 1), np.minimum(y0 + 1, H - 1)
        col = (image[y0, x0] * (1 - fx) * (1 - fy) + image[y1, x0] * (1 - fx) * fy
               + image[y0, x1] * fx * (1 - fy) + image[y1, x1] * fx * fy)
    else:
        col = image[np.rint(py).astype(np.int64), np.rint(px).astype(np.int64)]
    if border:
        col = np.where(outside[..., None], 0.0, col)
    return col


def load_textures(filename_obj, filename_mtl, texture_size, texture_wrapping="REPEAT", use_bilinear=True):
    """Per-face textures (F, T, T, T, 3) float32 of an OBJ file's materials (see the module docstring)."""
    _, _, uvs, fuv, mats, _ = _parse(filename_obj)
    return _textures(filename_obj, [filename_mtl], uvs, fuv, mats, texture_size, texture_wrapping, use_bilinear)


def _textures(filename_obj, mtl_files, uvs, fuv, mats, T, wrapping, bilinear):
    if wrapping not in WRAPPINGS:
        _bad(f"texture_wrapping must be one of {WRAPPINGS}, got {wrapping!r}")
    Fn = len(mats)
    tex = np.full((Fn, T ** 3, 3), 0.5, np.float32)
    mats = np.asarray(mats, dtype=object)
    colors, images = {}, {}
    for mtl in mtl_files:
        c, i = load_mtl(mtl)
        colors.update(c)
        images.update({k: os.path.join(os.path.dirname(mtl), v) for k, v in i.items()})
    for name, color in colors.items():
        tex[mats == name] = color
    has_uv = (fuv >= 0).all(1) if len(fuv) else np.zeros(0, bool)
    weights = _texel_weights(T)  # (T³, 3)
    for name, path in images.items():
        sel = np.nonzero((mats == name) & has_uv)[0]
        if len(sel) == 0:
            continue
        image = _read_image(path)
        corner_uv = uvs[fuv[sel]].astype(np.float64)  # (n, 3, 2)
        uv = np.einsum("tk,nkd->ntd", weights, corner_uv)
        tex[sel] = _sample_image(image, uv, wrapping, bilinear)
    return torch.from_numpy(tex.reshape(Fn, T, T, T, 3))


def load_obj(filename_obj, normalization=True, texture_size=4, load_texture=False,
             texture_wrapping="REPEAT", use_bilinear=True):
    """Load a .obj file → (vertices (N, 3) float32, faces (F, 3) int32[, textures (F, T, T, T, 3)])."""
    if isinstance(texture_size, bool) or not isinstance(texture_size, (int, np.integer)) or texture_size < 1:
        _bad(f"texture_size must be a positive int, got {texture_size!r}")
    verts, faces, uvs, fuv, mats, libs = _parse(filename_obj)
    textures = None
    if load_texture:
        mtls = [os.path.join(os.path.dirname(filename_obj), lib) for lib in libs]
        if not mtls:
            _bad(f"{filename_obj}: load_texture=True but the file names no material library (mtllib)")
        textures = _textures(filename_obj, mtls, uvs, fuv, mats, int(texture_size), texture_wrapping, use_bilinear)
    vertices = torch.from_numpy(verts)
    if normalization:
        vertices = vertices - vertices.min(0)[0][None, :]
        vertices = vertices / vertices.abs().max()
        vertices = vertices * 2
        vertices = vertices - vertices.max(0)[0][None, :] / 2
    faces = torch.from_numpy(faces.astype(np.int32))
    return (vertices, faces, textures) if load_texture else (vertices, faces)


def create_texture_image(textures, texture_size_out=16):
    """Texture atlas of per-face textures (F, T, T, T, 3): one tso×tso tile per face (row-major), the
    face drawn as the tile's lower-left triangle → (image (H, W, 3) float, rows flipped for saving;
    texture coordinates (F, 3, 2) in [0, 1])."""
    tex = np.asarray(textures.detach().cpu().numpy() if torch.is_tensor(textures) else textures, np.float64)
    Fn, T = tex.shape[0], tex.shape[1]
    tso = int(texture_size_out)
    tw = int((Fn - 1.0) ** 0.5) + 1
    th = int((Fn - 1.0) / tw) + 1
    # barycentric weights of a tile's pixels for corners (0, 0), (0, tso−1), (tso−1, tso−1) (x, y)
    y, x = np.mgrid[0:tso, 0:tso].astype(np.float64)
    m = max(tso - 1, 1)
    w = np.stack([(m - y) / m, (y - x) / m, x / m], -1)  # (tso, tso, 3), sum 1
    eps = 1e-5
    t = np.clip(w * (T - 1), 0.0, max(T - 1 - eps, 0.0))
    lo = np.floor(t).astype(np.int64)
    fr = t - lo
    tile = np.zeros((Fn, tso, tso, 3))
    flat = tex.reshape(Fn, -1, 3)
    for pn in range(8):
        bits = np.array([(pn >> k) & 1 for k in range(3)])
        wt = np.prod(np.where(bits == 1, fr, 1 - fr), axis=-1)  # (tso, tso)
        idx = np.minimum(lo + bits, T - 1)
        ti = (idx[..., 0] * T + idx[..., 1]) * T + idx[..., 2]
        tile += wt[None, :, :, None] * flat[:, ti]
    # the pixel just above the diagonal copies its left neighbour (upstream's boundary pass)
    rr = np.arange(tso - 1)
    tile[:, rr, rr + 1] = tile[:, rr, rr]
    image = np.zeros((th * tso, tw * tso, 3))
    fi = np.arange(Fn)
    col, row = fi % tw, fi // tw
    image.reshape(th, tso, tw, tso, 3).transpose(0, 2, 1, 3, 4)[row, col] = tile
    verts = np.zeros((Fn, 3, 2))
    verts[:, 0] = np.stack([col * tso, row * tso], -1)
    verts[:, 1] = np.stack([col * tso, (row + 1) * tso - 1], -1)
    verts[:, 2] = np.stack([(col + 1) * tso - 1, (row + 1) * tso - 1], -1)
    verts[..., 0] /= image.shape[1] - 1
    verts[..., 1] /= image.shape[0] - 1
    return image[::-1].astype(np.float32), verts.astype(np.float32)


def save_obj(filename, vertices, faces, textures=None):
    """Write vertices (N, 3) and faces (F, 3) to ``filename`` (.obj); with textures (F, T, T, T, 3) also
    ``<name>.mtl`` and the atlas ``<name>.png`` (as upstream)."""
    if vertices.ndim != 2 or faces.ndim != 2:
        _bad(f"save_obj takes vertices (N, 3) and faces (F, 3), got {tuple(vertices.shape)} and {tuple(faces.shape)}")
    v = vertices.detach().cpu().numpy() if torch.is_tensor(vertices) else np.asarray(vertices)
    f = faces.detach().cpu().numpy() if torch.is_tensor(faces) else np.asarray(faces)
    base = os.path.splitext(filename)[0]
    lines = [f"# {os.path.basename(filename)}", "#", ""]
    if textures is not None:
        image, uv = create_texture_image(textures)
        Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(base + ".png")
        with open(base + ".mtl", "w") as fh:
            fh.write(f"newmtl material_1\nmap_Kd {os.path.basename(base)}.png\n")
        lines += [f"mtllib {os.path.basename(base)}.mtl", ""]
    lines += ["v %.8f %.8f %.8f" % tuple(p) for p in v] + [""]
    if textures is not None:
        lines += ["vt %.8f %.8f" % tuple(p) for p in uv.reshape(-1, 2)] + ["", "usemtl material_1"]
        lines += ["f %d/%d %d/%d %d/%d" % (a + 1, 3 * i + 1, b + 1, 3 * i + 2, c + 1, 3 * i + 3)
                  for i, (a, b, c) in enumerate(f)] + [""]
    else:
        lines += ["f %d %d %d" % (a + 1, b + 1, c + 1) for a, b, c in f]
    with open(filename, "w") as fh:
        fh.write("\n".join(lines) + "\n")
