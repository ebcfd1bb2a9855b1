"""No memory: every read is empty, so the generator sees only noise (the forgetting baseline)."""

from __future__ import annotations

import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.memories.base import MemoryRead, MemoryStats, Observation, SpatialMemory

__all__ = ["NoMemory"]


class NoMemory(SpatialMemory):
    name = "none"
    features = "none"
    display_color = "#7f7f7f"
    cache_label = "nothing stored"

    def write(self, observation: Observation) -> None:
        pass

    def read(self, camera: Camera, latent_shape: tuple[int, int, int]) -> MemoryRead:
        channels, height, width = latent_shape
        latent, mask = torch.zeros(latent_shape), torch.zeros(height, width, dtype=torch.bool)
        return MemoryRead(latent=latent, mask=mask)

    def cached_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(0, 3), torch.zeros(0, 0)

    def stats(self) -> MemoryStats:
        return MemoryStats(points=0, bytes=0)

    def reset(self) -> None:
        pass

    def snapshot(self) -> object:
        return None  # nothing stored, nothing to go back to

    def restore(self, snapshot: object) -> None:
        pass
