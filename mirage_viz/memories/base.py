"""The one interface every spatial memory implements: write an observation, read a camera."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Literal

import torch

from mirage_viz.geometry.cameras import Camera

__all__ = ["FeatureKind", "MemoryInfo", "Observation", "MemoryRead", "MemoryStats", "PointCloudMemory", "SpatialMemory"]

FeatureKind = Literal["latent", "color", "none"]


@dataclass
class Observation:
    """One frame the world model produced (or was given), as a memory stores it."""

    camera: Camera  # pixel-resolution intrinsics, camera_to_world pose
    image: torch.Tensor  # (3, H, W) in [0, 1]
    latent: torch.Tensor  # (C, h, w) scaled VAE latent of ``image``
    depth: torch.Tensor  # (H, W) metric depth > 0; NaN where there is no depth (a hole: nothing is lifted there)


@dataclass
class MemoryRead:
    """What a memory answers for a target camera: the generator's conditioning."""

    latent: torch.Tensor  # (C, h, w) conditioning latent; 0 in holes
    mask: torch.Tensor  # (h, w) bool; True where memory covers the cell
    render: torch.Tensor | None = None  # (3, H, W) pixel render, RGB memory only
    render_mask: torch.Tensor | None = None  # (H, W) bool pixel hit mask, RGB memory only
    # which cached point each cell of the read's own splat came from: the index into the cache as read (the winner
    # of its z-test), -1 where nothing landed. (h, w) int64 for the latent memory; (H, W) int32 at pixel resolution
    # for the RGB memory (half the bytes of a pixel grid; a cache has fewer than 2**31 points). None: no cache.
    source: torch.Tensor | None = None
    source_depth: torch.Tensor | None = None  # same grid as ``source``, float32: the winner's depth in the camera; 0 where empty

    @property
    def coverage(self) -> float:
        """Fraction of latent cells the memory covers."""
        return float(self.mask.float().mean())


@dataclass(frozen=True)
class MemoryStats:
    points: int
    bytes: int


@dataclass(frozen=True)
class MemoryInfo:
    """What a memory says about itself, so viewers and exports ask rather than match its name."""

    name: str
    features: FeatureKind  # its cache's features: latent channels, RGB colours in [0, 1], or nothing stored
    color: str  # its colour in charts and legends (CSS hex)
    label: str  # what its cache is called in legends, e.g. "RGB point cloud"


class SpatialMemory(ABC):
    """A spatial memory for a world model: ``write`` each frame, ``read`` before each new one."""

    name: str = "memory"
    features: FeatureKind = "none"  # what its cache's feature columns are (see MemoryInfo)
    display_color: str = "#7f7f7f"
    cache_label: str = "cache"
    append_only: bool = True  # every write only adds points (False for fused caches)

    def info(self) -> MemoryInfo:
        """What this memory is, for viewers and exports."""
        return MemoryInfo(name=self.name, features=self.features, color=self.display_color, label=self.cache_label)

    @abstractmethod
    def write(self, observation: Observation) -> None:
        """Store a frame."""

    @abstractmethod
    def read(self, camera: Camera, latent_shape: tuple[int, int, int]) -> MemoryRead:
        """Conditioning for ``camera`` (pixel intrinsics) on a latent of ``latent_shape`` (C, h, w)."""

    @abstractmethod
    def cached_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Everything stored, in write order: world points (N, 3) and features (N, C)."""

    @abstractmethod
    def stats(self) -> MemoryStats:
        """Points stored and their bytes."""

    @abstractmethod
    def reset(self) -> None:
        """Forget everything."""

    @abstractmethod
    def snapshot(self) -> object:
        """A cheap token of what is stored now, for :meth:`restore` (an undo); opaque to callers.

        Taking one copies nothing: a flat cache's token is its point count, a fused cache's the
        tensors it holds (never changed in place).
        """

    @abstractmethod
    def restore(self, snapshot: object) -> None:
        """Go back to exactly the state of ``snapshot``, taken earlier from this memory since its last reset.

        Raises ``ValueError`` for a snapshot this memory cannot go back to (one of a later state).
        """


class PointCloudMemory(SpatialMemory):
    """A memory that keeps its points in a cache, ``self.cache`` (a flat ``PointCache`` or a ``VoxelPointCache``):
    subclasses write and read; counting, forgetting and undoing are the cache's."""

    cache: object  # set by the subclass: PointCache | VoxelPointCache

    @property
    def append_only(self) -> bool:
        return self.cache.append_only

    def cached_points(self) -> tuple[torch.Tensor, torch.Tensor]:
        points, features = self.cache.tensors()
        return points.float(), features.float()

    def stats(self) -> MemoryStats:
        return MemoryStats(points=len(self.cache), bytes=self.cache.nbytes)

    def reset(self) -> None:
        self.cache.clear()

    def snapshot(self) -> object:
        return self.cache.snapshot()

    def restore(self, snapshot: object) -> None:
        self.cache.restore(snapshot)
