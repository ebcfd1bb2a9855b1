"""Spatial memories behind one interface: Mirage's latent memory, the RGB point cloud, none."""

from .base import MemoryRead, MemoryStats, Observation, SpatialMemory
from .latent import LatentSpatialMemory, lift_latents
from .none import NoMemory
from .rgb import RGBPointCloudMemory

MEMORY_NAMES = ("latent", "rgb", "none")

__all__ = [
    "MEMORY_NAMES",
    "MemoryRead",
    "MemoryStats",
    "Observation",
    "SpatialMemory",
    "LatentSpatialMemory",
    "RGBPointCloudMemory",
    "NoMemory",
    "lift_latents",
]
