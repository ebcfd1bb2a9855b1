"""No memory: every read is empty, so the generator sees only noise (the forgetting baseline)."""

from __future__ import annotations

import time

import torch

from ..cameras import Camera
from .base import MemoryRead, MemoryStats, Observation, SpatialMemory

__all__ = ["NoMemory"]


class NoMemory(SpatialMemory):
    name = "none"

    def write(self, observation: Observation) -> None:
        pass

    def read(self, camera: Camera, latent_shape: tuple[int, int, int]) -> MemoryRead:
        start = time.perf_counter()
        channels, height, width = latent_shape
        latent, mask = torch.zeros(latent_shape), torch.zeros(height, width, dtype=torch.bool)
        return MemoryRead(latent=latent, mask=mask, read_ms=(time.perf_counter() - start) * 1e3)

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
