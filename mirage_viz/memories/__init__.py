"""Spatial memories behind one interface: Mirage's latent memory, the RGB point cloud, none."""

from .base import FeatureKind, MemoryInfo, MemoryRead, MemoryStats, Observation, SpatialMemory
from .latent import LIFT_RESOLUTIONS, STORAGE_DTYPES, LatentSpatialMemory, lift_latents
from .none import NoMemory
from .point_cache import PointCache
from .rgb import RGBPointCloudMemory
from .voxel_cache import FUSION_MODES, VoxelPointCache

MEMORY_NAMES = ("latent", "rgb", "none")

__all__ = [
    "FUSION_MODES",
    "LIFT_RESOLUTIONS",
    "MEMORY_NAMES",
    "STORAGE_DTYPES",
    "PointCache",
    "VoxelPointCache",
    "FeatureKind",
    "MemoryInfo",
    "MemoryRead",
    "MemoryStats",
    "Observation",
    "SpatialMemory",
    "LatentSpatialMemory",
    "RGBPointCloudMemory",
    "NoMemory",
    "lift_latents",
]
