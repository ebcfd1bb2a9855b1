"""Camera conventions other tools use, converted to and from mirage_viz's one (OpenCV, ``camera_to_world``).

- OpenCV (mirage_viz, COLMAP, RealEstate10K, open3d): camera x right, y down, z forward.
- OpenGL (nerfstudio, NeRF ``transforms.json``, Blender): camera x right, y up, z backward (looks down -z).
  The same pose in both conventions differs by flipping the camera's y and z axes: ``c2w_gl = c2w_cv @ F``
  with ``F = diag(1, -1, -1, 1)`` (and ``F`` is its own inverse).
- Rotations as unit quaternions ``(w, x, y, z)`` (COLMAP's order, Hamilton product).

Each function names the convention it reads and the one it returns; none guesses.
"""

from __future__ import annotations

import torch

__all__ = ["opencv_from_opengl_camera_to_world", "opengl_from_opencv_camera_to_world", "quaternion_wxyz_from_rotation",
           "rotation_from_quaternion_wxyz", "interpolate_poses"]

_FLIP_Y_Z = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64))
QUATERNION_NORM_TOLERANCE = 1e-3  # a quaternion further from unit length than this is not a rotation as written


def opencv_from_opengl_camera_to_world(camera_to_world_opengl: torch.Tensor) -> torch.Tensor:
    """OpenGL ``camera_to_world`` (..., 4, 4) -> OpenCV ``camera_to_world`` (..., 4, 4), float64."""
    return torch.as_tensor(camera_to_world_opengl, dtype=torch.float64) @ _FLIP_Y_Z


def opengl_from_opencv_camera_to_world(camera_to_world_opencv: torch.Tensor) -> torch.Tensor:
    """OpenCV ``camera_to_world`` (..., 4, 4) -> OpenGL ``camera_to_world`` (..., 4, 4), float64."""
    return torch.as_tensor(camera_to_world_opencv, dtype=torch.float64) @ _FLIP_Y_Z


def rotation_from_quaternion_wxyz(quaternion: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``(w, x, y, z)`` (4,) -> rotation matrix (3, 3) float64.

    Raises ``ValueError`` when the quaternion is not finite or not of unit length (within
    ``QUATERNION_NORM_TOLERANCE``): such a quaternion would write a scaled rotation, not a camera.
    """
    q = torch.as_tensor(quaternion, dtype=torch.float64)
    if q.shape != (4,) or not torch.isfinite(q).all():
        raise ValueError(f"a rotation quaternion is 4 finite numbers (w, x, y, z), got {q.tolist()}")
    norm = float(q.norm())
    if abs(norm - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(f"the quaternion (w, x, y, z) = {[round(v, 6) for v in q.tolist()]} has length {norm:.6g}; "
                         f"accepted: a unit quaternion (length 1 within {QUATERNION_NORM_TOLERANCE:g})")
    w, x, y, z = (q / norm).tolist()
    return torch.tensor([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ], dtype=torch.float64)


def quaternion_wxyz_from_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """Rotation matrix (3, 3) -> unit quaternion ``(w, x, y, z)`` (4,) float64 with ``w >= 0``."""
    r = torch.as_tensor(rotation, dtype=torch.float64)
    # The four candidates from the diagonal; the largest is the best conditioned (Shepperd's method).
    diagonal = torch.stack([1 + r[0, 0] + r[1, 1] + r[2, 2], 1 + r[0, 0] - r[1, 1] - r[2, 2],
                            1 - r[0, 0] + r[1, 1] - r[2, 2], 1 - r[0, 0] - r[1, 1] + r[2, 2]])
    best = int(diagonal.argmax())
    s = 2.0 * torch.sqrt(diagonal[best].clamp_min(1e-300))
    if best == 0:
        q = torch.stack([s / 4, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s])
    elif best == 1:
        q = torch.stack([(r[2, 1] - r[1, 2]) / s, s / 4, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s])
    elif best == 2:
        q = torch.stack([(r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, s / 4, (r[1, 2] + r[2, 1]) / s])
    else:
        q = torch.stack([(r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, s / 4])
    q = q / q.norm()
    return -q if q[0] < 0 else q


def interpolate_poses(start: torch.Tensor, end: torch.Tensor, t: float) -> torch.Tensor:
    """The rigid pose a fraction ``t`` in [0, 1] of the way from ``start`` to ``end`` (both (4, 4)
    ``camera_to_world``, any convention, returned float64): positions on the straight line, rotations along the
    shortest arc (quaternion slerp)."""
    a, b = torch.as_tensor(start, dtype=torch.float64), torch.as_tensor(end, dtype=torch.float64)
    qa, qb = quaternion_wxyz_from_rotation(a[:3, :3]), quaternion_wxyz_from_rotation(b[:3, :3])
    dot = float(qa @ qb)
    if dot < 0:  # the shorter way round
        qb, dot = -qb, -dot
    if dot > 0.9995:  # nearly the same rotation: a normalized linear blend is exact enough
        q = qa + t * (qb - qa)
    else:
        angle = torch.arccos(torch.tensor(dot, dtype=torch.float64))
        q = (torch.sin((1 - t) * angle) * qa + torch.sin(t * angle) * qb) / torch.sin(angle)
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = rotation_from_quaternion_wxyz(q / q.norm())
    pose[:3, 3] = (1 - t) * a[:3, 3] + t * b[:3, 3]
    return pose
