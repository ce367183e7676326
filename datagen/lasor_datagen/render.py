"""Offscreen label rendering with pyrender: two passes per sample, persistent GPU buffers.

One `SceneRenderer` per worker process holds one pyrender scene whose meshes never change
topology: the target body (whole, and split into its 24 skinning parts), `max_persons` other bodies
and, per object slot, one mesh per primitive kind. A sample only rewrites vertex buffers in place
(glBufferSubData) and the camera; nothing is re-uploaded or re-triangulated.

Passes (both SEG: flat label colours, multisampling off, so every pixel is decided at its centre
and label images are exact):
1. target alone, 24 part nodes → part labels (1 + SMPL joint index) and the target's own depth;
2. occluders alone (persons 32 + k, objects 64 + k), composited with pass 1 by depth: the label is an
   occluder's where it is strictly nearer than the target, else the target's (1) — exactly what one
   pass over the full scene gives (the target drawn first wins depth ties under GL_LESS, and a
   triangle's fragments and depths do not depend on what else is drawn), without re-drawing the
   target's 27k triangles. Re-placing occluders (`relabel`) redoes pass 2 only.
Fast passes draw into pyrender's single-sample framebuffer and read it back directly (its 4× MSAA
buffer and resolve blit are of no use with multisampling off). `fast=False` renders the full scene
with pyrender's own SEG pass instead — the reference the tests compare against pixel for pixel.

pyrender and OpenGL are imported inside the methods: the GL platform (PYOPENGL_PLATFORM) must be
chosen before either is first imported.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from lasor_shared.camera import opengl_camera_pose
from lasor_datagen.scene import object_faces, unit_mesh
from lasor_datagen.timers import stage

TARGET, PERSON0, OBJECT0 = 1, 32, 64
KINDS = ("box", "cylinder", "sphere", "slab", "prism")


class _DynamicMesh:
    """A positions-only pyrender mesh whose vertex buffer is overwritten in place."""

    def __init__(self, scene, n_vertices, faces):
        import pyrender

        self.n = n_vertices
        prim = pyrender.Primitive(positions=np.zeros((n_vertices, 3), np.float32),
                                  indices=np.asarray(faces, np.uint32), mode=4)
        self.prim = prim
        self.mesh = pyrender.Mesh([prim])
        self.node = scene.add(self.mesh)

    def upload(self, vertices):
        from OpenGL.raw.GL.VERSION.GL_1_5 import GL_ARRAY_BUFFER, glBindBuffer, glBufferSubData

        v = np.ascontiguousarray(vertices, dtype=np.float32)
        assert v.shape == (self.n, 3), (v.shape, self.n)
        glBindBuffer(GL_ARRAY_BUFFER, self.prim._buffers[0])
        glBufferSubData(GL_ARRAY_BUFFER, 0, v.nbytes, ctypes.c_void_p(v.ctypes.data))


class SceneRenderer:
    def __init__(self, image_size, faces, vertex_part, max_persons, max_objects, n_vertices, fast=True):
        import pyrender

        self.size = image_size
        self.r = pyrender.OffscreenRenderer(image_size, image_size)
        self.scene = pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 1.0))
        self.camera = pyrender.IntrinsicsCamera(1.0, 1.0, image_size / 2, image_size / 2, znear=0.05, zfar=200.0)
        self.cam_node = self.scene.add(self.camera, pose=np.eye(4))
        faces = np.asarray(faces, np.int64)
        self.target = _DynamicMesh(self.scene, n_vertices, faces)
        # parts: each face belongs to the part most of its vertices are skinned to
        fp = np.asarray(vertex_part)[faces]
        face_part = np.where(fp[:, 1] == fp[:, 2], fp[:, 1], fp[:, 0])
        self.parts = []
        for j in range(24):
            fj = faces[face_part == j]
            if len(fj) == 0:
                continue
            vids, inverse = np.unique(fj, return_inverse=True)
            self.parts.append((j, vids, _DynamicMesh(self.scene, len(vids), inverse.reshape(-1, 3))))
        self.persons = [_DynamicMesh(self.scene, n_vertices, faces) for _ in range(max_persons)]
        self.objects = []
        for _ in range(max_objects):
            slot = {}
            for kind in KINDS:
                v, f = unit_mesh(kind)
                slot[kind] = _DynamicMesh(self.scene, len(v), object_faces(kind))
            self.objects.append(slot)
        self.part_map = {m.node: (j + 1, 0, 0) for j, _, m in self.parts}
        # first render uploads every buffer; later samples only overwrite them
        self.r.render(self.scene, flags=pyrender.RenderFlags.SEG, seg_node_map={})
        self.fast = fast
        self._locations = {}

    def _seg_pass(self, node_colours):
        """pyrender's SEG forward pass, minus its per-draw overhead (program binding, 4 uniforms and
        state per primitive) and its multisample buffer: bind the segmentation program once, then per
        mesh set its colour and draw. → (labels (H,W) uint8 = the colours' red, window depth (H,W)
        float32 with 1 where nothing was drawn)."""
        from OpenGL.GL import (GL_BACK, GL_BLEND, GL_COLOR_BUFFER_BIT, GL_CULL_FACE, GL_DEPTH_BUFFER_BIT,
                               GL_DEPTH_COMPONENT, GL_DEPTH_TEST, GL_FILL, GL_FLOAT, GL_FRAMEBUFFER,
                               GL_FRONT_AND_BACK, GL_LESS, GL_MULTISAMPLE, GL_ONE, GL_PACK_ALIGNMENT,
                               GL_PROGRAM_POINT_SIZE, GL_RED, GL_TRUE, GL_UNSIGNED_BYTE, GL_UNSIGNED_INT, GL_ZERO,
                               glBindFramebuffer, glBlendFunc, glClear, glClearColor, glCullFace, glDepthFunc,
                               glDepthMask, glDepthRange, glDisable, glEnable, glFlush, glPixelStorei, glPolygonMode,
                               glViewport)
        from OpenGL.raw.GL.VERSION.GL_1_0 import glReadPixels
        from OpenGL.raw.GL.VERSION.GL_2_0 import glUniform3f
        from OpenGL.raw.GL.VERSION.GL_3_0 import glBindVertexArray
        from OpenGL.raw.GL.VERSION.GL_3_1 import glDrawElementsInstanced
        from pyrender.constants import ProgramFlags, RenderFlags

        rr = self.r._renderer
        rr._configure_main_framebuffer()                  # pyrender's buffers, made on first use
        glBindFramebuffer(GL_FRAMEBUFFER, rr._main_fb)    # its single-sample one
        W, H = rr._main_fb_dims
        glViewport(0, 0, W, H)
        glEnable(GL_DEPTH_TEST)
        glDepthMask(GL_TRUE)
        glDepthFunc(GL_LESS)
        glDepthRange(0.0, 1.0)
        glClearColor(0.0, 0.0, 0.0, 1.0)
        glClear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT)
        glDisable(GL_MULTISAMPLE)
        V, P = rr._get_camera_matrices(self.scene)
        first = next(iter(node_colours)).mesh.primitives[0]
        program = rr._get_primitive_program(first, RenderFlags.SEG | RenderFlags.OFFSCREEN, ProgramFlags.USE_MATERIAL)
        program._bind()
        program.set_uniform("V", V)
        program.set_uniform("P", P)
        program.set_uniform("M", np.eye(4))
        glEnable(GL_CULL_FACE)
        glEnable(GL_BLEND)
        glCullFace(GL_BACK)
        glBlendFunc(GL_ONE, GL_ZERO)
        glPolygonMode(GL_FRONT_AND_BACK, GL_FILL)
        glDisable(GL_PROGRAM_POINT_SIZE)
        colour_at = self._uniform_location(program, "color")
        for node, colour in node_colours.items():    # raw GL: one call each, no per-call array handling
            prim = node.mesh.primitives[0]
            glUniform3f(colour_at, *(np.asarray(colour, np.float64) / 255.0).astype(np.float32).tolist())
            glBindVertexArray(prim._vaid)
            glDrawElementsInstanced(prim.mode, prim.indices.size, GL_UNSIGNED_INT, None, 1)
        glBindVertexArray(0)
        program._unbind()
        glFlush()
        glPixelStorei(GL_PACK_ALIGNMENT, 1)
        depth = np.empty((H, W), np.float32)
        labels = np.empty((H, W), np.uint8)
        glReadPixels(0, 0, W, H, GL_DEPTH_COMPONENT, GL_FLOAT, ctypes.c_void_p(depth.ctypes.data))
        glReadPixels(0, 0, W, H, GL_RED, GL_UNSIGNED_BYTE, ctypes.c_void_p(labels.ctypes.data))
        return labels[::-1].copy(), depth[::-1].copy()      # OpenGL's rows run bottom-up

    def _uniform_location(self, program, name):
        key = (program._program_id, name)
        if key not in self._locations:
            from OpenGL.GL import glGetUniformLocation

            self._locations[key] = glGetUniformLocation(program._program_id, name)
        return self._locations[key]

    def _metric_depth(self, window):
        """Window depth → metres along the optical axis (0 where nothing), as pyrender computes it."""
        zn, zf = self.camera.znear, self.camera.zfar
        empty = window == 1.0
        d = 2.0 * window - 1.0
        hit = np.logical_not(empty)
        d[hit] = (2.0 * zn * zf) / (zf + zn - d[hit] * (zf - zn))
        d[empty] = 0.0
        return d

    def render(self, K, R, t, target_vertices, persons=(), objects=()):
        """Label images and depths for one sample.

        persons: list of (V,3) vertex arrays; objects: list of (kind name, (Vk,3) vertices).
        Returns part (H,W) uint8, target depth (H,W) float32, labels (H,W) uint8, depth (H,W) float32.
        """
        with stage("render"):
            self.r._platform.make_current()
            self.camera.fx, self.camera.fy = float(K[0, 0]), float(K[1, 1])
            self.camera.cx, self.camera.cy = float(K[0, 2]), float(K[1, 2])
            self.scene.set_pose(self.cam_node, opengl_camera_pose(R, t))
            for _, vids, mesh in self.parts:
                mesh.upload(target_vertices[vids])
            if self.fast:
                self._part, self._window = self._seg_pass(self.part_map)
                target_depth = self._metric_depth(self._window.copy())
            else:
                import pyrender

                self.target.upload(target_vertices)
                rgb, target_depth = self.r.render(self.scene, flags=pyrender.RenderFlags.SEG,
                                                  seg_node_map=self.part_map)
                self._part = np.ascontiguousarray(rgb[..., 0])
            labels, depth = self.relabel(persons, objects)
            return self._part.copy(), target_depth, labels, depth

    def relabel(self, persons=(), objects=()):
        """Pass 2 alone with other occluders, same camera and target as the last `render` (the target's
        own pass does not depend on them): labels (H,W) uint8, depth (H,W) float32."""
        with stage("render"):
            self.r._platform.make_current()
            occluders = {}
            for k, v in enumerate(persons):
                self.persons[k].upload(v)
                occluders[self.persons[k].node] = (PERSON0 + k, 0, 0)
            for k, (kind, v) in enumerate(objects):
                mesh = self.objects[k][kind]
                mesh.upload(v)
                occluders[mesh.node] = (OBJECT0 + k, 0, 0)
            if not self.fast:
                import pyrender

                rgb, depth = self.r.render(self.scene, flags=pyrender.RenderFlags.SEG,
                                           seg_node_map={self.target.node: (TARGET, 0, 0), **occluders})
                return np.ascontiguousarray(rgb[..., 0]), depth
            labels = np.where(self._part > 0, TARGET, 0).astype(np.uint8)
            window = self._window.copy()
            if occluders:
                occ_labels, occ_window = self._seg_pass(occluders)
                front = occ_window < window                     # strictly nearer: the target wins ties
                labels[front] = occ_labels[front]
                window[front] = occ_window[front]
            return labels, self._metric_depth(window)

    def close(self):
        self.r.delete()


def configure_gl_threads():
    """llvmpipe rasterises with one thread per core by default; workers sharing the cores fight over
    them. LASOR_LP_THREADS (set by the orchestrator for its own workers) caps that per process."""
    n = os.environ.get("LASOR_LP_THREADS")
    if n and "LP_NUM_THREADS" not in os.environ:
        os.environ["LP_NUM_THREADS"] = n
