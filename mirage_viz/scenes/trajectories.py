"""Camera trajectories: presets and JSON files.

A trajectory is a stack of ``camera_to_world`` poses (N + 1, 4, 4) in the OpenCV convention
(x right, y down, z forward): pose 0 is the start (the given first frame), poses 1..N are the
``steps`` the world model generates. Presets move the camera in the start camera's own frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics, check_camera_to_world
from mirage_viz.geometry.projection import make_pose, rotation_y
from mirage_viz.inputs import read_json_file

__all__ = ["MAX_STEPS", "PRESETS", "TRAJECTORY_NAMES", "Trajectory", "make_trajectory", "load_trajectory"]

JSON_FORMAT = "mirage_viz.trajectory/v1"
MAX_STEPS = 1_000  # generated steps a trajectory may have (a rollout keeps every step's frames in memory)


def _translate(direction: tuple[float, float, float]) -> Callable[[float, float], torch.Tensor]:
    return lambda s, m: make_pose(torch.eye(3, dtype=torch.float64), tuple(d * m * s for d in direction))


def _pan(sign: float) -> Callable[[float, float], torch.Tensor]:
    return lambda s, m: make_pose(rotation_y(sign * math.radians(m) * s), (0.0, 0.0, 0.0))


_ORBIT_RADIUS = 3.0  # metres to the point orbited, straight ahead of the start camera


def _orbit(sign: float) -> Callable[[float, float], torch.Tensor]:
    def pose(s: float, m: float) -> torch.Tensor:
        rotation = rotation_y(sign * math.radians(m) * s)  # orbit left: move to -x, turn right
        target = torch.tensor([0.0, 0.0, _ORBIT_RADIUS], dtype=torch.float64)
        position = target + rotation @ torch.tensor([0.0, 0.0, -_ORBIT_RADIUS], dtype=torch.float64)
        return make_pose(rotation, tuple(position.tolist()))

    return pose


def _loop(s: float, m: float) -> torch.Tensor:
    # A closed circle of radius m behind and beside the start, with a gentle sway of the view:
    # at s = 1 the camera is back at the start pose (the revisit test).
    angle = 2 * math.pi * s
    position = (m * math.sin(angle), 0.0, -m * (1 - math.cos(angle)))
    return make_pose(rotation_y(math.radians(25.0) * math.sin(angle)), position)


@dataclass(frozen=True)
class Preset:
    motion: Callable[[float, float], torch.Tensor]  # (progress in [0, 1], magnitude) -> pose in start frame
    magnitude: float
    unit: str
    description: str


PRESETS: dict[str, Preset] = {
    "push_in": Preset(_translate((0, 0, 1)), 1.5, "m", "move forward along the view"),
    "pull_out": Preset(_translate((0, 0, -1)), 1.5, "m", "move backward along the view"),
    "move_left": Preset(_translate((-1, 0, 0)), 1.5, "m", "slide left"),
    "move_right": Preset(_translate((1, 0, 0)), 1.5, "m", "slide right"),
    "move_up": Preset(_translate((0, -1, 0)), 0.6, "m", "rise (OpenCV y points down)"),
    "move_down": Preset(_translate((0, 1, 0)), 0.6, "m", "sink"),
    "pan_left": Preset(_pan(-1), 60.0, "deg", "turn the view left in place"),
    "pan_right": Preset(_pan(1), 60.0, "deg", "turn the view right in place"),
    "orbit_left": Preset(_orbit(1), 40.0, "deg", f"circle left around a point {_ORBIT_RADIUS:g} m ahead"),
    "orbit_right": Preset(_orbit(-1), 40.0, "deg", f"circle right around a point {_ORBIT_RADIUS:g} m ahead"),
    "loop": Preset(_loop, 0.8, "m", "a closed circle of this radius that returns to the start pose"),
}
TRAJECTORY_NAMES = tuple(PRESETS)


@dataclass(frozen=True)
class Trajectory:
    """Poses ``camera_to_world`` (N + 1, 4, 4), OpenCV convention; pose 0 is the start."""

    name: str
    camera_to_world: torch.Tensor

    def __post_init__(self) -> None:
        poses = torch.as_tensor(self.camera_to_world, dtype=torch.float32)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not 2 <= poses.shape[0] <= MAX_STEPS + 1:
            raise ValueError(f"a trajectory needs poses of shape (N + 1, 4, 4) with N in [1, {MAX_STEPS}], got "
                             f"{tuple(poses.shape)}; accepted: at most {MAX_STEPS + 1} poses")
        for index, pose in enumerate(poses):
            try:
                check_camera_to_world(pose)
            except ValueError as error:
                raise ValueError(f"trajectory pose {index}: {error}") from None
        object.__setattr__(self, "camera_to_world", poses)

    @property
    def steps(self) -> int:
        """Number of generated steps (poses after the start)."""
        return self.camera_to_world.shape[0] - 1

    def cameras(self, intrinsics: Intrinsics) -> list[Camera]:
        return [Camera(intrinsics, pose) for pose in self.camera_to_world]

    def to_dict(self) -> dict:
        return {
            "format": JSON_FORMAT,
            "convention": "opencv",
            "pose": "camera_to_world",
            "name": self.name,
            "camera_to_world": self.camera_to_world.tolist(),
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def from_dict(cls, data: object) -> Trajectory:
        if not isinstance(data, dict) or "camera_to_world" not in data:
            raise ValueError(
                "trajectory JSON must be an object with 'camera_to_world': a list of 4x4 OpenCV "
                "camera-to-world matrices (the start pose first)"
            )
        if data.get("pose", "camera_to_world") != "camera_to_world" or data.get("convention", "opencv") != "opencv":
            raise ValueError("trajectory JSON: only OpenCV camera_to_world poses are accepted")
        try:
            poses = torch.tensor(data["camera_to_world"], dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            raise ValueError(f"trajectory JSON: 'camera_to_world' must be a list of 4x4 number matrices ({error})") from None
        name = data.get("name", "custom")
        if not isinstance(name, str) or len(name) > 200:
            raise ValueError("trajectory JSON: 'name' must be text of at most 200 characters")
        return cls(name=name, camera_to_world=poses)


def load_trajectory(path: str | Path) -> Trajectory:
    """Read a trajectory saved by :meth:`Trajectory.save` (or written by hand in that format)."""
    data = read_json_file(path, "trajectory")
    try:
        return Trajectory.from_dict(data)
    except ValueError as error:
        raise ValueError(f"trajectory file {path}: {error}") from None


def make_trajectory(
    name: str, steps: int, magnitude: float | None = None, start_camera_to_world: torch.Tensor | None = None
) -> Trajectory:
    """Preset ``name`` with ``steps`` moves of a total ``magnitude`` (metres or degrees, see ``PRESETS``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown trajectory {name!r}; accepted: {', '.join(TRAJECTORY_NAMES)}")
    if isinstance(steps, bool) or int(steps) != steps or not 0 < steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    preset = PRESETS[name]
    magnitude = preset.magnitude if magnitude is None else float(magnitude)
    if not math.isfinite(magnitude) or magnitude < 0:
        raise ValueError(f"magnitude must be a finite number >= 0, got {magnitude!r}")
    start = torch.eye(4, dtype=torch.float64) if start_camera_to_world is None else torch.as_tensor(start_camera_to_world, dtype=torch.float64)
    poses = torch.stack([start @ preset.motion(i / steps, magnitude) for i in range(int(steps) + 1)])
    return Trajectory(name=name, camera_to_world=poses.float())
