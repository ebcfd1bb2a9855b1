"""Camera trajectories: presets, their composition, and mirage_viz's JSON file.

A trajectory is a stack of ``camera_to_world`` poses (N + 1, 4, 4) in the OpenCV convention
(x right, y down, z forward): pose 0 is the start (the given first frame), poses 1..N are the
``steps`` the world model generates. Presets move the camera in the start camera's own frame; a preset
followed by ``+back_to_start`` spends its last half of the steps coming back to the start pose (a revisit).

A trajectory may carry per-pose intrinsics (read from a camera file, at that file's image size; a rollout scales
them to its own size) or per-pose focal scales (the zoom presets: focal length relative to the rollout's own).
Other tools' camera files are read and written by :mod:`mirage_viz.scenes.camera_files`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from mirage_viz.geometry.cameras import Camera, Intrinsics, check_camera_to_world, look_at_camera_to_world
from mirage_viz.geometry.conventions import interpolate_poses
from mirage_viz.geometry.projection import make_pose, rotation_y
from mirage_viz.inputs import read_json_file

__all__ = ["BACK_TO_START", "MAX_POSES", "MAX_STEPS", "PRESETS", "TRAJECTORY_NAMES", "Trajectory", "check_trajectory_name",
           "load_trajectory", "make_trajectory"]

JSON_FORMAT = "mirage_viz.trajectory/v1"
MAX_STEPS = 1_000  # generated steps a rollout may run (a rollout keeps every step's frames in memory)
MAX_POSES = 10_000  # poses a trajectory (a camera file) may hold; subsample longer paths before a rollout
BACK_TO_START = "back_to_start"  # "<preset>+back_to_start": the preset, then back to the start pose


def _translate(direction: tuple[float, float, float]) -> Callable[[float, float], torch.Tensor]:
    return lambda s, m: make_pose(torch.eye(3, dtype=torch.float64), tuple(d * m * s for d in direction))


def _pan(sign: float) -> Callable[[float, float], torch.Tensor]:
    return lambda s, m: make_pose(rotation_y(sign * math.radians(m) * s), (0.0, 0.0, 0.0))


_ORBIT_RADIUS = 3.0  # metres to the point orbited, straight ahead of the start camera
_SUBJECT = 3.0  # metres to the point the spiral, the lemniscate and the dolly zoom keep in view


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


def _looking_at_subject(x: float, y: float, z: float) -> torch.Tensor:
    """A camera at (x, y, z) of the start frame looking at the point ``_SUBJECT`` metres ahead of the start."""
    return look_at_camera_to_world(torch.tensor([x, y, z]), torch.tensor([0.0, 0.0, _SUBJECT])).double()


def _spiral(s: float, m: float) -> torch.Tensor:
    # Two turns outward in the start's image plane, to a radius of m, always facing the subject.
    radius, angle = m * s, 4 * math.pi * s
    return _looking_at_subject(radius * math.cos(angle), -radius * math.sin(angle), 0.0)  # right, then up


def _lemniscate(s: float, m: float) -> torch.Tensor:
    # A figure eight (Bernoulli's lemniscate, half-width m) through the start, facing the subject; ends where it began.
    t = 2 * math.pi * s
    scale = m / (1 + math.cos(t) ** 2)
    return _looking_at_subject(-scale * math.sin(t), -scale * math.sin(t) * math.cos(t), 0.0)


def _pull_back(s: float, m: float) -> torch.Tensor:
    return make_pose(torch.eye(3, dtype=torch.float64), (0.0, 0.0, -m * s))


@dataclass(frozen=True)
class Preset:
    motion: Callable[[float, float], torch.Tensor]  # (progress in [0, 1], magnitude) -> pose in start frame
    magnitude: float
    unit: str
    description: str
    zoom: Callable[[float, float], float] | None = None  # (progress, magnitude) -> focal length / the start's


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
    "spiral": Preset(_spiral, 0.5, "m", f"two turns outward to this radius, facing a point {_SUBJECT:g} m ahead"),
    "lemniscate": Preset(_lemniscate, 0.6, "m",
                         f"a figure eight of this half-width through the start, facing a point {_SUBJECT:g} m ahead"),
    "dolly_zoom": Preset(_pull_back, 1.0, "m", f"move back while zooming in, so a point {_SUBJECT:g} m ahead keeps its "
                         "size (the field of view narrows each step)", zoom=lambda s, m: (_SUBJECT + m * s) / _SUBJECT),
    "zoom_in": Preset(lambda s, m: torch.eye(4, dtype=torch.float64), 2.0, "x", "stay and zoom in by this factor",
                      zoom=lambda s, m: m**s),
    "zoom_out": Preset(lambda s, m: torch.eye(4, dtype=torch.float64), 2.0, "x", "stay and zoom out by this factor",
                       zoom=lambda s, m: m ** (-s)),
}
TRAJECTORY_NAMES = tuple(PRESETS)  # presets; any of them may be followed by "+back_to_start"


def check_trajectory_name(name: object) -> tuple[str, bool]:
    """``(preset, back_to_start)`` for a trajectory name (``"orbit_left"``, ``"orbit_left+back_to_start"``), or a
    ``ValueError`` listing what is accepted."""
    preset, plus, suffix = str(name).partition("+")
    if not isinstance(name, str) or preset not in PRESETS or (plus and suffix != BACK_TO_START):
        raise ValueError(f"unknown trajectory {name!r}; accepted: {', '.join(TRAJECTORY_NAMES)}, each optionally "
                         f"followed by +{BACK_TO_START} (e.g. orbit_left+{BACK_TO_START})")
    return preset, bool(plus)


@dataclass(frozen=True)
class Trajectory:
    """Poses ``camera_to_world`` (N + 1, 4, 4), OpenCV convention; pose 0 is the start.

    ``intrinsics``: one per pose, at the image size of the file they came from (None: the rollout's own).
    ``focal_scale`` (N + 1,): each pose's focal length relative to the rollout's own (the zoom presets; None: 1).
    """

    name: str
    camera_to_world: torch.Tensor
    intrinsics: tuple[Intrinsics, ...] | None = None
    focal_scale: torch.Tensor | None = None

    def __post_init__(self) -> None:
        poses = torch.as_tensor(self.camera_to_world, dtype=torch.float32)
        if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not 2 <= poses.shape[0] <= MAX_POSES:
            raise ValueError(f"a trajectory needs poses of shape (N + 1, 4, 4) with N + 1 in [2, {MAX_POSES:,}], got "
                             f"{tuple(poses.shape)}; accepted: 2 to {MAX_POSES:,} poses")
        for index, pose in enumerate(poses):
            try:
                check_camera_to_world(pose)
            except ValueError as error:
                raise ValueError(f"trajectory pose {index}: {error}") from None
        object.__setattr__(self, "camera_to_world", poses)
        if self.intrinsics is not None:
            if self.focal_scale is not None:
                raise ValueError("a trajectory has either its own intrinsics or focal scales, not both")
            intrinsics = tuple(self.intrinsics)
            if len(intrinsics) != len(poses) or not all(isinstance(k, Intrinsics) for k in intrinsics):
                raise ValueError(f"a trajectory's intrinsics are one Intrinsics per pose: {len(poses)}, got {len(intrinsics)}")
            object.__setattr__(self, "intrinsics", intrinsics)
        if self.focal_scale is not None:
            scale = torch.as_tensor(self.focal_scale, dtype=torch.float64).reshape(-1)
            if scale.shape != (len(poses),) or not torch.isfinite(scale).all() or (scale <= 0).any():
                raise ValueError(f"a trajectory's focal scales are {len(poses)} finite numbers > 0, one per pose")
            object.__setattr__(self, "focal_scale", scale)

    @property
    def steps(self) -> int:
        """Number of generated steps (poses after the start)."""
        return self.camera_to_world.shape[0] - 1

    def cameras(self, intrinsics: Intrinsics, own_intrinsics: bool = True) -> list[Camera]:
        """One camera per pose on ``intrinsics``' image grid: the trajectory's own intrinsics scaled to that grid
        (per axis, so both fields of view are kept) when it has them and ``own_intrinsics``; else ``intrinsics``
        with the focal length times the pose's focal scale."""
        if self.intrinsics is not None and own_intrinsics:
            return [Camera(k.scaled_to(intrinsics.width, intrinsics.height), pose)
                    for k, pose in zip(self.intrinsics, self.camera_to_world, strict=True)]
        if self.focal_scale is None:
            return [Camera(intrinsics, pose) for pose in self.camera_to_world]
        k = intrinsics
        return [Camera(Intrinsics(k.fx * float(s), k.fy * float(s), k.cx, k.cy, k.width, k.height), pose)
                for s, pose in zip(self.focal_scale, self.camera_to_world, strict=True)]

    def subsample(self, steps: int) -> Trajectory:
        """``steps`` generated steps picked evenly along this path, keeping its first and its last pose."""
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.steps:
            raise ValueError(f"a path of {self.steps} steps subsamples to 1 to {self.steps} steps, got {steps!r}")
        index = torch.linspace(0, self.steps, steps + 1, dtype=torch.float64).round().long().tolist()
        return Trajectory(
            name=self.name, camera_to_world=self.camera_to_world[index],
            intrinsics=None if self.intrinsics is None else tuple(self.intrinsics[i] for i in index),
            focal_scale=None if self.focal_scale is None else self.focal_scale[index])

    def to_dict(self) -> dict:
        data = {
            "format": JSON_FORMAT,
            "convention": "opencv",
            "pose": "camera_to_world",
            "name": self.name,
            "camera_to_world": self.camera_to_world.tolist(),
        }
        if self.intrinsics is not None:
            data["intrinsics"] = [k.to_dict() for k in self.intrinsics]
        if self.focal_scale is not None:
            data["focal_scale"] = self.focal_scale.tolist()
        return data

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
        poses = data["camera_to_world"]
        if isinstance(poses, list) and len(poses) > MAX_POSES:
            raise ValueError(f"trajectory JSON: {len(poses):,} poses; accepted: 2 to {MAX_POSES:,} poses")
        try:
            poses = torch.tensor(poses, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError) as error:
            raise ValueError(f"trajectory JSON: 'camera_to_world' must be a list of 4x4 number matrices ({error})") from None
        name = data.get("name", "custom")
        if not isinstance(name, str) or len(name) > 200:
            raise ValueError("trajectory JSON: 'name' must be text of at most 200 characters")
        intrinsics = data.get("intrinsics")
        if intrinsics is not None:
            if not isinstance(intrinsics, list):
                raise ValueError("trajectory JSON: 'intrinsics' must be a list with one object per pose")
            try:
                intrinsics = tuple(Intrinsics.from_dict(k) for k in intrinsics)
            except ValueError as error:
                raise ValueError(f"trajectory JSON: {error}") from None
        focal_scale = data.get("focal_scale")
        if focal_scale is not None:
            try:
                focal_scale = torch.tensor(focal_scale, dtype=torch.float64)
            except (TypeError, ValueError, RuntimeError, OverflowError):
                raise ValueError("trajectory JSON: 'focal_scale' must be a list of numbers, one per pose") from None
        return cls(name=name, camera_to_world=poses, intrinsics=intrinsics, focal_scale=focal_scale)


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
    """Preset ``name`` with ``steps`` moves of a total ``magnitude`` (metres, degrees or a zoom factor, see
    ``PRESETS``). ``"<preset>+back_to_start"`` runs the preset in the first ``steps - steps // 2`` steps and comes
    back to the start pose (and focal length) along the shortest way in the other ``steps // 2``."""
    preset_name, back = check_trajectory_name(name)
    if isinstance(steps, bool) or int(steps) != steps or not 0 < steps <= MAX_STEPS:
        raise ValueError(f"steps must be an integer in [1, {MAX_STEPS}], got {steps!r}")
    if back and steps < 2:
        raise ValueError(f"{name} needs at least 2 steps (one out, one back), got {steps}")
    preset = PRESETS[preset_name]
    magnitude = preset.magnitude if magnitude is None else float(magnitude)
    if not math.isfinite(magnitude) or magnitude < 0:
        raise ValueError(f"magnitude must be a finite number >= 0, got {magnitude!r}")
    if preset.unit == "x" and not 1 <= magnitude <= 10:
        raise ValueError(f"{preset_name}'s magnitude is a zoom factor in [1, 10], got {magnitude:g}")
    start = torch.eye(4, dtype=torch.float64) if start_camera_to_world is None else torch.as_tensor(start_camera_to_world, dtype=torch.float64)
    out = int(steps) - int(steps) // 2 if back else int(steps)
    poses = [start @ preset.motion(i / out, magnitude) for i in range(out + 1)]
    zoom = [preset.zoom(i / out, magnitude) if preset.zoom else 1.0 for i in range(out + 1)]
    for i in range(1, int(steps) - out + 1):  # the way back: poses along the shortest arc, the zoom in log space
        t = i / (int(steps) - out)
        poses.append(interpolate_poses(poses[out], poses[0], t))
        zoom.append(zoom[out] ** (1 - t))
    return Trajectory(name=name, camera_to_world=torch.stack(poses).float(),
                      focal_scale=torch.tensor(zoom, dtype=torch.float64) if preset.zoom else None)
