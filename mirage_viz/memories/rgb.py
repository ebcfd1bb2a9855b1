"""The classic baseline: an RGB point cloud, rasterized at pixel resolution and VAE-encoded per read."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.depth import check_edge_threshold, mask_depth_edges
from mirage_viz.geometry.splat import DEPTH_TIE_BITS, SplatWorkspace, splat_points
from mirage_viz.geometry.projection import backproject_depth, rows_with_depth
from mirage_viz.memories.base import MemoryRead, Observation, PointCloudMemory
from mirage_viz.memories.point_cache import PointCache

__all__ = ["RGBPointCloudMemory"]


class RGBPointCloudMemory(PointCloudMemory):
    """Store every pixel that has depth (not NaN) with its colour; a read renders the cloud, encodes the render,
    pools the mask.

    ``encode`` maps images (B, 3, H, W) in [0, 1] to scaled latents (B, C, H / f, W / f). A latent
    cell counts as covered when at least ``mask_threshold`` of its f x f pixels were hit.
    """

    name = "rgb"
    features = "color"
    display_color = "#d62728"
    cache_label = "RGB point cloud"
    depth_tie_bits = DEPTH_TIE_BITS  # the read's z-test tolerance, always the paper's (the settings are the latent's)

    def __init__(self, encode: Callable[[torch.Tensor], torch.Tensor], mask_threshold: float = 0.5,
                 edge_threshold: float | None = None) -> None:
        if not 0.0 < mask_threshold <= 1.0:
            raise ValueError(f"mask_threshold must be in (0, 1], got {mask_threshold}")
        self.edge_threshold = check_edge_threshold(edge_threshold)
        self.encode = encode
        self.mask_threshold = mask_threshold
        self.cache = PointCache(torch.float32)
        self._workspace = SplatWorkspace()

    def write(self, observation: Observation) -> None:
        depth = mask_depth_edges(observation.depth, observation.depth, self.edge_threshold)  # (H, W), edges NaN
        points = backproject_depth(depth, observation.camera, allow_holes=True)  # [H*W, 3] world frame
        colors = observation.image.reshape(3, -1).T  # [H*W, 3]
        self.cache.append(*rows_with_depth(depth, points, colors))  # holes (NaN depth) and edges not lifted

    def read(self, camera: Camera, latent_shape: tuple[int, int, int]) -> MemoryRead:
        channels, height, width = latent_shape
        k = camera.intrinsics
        points, colors = self.cache.tensors()
        if points.shape[0] == 0:
            render, pixel_mask = torch.zeros(3, k.height, k.width), torch.zeros(k.height, k.width, dtype=torch.bool)
            source, source_depth = torch.full((k.height, k.width), -1, dtype=torch.int32), torch.zeros(k.height, k.width)
        else:
            splat = splat_points(points, colors, camera, workspace=self._workspace,
                                 depth_tie_bits=self.depth_tie_bits)  # pixel resolution
            render, pixel_mask = splat.features, splat.mask
            source, source_depth = splat.point_index.to(torch.int32), splat.depth  # int32: half a pixel grid's bytes
        with torch.no_grad():
            latent = self.encode(render[None])[0]  # (C, h, w): the VAE round trip
        coverage = F.adaptive_avg_pool2d(pixel_mask[None, None].float(), (height, width))[0, 0]
        mask = coverage >= self.mask_threshold
        latent = latent * mask
        return MemoryRead(latent=latent, mask=mask, render=render, render_mask=pixel_mask, source=source,
                          source_depth=source_depth)
