"""Offscreen label rendering with pyrender: two passes per sample, persistent GPU buffers.

One `SceneRenderer` per worker process holds one pyrender scene whose meshes never change
topology: the target body (whole, and split into its 24 skinning parts), `max_persons` other bodies
and, per object slot, one mesh per primitive kind. A sample only rewrites vertex buffers in place
(glBufferSubData) and the camera; nothing is re-uploaded or re-triangulated.

Passes (both SEG: flat label colours, multisampling off, so every pixel is decided at its centre
and label images are exact):
1. target alone, 24 part nodes → part labels (1 + SMPL joint index) and the target's own depth;
2. full scene → labels: 1 target, 32 + k person k, 64 + k object k, and front-most depth.
"""

from __future__ import annotations

import os

import numpy as np

from lasor_shared.camera import opengl_camera_pose

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
        from OpenGL.GL import GL_ARRAY_BUFFER, glBindBuffer, glBufferSubData

        v = np.ascontiguousarray(vertices, dtype=np.float32)
        assert v.shape == (self.n, 3), (v.shape, self.n)
        glBindBuffer(GL_ARRAY_BUFFER, self.prim._buffers[0])
        glBufferSubData(GL_ARRAY_BUFFER, 0, v.nbytes, v)


class SceneRenderer:
    def __init__(self, image_size, faces, vertex_part, max_persons, max_objects, n_vertices, fast=True):
        import pyrender

        from lasor_datagen.scene import object_faces, unit_mesh

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

    def _seg_pass(self, node_colours):
        """pyrender's SEG forward pass, minus its per-draw overhead (program binding, 4 uniforms and
        state per primitive): bind the segmentation program once, then per mesh set its colour and
        draw. Same shaders, state and framebuffer read-back as pyrender 1.0.1's SEG pass (checked
        pixel for pixel against it in tests/test_datagen_labels.py)."""
        import ctypes

        from OpenGL.GL import (GL_BLEND, GL_COLOR_BUFFER_BIT, GL_CULL_FACE, GL_BACK, GL_DEPTH_BUFFER_BIT,
                               GL_FILL, GL_FRONT_AND_BACK, GL_MULTISAMPLE, GL_ONE, GL_PROGRAM_POINT_SIZE,
                               GL_UNSIGNED_INT, GL_ZERO, glBlendFunc, glClear, glClearColor, glCullFace,
                               glDisable, glDrawElementsInstanced, glEnable, glFlush, glPolygonMode)
        from pyrender.constants import ProgramFlags, RenderFlags

        rr = self.r._renderer
        flags = RenderFlags.SEG | RenderFlags.OFFSCREEN
        rr._configure_forward_pass_viewport(flags)
        glClearColor(0.0, 0.0, 0.0, 1.0)
        glClear(GL_COLOR_BUFFER_BIT | GL_DEPTH_BUFFER_BIT)
        glDisable(GL_MULTISAMPLE)
        V, P = rr._get_camera_matrices(self.scene)
        first = next(iter(node_colours)).mesh.primitives[0]
        program = rr._get_primitive_program(first, flags, ProgramFlags.USE_MATERIAL)
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
        for node, colour in node_colours.items():
            prim = node.mesh.primitives[0]
            program.set_uniform("color", np.asarray(colour, np.float64) / 255.0)
            prim._bind()
            glDrawElementsInstanced(prim.mode, prim.indices.size, GL_UNSIGNED_INT, ctypes.c_void_p(0), 1)
            prim._unbind()
        program._unbind()
        glFlush()
        return rr._read_main_framebuffer(self.scene, flags)

    def render(self, K, R, t, target_vertices, persons=(), objects=()):
        """Label images and depths for one sample.

        persons: list of (V,3) vertex arrays; objects: list of (kind name, (Vk,3) vertices).
        Returns part (H,W) uint8, target depth (H,W) float32, labels (H,W) uint8, depth (H,W) float32.
        """
        self.r._platform.make_current()
        self.camera.fx, self.camera.fy = float(K[0, 0]), float(K[1, 1])
        self.camera.cx, self.camera.cy = float(K[0, 2]), float(K[1, 2])
        self.scene.set_pose(self.cam_node, opengl_camera_pose(R, t))
        self.target.upload(target_vertices)
        for _, vids, mesh in self.parts:
            mesh.upload(target_vertices[vids])
        part_rgb, target_depth = self._pass(self.part_map)
        labels, depth = self.relabel(persons, objects)
        return np.ascontiguousarray(part_rgb[..., 0]), target_depth, labels, depth

    def relabel(self, persons=(), objects=()):
        """Pass 2 alone with other occluders, same camera and target as the last `render` (the target's
        own pass does not depend on them): labels (H,W) uint8, depth (H,W) float32."""
        self.r._platform.make_current()
        full_map = {self.target.node: (TARGET, 0, 0)}
        for k, v in enumerate(persons):
            self.persons[k].upload(v)
            full_map[self.persons[k].node] = (PERSON0 + k, 0, 0)
        for k, (kind, v) in enumerate(objects):
            mesh = self.objects[k][kind]
            mesh.upload(v)
            full_map[mesh.node] = (OBJECT0 + k, 0, 0)
        labels_rgb, depth = self._pass(full_map)
        return np.ascontiguousarray(labels_rgb[..., 0]), depth

    def _pass(self, node_colours):
        if self.fast:
            return self._seg_pass(node_colours)
        import pyrender

        return self.r.render(self.scene, flags=pyrender.RenderFlags.SEG, seg_node_map=node_colours)

    def close(self):
        self.r.delete()


def configure_gl_threads():
    """llvmpipe rasterises with one thread per core by default; workers sharing the cores fight over
    them. LASOR_LP_THREADS (set by the orchestrator for its own workers) caps that per process."""
    n = os.environ.get("LASOR_LP_THREADS")
    if n and "LP_NUM_THREADS" not in os.environ:
        os.environ["LP_NUM_THREADS"] = n
