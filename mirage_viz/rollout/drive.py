"""Drive mode: a person steers the camera one press at a time, every memory side by side on the same noise.

Each press composes a small move with the current pose in the camera's own frame (OpenCV: x right, y down,
z forward) and runs one step of the :class:`~mirage_viz.rollout.RolloutEngine`; undo takes the last step back
out of every memory. The path so far is a :class:`~mirage_viz.scenes.trajectories.Trajectory` starting at the
identity (as presets do), so saving it and running it as a planned rollout gives the same frames: step ``k``
draws the same noise however it was reached.

>>> drive = DriveSession(RolloutConfig(size=128))
>>> drive.move("forward"); drive.move("turn_left"); drive.undo(); drive.back_to_start()
>>> drive.trajectory().save("path.json")  # replays with iter_rollout(..., trajectory=load_trajectory("path.json"))
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

import torch

from mirage_viz.backbone import Backbone, load_embedded_backbone
from mirage_viz.geometry.cameras import Camera
from mirage_viz.rollout.config import MAX_STEP_PIXELS, RolloutConfig, plan_rollout
from mirage_viz.rollout.records import Rollout
from mirage_viz.rollout.engine import RolloutEngine
from mirage_viz.scenes.photo import Photo
from mirage_viz.scenes.trajectories import MAX_STEPS, Trajectory

__all__ = ["MOVES", "DRIVE_TRAJECTORY_NAME", "Move", "DriveSession"]

DRIVE_TRAJECTORY_NAME = "drive"


@dataclass(frozen=True)
class Move:
    """One press: a translation of ``step_m`` along ``direction`` and a yaw of ``turn`` x ``turn_degrees``.

    Both in the camera's own frame (OpenCV); a positive yaw turns the view right (see ``trajectories._rotation_y``).
    """

    direction: tuple[float, float, float]  # unit vector, camera frame
    turn: float  # -1 turns left, +1 right, 0 not at all
    description: str

    def relative_pose(self, step_m: float, turn_degrees: float) -> torch.Tensor:
        """(4, 4) float64: the new camera's pose in the current camera's frame."""
        angle = math.radians(self.turn * turn_degrees)
        c, s = math.cos(angle), math.sin(angle)
        pose = torch.eye(4, dtype=torch.float64)
        pose[:3, :3] = torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)  # yaw about y
        pose[:3, 3] = torch.tensor(self.direction, dtype=torch.float64) * step_m
        return pose


MOVES: dict[str, Move] = {
    "forward": Move((0.0, 0.0, 1.0), 0.0, "step along the view (+z)"),
    "back": Move((0.0, 0.0, -1.0), 0.0, "step back (-z)"),
    "left": Move((-1.0, 0.0, 0.0), 0.0, "slide left (-x)"),
    "right": Move((1.0, 0.0, 0.0), 0.0, "slide right (+x)"),
    "up": Move((0.0, -1.0, 0.0), 0.0, "rise (-y: OpenCV y points down)"),
    "down": Move((0.0, 1.0, 0.0), 0.0, "sink (+y)"),
    "turn_left": Move((0.0, 0.0, 0.0), -1.0, "turn the view left in place"),
    "turn_right": Move((0.0, 0.0, 0.0), 1.0, "turn the view right in place"),
}


class DriveSession:
    """A rollout steered one press at a time; step 0 (the first frame) runs at once.

    Args:
        config: world, seeds, size, memories and the rest as for a planned rollout; ``trajectory``, ``steps`` and
            ``magnitude`` are ignored (the path is driven).
        backbone: the models (default: the embedded ones).
        photo: a photo as the first frame instead of the world's view (no room to stay in then).
        max_steps: the most generated steps the drive may hold (every step's frames are kept in memory).
        step_m: metres per move (forward, back, left, right, up, down).
        turn_degrees: degrees per turn.
        defer_scores: leave each press's scores that need no truth (``record.consistency``) for :meth:`score`, so a
            press answers with its frames first (the app scores when the driver pauses).

    Presses and :meth:`score` may come from several threads: one runs at a time. Every refused press raises
    ``ValueError`` saying what was wrong and what is accepted, and changes nothing.
    """

    def __init__(
        self,
        config: RolloutConfig | None = None,
        backbone: Backbone | None = None,
        photo: Photo | None = None,
        max_steps: int = 48,
        step_m: float = 0.25,
        turn_degrees: float = 15.0,
        defer_scores: bool = False,
    ) -> None:
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= MAX_STEPS:
            raise ValueError(f"max_steps must be an integer in [1, {MAX_STEPS}], got {max_steps!r}")
        for name, value, high in (("step_m", step_m, 10.0), ("turn_degrees", turn_degrees, 180.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= high:
                raise ValueError(f"{name} must be a number in (0, {high:g}], got {value!r}")
        self.max_steps, self.step_m, self.turn_degrees = max_steps, float(step_m), float(turn_degrees)
        # the start pose, checked like any planned path (settings, and a camera that stands in the room)
        start = Trajectory(DRIVE_TRAJECTORY_NAME, torch.eye(4).repeat(2, 1, 1))
        plan = plan_rollout(config, trajectory=start, photo=photo, backbone=backbone)
        size = plan.setup.size
        if max_steps * size**2 > MAX_STEP_PIXELS:
            raise ValueError(f"max_steps {max_steps} at {size} px is more than a drive may hold in memory (every step's "
                             f"frames are kept); accepted: at most {MAX_STEP_PIXELS // size**2} steps at {size} px")
        self.engine = RolloutEngine(config, backbone=backbone or load_embedded_backbone(), world=plan.world,
                                    trajectory=start, photo=photo)
        self.start = self.engine.cameras[0]
        self.rollout: Rollout = self.engine.new_rollout()
        self.defer_scores = defer_scores
        self.changes = 0  # presses that changed the drive so far (a step, an undo): a view can tell it is out of date
        self.lock = threading.RLock()  # held by every press: ``with drive.lock:`` reads the rollout unchanged
        self._advance(self.start)

    @property
    def steps(self) -> int:
        """Generated steps so far (step 0, the first frame, not counted)."""
        return len(self.rollout) - 1

    @property
    def camera(self) -> Camera:
        """The current camera (the last step's)."""
        return self.rollout.cameras[-1]

    def next_camera(self, action: str) -> Camera:
        """The camera one ``action`` away from the current one (nothing runs; refused like :meth:`move`)."""
        if action not in MOVES:
            raise ValueError(f"unknown move {action!r}; accepted: {', '.join(MOVES)}")
        relative = MOVES[action].relative_pose(self.step_m, self.turn_degrees)
        pose = (self.camera.camera_to_world.double() @ relative).float()  # float32, as a saved trajectory holds it
        return Camera(self.start.intrinsics, pose)

    def move(self, action: str) -> Rollout:
        """Run one step at the current pose moved by ``action`` (one of :data:`MOVES`) in the camera's own frame."""
        camera = self.next_camera(action)
        return self._advance(camera, f"cannot move {action}")

    def back_to_start(self) -> Rollout:
        """Run one step at the start pose: the revisit, where a memory shows what it kept of the first frame."""
        if self.steps == 0:
            raise ValueError("cannot go back to the start: the drive is at the start, its first frame (step 0); move "
                             "first, then back to start shows what each memory kept of the first view")
        return self._advance(self.start, "cannot go back to the start")

    def undo(self) -> Rollout:
        """Take the last step back out of every memory and the rollout."""
        with self.lock:
            if self.steps == 0:
                raise ValueError("nothing to undo: the drive is at its first frame (step 0)")
            self.engine.undo()
            self.rollout.pop()
            self.rollout.setup = replace(self.rollout.setup, steps=self.steps)
            self.changes += 1
            return self.rollout

    def reset(self) -> Rollout:
        """Back to step 0 only (every memory holds the first frame alone)."""
        with self.lock:
            while self.steps:
                self.undo()
            return self.rollout

    def score(self) -> Rollout:
        """Fill in the scores of the steps a press left unscored (``defer_scores``), in order."""
        with self.lock:
            self.engine.score()
            return self.rollout

    def trajectory(self) -> Trajectory:
        """The path so far, start pose first (name ``"drive"``); save it to replay the drive as a planned rollout."""
        if self.steps == 0:
            raise ValueError("no path yet: a trajectory needs at least one step after the first frame; move first")
        poses = torch.stack([camera.camera_to_world for camera in self.rollout.cameras])  # [N + 1, 4, 4]
        return Trajectory(DRIVE_TRAJECTORY_NAME, poses)

    def _advance(self, camera: Camera, refused: str = "cannot start") -> Rollout:
        """Run the next step at ``camera``, after checking the cap and (in a world) where it stands."""
        with self.lock:
            if len(self.rollout) > self.max_steps:
                raise ValueError(f"{refused}: the drive holds at most max_steps = {self.max_steps} steps; accepted: "
                                 "undo, reset, or save the path so far")
            world = self.engine.world
            problem = None if world is None else world.camera_problem(camera)
            if problem is not None:
                position = ", ".join(f"{v:.2f}" for v in camera.camera_to_world[:3, 3].tolist())
                raise ValueError(f"{refused}: the camera would stand at ({position}) m, where {problem}; "
                                 f"the drive stays at step {self.steps}")
            records = self.engine.step(camera, score=not self.defer_scores)
            self.rollout.append(records, camera, self.engine.caches())
            self.rollout.setup = replace(self.rollout.setup, steps=self.steps)  # the path so far
            self.changes += 1
            return self.rollout
