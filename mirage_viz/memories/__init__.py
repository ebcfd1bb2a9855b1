"""Layer 2, memories: spatial memories behind one interface: Mirage's latent memory, the RGB point cloud, none.

Imports geometry and the base modules; never models, the rollout, pictures or the app.
"""

from mirage_viz.memories.base import FeatureKind, MemoryInfo, MemoryRead, MemoryStats, Observation, PointCloudMemory, SpatialMemory
from mirage_viz.memories.latent import (LIFT_RESOLUTIONS, STORAGE_DTYPES, WARP_MODES, LatentOptions, LatentSpatialMemory,
                                       lift_latents)
from mirage_viz.memories.none import NoMemory
from mirage_viz.memories.point_cache import PointCache
from mirage_viz.memories.rgb import RGBPointCloudMemory
from mirage_viz.memories.voxel_cache import VoxelPointCache

MEMORY_NAMES = ("latent", "rgb", "none")

__all__ = [
    "LIFT_RESOLUTIONS",
    "MEMORY_NAMES",
    "STORAGE_DTYPES",
    "WARP_MODES",
    "PointCache",
    "VoxelPointCache",
    "FeatureKind",
    "MemoryInfo",
    "MemoryRead",
    "MemoryStats",
    "Observation",
    "PointCloudMemory",
    "SpatialMemory",
    "LatentOptions",
    "LatentSpatialMemory",
    "RGBPointCloudMemory",
    "NoMemory",
    "lift_latents",
]
