"""Scene plausibility: penetration tests, self-contact, and an independent audit of a generated dataset."""

import numpy as np
import pytest
import trimesh
import yaml

from lasor_datagen.audit import audit_dataset, inside_mesh, penetration
from lasor_datagen.contact import BodyVolume, convex_depth, convex_planes


def test_inside_mesh_matches_analytic_shapes():
    rng = np.random.default_rng(0)
    p = rng.uniform(-0.6, 0.6, (5000, 3))
    m = trimesh.creation.icosphere(3, 0.5)
    r = np.linalg.norm(p, axis=1)
    far = np.abs(r - 0.5) > 0.01                   # the icosphere's facets lie within 1 cm of the sphere
    assert np.array_equal(inside_mesh(p, m.vertices, m.faces)[far], (r < 0.5)[far])
    b = trimesh.creation.box([0.3, 0.5, 0.7])
    assert np.array_equal(inside_mesh(p, b.vertices, b.faces), np.all(np.abs(p) < [0.15, 0.25, 0.35], axis=1))


def test_penetration_depths_agree_with_geometry():
    b = trimesh.creation.box([1.0, 1.0, 1.0])
    planes = convex_planes(b.vertices, b.faces)
    pts = np.array([[0.0, 0.0, 0.45], [2.0, 0.0, 0.0]])
    assert convex_depth(planes, pts) == pytest.approx(0.05)
    assert convex_depth(planes, pts[1:]) == 0.0
    assert penetration(pts, b.vertices, b.faces) == pytest.approx(0.05)
    s = trimesh.creation.icosphere(4, 0.5)
    vol = BodyVolume(s.vertices, s.faces)
    assert vol.depth(np.array([[0.0, 0.0, 0.3]])) == pytest.approx(0.2, abs=0.005)
    assert vol.depth(np.array([[0.0, 0.0, 0.6], [0.0, 0.7, 0.0]])) == 0.0


def test_self_contact_rejects_crossed_legs():
    from lasor_shared.body_model import load_body_model
    from lasor_datagen.contact import SelfContact

    m = load_body_model(None)
    sc = SelfContact((m.J_regressor @ m.v_template).numpy(), m.parents.numpy(), m.v_template.numpy(),
                     m.lbs_weights.argmax(1).numpy())
    rest = np.zeros(72)
    assert sc.ok(rest)
    crossed = rest.copy()
    crossed[1 * 3 + 2] = -0.65                      # left leg swung through the right one (same plane)
    J = sc.posed_joints(crossed)
    assert J[7, 0] < J[8, 0]                        # the left ankle ends up right of the right ankle
    assert not sc.ok(crossed)


@pytest.fixture(scope="module")
def scene_dataset(tmp_path_factory):
    from lasor_datagen.orchestrate import generate

    tmp = tmp_path_factory.mktemp("scenes")
    recipe = {"name": "scenes", "seed": 3, "shards": 2, "samples_per_shard": 8, "image_size": 64,
              "occlusion": {"unoccluded_share": 0.0, "type_weights": {"person": 1, "object": 1, "both": 1},
                            "person": {"max_count": 1, "background_prob": 0.5}, "object": {"max_count": 2}}}
    path = tmp / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    generate(str(path), str(tmp / "d"), workers=1, overwrite=True, progress=False, log=lambda *a: None)
    return str(tmp / "d")


def test_generated_scenes_pass_the_independent_audit(scene_dataset):
    a = audit_dataset(scene_dataset)
    assert a["samples"] == 16 and a["occluders"] >= 16 and a["objects"] >= 6
    assert a["penetrating"] == 0 and a["max_penetration_m"] <= 0.01, a
    assert a["off_ground"] == 0, a
    assert a["objects_out_of_size"] == 0, a


