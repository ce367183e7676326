"""Offscreen GL selection: EGL first, OSMesa as the fallback, a clear error when neither works."""

import pytest

from lasor_datagen.gl import select_gl_platform
from lasor_shared.errors import LasorError

pytestmark = pytest.mark.gl


@pytest.mark.parametrize("platform", ["egl", "osmesa"])
def test_named_platform_is_probed_and_kept(monkeypatch, platform):
    monkeypatch.setenv("PYOPENGL_PLATFORM", platform)
    assert select_gl_platform() == platform


def test_unusable_platform_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv("PYOPENGL_PLATFORM", "no-such-platform")
    with pytest.raises(LasorError) as e:
        select_gl_platform()
    assert "no offscreen OpenGL backend" in str(e.value) and "\n" not in str(e.value)
