"""A small PatchGAN discriminator and its hinge losses, for training a decoder to draw edges MSE blurs.

Images are (B, 3, H, W) in [0, 1]; the discriminator answers one logit per overlapping patch (B, 1, H / 8, W / 8):
positive for a true render, negative for a reconstruction. Spectral normalisation keeps it Lipschitz, so a few
hundred CPU steps stay stable without a warm-up schedule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["PatchDiscriminator", "discriminator_hinge_loss", "generator_hinge_loss"]


class PatchDiscriminator(nn.Module):
    """Three stride-2 convolutions (receptive field 22 px) and a 3x3 head: (B, 3, H, W) -> (B, 1, H / 8, W / 8)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [3, width, 2 * width, 2 * width]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        layers.append(spectral_norm(nn.Conv2d(channels[-1], 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)


def discriminator_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
