"""Keypoint sets in one place: names, left/right flip permutations and skeleton edges.

- SMPL-24: the kinematic joints of SMPL (3D supervision).
- COCO-17: the 2D keypoints an off-the-shelf detector returns (network input).
"""

SMPL24_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
# Parent of each SMPL joint (-1 for the root): SMPL's kintree_table[0].
SMPL24_PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO17_EDGES = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)

# COCO keypoints that coincide with an SMPL joint (used for real SMPL models).
COCO17_FROM_SMPL24 = {
    "left_shoulder": "left_shoulder", "right_shoulder": "right_shoulder",
    "left_elbow": "left_elbow", "right_elbow": "right_elbow",
    "left_wrist": "left_wrist", "right_wrist": "right_wrist",
    "left_hip": "left_hip", "right_hip": "right_hip",
    "left_knee": "left_knee", "right_knee": "right_knee",
    "left_ankle": "left_ankle", "right_ankle": "right_ankle",
}
# Vertex ids of the COCO face keypoints on the official SMPL mesh (6,890 vertices).
SMPL_FACE_VERTEX_IDS = {"nose": 332, "left_eye": 2800, "right_eye": 6260, "left_ear": 583, "right_ear": 4071}


def flip_permutation(names):
    """Index permutation that swaps every left_* keypoint with its right_* twin."""
    index = {n: i for i, n in enumerate(names)}

    def twin(n):
        if n.startswith("left_"):
            return "right_" + n[5:]
        if n.startswith("right_"):
            return "left_" + n[6:]
        return n

    return tuple(index[twin(n)] for n in names)


def skeleton_edges(parents):
    """(child, parent) edges of a kinematic tree given by its parent list."""
    return tuple((i, p) for i, p in enumerate(parents) if p >= 0)


SMPL24_FLIP = flip_permutation(SMPL24_NAMES)
COCO17_FLIP = flip_permutation(COCO17_NAMES)
SMPL24_EDGES = skeleton_edges(SMPL24_PARENTS)

# Keypoint visibility codes (uint8), decided from depth buffers.
VIS_OUTSIDE, VIS_SELF, VIS_PERSON, VIS_OBJECT, VIS_VISIBLE = 0, 1, 2, 3, 4
VISIBILITY_NAMES = ("outside", "self-occluded", "person-occluded", "object-occluded", "visible")
