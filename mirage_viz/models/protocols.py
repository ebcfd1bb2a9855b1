"""What the backbone asks of a generator and of a depth estimator: a new backend is a class with these methods.

Tensors cross these methods on the CPU in float32; each model moves them to its own device and dtype.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["DepthEstimator", "LatentCodec", "LatentGenerator"]


@runtime_checkable
class LatentCodec(Protocol):
    """Encodes images to the latents the memories keep and decodes them back (a VAE)."""

    @property
    def downsample_factor(self) -> int:
        """Pixels per latent cell along each side (f)."""

    @property
    def latent_channels(self) -> int:
        """Channels of a latent (C)."""

    def encode(self, images: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """images (B, 3, H, W) in [0, 1] -> scaled latents (B, C, H / f, W / f)."""

    def decode(self, latents: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """scaled latents (B, C, h, w) -> images (B, 3, h * f, w * f) in [0, 1]."""


@runtime_checkable
class LatentGenerator(Protocol):
    """Generates a view's latent from the memory's warped latent and its coverage mask."""

    @property
    def size_multiple(self) -> int:
        """Latent grids must be multiples of this (the generator's own downsampling)."""

    def generate(self, warped_latent: torch.Tensor, mask: torch.Tensor, num_inference_steps: int,
                 generator: torch.Generator, device: torch.device, dtype: torch.dtype,
                 known_cells: bool = False) -> torch.Tensor:
        """warped latent (C, h, w), 0 in holes, and mask (h, w), 1 where memory covers -> latent (C, h, w).
        ``known_cells``: the covered cells come back as the warped latent (RePaint-style where the model allows)."""

    def with_prompt(self, prompt: str) -> LatentGenerator:
        """The same model conditioned on ``prompt`` (itself when it takes no prompt or already has it)."""


@runtime_checkable
class DepthEstimator(Protocol):
    """Estimates metric depth from one image."""

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this (1: any size)."""

    def estimate(self, image: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """image (3, H, W) in [0, 1] -> metric depth (H, W) > 0."""
