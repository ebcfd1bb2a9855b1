"""Bring a pixel-resolution depth map down to a coarser grid (the latent grid).

The modes are the paper's ablation: ``bilinear`` (default), ``nearest``, ``area``, ``median``, ``min``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

from mirage_viz.checks import check_choice
from mirage_viz.geometry.projection import check_depth

__all__ = ["DEPTH_DOWNSAMPLE_MODES", "DepthMode", "check_depth_mode", "downsample_depth"]

DepthMode = Literal["bilinear", "nearest", "area", "median", "min"]
DEPTH_DOWNSAMPLE_MODES: tuple[DepthMode, ...] = get_args(DepthMode)


def check_depth_mode(mode: object) -> DepthMode:
    """``mode`` when it is a depth downsampling mode, else a ``ValueError`` saying which are."""
    return check_choice("depth_mode", mode, DEPTH_DOWNSAMPLE_MODES)


def downsample_depth(
    depth: torch.Tensor, height: int, width: int, mode: DepthMode = "bilinear", allow_holes: bool = False
) -> torch.Tensor:
    """Depth (H, W) -> (height, width). ``median`` and ``min`` need H, W multiples of the target.

    ``allow_holes=True`` accepts NaN depth (no depth there); a NaN propagates to every cell whose footprint holds
    it (``bilinear``: the 2 x 2 pixels around the sample point; ``nearest``: the one pixel; ``area``, ``median``,
    ``min``: the whole block), so such a cell has no depth either.
    """
    check_depth_mode(mode)
    depth = check_depth(depth, allow_holes=allow_holes)
    source_h, source_w = depth.shape
    x = depth[None, None]  # (1, 1, H, W)
    if mode == "bilinear":
        out = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    elif mode == "nearest":
        out = F.interpolate(x, size=(height, width), mode="nearest")
    elif mode == "area":
        out = F.interpolate(x, size=(height, width), mode="area")
    else:
        if source_h % height or source_w % width:
            raise ValueError(f"mode {mode!r} needs the depth size {source_h}x{source_w} to be a multiple of {height}x{width}")
        fh, fw = source_h // height, source_w // width
        blocks = x.reshape(height, fh, width, fw).permute(0, 2, 1, 3).reshape(height, width, fh * fw)
        out = blocks.median(dim=-1).values if mode == "median" else blocks.amin(dim=-1)
    return out.reshape(height, width)
