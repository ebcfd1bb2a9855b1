"""Pinhole cameras in the OpenCV convention.

Convention (used everywhere in mirage_viz):
- camera frame: x right, y down, z forward (OpenCV);
- ``camera_to_world`` (c2w) maps camera-frame points to the world: ``X_world = R @ X_cam + t``;
- ``world_to_camera`` (w2c) is its inverse;
- pixel ``(u, v)`` has its centre at integer coordinates: column ``u``, row ``v``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

__all__ = ["FOV_RANGE", "MAX_CAMERA_DISTANCE", "check_fov_degrees", "Intrinsics", "Camera", "check_camera_to_world", "invert_pose", "look_at_camera_to_world"]

MAX_CAMERA_DISTANCE = 1_000.0  # metres from the world origin: float32 keeps 0.1 mm there


FOV_RANGE = (10.0, 150.0)  # horizontal fields of view a rollout accepts, in degrees


def check_fov_degrees(fov_degrees: object) -> float:
    """``fov_degrees`` as a float when it is a horizontal field of view a rollout accepts, else a ``ValueError``."""
    low, high = FOV_RANGE
    if isinstance(fov_degrees, bool) or not isinstance(fov_degrees, (int, float)) or not low <= fov_degrees <= high:
        raise ValueError(f"fov_degrees must be a number of degrees in [{low:g}, {high:g}], got {fov_degrees!r}")
    return float(fov_degrees)


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"intrinsics: {name} must be a finite number, got {value}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(
                f"intrinsics: focal lengths must be > 0, got fx={self.fx}, fy={self.fy}"
            )
        if int(self.width) != self.width or int(self.height) != self.height or self.width <= 0 or self.height <= 0:
            raise ValueError(
                f"intrinsics: width and height must be positive integers, got {self.width}x{self.height}"
            )

    @classmethod
    def from_fov(cls, width: int, height: int, fov_x_degrees: float = 60.0) -> Intrinsics:
        """Square pixels, principal point at the image centre, horizontal field of view in degrees."""
        if not (0.0 < fov_x_degrees < 180.0):
            raise ValueError(f"fov_x_degrees must be in (0, 180), got {fov_x_degrees}")
        fx = 0.5 * width / math.tan(math.radians(fov_x_degrees) / 2.0)
        return cls(fx=fx, fy=fx, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0, width=width, height=height)

    def scaled_to(self, width: int, height: int) -> Intrinsics:
        """The same camera seen on a grid of ``width`` x ``height`` cells (e.g. the latent grid).

        Scaled per axis: fx, cx by ``width / self.width``; fy, cy by ``height / self.height``.
        Centres are kept at cell centres: a pixel-space point ``u`` maps to ``(u + 0.5) * s - 0.5``.
        """
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=(self.cx + 0.5) * sx - 0.5,
            cy=(self.cy + 0.5) * sy - 0.5,
            width=int(width),
            height=int(height),
        )

    def cropped(self, left: int, top: int, width: int, height: int) -> Intrinsics:
        """The same camera seen through the window of ``width`` x ``height`` pixels whose top-left pixel is
        (``left``, ``top``): the principal point moves by the window's corner, the focal lengths stay."""
        return Intrinsics(fx=self.fx, fy=self.fy, cx=self.cx - left, cy=self.cy - top, width=int(width), height=int(height))

    @property
    def matrix(self) -> torch.Tensor:
        """The 3x3 calibration matrix K (float64): ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``."""
        return torch.tensor([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=torch.float64)

    @property
    def fov_x_degrees(self) -> float:
        """The horizontal field of view, in degrees."""
        return math.degrees(2.0 * math.atan(0.5 * self.width / self.fx))

    def to_dict(self) -> dict:
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: object) -> Intrinsics:
        """Intrinsics from :meth:`to_dict`'s keys, or a ``ValueError`` naming what is missing or wrong."""
        keys = ("fx", "fy", "cx", "cy", "width", "height")
        if not isinstance(data, dict) or any(key not in data for key in keys):
            raise ValueError(f"intrinsics must be an object with {', '.join(keys)}, got {str(data)[:200]}")
        numbers = {key: data[key] for key in keys}
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers.values()):
            raise ValueError(f"intrinsics: {', '.join(keys)} must be numbers, got {numbers}")
        if any(not float(numbers[key]).is_integer() for key in ("width", "height")):
            raise ValueError(f"intrinsics: width and height must be whole pixels, got {numbers['width']}x{numbers['height']}")
        return cls(fx=float(numbers["fx"]), fy=float(numbers["fy"]), cx=float(numbers["cx"]), cy=float(numbers["cy"]),
                   width=int(numbers["width"]), height=int(numbers["height"]))


