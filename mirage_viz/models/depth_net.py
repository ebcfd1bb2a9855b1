"""The embedded monocular depth estimator: a small convolutional encoder-decoder.

It predicts log metric depth at half resolution from an RGB image in [0, 1] and upsamples it
bilinearly; trained on the synthetic worlds (``python -m mirage_viz.training.depth``). It is the
depth used for generated frames when the true depth is not chosen.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

__all__ = ["DepthNet"]


def _block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(8, c_out), nn.SiLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(8, c_out), nn.SiLU(),
    )


class DepthNet(ModelMixin, ConfigMixin):
    """images (B, 3, H, W) in [0, 1] -> metric depth (B, H, W) > 0; H, W multiples of 16."""

    @register_to_config
    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 96), min_depth: float = 0.05, max_depth: float = 50.0):
        super().__init__()
        self.down = nn.ModuleList()
        c_in = 3
        for width in widths:
            self.down.append(_block(c_in, width, stride=2))
            c_in = width
        self.up = nn.ModuleList()
        for skip, width in zip(reversed(widths[:-1]), reversed(widths[:-1])):
            self.up.append(_block(c_in + skip, width))
            c_in = width
        self.head = nn.Conv2d(c_in, 1, 3, padding=1)

    def forward_log_depth(self, images: torch.Tensor) -> torch.Tensor:
        """Log depth (B, 1, H / 2, W / 2)."""
        x = images * 2 - 1
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x) + 1.0  # log(e) ~ a few metres to start from

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: the encoder halves them four times."""
        return 16

    @torch.no_grad()
    def estimate(self, image: torch.Tensor, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """image (3, H, W) in [0, 1] -> metric depth (H, W), run on ``device`` in ``dtype``."""
        return self(image[None].to(device, dtype))[0].float().cpu()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % 16 or width % 16:
            raise ValueError(f"DepthNet needs H and W multiples of 16, got {height}x{width}")
        log_depth = F.interpolate(self.forward_log_depth(images), size=(height, width), mode="bilinear", align_corners=False)
        return log_depth.exp().clamp(self.config.min_depth, self.config.max_depth)[:, 0]
