"""Bring a pixel-resolution depth map down to a coarser grid (the latent grid).

The modes are the paper's ablation: ``bilinear`` (default), ``nearest``, ``area``, ``median``, ``min``; and
``center``, the depth of the pixel at each cell's centre.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F

from mirage_viz.checks import check_choice
from mirage_viz.geometry.projection import check_depth

__all__ = ["DEPTH_DOWNSAMPLE_MODES", "DepthMode", "check_depth_mode", "check_edge_threshold", "depth_edges",
           "downsample_depth", "mask_depth_edges"]

DepthMode = Literal["bilinear", "nearest", "area", "median", "min", "center"]
DEPTH_DOWNSAMPLE_MODES: tuple[DepthMode, ...] = get_args(DepthMode)


def check_depth_mode(mode: object) -> DepthMode:
    """``mode`` when it is a depth downsampling mode, else a ``ValueError`` saying which are."""
    return check_choice("depth_mode", mode, DEPTH_DOWNSAMPLE_MODES)


def downsample_depth(
    depth: torch.Tensor, height: int, width: int, mode: DepthMode = "bilinear", allow_holes: bool = False
) -> torch.Tensor:
    """Depth (H, W) -> (height, width). ``median`` and ``min`` need H, W multiples of the target.

    ``nearest`` takes each cell's first pixel (its top-left, as ``F.interpolate`` does); ``center`` the pixel at its
    centre (of an even block, the one right of and below the centre, half a pixel off): one pixel's depth, never a
    blend across an edge, and within half a pixel of where the cell's centre ray meets the surface, which a lift at
    the centre needs on a slanted surface (``bilinear`` samples the centre exactly, but blends across edges).
    ``allow_holes=True`` accepts NaN depth (no depth there); a NaN propagates to every cell whose footprint holds
    it (``bilinear``: the 2 x 2 pixels around the sample point; ``nearest`` and ``center``: the one pixel; ``area``,
    ``median``, ``min``: the whole block), so such a cell has no depth either.
    """
    check_depth_mode(mode)
    depth = check_depth(depth, allow_holes=allow_holes)
    source_h, source_w = depth.shape
    x = depth[None, None]  # (1, 1, H, W)
    if mode == "bilinear":
        out = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    elif mode == "nearest":
        out = F.interpolate(x, size=(height, width), mode="nearest")
    elif mode == "center":
        out = F.interpolate(x, size=(height, width), mode="nearest-exact")
    elif mode == "area":
        out = F.interpolate(x, size=(height, width), mode="area")
    else:
        if source_h % height or source_w % width:
            raise ValueError(f"mode {mode!r} needs the depth size {source_h}x{source_w} to be a multiple of {height}x{width}")
        fh, fw = source_h // height, source_w // width
        blocks = x.reshape(height, fh, width, fw).permute(0, 2, 1, 3).reshape(height, width, fh * fw)
        out = blocks.median(dim=-1).values if mode == "median" else blocks.amin(dim=-1)
    return out.reshape(height, width)


def check_edge_threshold(threshold: object) -> float | None:
    """``threshold`` when it is ``None`` (lift every cell) or a relative depth spread in (0, 10]."""
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 10:
        raise ValueError(f"edge_threshold must be a relative depth spread in (0, 10] (such as 0.1: a cell whose depths "
                         f"differ by more than 10% is dropped), or None to lift every cell; got {threshold!r}")
    return float(threshold)


def depth_edges(depth: torch.Tensor, height: int, width: int, threshold: float) -> torch.Tensor:
    """Which cells of a (height, width) grid over depth (H, W) straddle a depth discontinuity: (height, width) bool.

    A cell's footprint is its block of (H / height) x (W / width) pixels and a ring of one pixel around it (so an
    edge on a block border counts for both sides; at pixel resolution, the 3 x 3 neighbourhood). It straddles a
    discontinuity when its largest depth exceeds its smallest by more than ``threshold`` of the smallest
    (``max / min - 1 > threshold``): lifted at one depth, such a cell would float between the surfaces. Holes
    (NaN) are ignored here; the lift drops them anyway.
    """
    source_h, source_w = depth.shape
    if source_h % height or source_w % width:
        raise ValueError(f"depth edges need the depth size {source_h}x{source_w} to be a multiple of {height}x{width}")
    fh, fw = source_h // height, source_w // width
    x = depth.float()[None, None]  # (1, 1, H, W)
    known = torch.isfinite(x)
    padded_max = F.pad(torch.where(known, x, torch.zeros_like(x)), (1, 1, 1, 1), mode="replicate")
    padded_min = F.pad(torch.where(known, x, torch.full_like(x, float("inf"))), (1, 1, 1, 1), mode="replicate")
    kernel, stride = (fh + 2, fw + 2), (fh, fw)
    largest = F.max_pool2d(padded_max, kernel, stride)  # (1, 1, height, width)
    smallest = -F.max_pool2d(-padded_min, kernel, stride)
    return (largest > smallest * (1.0 + threshold)).reshape(height, width)


def mask_depth_edges(cell_depth: torch.Tensor, depth: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """``cell_depth`` (h, w), brought down from ``depth`` (H, W), with the cells that straddle a discontinuity
    (:func:`depth_edges`) made holes (NaN), so a lift skips them; ``cell_depth`` itself when ``threshold`` is None."""
    if threshold is None:
        return cell_depth
    height, width = cell_depth.shape
    return cell_depth.masked_fill(depth_edges(depth, height, width, threshold), float("nan"))