def invert_pose(pose: torch.Tensor) -> torch.Tensor:
    """Inverse of a rigid 4x4 transform: (4, 4) -> (4, 4)."""
    rotation = pose[:3, :3]
    out = torch.eye(4, dtype=pose.dtype)
    out[:3, :3] = rotation.T
    out[:3, 3] = -rotation.T @ pose[:3, 3]
    return out


def look_at_camera_to_world(eye: torch.Tensor, target: torch.Tensor, down: tuple[float, float, float] = (0.0, 1.0, 0.0)) -> torch.Tensor:
    """OpenCV camera_to_world (4, 4) at ``eye`` whose +z looks at ``target``; ``down`` is the world's down."""
    eye = torch.as_tensor(eye, dtype=torch.float64)
    forward = torch.as_tensor(target, dtype=torch.float64) - eye
    forward = forward / forward.norm()
    right = torch.linalg.cross(torch.tensor(down, dtype=torch.float64), forward)
    right = right / right.norm()
    new_down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, new_down, forward, eye
    return c2w.float()


def check_camera_to_world(pose: object) -> torch.Tensor:
    """``pose`` as a float32 (4, 4) ``camera_to_world``, or ``ValueError`` saying why it is not a camera pose.

    A camera pose is rigid: a proper rotation (orthonormal, determinant +1: no mirror), a bottom row
    [0, 0, 0, 1], and a finite position at most ``MAX_CAMERA_DISTANCE`` metres from the origin.
    """
    try:
        pose = torch.as_tensor(pose, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"camera_to_world must be a 4x4 matrix of numbers ({error})") from None
    if pose.shape != (4, 4):
        raise ValueError(f"camera_to_world must have shape (4, 4), got {tuple(pose.shape)}")
    if not torch.isfinite(pose).all():
        raise ValueError("camera_to_world must be finite (no NaN or infinity)")
    if not torch.allclose(pose[3], torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64), atol=1e-6):
        raise ValueError(f"camera_to_world's bottom row must be [0, 0, 0, 1], got {[round(v, 6) for v in pose[3].tolist()]}")
    rotation = pose[:3, :3]
    if not torch.allclose(rotation @ rotation.T, torch.eye(3, dtype=torch.float64), atol=1e-3):
        raise ValueError("camera_to_world[:3, :3] must be a rotation matrix (orthonormal rows and columns)")
    if torch.linalg.det(rotation) < 0:
        raise ValueError("camera_to_world[:3, :3] is a mirror (determinant -1); a camera pose needs a proper rotation "
                         "(determinant +1): flip one axis of the rotation, or convert from a left-handed convention")
    distance = float(pose[:3, 3].norm())
    if distance > MAX_CAMERA_DISTANCE:
        raise ValueError(f"the camera is {distance:.3g} m from the origin; accepted: at most {MAX_CAMERA_DISTANCE:,.0f} m")
    return pose.float()


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: intrinsics and a ``camera_to_world`` pose (4, 4), OpenCV convention."""

    intrinsics: Intrinsics
    camera_to_world: torch.Tensor  # (4, 4) float32

    def __post_init__(self) -> None:
        object.__setattr__(self, "camera_to_world", check_camera_to_world(self.camera_to_world))

    @functools.cached_property
    def world_to_camera(self) -> torch.Tensor:
        """(4, 4) world-to-camera transform (computed once per camera; do not modify it in place)."""
        return invert_pose(self.camera_to_world)

    def scaled_to(self, width: int, height: int) -> Camera:
        """The same pose with intrinsics scaled to a ``width`` x ``height`` grid (see :meth:`Intrinsics.scaled_to`)."""
        scaled = object.__new__(Camera)  # the pose was validated when this camera was made
        object.__setattr__(scaled, "intrinsics", self.intrinsics.scaled_to(width, height))
        object.__setattr__(scaled, "camera_to_world", self.camera_to_world)
        return scaled
