"""The photo front end on the real test photograph (tests/data/real, COCO val 785): detector vs annotation,
and the body predicted from the detector's inputs vs from the annotated mask + keypoints (JSON + PNG).

    python bench/bench_photo.py --checkpoint RUN/best.pt [--out bench/results/photo.json]

Detector: mask IoU with the annotation polygon; keypoint error over the annotation's visible keypoints
(pixels, % of the person's height = the annotation's bbox height, share within 10 %). Prediction: each
input pair goes through `lasor_trainer.predict.predict`; the predicted body is rendered with the
predicted camera and compared with the annotated mask (IoU), its COCO-17 keypoints projected and
compared with the annotated visible keypoints; and the two predicted meshes are compared directly
(mean vertex distance after removing each mesh's mean, mm). The PNG shows both overlays side by side.
"""

import argparse
import json
import os
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO = os.path.join(HERE, "..", "tests", "data", "real", "coco_000000000785.jpg")
ANNOTATION = os.path.join(HERE, "..", "tests", "data", "real", "coco_000000000785.json")


def _kp_errors(kp, gt, height):
    vis = gt[:, 2] == 2
    err = np.linalg.norm(kp[vis] - gt[vis, :2], axis=1)
    return {"n_visible": int(vis.sum()), "mean_px": float(err.mean()),
            "mean_pct_height": float(100 * err.mean() / height), "within_10pct_height": float((err <= 0.1 * height).mean())}


def _body_vs_annotation(res, gt_mask, gt_kp, height, body):
    from lasor_trainer.photo import _shade

    H, W = gt_mask.shape
    K = np.asarray(res["params"]["camera"]["K"])
    _, cover = _shade(res["vertices"], res["faces"], K, H, W)
    joints = np.asarray(res["params"]["joints3d_camera"])
    coco3d = body.coco_vertex_weights.numpy() @ res["vertices"] + body.coco_joint_weights.numpy() @ joints[:24]
    uv = coco3d[:, :2] / coco3d[:, 2:] @ K[:2, :2].T + K[:2, 2]
    iou = float((cover & gt_mask).sum() / (cover | gt_mask).sum())
    return {"silhouette_iou_vs_annotated_mask": iou, "keypoints_vs_annotation": _kp_errors(uv, gt_kp, height)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", default=None, help="lasor-train checkpoint (default: what lasor-predict uses)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "photo.json"))
    a = ap.parse_args()

    from lasor_shared.body_model import load_body_model
    from lasor_trainer.photo import Detector, _save_inputs, coco_annotation, overlay, read_image
    from lasor_trainer.predict import predict

    rgb = read_image(PHOTO)
    H, W = rgb.shape[:2]
    gt_mask, gt_kp, bbox = coco_annotation(ANNOTATION, H, W)
    height = float(bbox[3])
    with Detector() as det:
        people = det.people(rgb)
    p = people[0]
    out = {"photo": "tests/data/real/coco_000000000785.jpg", "person_height_px": height, "people_found": len(people),
           "detector": {"mask_iou_vs_annotation": float((p.mask & gt_mask).sum() / (p.mask | gt_mask).sum()),
                        "keypoints_vs_annotation": _kp_errors(p.keypoints, gt_kp, height)},
           "checkpoint": a.checkpoint}
    body = load_body_model()
    panels, preds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        d_mask, d_kp = _save_inputs(p, tmp, 0.1)
        a_mask = os.path.join(tmp, "annotated_mask.png")
        Image.fromarray(gt_mask.astype(np.uint8) * 255).save(a_mask)
        a_kp = os.path.join(tmp, "annotated_keypoints.json")
        with open(a_kp, "w") as f:
            json.dump({"keypoints": gt_kp.reshape(-1).tolist()}, f)
        for name, (m, k) in {"detector": (d_mask, d_kp), "annotation": (a_mask, a_kp)}.items():
            res = predict(a.checkpoint, m, k, os.path.join(tmp, name))
            preds[name] = res["vertices"]
            out[f"predicted_from_{name}"] = _body_vs_annotation(res, gt_mask, gt_kp, height, body)
            K = np.asarray(res["params"]["camera"]["K"])
            panels.append(overlay(rgb, [(res["vertices"], res["faces"])], K))
    vd, va = preds["detector"], preds["annotation"]
    out["mesh_distance_detector_vs_annotation_mm"] = float(
        1000 * np.linalg.norm((vd - vd.mean(0)) - (va - va.mean(0)), axis=1).mean())
    out["depth_difference_m"] = float(vd[:, 2].mean() - va[:, 2].mean())
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    Image.fromarray(np.concatenate(panels, 1)).save(os.path.splitext(a.out)[0] + ".jpg", quality=85)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
