"""mirage_viz: see, teach and measure latent spatial memory for video world models.

Camera convention everywhere: OpenCV (x right, y down, z forward), poses as ``camera_to_world``.

The package is built in layers, each importing only the ones before it (``tests/test_layers.py`` checks):

0. base: ``checks``, ``image``, ``inputs``, ``metrics``, ``options``
1. ``geometry``: cameras, rays and poses, projection, the splat, depth downsampling
2. ``memories`` (latent, RGB, none), ``models`` (VAE, denoiser, depth, hub access), ``consistency`` (no-truth scores)
3. ``backbone`` (the models together) and ``scenes`` (worlds, trajectories, photos, training views)
4. ``rollout``: config and setup, one step, the engine, records, drive mode
5. ``viz`` (pictures of a rollout) and ``training``
6. ``outputs`` (the files a rollout leaves), ``bench`` (which writes its own) and ``sweep`` (many rollouts, one table)
7. ``ui`` (the Gradio app, sessions, the notebook inspector) and the command line (``cli``)

The names below load on first use (PEP 562), so ``import mirage_viz.cli`` stays light: the command line
handles Ctrl-C during the heavy imports (torch, open3d, diffusers) like any other interrupt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "backbone": ("Backbone", "build_backbone", "depth_model_for", "load_backbone", "load_embedded_backbone"),
    "geometry": ("Camera", "DEPTH_DOWNSAMPLE_MODES", "Intrinsics", "backproject_depth", "downsample_depth",
                 "project_points", "refine_splat_subcell", "splat_points"),
    "memories": ("MEMORY_NAMES", "LatentSpatialMemory", "MemoryRead", "MemoryStats", "NoMemory", "Observation",
                 "RGBPointCloudMemory", "SpatialMemory"),
    "outputs": ("OutputParts", "write_rollout"),
    "rollout": ("MEMORY_SETTINGS", "Rollout", "RolloutConfig", "RolloutEngine", "RolloutSetup", "StepRecord", "iter_rollout", "run_rollout"),
    "rollout.drive": ("DriveSession", "MOVES"),
    "scenes.trajectories": ("PRESETS", "TRAJECTORY_NAMES", "Trajectory", "load_trajectory", "make_trajectory"),
    "scenes.worlds": ("DEFAULT_WORLD", "WORLD_NAMES", "SyntheticWorld", "make_world"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

if TYPE_CHECKING:
    from mirage_viz.backbone import Backbone, build_backbone, depth_model_for, load_backbone, load_embedded_backbone
    from mirage_viz.geometry import (
        DEPTH_DOWNSAMPLE_MODES,
        Camera,
        Intrinsics,
        backproject_depth,
        downsample_depth,
        project_points,
        refine_splat_subcell,
        splat_points,
    )
    from mirage_viz.memories import (
        MEMORY_NAMES,
        LatentSpatialMemory,
        MemoryRead,
        MemoryStats,
        NoMemory,
        Observation,
        RGBPointCloudMemory,
        SpatialMemory,
    )
    from mirage_viz.outputs import OutputParts, write_rollout
    from mirage_viz.rollout import (
        MEMORY_SETTINGS,
        Rollout,
        RolloutConfig,
        RolloutEngine,
        RolloutSetup,
        StepRecord,
        iter_rollout,
        run_rollout,
    )
    from mirage_viz.rollout.drive import MOVES, DriveSession
    from mirage_viz.scenes.trajectories import PRESETS, TRAJECTORY_NAMES, Trajectory, load_trajectory, make_trajectory
    from mirage_viz.scenes.worlds import DEFAULT_WORLD, WORLD_NAMES, SyntheticWorld, make_world


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
    "MEMORY_SETTINGS",
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
    "RolloutSetup",
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
    "refine_splat_subcell",
    "splat_points",
]
