"""mirage_viz: see, teach and measure latent spatial memory for video world models.

Camera convention everywhere: OpenCV (x right, y down, z forward), poses as ``camera_to_world``.
"""

from .backbone import Backbone, load_backbone, load_embedded_backbone
from .cameras import Camera, Intrinsics
from .depth import DEPTH_DOWNSAMPLE_MODES, downsample_depth
from .engine import Rollout, RolloutConfig, RolloutEngine, StepRecord, iter_rollout, run_rollout
from .geometry import backproject_depth, project_points, splat_points
from .memories import (
    MEMORY_NAMES,
    LatentSpatialMemory,
    MemoryRead,
    MemoryStats,
    NoMemory,
    Observation,
    RGBPointCloudMemory,
    SpatialMemory,
)
from .trajectories import PRESETS, TRAJECTORY_NAMES, Trajectory, load_trajectory, make_trajectory
from .worlds import DEFAULT_WORLD, WORLD_NAMES, SyntheticWorld, make_world

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "Camera",
    "DEFAULT_WORLD",
    "DEPTH_DOWNSAMPLE_MODES",
    "Intrinsics",
    "LatentSpatialMemory",
    "MEMORY_NAMES",
    "MemoryRead",
    "MemoryStats",
    "NoMemory",
    "Observation",
    "PRESETS",
    "RGBPointCloudMemory",
    "Rollout",
    "RolloutConfig",
    "RolloutEngine",
    "SpatialMemory",
    "StepRecord",
    "SyntheticWorld",
    "TRAJECTORY_NAMES",
    "Trajectory",
    "WORLD_NAMES",
    "backproject_depth",
    "downsample_depth",
    "load_backbone",
    "load_embedded_backbone",
    "load_trajectory",
    "make_trajectory",
    "make_world",
    "project_points",
    "iter_rollout",
    "run_rollout",
    "splat_points",
]
