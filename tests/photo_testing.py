"""The real photograph of the photo tests (COCO val 785, tests/data/real/README.md) and the marker for
tests that need the [photo] extra's detector (test-only code, importable from tests/)."""

import importlib.util
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTO = os.path.join(HERE, "data", "real", "coco_000000000785.jpg")
ANNOTATION = os.path.join(HERE, "data", "real", "coco_000000000785.json")

# CI installs the extra (make test): there a missing detector is a failure, not a skip
needs_detector = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None and os.environ.get("CI") != "true",
                                    reason="the [photo] extra is not installed: pip install 'lasor[photo]'")
