"""Image tensors to pixels (the one conversion every writer and picture uses), and the Gaussian blur the sharpness
scripts share."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur", "to_uint8_image"]


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 (values outside [0, 1] clipped)."""
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """images (B, C, H, W) blurred by a separable Gaussian of ``sigma`` pixels (edges replicated; taps sum to 1)."""
    radius = int(3 * sigma) + 1
    channels = images.shape[1]
    taps = torch.exp(-torch.arange(-radius, radius + 1.0) ** 2 / (2 * sigma**2))
    taps = (taps / taps.sum()).repeat(channels, 1, 1)  # (C, 1, K)
    images = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"), taps[:, :, None, :], groups=channels)
    return F.conv2d(F.pad(images, (0, 0, radius, radius), mode="replicate"), taps[:, :, :, None], groups=channels)
