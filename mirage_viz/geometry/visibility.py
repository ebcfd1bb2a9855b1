"""Which cached points a camera sees for certain: those that the camera they were lifted from saw along the same ray.

A point lifted from a camera's depth was visible from that camera: nothing stood on the segment between them. In a
static world, a second camera that looks at the point along the same ray, from no farther away, looks along part of
that free segment, so it sees the point too, whatever else the cache holds in front of it. The z-buffer cannot know
that: at latent resolution a point lifted from another view can land in front in the same cell (a cell straddling
a silhouette, seen from elsewhere) and win it. :func:`~mirage_viz.geometry.splat.splat_points` (``seen=``) keeps
the points clearly in front of a seen point out of its cell; on its own surface the usual tie rule still holds.

"Along the same ray" has a tolerance: the two rays to the point may differ by ``angle_cells`` of the new camera's
cells (a tenth of a cell by default), which leaves room for float rounding and little else. The rule is for a
revisit (the same camera again), and for a camera that only turns or zooms (the same centre), which sees every cached
point its earlier views saw. With a wider tolerance, a near object's edge can move over the point's ray between the
two views: its parallax against the point is a multiple of the angle between the rays (at half a cell, measured on a
48-step held-out loop, frames next to the first lost up to 1.6 dB).

Shapes are written next to tensors; points are in the world frame, cameras in the OpenCV convention with
``camera_to_world`` poses (see :mod:`mirage_viz.geometry.cameras`).
"""

from __future__ import annotations

import torch

from mirage_viz.geometry.cameras import Camera

__all__ = ["SEEN_RAY_ANGLE_CELLS", "SEEN_RAY_DISTANCE_SLACK", "camera_center", "seen_along_ray"]

SEEN_RAY_ANGLE_CELLS = 0.1  # the rays may differ by a tenth of a cell of the new camera
SEEN_RAY_DISTANCE_SLACK = 0.01  # the new camera may stand 1% farther from the point than the one that saw it


def camera_center(camera: Camera) -> torch.Tensor:
    """(3,) the camera's centre in the world frame (the translation of its ``camera_to_world`` pose)."""
    return camera.camera_to_world[:3, 3].float()


def seen_along_ray(
    points_world: torch.Tensor,
    source_centers: torch.Tensor,
    camera: Camera,
    angle_cells: float = SEEN_RAY_ANGLE_CELLS,
    distance_slack: float = SEEN_RAY_DISTANCE_SLACK,
) -> torch.Tensor:
    """(N,) bool: the points that ``camera`` sees for certain, because the camera each was lifted from saw it along
    (nearly) the same ray and ``camera`` stands no farther from it.

    Args:
        points_world: (N, 3) world frame.
        source_centers: (N, 3) world frame, the centre of the camera each point was lifted from.
        camera: the new camera; one of its cells subtends about ``1 / fx`` radians, which sets the angle tolerance.
        angle_cells: largest angle between the two rays to a point, in the new camera's cells (> 0).
        distance_slack: how much farther (a fraction) the new camera may stand from a point than its source did.
    """
    if points_world.ndim != 2 or points_world.shape[1] != 3 or source_centers.shape != points_world.shape:
        raise ValueError(f"points_world and source_centers must both have shape (N, 3), got "
                         f"{tuple(points_world.shape)} and {tuple(source_centers.shape)}")
    if not angle_cells > 0 or not distance_slack >= 0:
        raise ValueError(f"angle_cells must be > 0 and distance_slack >= 0, got {angle_cells!r} and {distance_slack!r}")
    points = points_world.float()  # [N, 3]
    from_source = points - source_centers.float()  # [N, 3] the ray the point was seen along
    from_camera = points - camera_center(camera)  # [N, 3] the ray the new camera looks along
    source_distance, camera_distance = from_source.norm(dim=1), from_camera.norm(dim=1)  # [N], [N]
    # the sine of the angle between the rays (the cross product keeps small angles exact in float32)
    sine = torch.linalg.cross(from_source, from_camera).norm(dim=1)  # [N] |a||b| sin
    tolerance = angle_cells / camera.intrinsics.fx  # radians: a cell subtends ~1/fx at the optical axis
    same_ray = (sine <= tolerance * source_distance * camera_distance) & ((from_source * from_camera).sum(dim=1) > 0)
    return same_ray & (camera_distance <= source_distance * (1.0 + distance_slack))
