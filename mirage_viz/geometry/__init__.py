"""Layer 1, geometry: cameras (OpenCV), pixel rays and poses, projection, the z-buffer splat, visibility, depth
downsampling.

Imports only the base modules (checks); every layer above builds on it.
"""

from mirage_viz.geometry.cameras import (
    FOV_RANGE,
    MAX_CAMERA_DISTANCE,
    Camera,
    Intrinsics,
    check_camera_to_world,
    check_fov_degrees,
    invert_pose,
    look_at_camera_to_world,
)
from mirage_viz.geometry.depth import DEPTH_DOWNSAMPLE_MODES, DepthMode, check_depth_mode, downsample_depth
from mirage_viz.geometry.projection import (
    backproject_depth,
    camera_rays,
    check_depth,
    make_pose,
    pixel_grid,
    project_points,
    rotation_x,
    rotation_y,
    rows_with_depth,
)
from mirage_viz.geometry.splat import (
    DEPTH_TIE_BITS,
    SplatResult,
    SplatWorkspace,
    refine_splat_subcell,
    refine_splat_subcell_reference,
    splat_points,
    splat_points_reference,
)
from mirage_viz.geometry.visibility import camera_center, seen_along_ray

__all__ = [
    "DEPTH_DOWNSAMPLE_MODES", "DEPTH_TIE_BITS", "FOV_RANGE", "MAX_CAMERA_DISTANCE", "Camera", "DepthMode",
    "Intrinsics", "SplatResult", "SplatWorkspace", "backproject_depth", "camera_center", "camera_rays",
    "check_camera_to_world",
    "check_depth", "check_depth_mode", "check_fov_degrees", "downsample_depth", "invert_pose",
    "look_at_camera_to_world", "make_pose", "pixel_grid", "project_points", "refine_splat_subcell",
    "refine_splat_subcell_reference", "rotation_x",
    "rotation_y", "rows_with_depth", "seen_along_ray", "splat_points", "splat_points_reference",
]
