"""Mirage's latent spatial memory: latent cells lifted to 3D, read by one latent-resolution splat."""

from __future__ import annotations

import time

import torch

from ..cameras import Camera
from ..depth import DEPTH_DOWNSAMPLE_MODES, downsample_depth
from ..geometry import backproject_depth, splat_points
from .base import MemoryRead, MemoryStats, Observation, SpatialMemory
from .point_cache import PointCache

__all__ = ["LatentSpatialMemory", "lift_latents"]


def lift_latents(observation: Observation, depth_mode: str = "bilinear") -> tuple[torch.Tensor, torch.Tensor]:
    """Lift every latent cell: returns world points (h * w, 3) and latent features (h * w, C).

    Depth comes down to the latent grid with ``depth_mode``; the intrinsics are scaled to it per axis.
    """
    channels, height, width = observation.latent.shape
    latent_camera = observation.camera.scaled_to(width, height)
    latent_depth = downsample_depth(observation.depth, height, width, depth_mode)  # (h, w)
    points = backproject_depth(latent_depth, latent_camera)  # [h*w, 3] world frame
    features = observation.latent.reshape(channels, -1).T  # [h*w, C]
    return points, features


class LatentSpatialMemory(SpatialMemory):
    """Store: lift each frame's latent cells with depth. Read: z-buffer splat at latent resolution."""

    name = "latent"

    def __init__(self, depth_mode: str = "bilinear", dtype: torch.dtype = torch.float32) -> None:
        if depth_mode not in DEPTH_DOWNSAMPLE_MODES:
            raise ValueError(f"unknown depth_mode {depth_mode!r}; accepted: {', '.join(DEPTH_DOWNSAMPLE_MODES)}")
        self.depth_mode = depth_mode
        self.cache = PointCache(dtype)

    def write(self, observation: Observation) -> None:
        self.cache.append(*lift_latents(observation, self.depth_mode))

    def read(self, camera: Camera, latent_shape: tuple[int, int, int]) -> MemoryRead:
        start = time.perf_counter()
        channels, height, width = latent_shape
        points, features = self.cache.tensors()
        if points.shape[0] == 0:
            latent, mask = torch.zeros(latent_shape), torch.zeros(height, width, dtype=torch.bool)
        else:
            splat = splat_points(points, features, camera.scaled_to(width, height))
            latent, mask = splat.features, splat.mask
        return MemoryRead(latent=latent, mask=mask, read_ms=(time.perf_counter() - start) * 1e3)

    def cached_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cache.tensors()

    def stats(self) -> MemoryStats:
        return MemoryStats(points=len(self.cache), bytes=self.cache.nbytes)

    def reset(self) -> None:
        self.cache.clear()
