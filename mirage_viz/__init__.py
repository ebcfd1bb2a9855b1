"""mirage_viz: see, teach and measure latent spatial memory for video world models.

Camera convention everywhere: OpenCV (x right, y down, z forward), poses as ``camera_to_world``.

The package is built in layers, each importing only the ones before it (``tests/test_layers.py`` checks):

0. base: ``checks``, ``image``, ``inputs``, ``metrics``
1. ``geometry``: cameras, rays and poses, projection, the splat, depth downsampling
2. ``memories`` (latent, RGB, none) and ``models`` (VAE, denoiser, depth, hub access)
3. ``backbone`` (the models together) and ``scenes`` (worlds, trajectories, photos, training views)
4. ``rollout``: config and setup, one step, the engine, records, drive mode
5. ``viz`` (pictures of a rollout) and ``training``
6. ``outputs`` (the files a rollout leaves), ``bench`` (which writes its own) and ``sweep`` (many rollouts, one table)
7. ``ui`` (the Gradio app, sessions, the notebook inspector) and the command line (``cli``)

The names below load on first use (PEP 562), so ``import mirage_viz.cli`` stays light: the command line
handles Ctrl-C during the heavy imports (torch, open3d, diffusers) like any other interrupt. Modules that moved
into the layers still import from their old paths (``mirage_viz.engine``, ``mirage_viz.figures``, ...), with a
``DeprecationWarning`` naming the new one; the old paths go in version 0.2.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types
import warnings
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

# modules that moved into the layers: old name -> new module (imports of the old name keep working, with a warning)
MOVED_MODULES = {
    "app": "ui.app", "cameras": "geometry.cameras", "data": "scenes.data", "depth": "geometry.depth",
    "drive": "rollout.drive", "engine": "rollout", "export": "outputs.exports", "figures": "viz.figures",
    "hub": "models.hub", "inspector": "ui.inspector", "io": "outputs", "output_dir": "outputs.folder",
    "pca": "viz.pca", "photo": "scenes.photo", "report": "viz.report", "sessions": "ui.sessions",
    "step": "rollout.step", "step_view": "viz.step_view", "trajectories": "scenes.trajectories",
    "worlds": "scenes.worlds",
}

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


_UNSET = object()  # no value: what a moved module had before a write


class _MovedModule(types.ModuleType):
    """An old module path: every attribute is read from (and written to) the module that took its place."""

    def __init__(self, name: str, target: types.ModuleType) -> None:
        super().__init__(name, target.__doc__)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_replaced", {})  # name -> the real module's values before each write through this path

    def __getattr__(self, name: str) -> object:
        return getattr(object.__getattribute__(self, "_target"), name)

    def __setattr__(self, name: str, value: object) -> None:
        if name.startswith("__"):
            object.__setattr__(self, name, value)
            return
        target = object.__getattribute__(self, "_target")
        object.__getattribute__(self, "_replaced").setdefault(name, []).append(getattr(target, name, _UNSET))
        setattr(target, name, value)  # a monkeypatch reaches the real module

    def __delattr__(self, name: str) -> None:
        """Undo the last write made through this path: the real module gets back what it had before it (a
        monkeypatch's undo deletes what it set when the old value was not in this module's own ``__dict__``, as
        pytest 9.2 does)."""
        if name.startswith("__"):
            object.__delattr__(self, name)
            return
        target = object.__getattribute__(self, "_target")
        earlier = object.__getattribute__(self, "_replaced").get(name)
        original = earlier.pop() if earlier else _UNSET
        if original is _UNSET:
            delattr(target, name)
        else:
            setattr(target, name, original)

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_target"))


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``mirage_viz.<old name>`` for every entry of :data:`MOVED_MODULES`."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        package, _, old = fullname.partition(".")
        if package != __name__ or old not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        new = f"{__name__}.{MOVED_MODULES[spec.name.partition('.')[2]]}"
        warnings.warn(f"{spec.name} moved to {new}; import it from there (the old path goes in 0.2)", DeprecationWarning,
                      stacklevel=2)
        return _MovedModule(spec.name, importlib.import_module(new))

    def exec_module(self, module: types.ModuleType) -> None:
        pass


if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedFinder())

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
