"""Image tensors to pixels: the one conversion every writer and picture uses."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["to_uint8_image"]


def to_uint8_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8 (values outside [0, 1] clipped)."""
    return (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
