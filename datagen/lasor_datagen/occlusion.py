"""Occluder placement around one framed target (`OcclusionPlanner`).

Occluders are placed so that the target's hidden share approaches a drawn goal: each occluder
starts on the line of sight (people: standing on the ground between the camera and the target, in
the first of a few drawn poses/headings that can hide the goal, since a crouching, lying or side-on
person often cannot; objects: in front of a random body part, else of the target's centre, standing
on the ground or held), at the drawn gap or,
when that cannot hide the goal, at the gap (within the recipe's range up to the camera) that can,
then slides sideways until a coarse estimate of the covered share (point splats of the meshes on a
64×64 grid over the image) reaches its goal (bisection). Finally it is pushed out of the target
(see `OcclusionPlanner`). The worker renders, measures the exact hidden share and re-places the
occluders (same random draws, corrected goal) when it misses the goal.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.spatial.transform import Rotation

from lasor_shared.camera import project
from lasor_shared.keypoints import SMPL24_NAMES
from lasor_shared.shards import PRISM_SIDES
from lasor_datagen.contact import PENETRATION_TOL, BodyVolume, convex_depth, convex_planes
from lasor_datagen.framing import Camera, fast_project
from lasor_datagen.samplers import bbox, ground_transl, ground_transl_box
from lasor_datagen.scene import KIND_CODES, object_faces, object_surface_points, object_vertices, pack_object_params

COARSE = 64
MAX_PUSHES = 8        # steps pushing an occluder out of the target before it is dropped
PUSH_MARGIN = 0.05    # m: extra clearance per push
NEAR = 0.1            # m: occluders stay this far in front of the camera
MASK_STEP = 2         # every MASK_STEP-th body vertex makes the coarse masks


# ---------------------------------------------------------------- coarse occlusion estimate

def _shifted(mask, dx, dy):
    out = np.zeros_like(mask)
    h, w = mask.shape
    dx, dy = int(round(dx)), int(round(dy))
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = mask[max(-dy, 0):h + min(-dy, 0),
                                                                     max(-dx, 0):w + min(-dx, 0)]
    return out


def _slide(target, union, occ_mask, cells_per_m, goal):
    """Offset (m) along the slide direction whose coverage of `target` (with `union`) is ≈ goal."""
    n = target.sum()
    if n == 0:
        return 0.0

    def cover(s):
        m = union | _shifted(occ_mask, s * cells_per_m[0], s * cells_per_m[1])
        return (target & m).sum() / n

    if cover(0.0) <= goal:
        return 0.0
    lo, hi = 0.0, 0.5
    while cover(hi) > goal and hi < 20:
        lo, hi = hi, hi * 2
    for _ in range(10):
        mid = (lo + hi) / 2
        if cover(mid) > goal:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _gaps(drawn, lo, hi, n=5):
    """Gaps to try: the drawn one first, then `n` spread over [lo, hi]."""
    return [drawn] + list(np.linspace(lo, hi, n))


def _pick(cands, goal):
    """Of (coverage, ...) candidates: the first (the drawn gap) if it reaches the goal, else the one
    reaching it with the least coverage, else the one covering most."""
    ok = [c for c in cands if c[0] >= goal]
    if ok:
        return ok[0] if ok[0] is cands[0] else min(ok, key=lambda c: c[0])
    return max(cands, key=lambda c: c[0])


@njit(cache=True, nogil=True)
def _coarse_mask(x0, b, scale):
    """COARSE² cells hit by points whose homogeneous image coordinates are x0 (N,3) + b (float32;
    in front: z > 0.05). float32 throughout, in the order numpy's expression took (same cells)."""
    G = COARSE
    g, near = np.float32(G), np.float32(0.05)
    m = np.zeros((G, G), np.bool_)
    for i in range(x0.shape[0]):
        z = x0[i, 2] + b[2]
        if not z > near:
            continue
        cx = np.int64((x0[i, 0] + b[0]) / z * scale + g) - G      # floor for uv > -W
        cy = np.int64((x0[i, 1] + b[1]) / z * scale + g) - G
        if 0 <= cx < G and 0 <= cy < G:
            m[cy, cx] = True
    return m