def test_occluders_hide_the_share_the_recipe_asks(tmp_path):
    """Occluding people and objects each hide what the recipe asks: the hidden share of front-occluded
    samples at the 10th/50th/90th percentiles is within 0.06 of the target (uniform over
    `occluded_fraction`), for people (who crouch, lie or stand side-on too) and for objects alike."""
    from lasor_datagen.orchestrate import generate
    from lasor_datagen.stats import front_occluded, load_fields, occluded_fraction

    recipe = {"name": "occ", "seed": 11, "shards": 1, "samples_per_shard": 96, "image_size": 64,
              "occlusion": {"unoccluded_share": 0.0, "occluded_fraction": [0.2, 0.7],
                            "type_weights": {"person": 1, "object": 1},
                            "person": {"max_count": 1, "background_prob": 0.0}, "object": {"max_count": 1}}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    generate(str(path), str(tmp_path / "d"), workers=1, overwrite=True, progress=False, log=lambda *a: None)
    data, manifest = load_fields(str(tmp_path / "d"), ("visible_fraction", "person_role", "n_object_occluders"))
    target = manifest["recipe"]["occlusion"]["occluded_fraction"]
    occ = occluded_fraction(data, target)
    assert occ["n"] >= 90 and occ["target"] == [0.25, 0.45, 0.65], occ
    assert np.abs(np.subtract(occ["achieved"], occ["target"])).max() <= 0.06, occ
    by_person = (data["person_role"] == 1).sum(1) > 0
    for name, keep in (("person", by_person), ("object", ~by_person)):
        sub = occluded_fraction({k: v[keep] for k, v in data.items()}, target)
        assert sub["n"] >= 35, (name, sub)
        assert np.abs(np.subtract(sub["achieved"], sub["target"])).max() <= 0.08, (name, sub)
    assert front_occluded(data).all()


def test_held_objects_pushed_towards_a_low_camera_stay_above_the_ground():
    """A held object pushed out of the target towards a camera below it must not sink under y = 0."""
    import torch

    from lasor_shared.body_model import load_body_model
    from lasor_datagen.recipe import parse_recipe
    from lasor_datagen.framing import frame_camera
    from lasor_datagen.occlusion import OcclusionPlanner
    from lasor_datagen.samplers import ground_transl
    from lasor_datagen.scene import object_vertices

    m = load_body_model(None)
    with torch.no_grad():
        out = m.pose(torch.zeros(1, 72), torch.zeros(1, 10))
    v, j = out.vertices[0].numpy(), out.joints[0].numpy()
    tr = ground_transl(v)
    v, j = v + tr, j + tr
    recipe = parse_recipe({"name": "t", "camera": {"elevation_deg": [-30, -25], "distance": [2.5, 2.6]},
                           "occlusion": {"object": {"held_prob": 1.0, "size": [0.15, 0.5], "gap": [0.05, 0.3]}}})
    lowest, pushed = [], 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        cam = frame_camera(rng, recipe.camera, 128, rng.uniform(0, 2 * np.pi), v)
        planner = OcclusionPlanner(recipe.occlusion, 128, cam, v, j, np.asarray(m.faces, np.int64))
        placed = planner.place_object(rng, "box", rng.uniform(0.1, 0.7))
        pushed += planner.pushes
        if placed is not None:
            lowest.append(object_vertices("box", placed[1])[:, 1].min())
    assert pushed > 20 and len(lowest) > 90      # pushes towards the camera happened (downwards)
    assert min(lowest) >= -1e-5


def test_lazy_vertex_normals_equal_the_whole_mesh_ones():
    from lasor_datagen.contact import vertex_normals

    s = trimesh.creation.icosphere(3, 0.5)
    vol = BodyVolume(s.vertices, np.asarray(s.faces))
    idx = np.random.default_rng(0).integers(0, len(s.vertices), 200)
    assert np.allclose(vol._normals_at(idx), vertex_normals(np.asarray(s.vertices), np.asarray(s.faces))[idx],
                       atol=1e-12)
