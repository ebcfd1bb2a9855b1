"""mirage_viz: see, teach and measure latent spatial memory for video world models.

Camera convention everywhere: OpenCV (x right, y down, z forward), poses as ``camera_to_world``.

The names below load on first use (PEP 562), so ``import mirage_viz.cli`` stays light: the command line
handles Ctrl-C during the heavy imports (torch, open3d, diffusers) like any other interrupt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "backbone": ("Backbone", "build_backbone", "depth_model_for", "load_backbone", "load_embedded_backbone"),
    "cameras": ("Camera", "Intrinsics"),
    "depth": ("DEPTH_DOWNSAMPLE_MODES", "downsample_depth"),
    "drive": ("DriveSession", "MOVES"),
    "engine": ("Rollout", "RolloutConfig", "RolloutEngine", "StepRecord", "iter_rollout", "run_rollout"),
    "geometry": ("backproject_depth", "project_points", "splat_points"),
    "outputs": ("OutputParts", "write_rollout"),
    "memories": ("MEMORY_NAMES", "LatentSpatialMemory", "MemoryRead", "MemoryStats", "NoMemory", "Observation",
                 "RGBPointCloudMemory", "SpatialMemory"),
    "trajectories": ("PRESETS", "TRAJECTORY_NAMES", "Trajectory", "load_trajectory", "make_trajectory"),
    "worlds": ("DEFAULT_WORLD", "WORLD_NAMES", "SyntheticWorld", "make_world"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from .backbone import Backbone, build_backbone, depth_model_for, load_backbone, load_embedded_backbone
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
    from .outputs import OutputParts, write_rollout
    from .trajectories import PRESETS, TRAJECTORY_NAMES, Trajectory, load_trajectory, make_trajectory
    from .worlds import DEFAULT_WORLD, WORLD_NAMES, SyntheticWorld, make_world


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'mirage_viz' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])

__all__ = [
    "Backbone",
    "Camera",
    "DEFAULT_WORLD",
    "DEPTH_DOWNSAMPLE_MODES",
    "DriveSession",
    "Intrinsics",
    "MOVES",
    "LatentSpatialMemory",
    "MEMORY_NAMES",
    "MemoryRead",
    "MemoryStats",
    "NoMemory",
    "Observation",
    "OutputParts",
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
    "build_backbone",
    "depth_model_for",
    "downsample_depth",
    "load_backbone",
    "load_embedded_backbone",
    "load_trajectory",
    "make_trajectory",
    "write_rollout",
    "make_world",
    "project_points",
    "iter_rollout",
    "run_rollout",
    "splat_points",
]
