"""Bad and unusual photos for `lasor-predict --image` (issue 23): each bad file gives a one-line reason,
unusual encodings (grey-scale, 16-bit, CMYK, alpha, EXIF-rotated) are read as the upright RGB photo, and
a folder run goes on past bad files and lists them."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from lasor_trainer.cli import predict_main
from photo_testing import ANNOTATION, PHOTO, needs_detector



def _bad_files(d):
    """name → (writer, expected words in the one-line error)."""
    jpeg = open(PHOTO, "rb").read()
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (d / "notes.png").write_bytes(b"this is not a picture at all")
    Image.new("1", (10_000, 6_000)).save(d / "bomb.png")  # 60 megapixels in a few kilobytes
    Image.fromarray(np.full((200, 300, 3), 200, np.uint8)).save(d / "snow.png")
    Image.fromarray(np.zeros((10, 300, 3), np.uint8)).save(d / "sliver.png")
    return {"empty.jpg": "the file is empty", "truncated.jpg": "truncated", "notes.png": "not a readable image",
            "bomb.png": "over the limit of 50 megapixels", "snow.png": "no person found", "sliver.png": "too small"}


def test_bad_files_give_one_line_reasons(tmp_path):
    """read_image refuses each bad file with a PhotoError naming the file and the reason (the pixel limit
    is checked before any pixel is decoded: the 60-megapixel PNG is refused without decoding it)."""
    from lasor_trainer.photo import PhotoError, read_image

    expected = _bad_files(tmp_path)
    for name, words in expected.items():
        if name == "snow.png":
            continue  # readable; found empty by the detector (below)
        with pytest.raises(PhotoError) as e:
            read_image(str(tmp_path / name))
        msg = str(e.value)
        assert name in msg and words in msg and "\n" not in msg, msg


def _iou_with_annotation(rgb):
    from lasor_trainer.photo import Detector, coco_annotation

    mask, _, _ = coco_annotation(ANNOTATION, *rgb.shape[:2])
    with Detector() as d:
        people = d.people(rgb)
    return max(((p.mask & mask).sum() / (p.mask | mask).sum() for p in people), default=0.0)


@needs_detector
def test_unusual_encodings_read_as_the_upright_photo(tmp_path):
    """Grey-scale, 16-bit grey, CMYK, RGBA and EXIF-rotated (orientation 6 and 8) files come out as 8-bit
    RGB of the upright photo's size; the skier is found in each with mask IoU ≥ 0.7 against the annotation
    of the upright photo (so EXIF rotation is honoured, not just tolerated)."""
    from lasor_trainer.photo import read_image

    img = Image.open(PHOTO).convert("RGB")
    ref = np.asarray(img).astype(int)
    files = {}
    img.convert("L").save(tmp_path / "grey.png")
    files["grey.png"] = 12
    Image.fromarray((np.asarray(img.convert("L")).astype(np.uint16) * 257)).save(tmp_path / "grey16.png")
    files["grey16.png"] = 12
    img.convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    files["cmyk.jpg"] = 8
    img.convert("RGBA").save(tmp_path / "rgba.png")
    files["rgba.png"] = 1
    for tag, turn in ((6, Image.ROTATE_90), (8, Image.ROTATE_270)):  # stored turned, tagged to be shown upright
        exif = Image.Exif()
        exif[0x0112] = tag
        img.transpose(turn).save(tmp_path / f"exif{tag}.jpg", exif=exif, quality=95)
        files[f"exif{tag}.jpg"] = 8
    for name, tol in files.items():
        rgb = read_image(str(tmp_path / name))
        assert rgb.dtype == np.uint8 and rgb.shape == ref.shape, name
        grey_ref = ref.mean(-1, keepdims=True) if name.startswith("grey") else ref
        assert np.abs(rgb.astype(int) - grey_ref).mean() < tol, name
        assert _iou_with_annotation(rgb) >= 0.7, name


@needs_detector
def test_folder_run_goes_on_past_bad_files(tiny_checkpoint, tmp_path, monkeypatch):
    """A folder with two good photos (one with two people) and every kind of bad file: exit 0, a progress
    bar, one folder per good photo, a contact sheet, summary.json with the people found per photo and each
    bad file with its one-line reason, and a closing summary line naming the failed files. The models are
    loaded once for the whole folder (BlazePose's graphs, the checkpoint: counted, not replaced)."""
    from lasor_trainer import predict
    from lasor_trainer.photo import blazepose

    loads = {"blazepose": 0, "checkpoint": 0}

    def counting(name, fn):
        def wrapped(*a, **k):
            loads[name] += 1
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(predict, "_LOADED", {})
    monkeypatch.setattr(predict, "load_checkpoint", counting("checkpoint", predict.load_checkpoint))
    monkeypatch.setattr(blazepose.BlazePose, "__init__", counting("blazepose", blazepose.BlazePose.__init__))
    photos = tmp_path / "photos"
    photos.mkdir()
    expected = _bad_files(photos)
    Image.open(PHOTO).save(photos / "skier.png")
    rgb = np.asarray(Image.open(PHOTO).convert("RGB"))
    Image.fromarray(np.concatenate([rgb, rgb[:, ::-1]], 1)).save(photos / "pair.jpg", quality=92)
    out = tmp_path / "pred"
    r = CliRunner().invoke(predict_main, ["--checkpoint", tiny_checkpoint, "--image", str(photos), "--out", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == len(expected) + 2
    assert {os.path.basename(d["image"]): d["people"] for d in summary["done"]} == {"skier.png": 1, "pair.jpg": 2}
    errors = {os.path.basename(f["image"]): f["error"] for f in summary["failed"]}
    assert set(errors) == set(expected)
    for name, words in expected.items():
        assert words in errors[name] and "\n" not in errors[name], errors[name]
    assert (out / "pair" / "person_1" / "mesh.obj").exists() and not (out / "snow").exists()
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size[0] >= 2 * 200 and np.asarray(sheet.convert("L")).std() > 10
    assert "photos:" in r.output  # the progress bar (stderr)
    assert "3 people in 2" in r.output and "failed: " in r.output and "bomb.png" in r.output
    assert loads == {"blazepose": 1, "checkpoint": 1}