class OcclusionPlanner:
    """Places occluders around one framed target (see the module docstring).

    Every occluder is finally pushed out of the target (front ones towards the camera, background
    people away from it) until neither penetrates the other by more than `PENETRATION_TOL`; one that
    cannot be freed in `MAX_PUSHES` steps, or would reach the camera, is dropped (`drops`).
    """

    def __init__(self, cfg, image_size, cam: Camera, target_vertices, target_joints, faces, body=None, memo=None):
        """`body`: the target's BodyVolume when already built (it is reused across re-placements);
        `memo`: a dict shared by the re-placements of one sample (same camera, target, candidates and
        random draws) that keeps what they would compute again — the target's coarse mask, each
        candidate body's and object's projection and its masks at the offsets tried, object meshes."""
        self.cfg, self.W, self.cam = cfg, image_size, cam
        self.memo = {} if memo is None else memo
        self.cam_pos = -cam.R.T @ cam.t
        self.faces = faces
        self.verts = np.asarray(target_vertices, np.float64)
        self.body = BodyVolume(target_vertices, faces) if body is None else body
        self.target = self._masker(target_vertices[::MASK_STEP], "target")(np.zeros(3))
        self.union = np.zeros_like(self.target)
        lo, hi = bbox(target_vertices)
        self.centre, self.top = (lo + hi) / 2, float(hi[1])
        self.height = float(max(hi[1] - lo[1], 0.6 * (hi - lo).max()))
        self.joints = target_joints
        self.pushes = self.drops = 0

    def _mask(self, points):
        return self._masker(points)(np.zeros(3))

    def _masker(self, points, key=None):
        """offset → coarse mask of `points` + offset; the points' projection is shared by all offsets.
        With a `key` (naming `points` within the sample) the projection and the masks are kept in the
        memo; callers only read the masks."""
        if key is not None:
            if key not in self.memo:
                self.memo[key] = (self._masker(points), {})
            at, masks = self.memo[key]

            def kept(offset):
                k = np.asarray(offset, np.float64).tobytes()
                if k not in masks:
                    masks[k] = at(offset)
                return masks[k]
            return kept
        P = (self.cam.K @ np.concatenate([self.cam.R, self.cam.t[:, None]], 1)).astype(np.float32)
        x0 = np.asarray(points, np.float32) @ P[:, :3].T

        scale = np.float32(COARSE / self.W)

        def at(offset):   # cells of a COARSE² raster over the image hit by the points (no dilation: point
            # sets are dense enough, and dilation would inflate thin limbs)
            return _coarse_mask(x0, P[:, :3] @ np.asarray(offset, np.float32) + P[:, 3], scale)
        return at

    def covered(self) -> float:
        n = self.target.sum()
        return float((self.target & self.union).sum() / n) if n else 0.0

    def _cells_per_m(self, point, direction):
        uv, _ = project(np.stack([point, point + direction]), self.cam.K, self.cam.R, self.cam.t)
        return (uv[1] - uv[0]) * (COARSE / self.W)

    def _horizontal(self, point=None):
        d = (self.centre if point is None else point) - self.cam_pos
        dh = np.array([d[0], 0.0, d[2]])
        norm = np.linalg.norm(dh)
        dh = dh / norm if norm > 1e-6 else np.array([0.0, 0.0, -1.0])
        side = np.cross([0.0, 1.0, 0.0], dh)
        return dh, side / np.linalg.norm(side), float(norm)

    def _separate(self, depth_of, points_at, offset, direction, support=None):
        """`offset` pushed along `direction` until depth_of(offset) <= PENETRATION_TOL; None if impossible.
        `support` (offset → offset) is re-applied after each push (a held object pushed towards a
        camera below it must not sink under the ground)."""
        for _ in range(MAX_PUSHES + 1):
            d = depth_of(offset)
            if d <= PENETRATION_TOL:
                _, z = fast_project(points_at(offset), self.cam.K, self.cam.R, self.cam.t)
                if z.min() > NEAR:
                    return offset
                break
            offset = offset + direction * (d + PUSH_MARGIN)
            if support is not None:
                offset = support(offset)
            self.pushes += 1
        self.drops += 1
        return None

    def _person_depth(self, person):
        """Penetration depth between the target and `person` (a BodyVolume at transl 0, queried with
        shifted points) translated by tr."""
        vertices0, lo0, hi0 = person.v, person.lo, person.hi

        def depth(tr):
            if np.any(lo0 + tr >= self.body.hi) or np.any(hi0 + tr <= self.body.lo):
                return 0.0                         # bounding boxes apart
            return max(self.body.depth(vertices0 + tr), person.depth(self.verts - tr))
        return depth

    def place_person(self, rng, candidates, goal, front=True):
        """(index of the chosen candidate, ground translation) for a person in front of (or behind) the
        target; None when it cannot be placed without passing through the target. `candidates` are the
        person's BodyVolumes (at transl 0) in alternative poses/headings: a front person takes the first
        that can hide `goal` (on the coarse estimate, at one of the gaps tried), else the one hiding
        most; a background person the first."""
        dh, side, dist_h = self._horizontal()
        pc = self.cfg.person
        ground_c = np.array([self.centre[0], 0.0, self.centre[2]])
        sign = 1.0 if rng.uniform() < 0.5 else -1.0
        if not front:
            v0 = candidates[0].v
            q = ground_c + dh * rng.uniform(0.8, 2.0) + side * rng.uniform(-1.2, 1.2)
            tr = self._separate(self._person_depth(candidates[0]), lambda tr: v0[::16] + tr,
                                ground_transl(v0, (q[0], q[2])), dh)
            return None if tr is None else (0, tr)
        max_gap = max(dist_h - 0.9, 0.2)
        drawn = min(rng.uniform(*pc.gap), max_gap)
        best = None
        maskers = []
        for k, person in enumerate(candidates):
            v = person.v
            maskers.append(self._masker(v[::MASK_STEP], ("person", id(person))))
            cands = []
            for gap in _gaps(drawn, min(pc.gap[0], max_gap), max_gap):
                q = ground_c - dh * gap
                tr = ground_transl_box(person.lo, person.hi, (q[0], q[2]))
                mask = maskers[k](tr)
                cands.append((self._cover(mask), tr, mask))
                if cands[0][0] >= goal:
                    break
            pick = _pick(cands, goal)
            if best is None or pick[0] > best[0][0]:
                best = (pick, k)
            if pick[0] >= goal:
                break
        (_, tr, mask), k = best
        v0 = candidates[k].v
        lo0, hi0 = bbox(v0)
        cpm = sign * self._cells_per_m((lo0 + hi0) / 2 + tr, side)
        s = _slide(self.target, self.union, mask, cpm, goal)
        tr = self._separate(self._person_depth(candidates[k]), lambda t: v0[::16] + t, tr + sign * s * side, -dh)
        if tr is None:
            return None
        self.union |= maskers[k](tr)
        return k, tr

    def _cover(self, mask):
        n = self.target.sum()
        return float((self.target & (self.union | mask)).sum() / n) if n else 0.0

    def place_object(self, rng, kind: str, goal):
        """(kind code, 17 parameters) of an object sized by the recipe, standing on the ground or held,
        in front of a random body part; None when it cannot be placed outside the target. A standing
        object that cannot hide its share of the target (short of it by more than 0.05) is held instead,
        and one in front of the body part that cannot is put in front of the target's centre (else: the
        plan hiding most)."""
        oc = self.cfg.object
        ext = rng.uniform(*oc.size, size=3) * self.height
        radii = rng.uniform(0.5, 1.0, PRISM_SIDES)
        held = bool(rng.uniform() < oc.held_prob)
        thin_axis = {True: int(rng.integers(3)), False: 2 * int(rng.integers(2))}   # upright on the ground
        thickness = rng.uniform(0.02, 0.06)
        rotation = {True: Rotation.random(random_state=rng).as_rotvec(),
                    False: np.array([0.0, rng.uniform(0, 2 * np.pi), 0.0])}
        part = self.joints[int(rng.integers(len(SMPL24_NAMES)))]
        gap = rng.uniform(*oc.gap)
        theta = rng.uniform(0, 2 * np.pi)
        if kind == "sphere":
            ext[:] = ext[0]
        elif kind == "cylinder":
            ext[2] = ext[0]
        modes = [True] if held else [False, True]
        best = None
        for aim in (part, self.centre):
            for mode in modes:
                e = ext.copy()
                if kind == "slab":
                    e[thin_axis[mode]] = thickness
                plan = (*self._approach(kind, pack_object_params(np.zeros(3), e, rotation[mode], radii), aim, gap,
                                        theta, mode, goal), mode)
                if best is None or plan[0] > best[0]:
                    best = plan
                if plan[0] >= goal - 0.05:
                    break
            if best[0] >= goal - 0.05:
                break
        _, centre, mask, lift, toward, direction, params0, held = plan if plan[0] >= goal - 0.05 else best
        pts0, verts0, _ = self._object_mesh(kind, params0)
        cpm = self._cells_per_m(centre, direction)
        s = _slide(self.target, self.union, mask, cpm, goal)
        centre = self._support(centre + s * direction, lift, held)
        key = ("planes", kind, params0.tobytes())
        if key not in self.memo:
            self.memo[key] = (*convex_planes(verts0, object_faces(kind)), verts0.min(0), verts0.max(0))
        n, d, lo0, hi0 = self.memo[key]

        def depth(c):
            inside = np.all((self.verts > lo0 + c) & (self.verts < hi0 + c), axis=1)
            return max(convex_depth((n, d + n @ c), self.verts[inside]), self.body.depth(pts0 + c))

        centre = self._separate(depth, lambda c: pts0 + c, centre, toward, lambda c: self._support(c, lift, held))
        if centre is None:
            return None
        self.union |= self._mask(pts0 + centre)
        params0[:3] = centre
        return KIND_CODES[kind], params0

    def _approach(self, kind, params0, part, gap, theta, held, goal):
        """The object (params0: centred at the origin) `gap` in front of a body part, moved towards the
        camera until it can hide `goal`: (coverage, centre, mask, lift, towards camera, slide direction,
        params0)."""
        pts0, verts0, key = self._object_mesh(kind, params0)
        lift = -float(verts0[:, 1].min())       # centre height: lowest point on y = 0
        if held:
            toward = self.cam_pos - part
            dist = np.linalg.norm(toward)
            toward /= dist
            direction = np.cos(theta) * self.cam.R[0] + np.sin(theta) * self.cam.R[1]
            base = part
        else:
            dh, side, dist = self._horizontal(part)
            toward = -dh
            direction = side * (1.0 if np.cos(theta) >= 0 else -1.0)
            base = np.array([part[0], lift, part[2]])
        back = float(np.max(pts0 @ -toward))    # the object's reach from its centre towards the body
        max_gap = max(dist - back - float(np.max(pts0 @ toward)) - NEAR - 0.2, 0.05)
        oc_gap0 = self.cfg.object.gap[0]        # gaps: from the body part to the object's back
        cands = []
        mask_at = self._masker(pts0, ("mask", *key))
        for g in _gaps(min(gap + back, max_gap), min(oc_gap0 + back, max_gap), max_gap):
            centre = self._support(base + toward * g, lift, held)
            mask = mask_at(centre)
            cands.append((self._cover(mask), centre, mask))
            if cands[0][0] >= goal:
                break
        best = _pick(cands, goal)
        return (*best, lift, toward, direction, params0)

    def _object_mesh(self, kind, params0):
        """Surface points and vertices (float64) of an object centred at the origin, and its memo key."""
        key = ("object", kind, params0.tobytes())
        if key not in self.memo:
            self.memo[key] = (object_surface_points(kind, params0),
                              object_vertices(kind, params0).astype(np.float64))
        return (*self.memo[key], key)

    def _support(self, centre, lift, held):
        """Grounded objects stand on y = 0; held ones keep their lowest point above it and their
        centre at most 0.3 m above the target's top."""
        c = np.array(centre, np.float64)
        c[1] = min(max(c[1], lift), max(self.top + 0.3, lift)) if held else lift
        return c
