"""The authored key-pose library: SMPL poses built from per-joint angles in degrees, by activity group.

Conventions (lasor's body frame: y up, the body faces +z, its left is +x). Every helper takes the
angles for the LEFT side and mirrors them for the right (`side=None`: both sides, 'l' or 'r': one):
  hip(flex, abd, twist)  flex > 0 swings the thigh forward, abd > 0 out to the side, twist > 0 turns
                         the knee outward
  knee(flex)             flex > 0 bends the knee          ankle(flex)  > 0 toes up, < 0 toes pointed
  shoulder(down, fwd, twist)
                         down = 0: arm straight out to the side (T-pose), 90: along the body, < 0:
                         raised; fwd > 0 swings the arm forward (fwd 90 with down 90: pointing
                         forward), twist > 0 turns the forearm's bending plane inward
  elbow(flex)            flex > 0 bends the elbow (forearm forward when the arm hangs)
  spine(bend, twist, side)  bend > 0 forward, spread over the three spine joints
  head(nod, turn, tilt)  nod > 0 looks down, spread over neck and head
  orient(('x', a), ...)  the root's elementary rotations (degrees) applied in order
The groups are blending classes: the sampler slerps two poses of one group, so every pose of a group
shares the group's root orientation family (upright, lying on the back, …) and blends stay plausible.
Lying, kneeling and seated bodies are put on the ground by their lowest vertex (samplers.ground_transl).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from lasor_shared.keypoints import SMPL24_NAMES

J = {n: i for i, n in enumerate(SMPL24_NAMES)}
_SIDES = {"l": ("left",), "r": ("right",), None: ("left", "right")}


def rotvec(*ops) -> np.ndarray:
    """Axis-angle of elementary rotations (axis, degrees) applied in order: the first op first."""
    R = Rotation.identity()
    for axis, deg in ops:
        R = Rotation.from_rotvec(np.deg2rad(deg) * np.eye(3)["xyz".index(axis)]) * R
    return R.as_rotvec()


class P:
    """Chainable pose builder; angles in degrees, given for the left side (mirrored for the right)."""

    def __init__(self, base: "P | None" = None):
        self.p = base.p.copy() if base is not None else np.zeros((24, 3))
        if base is None:
            self.arms()

    def _limb(self, joint, aa, side):
        for s in _SIDES[side]:
            self.p[J[f"{s}_{joint}"]] = aa if s == "left" else aa * [1, -1, -1]
        return self

    def hip(self, flex=0.0, abd=0.0, twist=0.0, side=None):
        return self._limb("hip", rotvec(("y", twist), ("z", abd), ("x", -flex)), side)

    def knee(self, flex, side=None):
        return self._limb("knee", rotvec(("x", flex)), side)

    def ankle(self, flex, side=None):
        return self._limb("ankle", rotvec(("x", flex)), side)

    def collar(self, up=0.0, fwd=0.0, side=None):
        return self._limb("collar", rotvec(("z", up), ("y", -fwd)), side)

    def shoulder(self, down=75.0, fwd=0.0, twist=0.0, side=None):
        return self._limb("shoulder", rotvec(("x", twist), ("z", -down), ("x", -fwd)), side)

    def elbow(self, flex, side=None):
        return self._limb("elbow", rotvec(("y", -flex)), side)

    def wrist(self, flex=0.0, dev=0.0, side=None):
        return self._limb("wrist", rotvec(("z", flex), ("y", dev)), side)

    def spine(self, bend=0.0, twist=0.0, side=0.0):
        for j in ("spine1", "spine2", "spine3"):
            self.p[J[j]] = rotvec(("y", twist / 3), ("z", side / 3), ("x", bend / 3))
        return self

    def head(self, nod=0.0, turn=0.0, tilt=0.0):
        for j in ("neck", "head"):
            self.p[J[j]] = rotvec(("y", turn / 2), ("z", tilt / 2), ("x", nod / 2))
        return self

    def orient(self, *ops):
        self.p[0] = rotvec(*ops)
        return self

    def lean(self, deg):
        """Pitch the pelvis forward by deg while the thighs keep their direction (call after the hips).

        The hip angles given before are then the thighs' angles to the upright body axis, and the
        trunk leans over the feet as in a real squat or stoop."""
        R = Rotation.from_rotvec(rotvec(("x", deg)))
        self.p[0] = (Rotation.from_rotvec(self.p[0]) * R).as_rotvec()
        for h in ("left_hip", "right_hip"):
            self.p[J[h]] = (R.inv() * Rotation.from_rotvec(self.p[J[h]])).as_rotvec()
        return self

    # ---- common limb configurations
    def arm(self, down=75.0, fwd=0.0, elbow=10.0, twist=0.0, side=None):
        return self.shoulder(down, fwd, twist, side).elbow(elbow, side)

    def arms(self, elbow=10.0):
        """Arms hanging relaxed at the sides."""
        return self.arm(75, 0, elbow)

    def hands_on_hips(self, side=None):
        return self.arm(50, -20, 100, side=side)

    def arms_up(self, spread=15.0, elbow=10.0, side=None):
        return self.arm(-90 + spread, 0, elbow, side=side)

    def arms_forward(self, height=0.0, elbow=10.0, side=None):
        """Arms pointing forward; height > 0 raises them above the horizontal."""
        return self.arm(85, 90 + height, elbow, side=side)

    def carry(self):
        """Both forearms forward at waist height holding something (a box, a tray)."""
        return self.arm(80, 25, 95)

    def guard(self, side=None):
        """Boxing guard: fists in front of the chin."""
        return self.arm(65, 35, 130, 10, side)

    def phone_ear(self, side="r"):
        return self.arm(55, 25, 145, 35, side)

    def texting(self):
        """Both hands in front of the chest holding a phone, looking down at it."""
        return self.arm(75, 25, 110, 20).head(35)

    def typing(self):
        """Forearms forward, hands at desk height in front of the body."""
        return self.arm(80, 30, 80, 10)

    def legs_straight(self, abd=3.0):
        return self.hip(0, abd).knee(3)

    def stance(self, width=10.0, knee=5.0):
        return self.hip(0, width).knee(knee)

    def step(self, lead="l", fwd=25.0, back=15.0, knee_lead=5.0, knee_back=10.0):
        trail = "r" if lead == "l" else "l"
        return self.hip(fwd, side=lead).knee(knee_lead, side=lead).hip(-back, side=trail).knee(knee_back, side=trail)

    def squat(self, depth=1.0, abd=15.0):
        """depth 0: standing, 1: deep squat (heels down, trunk leaning over the feet)."""
        return self.hip(95 * depth, abd).knee(125 * depth).ankle(35 * depth).lean(30 * depth).spine(15 * depth)

    def chair(self, knee=90.0, hip=90.0, abd=6.0):
        """Seated on a chair: thighs horizontal, shins down (the body floats over a seat)."""
        return self.hip(hip, abd).knee(knee)

    def kneel(self, lean=0.0, abd=5.0, side=None):
        """Knee(s) on the ground, toes tucked: the shin rises slightly backward to the tucked toes.

        lean > 0 tilts the thigh forward (the pelvis moves forward of the knee)."""
        return self.hip(lean, abd, side=side).knee(104 + lean, side=side).ankle(0, side=side)

    def out(self):
        return self.p.reshape(72).copy()


def gait(phase: float, run: bool = False) -> P:
    """A walking or running pose at gait phase (degrees; 0: the left leg starts its swing)."""
    b = P()
    for side, ph in (("l", phase), ("r", phase + 180.0)):
        s, c = np.sin(np.deg2rad(ph)), np.cos(np.deg2rad(ph))
        swing = max(0.0, np.cos(np.deg2rad(ph) + 0.3)) ** 2          # knee folds early in the swing
        if run:
            b.hip(20 + 40 * s, side=side).knee(25 + 85 * swing, side=side).ankle(8 * c - 5, side=side)
            b.arm(78, -40 * s, 90 + 10 * s, side=side)
        else:
            b.hip(8 + 22 * s, side=side).knee(5 + 55 * swing, side=side).ankle(5 * c, side=side)
            b.arm(80, -20 * s, 15 + 10 * max(0.0, -s), side=side)
    s = np.sin(np.deg2rad(phase))
    return b.spine(12 if run else 3, -8 * s if run else -4 * s).head(-5 if run else 0)


# ---------------------------------------------------------------- the library, group by group

def _standing(add):
    add("stand", P().legs_straight())
    add("stand_relaxed_weight_shift", P().hip(0, 8, side="l").hip(3, -2, side="r").knee(12, side="r").spine(0, 0, 5).head(0, 0, -5))
    add("stand_hands_on_hips", P().legs_straight(6).hands_on_hips())
    add("stand_arms_wide", P().stance(8).arm(10, 0, 5))
    add("stand_arms_behind", P().legs_straight().arm(70, -30, 30, -20))
    add("stand_hand_on_hip_one", P().hip(0, 6, side="l").hip(2, 2, side="r").knee(10, side="r").hands_on_hips("l"))
    add("stand_look_up", P().legs_straight().head(-40).spine(-8))
    add("stand_look_around", P().legs_straight().head(5, 50).spine(0, 20))
    add("stand_wide_stance", P().stance(18).arm(70, 10, 20))
    add("stand_shrug", P().legs_straight().collar(15).arm(65, 15, 90, -10))
    add("stand_scratch_head", P().legs_straight().arm(-20, 45, 140, 30, side="r").head(10, 0, 10))
    add("stand_wave", P().legs_straight().arm(-20, 10, 80, 0, side="r"))
    add("stand_point", P().legs_straight().arm(85, 85, 0, 0, side="l").head(0, 20))
    add("stand_salute", P().legs_straight().arm(30, 35, 145, 45, side="r"))
    add("stand_one_leg", P().hip(0, 3, side="l").hip(45, side="r").knee(80, side="r").arm(50, 0, 10))


def _walking(add):
    for ph in range(0, 360, 45):
        add(f"walk_phase_{ph:03d}", gait(ph))
    add("walk_with_bag", gait(60).arm(85, -5, 5, side="r"))
    add("walk_looking_down", gait(200).head(30))
    add("walk_stairs_up", P().hip(55, side="l").knee(70, side="l").ankle(10, side="l").hip(-5, side="r").knee(15, side="r").spine(12).arm(78, 15, 20, side="r").arm(78, -15, 20, side="l"))
    add("walk_uphill_lean", gait(100).spine(20).head(-10))


def _running(add):
    for ph in range(0, 360, 45):
        add(f"run_phase_{ph:03d}", gait(ph, run=True))
    add("sprint_start_drive", P().hip(80, side="l").knee(95, side="l").hip(-20, side="r").knee(20, side="r").spine(30).arm(70, -50, 90, side="l").arm(70, 70, 80, side="r").head(-15))
    add("jog_easy", gait(90, run=True).spine(5).arm(80, 0, 100))


def _sitting_chair(add):
    add("chair_upright", P().chair().arm(80, 30, 55))
    add("chair_hands_on_knees", P().chair(80).arm(75, 45, 40))
    add("chair_lean_back", P().chair(70, 70).spine(-15).arm(80, -15, 20))
    add("chair_lean_forward", P().chair(95, 100).spine(25).arm(78, 45, 90).head(10))
    add("chair_legs_stretched", P().chair(20, 70).spine(-10).arm(75, 10, 60))
    add("chair_feet_back", P().chair(120).arm(80, 30, 55))
    add("chair_knee_turned_out", P().chair(90).hip(85, 40, 15, side="r").knee(105, side="r").arm(80, 30, 55))
    add("chair_knees_apart", P().chair(85, 90, 22).arm(75, 40, 60).spine(10))
    add("chair_head_in_hands", P().chair(100, 95).spine(40).arm(80, 70, 120).head(-10))
    add("chair_arms_crossed_low", P().chair().arm(80, 25, 100, 35))
    add("chair_one_leg_out", P().chair().knee(20, side="l").ankle(-10, side="l").arm(80, 20, 80))
    add("chair_turned_talking", P().chair().spine(0, 25).head(0, 30).arm(70, 30, 60, side="l").arm(60, -10, 20, side="r"))


def _sitting_ground(add):
    # Cross-legged and butterfly sitting need a hip external rotation (axis-angle y about 1.1 rad)
    # beyond JOINT_LIMITS (0.8), so they are not authored.
    add("ground_legs_out", P().hip(88).knee(5).ankle(-10).spine(15).arm(75, -35, 5))
    add("ground_lean_back_on_hands", P().orient(("x", -25)).hip(70).knee(10).ankle(-15).arm(65, -45, 5))
    add("ground_knees_up", P().hip(122, 10).knee(80).spine(15).arm(70, -35, 5))
    add("ground_hug_knees", P().hip(124, 8).knee(95).spine(30).arm(45, 70, 90, 20).head(15))
    add("ground_one_knee_up", P().hip(122, 5, side="l").knee(80, side="l").hip(88, 5, side="r").knee(8, side="r").spine(15).arm(65, 50, 60, side="l").arm(70, -30, 10, side="r"))
    add("ground_lean_on_one_hand", P().hip(88, 6).knee(10).ankle(-10).spine(5, 0, 12).arm(45, -10, 5, side="l").arm(80, 40, 40, side="r"))
    add("ground_legs_wide", P().hip(85, 35).knee(5).spine(20).arm(75, 40, 30))
    add("ground_knees_up_wide", P().hip(120, 28).knee(85).spine(25).arm(75, -20, 10).head(10))
    add("ground_reading", P().hip(88, 8).knee(12).spine(30).arm(75, 50, 110).head(30))
    add("ground_stretch_toes", P().hip(110, 6).knee(5).ankle(10).spine(45).arm(65, 90, 5).head(10))
    add("ground_lean_back_knees_up", P().orient(("x", -25)).hip(100, 10).knee(95).arm(65, -45, 5))


def _crouching(add):
    add("squat_deep", P().squat(1.0).arm(80, 95, 20))
    add("squat_half", P().squat(0.6).arm(85, 90, 10))
    add("squat_arms_on_knees", P().squat(0.95, 25).arm(75, 55, 60))
    add("crouch_hide", P().squat(1.0, 10).spine(35).arm(20, 50, 140, 0).head(20))
    add("crouch_one_hand_down", P().squat(0.95).arm(60, 40, 10, side="r").arm(60, 60, 60, side="l"))
    add("crouch_tie_shoe", P().hip(90, 10, side="l").knee(125, side="l").ankle(30, side="l").hip(20, 5, side="r").knee(115, side="r").ankle(-30, side="r").lean(30).spine(25).arm(60, 70, 20).head(25))
    add("squat_wide_sumo", P().hip(85, 35, 10).knee(100).ankle(20).lean(20).arm(80, 40, 80))
    add("crouch_low_ready", P().squat(0.7, 18).spine(20).arm(70, 40, 80))
    add("squat_heels_up", P().hip(100, 18).knee(140).ankle(-10).lean(20).spine(10).arm(80, 60, 50))
    add("crouch_look_up", P().squat(0.9).head(-40).spine(10).arm(75, 60, 60))


def _kneeling(add):
    one = P().hip(100, 5, side="l").knee(105, side="l").kneel(0, side="r")      # left foot planted, right knee down
    add("kneel_upright", P().kneel().arms())
    add("kneel_one_knee", P(one).arm(78, 10, 40))
    add("kneel_sit_back", P().kneel(40, 8).spine(-5).arm(80, 35, 50))
    add("kneel_pray", P().kneel(10).arm(60, 55, 125, 45).head(25))
    add("kneel_one_knee_propose", P(one).arm(80, 90, 15, side="r").arm(78, 10, 60, side="l"))
    add("kneel_reach_up", P().kneel().arms_up().head(-20))
    add("kneel_lean_forward", P().kneel(30, 8).spine(25).arm(80, 60, 20))
    add("kneel_one_knee_tie", P(one).spine(35).arm(60, 70, 30).head(20))
    add("kneel_wide", P().kneel(5, 20).hands_on_hips())
    add("kneel_hands_on_thighs", P().kneel(35, 12).spine(10).arm(78, 40, 40).head(10))
    add("kneel_one_knee_aim", P(one).spine(5, -20).arm(85, 90, 5, side="l").arm(80, 80, 90, 20, side="r").head(0, 20))


def _lying_back(add):
    back = ("x", -90)
    add("lie_back_flat", P().orient(back).legs_straight().arm(80, 0, 5))
    add("lie_back_knees_up", P().orient(back).hip(60, 8).knee(110).ankle(15).arm(75, 0, 10))
    add("lie_back_arms_overhead", P().orient(back).legs_straight().arms_up(25, 10))
    add("lie_back_hands_behind_head", P().orient(back).legs_straight(6).arm(-35, 30, 145, -30))
    add("lie_back_star", P().orient(back).hip(0, 25).knee(3).arm(25, 0, 10))
    add("lie_back_one_knee", P().orient(back).hip(55, 5, side="l").knee(100, side="l").hip(0, 4, side="r").knee(3, side="r").arm(70, 0, 10))
    add("lie_back_reading", P().orient(back).legs_straight().head(40).arm(60, 80, 90).spine(10))
    add("lie_back_arms_bent", P().orient(back).hip(0, 0).knee(5).ankle(-20).arm(80, 10, 60, 15))
    add("lie_back_arm_over_eyes", P().orient(back).legs_straight(5).arm(-30, 60, 140, side="r").arm(80, 0, 10, side="l"))
    add("lie_back_situp", P().orient(back).hip(70, 10).knee(100).spine(45).head(25).arm(60, 40, 140, -20))


def _lying_side(add):
    side = ("x", -90), ("z", -90)         # on the back, then rolled onto the left side
    add("lie_side_curled", P().orient(*side).hip(75, 5).knee(90).spine(15).arm(80, 70, 70))
    add("lie_side_straight", P().orient(*side).legs_straight(2).arm(-80, 10, 60, side="l").arm(85, 0, 10, side="r"))
    add("lie_side_recovery", P().orient(*side).hip(10, side="l").knee(20, side="l").hip(80, side="r").knee(90, side="r").arm(85, 80, 70, side="l").arm(80, 70, 80, side="r"))
    add("lie_side_arm_under_head", P().orient(*side).hip(40).knee(70).arms_up(10, 20, side="l").arm(80, 90, 30, side="r"))
    add("lie_side_fetal", P().orient(*side).hip(110, 5).knee(130).spine(35).head(25).arm(75, 100, 120))
    add("lie_side_running_legs", P().orient(*side).hip(45, side="l").knee(60, side="l").hip(-10, side="r").knee(20, side="r").arm(85, 80, 20, side="l").arm(80, 0, 10, side="r"))
    add("lie_side_reach", P().orient(*side).hip(30).knee(40).arm(20, 80, 10, side="r").arm(-80, 10, 60, side="l"))
    add("lie_side_arms_hug", P().orient(*side).hip(50).knee(70).spine(15).arm(75, 70, 110, 20))


def _lying_front(add):
    front = ("x", 90)
    add("lie_front_flat", P().orient(front).legs_straight().arm(80, 0, 5))
    add("lie_front_arms_overhead", P().orient(front).legs_straight().arms_up(25, 10))
    add("lie_front_chin_on_hands", P().orient(front).legs_straight(5).spine(-25).head(-15).arm(40, 80, 140, 0))
    add("lie_front_leg_out_bent", P().orient(front).legs_straight(3).hip(0, 40, side="l").knee(90, side="l").arm(10, 0, 90, -90))
    add("lie_front_reading", P().orient(front).legs_straight(5).knee(70).spine(-30).head(-10).arm(45, 80, 110))
    add("lie_front_swimmer", P().orient(front).hip(-10, 8, side="l").hip(5, 8, side="r").knee(10).arms_up(30, 5, side="l").arm(80, -20, 5, side="r").head(-15))
    add("lie_front_head_turned", P().orient(front).legs_straight(6).head(0, 60).arm(60, 0, 10))
    add("lie_front_hands_by_head", P().orient(front).legs_straight(4).arm(10, 0, 100, -90).head(0, -60))
    add("crawl_army", P().orient(front).legs_straight(8).hip(10, 45, side="l").knee(80, side="l").arm(20, 0, 90, -90).head(-25))


def _crawling(add):
    add("crawl_hands_knees", P().orient(("x", 85)).hip(85, 8).knee(104).arm(88, 105, 50).head(-40))
    add("crawl_reach", P().orient(("x", 85)).hip(85, 8).knee(104).arm(88, 105, 50, side="l").arm(-70, 0, 10, side="r").head(-40))
    add("crawl_knee_forward", P().orient(("x", 85)).hip(85, 8, side="r").knee(104, side="r").hip(110, 8, side="l").knee(135, side="l").arm(88, 105, 50).head(-40))
    add("crawl_look_up", P().orient(("x", 85)).hip(85, 8).knee(104).arm(88, 105, 50).head(-45))
    add("plank_push_up", P().orient(("x", 68)).legs_straight(3).ankle(30).arm(88, 68, 5).head(-15))
    add("plank_push_up_low", P().orient(("x", 72)).legs_straight(3).ankle(30).arm(75, 80, 60).head(-15))


def _bending(add):
    add("bend_touch_toes", P().legs_straight().lean(85).spine(45).arm(70, 95, 5).head(10))
    add("bend_pick_up_squat", P().hip(90, 22).knee(115).ankle(30).lean(30).spine(20).arm(60, 80, 10).head(10))
    add("bend_pick_up_stoop", P().hip(10, 6).knee(20).lean(70).spine(40).arm(80, 100, 10).head(-10))
    add("bend_pick_up_one_hand", P().hip(20, side="l").knee(40, side="l").hip(10, side="r").knee(10, side="r").lean(55).spine(30, 0, -5).arm(85, 80, 5, side="r").arm(70, 10, 30, side="l"))
    add("bend_golfer_pick", P().hip(0, side="l").knee(8, side="l").hip(-75, side="r").knee(0, side="r").lean(80).spine(10).arm(85, 90, 5, side="l").arm(30, -50, 10, side="r").head(-30))
    add("bend_lift_box", P().hip(80, 15).knee(90).ankle(25).lean(30).spine(20).arm(90, 70, 15))
    add("bend_sweep", P().hip(10).knee(15).lean(20).spine(15, -20).arm(70, 50, 20, 0, side="l").arm(85, 40, 40, 0, side="r"))
    add("bend_garden", P().hip(40, 12).knee(50).ankle(15).lean(50).spine(35).arm(65, 80, 20).head(-5))
    add("bend_side_stretch", P().stance(10).spine(0, 0, 30).arms_up(10, 10, side="r").arm(85, 0, 10, side="l"))
    add("bend_back_arch", P().stance(8).spine(-25).head(-25).hands_on_hips())
    add("bend_look_under", P().hip(75, 12).knee(90).ankle(25).lean(45).spine(40).head(-35).arm(50, 90, 20))


def _reaching_carrying(add):
    add("carry_box", P().legs_straight().carry().spine(-5))
    add("carry_box_walk", gait(45).carry().spine(-5))
    add("carry_bag_one_hand", P().legs_straight().spine(0, 0, 8).arm(78, 0, 5, side="r").arm(55, 0, 10, side="l"))
    add("carry_on_shoulder", P().legs_straight().arm(-10, 40, 135, -10, side="r").arm(75, 0, 10, side="l"))
    add("carry_tray_high", P().legs_straight().arm(60, 20, 95, -20, side="r").arm(78, 0, 10, side="l"))
    add("carry_backpack_straps", P().legs_straight().arm(65, 35, 120, 20))
    add("reach_up_shelf", P().legs_straight().ankle(-15).arms_up(5, 10, side="r").arm(75, 0, 10, side="l").head(-25))
    add("reach_up_both", P().legs_straight().ankle(-15).arms_up(10, 5).head(-25).spine(-5))
    add("reach_forward", P().hip(20).knee(5).spine(25).arms_forward(0, 5).head(-10))
    add("reach_side", P().hip(0, 15, side="l").knee(10).spine(0, 0, 20).arm(5, 0, 5, side="l").arm(75, 0, 10, side="r"))
    add("push_cart", P().step("r", 20, 20, 20, 5).spine(25).arm(85, 80, 35))
    add("pull_rope", P().step("l", 25, 15, 30, 5).spine(-15).arm(85, 75, 30))
    add("hold_umbrella", gait(250).arm(70, 40, 90, -10, side="r"))
    add("open_door", P().step("r", 15, 10).arm(80, 60, 50, 0, side="r").arm(75, 0, 10, side="l").spine(0, -10))
    add("reach_high_tiptoe", P().hip(0, 4).ankle(-25).arms_up(5, 0, side="l").arm(75, 0, 10, side="r").spine(-5, 0, -10).head(-30))


def _sports(add):
    add("throw_windup", P().step("l", 30, 20, 10, 15).spine(-5, 35).arm(10, -40, 90, 0, side="r").arm(80, 90, 20, 0, side="l").head(0, -30))
    add("throw_release", P().step("l", 30, 25, 25, 20).spine(25, -20).arm(-30, 40, 40, 0, side="r").arm(80, 10, 80, 0, side="l"))
    add("throw_follow_through", P().hip(30, side="l").knee(40, side="l").hip(-10, side="r").knee(30, side="r").spine(45, -35).arm(50, 80, 20, 0, side="r").arm(55, -30, 50, 0, side="l"))
    add("basketball_shot", P().stance(8, 20).ankle(-15).arm(-45, 45, 90, 0, side="r").arm(-20, 60, 100, 0, side="l").head(-20))
    add("kick_windup", P().hip(-30, side="l").knee(90, side="l").ankle(-20, side="l").hip(15, side="r").knee(15, side="r").spine(-5).arm(30, 20, 30, 0, side="r").arm(40, -20, 30, 0, side="l"))
    add("kick_contact", P().hip(40, side="l").knee(40, side="l").ankle(-40, side="l").hip(15, side="r").knee(15, side="r").spine(-5).arm(30, 30, 20, 0, side="r").arm(50, -30, 30, 0, side="l"))
    add("kick_follow_through", P().hip(85, side="l").knee(10, side="l").ankle(-30, side="l").hip(-5, side="r").knee(10, side="r").spine(-20).arm(35, 40, 20, 0, side="r").arm(40, -40, 20, 0, side="l"))
    add("bat_stance", P().stance(20, 20).hip(20, 20).spine(15, 30).arm(70, 60, 110, 0, side="l").arm(60, 20, 120, 0, side="r").head(0, -60))
    add("bat_swing", P().step("l", 25, 15, 15, 25).spine(15, -10).arm(80, 90, 10, 0, side="l").arm(75, 60, 40, 0, side="r").head(0, -40))
    add("bat_follow_through", P().stance(20, 15).spine(10, -45).arm(40, 80, 90, 0, side="l").arm(40, 90, 110, 0, side="r").head(0, -20))
    add("tennis_serve", P().stance(12, 15).spine(-20).arms_up(5, 40, side="r").arm(-30, 20, 10, 0, side="l").head(-35))
    add("tennis_forehand", P().step("l", 25, 10, 30, 15).spine(15, -30).arm(40, 60, 20, 0, side="r").arm(70, 50, 70, 0, side="l"))
    add("golf_address", P().stance(12, 15).hip(10, 12).lean(35).spine(10).arm(85, 60, 10).head(20))
    add("golf_backswing", P().stance(12, 15).hip(30, 12).spine(20, 45).arm(40, 90, 60, 0, side="r").arm(70, 90, 10, 0, side="l"))
    add("ski_tuck", P().hip(80, 8).knee(100).ankle(40).lean(35).spine(25).arm(60, 80, 100).head(-20))
    add("ski_turn", P().hip(45, 15).knee(70).ankle(30).lean(15).spine(10, 10, -10).arm(60, 30, 60, 0, side="l").arm(55, 40, 50, 0, side="r"))
    add("ski_pole_plant", P().hip(35, 8).knee(50).ankle(25).lean(15).spine(10).arm(60, 50, 40, 0, side="r").arm(70, 10, 60, 0, side="l"))
    add("cycle_pedal_top", P().hip(100, 5, side="l").knee(115, side="l").hip(45, 5, side="r").knee(40, side="r").spine(45).arm(65, 75, 30).head(-35))
    add("cycle_pedal_front", P().hip(80, 5, side="l").knee(70, side="l").hip(60, 5, side="r").knee(100, side="r").spine(45).arm(65, 75, 30).head(-35))
    add("cycle_pedal_bottom", P().hip(45, 5, side="l").knee(40, side="l").hip(100, 5, side="r").knee(115, side="r").spine(45).arm(65, 75, 30).head(-35))
    add("cycle_upright", P().hip(75, 5, side="l").knee(95, side="l").hip(60, 5, side="r").knee(60, side="r").spine(10).arm(80, 50, 60).head(-5))
    add("climb_reach", P().hip(60, 15, side="l").knee(90, side="l").hip(5, 10, side="r").knee(10, side="r").ankle(-20, side="r").arms_up(5, 10, side="r").arm(-30, 30, 80, 0, side="l").head(-30))
    add("climb_step_up", P().hip(80, 20, side="l").knee(100, side="l").hip(-5, 10, side="r").knee(15, side="r").arm(-40, 25, 90, 0, side="r").arm(-20, 30, 110, 0, side="l").head(-20))
    add("climb_ladder", P().hip(45, 5, side="l").knee(80, side="l").hip(0, 5, side="r").knee(10, side="r").arm(-30, 50, 70, 0, side="r").arm(30, 60, 90, 0, side="l"))
    add("swim_dive_start", P().hip(40, 5).knee(30).lean(60).spine(30).arm(70, 90, 5).head(-20))
    add("volleyball_dig", P().hip(60, 20).knee(80).ankle(30).lean(25).spine(20).arm(90, 65, 5).head(-15))
    add("jump_star", P().hip(0, 30).knee(5).ankle(-20).arm(-40, 0, 10))
    add("goalkeeper_ready", P().hip(35, 20).knee(55).ankle(20).lean(20).spine(15).arm(50, 50, 60).head(-10))
    add("jump_tuck", P().hip(100, 10).knee(120).ankle(-20).spine(15).arm(70, 60, 60))
    add("yoga_warrior", P().hip(75, 25, 30, side="l").knee(80, side="l").hip(-10, 30, -10, side="r").knee(5, side="r").arm(0, 0, 5).head(0, 60).spine(0, 30))


def _dancing(add):
    add("dance_disco_point", P().step("l", 15, 10, 15, 10).arm(-40, 20, 5, 0, side="r").arm(80, 40, 40, 0, side="l").spine(0, 0, 10))
    add("dance_arms_up_bounce", P().stance(12, 25).hip(20, 12).ankle(15).arms_up(25, 40).head(-15))
    add("dance_arabesque", P().hip(0, 5, side="r").knee(3, side="r").hip(-35, 5, side="l").knee(5, side="l").ankle(-40, side="l").spine(25).arm(5, 70, 5, 0, side="r").arm(15, -10, 5, 0, side="l").head(-15))
    add("dance_plie", P().hip(40, 40, 20).knee(70).ankle(20).arm(30, 40, 25))
    add("dance_releve_arms_round", P().hip(0, 3).ankle(-35).arm(-55, 45, 60, 30))
    add("dance_twist", P().hip(20, 8).knee(35).ankle(10).spine(5, 30).arm(60, 40, 100, 0, side="l").arm(70, -30, 90, 0, side="r"))
    add("dance_side_step_clap", P().hip(0, 20, side="l").knee(10, side="l").hip(5, 5, side="r").knee(20, side="r").arm(70, 50, 110, 35).head(0, 0, 10))
    add("dance_kick_high", P().hip(85, 5, side="l").knee(5, side="l").ankle(-30, side="l").hip(-5, 3, side="r").arm(10, 10, 5).spine(-5))
    add("dance_hip_sway", P().hip(0, 12, side="l").hip(10, 2, side="r").knee(25, side="r").spine(0, 10, -15).arm(30, 30, 90, 0, side="l").arm(70, 20, 40, 0, side="r"))
    add("dance_salsa_turn", P().step("r", 15, 10, 20, 10).ankle(-15, side="l").arms_up(40, 70, side="r").arm(40, 60, 80, 0, side="l").head(0, 30))
    add("dance_ballet_first", P().hip(0, 5, 40).knee(3).arm(70, 40, 40, 20))
    add("dance_hiphop_crouch", P().hip(50, 25, 15).knee(75).ankle(25).lean(20).spine(10).arm(30, 60, 90, 0, side="l").arm(60, 10, 20, 0, side="r").head(-10))
    add("dance_jump_split", P().hip(70, 5, side="l").knee(5, side="l").hip(-35, 5, side="r").knee(10, side="r").ankle(-40).arm(20, 40, 5, 0, side="l").arm(10, -10, 5, 0, side="r"))
    add("dance_lean_back_arm", P().step("l", 20, 5, 30, 0).spine(-25).head(-20).arm(-10, 20, 10, 0, side="l").arm(70, 0, 30, 0, side="r"))


def _fighting(add):
    guard = P().step("l", 18, 15, 20, 20).spine(10, 15).guard().head(10)
    add("box_guard", guard)
    add("box_jab", P().step("l", 18, 15, 20, 20).spine(10, -10).guard("r").arm(88, 90, 5, 0, side="l").head(10))
    add("box_cross", P().step("l", 25, 10, 25, 10).ankle(-20, side="r").spine(15, -35).guard("l").arm(88, 90, 5, 0, side="r").head(10, 20))
    add("box_hook", P().step("l", 18, 15, 25, 20).spine(10, -30).guard("r").arm(10, 60, 90, -10, side="l"))
    add("box_uppercut", P().step("l", 15, 15, 35, 25).spine(5, -25).guard("l").arm(70, 60, 120, -20, side="r"))
    add("box_block_high", P().step("l", 15, 15, 30, 30).spine(20).arm(40, 60, 140, 20).head(25))
    add("kick_front", P().hip(85, side="l").knee(15, side="l").ankle(10, side="l").hip(-5, side="r").knee(15, side="r").spine(-15).guard())
    add("kick_side", P().hip(40, 65, -20, side="l").knee(10, side="l").hip(0, 8, side="r").knee(15, side="r").spine(0, 0, -35).guard())
    add("kick_roundhouse_chamber", P().hip(80, 45, side="l").knee(110, side="l").hip(-5, 8, side="r").knee(15, side="r").ankle(-20, side="r").spine(0, 0, -20).guard())
    add("knee_strike", P().hip(100, side="l").knee(120, side="l").hip(-10, side="r").knee(5, side="r").spine(10).arm(60, 70, 100))
    add("fight_wrestle_stance", P().hip(50, 25).knee(65).ankle(25).lean(30).spine(20).arm(70, 70, 50).head(-20))
    add("fight_sword_lunge", P().hip(65, 5, side="l").knee(85, side="l").hip(-30, 10, side="r").knee(5, side="r").arm(85, 90, 5, 0, side="r").arm(10, -20, 60, 0, side="l").spine(5, -20))
    add("fight_elbow_strike", P().step("l", 15, 15, 25, 20).spine(10, -40).arm(20, 80, 145, 10, side="r").guard("l"))
    add("fight_dodge_lean", P().stance(15, 35).hip(30, 15).spine(15, 0, 25).guard())


def _phone_desk(add):
    add("phone_text_standing", P().legs_straight().texting())
    add("phone_call_standing", P().hip(0, 6, side="l").hip(3, 2, side="r").knee(10, side="r").phone_ear("r").head(5, 0, -10))
    add("phone_text_walking", gait(135).texting())
    add("phone_text_seated", P().chair().texting().spine(10))
    add("phone_call_seated", P().chair(80).phone_ear("l").arm(78, 30, 70, 0, side="r"))
    add("phone_selfie", P().legs_straight().arm(20, 75, 20, 0, side="r").head(-5, -10))
    add("desk_typing", P().chair().typing().spine(5).head(15))
    add("desk_writing", P().chair(95).typing().spine(25).head(30).arm(78, 35, 70, 15, side="r"))
    add("desk_chin_on_hand", P().chair().spine(20).arm(70, 40, 140, 15, side="r").typing().arm(70, 40, 140, 15, side="r").head(10))
    add("desk_reading_book", P().chair(85).arm(78, 35, 110, 15).head(30))
    add("desk_laptop_lap", P().chair(80, 85).arm(78, 25, 70, 15).head(35).spine(15))
    add("desk_stretch_arms_up", P().chair().arms_up(15, 30).spine(-10).head(-15))
    add("desk_standing_typing", P().legs_straight().typing().head(15))
    add("drink_cup_standing", P().legs_straight().arm(70, 30, 130, 30, side="r").head(-5))
    add("drink_cup_seated", P().chair().arm(70, 30, 130, 30, side="r").typing().arm(70, 30, 130, 30, side="r"))
    add("eat_seated_fork", P().chair().spine(20).arm(75, 40, 110, 20).head(20))


GROUP_BUILDERS = {
    "standing": _standing, "walking": _walking, "running": _running, "sitting_chair": _sitting_chair,
    "sitting_ground": _sitting_ground, "crouching": _crouching, "kneeling": _kneeling,
    "lying_back": _lying_back, "lying_side": _lying_side, "lying_front": _lying_front, "crawling": _crawling,
    "bending": _bending,
    "reaching_carrying": _reaching_carrying, "sports": _sports, "dancing": _dancing, "fighting": _fighting,
    "phone_desk": _phone_desk,
}


def build_library():
    """[(name, group, (72,) axis-angle)] of every authored pose, in group order."""
    lib = []
    for group, builder in GROUP_BUILDERS.items():
        builder(lambda name, b, g=group: lib.append((name, g, b.out())))
    return lib
