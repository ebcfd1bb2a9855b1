"""Mirage's latent spatial memory: latent cells lifted to 3D, read by one latent-resolution splat."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F

from mirage_viz.geometry.cameras import Camera
from mirage_viz.checks import check_choice
from mirage_viz.geometry.depth import (DepthMode, check_depth_mode, check_edge_threshold, downsample_depth,
                                       mask_depth_edges)
from mirage_viz.geometry.splat import (DEPTH_TIE_BITS, SplatWorkspace, check_depth_tie_bits, refine_splat_subcell,
                                       splat_points)
from mirage_viz.geometry.projection import backproject_depth, rows_with_depth
from mirage_viz.geometry.visibility import camera_center, seen_along_ray
from mirage_viz.memories.base import MemoryRead, Observation, PointCloudMemory
from mirage_viz.memories.point_cache import PointCache
from mirage_viz.memories.voxel_cache import VoxelPointCache, check_voxel_size
from mirage_viz.options import OptionGroup, option

__all__ = ["LIFT_RESOLUTIONS", "STORAGE_DTYPES", "WARP_MODES", "LatentDtype", "LatentOptions", "LatentSpatialMemory",
           "LiftResolution",
           "WarpMode", "check_latent_dtype", "check_lift", "check_seen_rays", "check_warp", "lift_latents"]

LiftResolution = Literal["latent", "pixel"]
LIFT_RESOLUTIONS: tuple[LiftResolution, ...] = get_args(LiftResolution)
LatentDtype = Literal["float32", "float16", "bfloat16"]
STORAGE_DTYPES: dict[LatentDtype, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# how a read places the cached cells on the new camera's grid: "nearest" rounds each to the nearest cell (the
# paper), "subcell" blends each cell's surface from the points around it by their sub-cell offsets
WarpMode = Literal["nearest", "subcell"]
WARP_MODES: tuple[WarpMode, ...] = get_args(WarpMode)


def check_lift(lift: object) -> LiftResolution:
    """``lift`` when it is a lifting resolution, else a ``ValueError`` saying which are."""
    return check_choice("lift", lift, LIFT_RESOLUTIONS)


def check_warp(warp: object, voxel_size: float | None = None) -> WarpMode:
    """``warp`` when it names a way to read the cache (see :data:`WARP_MODES`) that works with ``voxel_size``, else a
    ``ValueError`` saying what is accepted: ``"subcell"`` blends the points of one frame, which a fused cache does not
    keep apart."""
    check_choice("warp", warp, WARP_MODES)
    if warp == "subcell" and voxel_size is not None:
        raise ValueError("warp 'subcell' blends the points of one frame, so it needs the flat cache; accepted: "
                         "voxel_size None with warp 'subcell', or warp 'nearest' with a voxel size")
    return warp


def check_seen_rays(seen_rays: object, voxel_size: float | None = None) -> bool:
    """``seen_rays`` when it is True or False and works with ``voxel_size``, else a ``ValueError`` saying what is
    accepted: the rule needs the camera each point was lifted from, which a fused cache does not keep."""
    if not isinstance(seen_rays, bool):
        raise ValueError(f"seen_rays must be True or False, got {seen_rays!r}")
    if seen_rays and voxel_size is not None:
        raise ValueError("seen_rays needs the camera each point was lifted from, so it needs the flat cache; accepted: "
                         "voxel_size None with seen_rays True, or seen_rays False with a voxel size")
    return seen_rays


def check_latent_dtype(dtype: object) -> LatentDtype:
    """``dtype`` when it names a storage precision of the latent cache, else a ``ValueError`` saying which do."""
    return check_choice("latent_dtype", dtype, tuple(STORAGE_DTYPES))


@dataclass(frozen=True)
class LatentOptions(OptionGroup):
    """The latent memory's options; every default is the paper's. The edge threshold applies to the RGB memory too.
    :class:`LatentSpatialMemory` takes them."""

    depth_mode: DepthMode = option("bilinear", "how the latent memory brings depth down to the latent grid",
                                   check_depth_mode)
    latent_dtype: LatentDtype = option("float32", "storage precision of the latent cache", check_latent_dtype)
    voxel_size: float | None = option(None, "fuse the latent cache per voxel of this many metres, keeping the first "
                                      "point written in each (default: the paper's flat cache)", check_voxel_size,
                                      metavar="METRES")
    lift: LiftResolution = option("latent", "lift latent cells at latent resolution (Mirage) or every pixel with its "
                                  "cell's latent (the paper's ablation)", check_lift)
    edge_threshold: float | None = option(
        None, "drop latent cells (and RGB pixels) whose depths differ by more than this fraction: they straddle a "
        "depth edge and would float between the surfaces (the official pipeline's edge mask; default: lift every cell, "
        "the paper's text)", check_edge_threshold, metavar="SPREAD")
    depth_tie_bits: int = option(
        DEPTH_TIE_BITS, "the z-test tolerance: depths within a factor 1 + 2^-BITS of a cell's nearest tie and the "
        "earliest written point wins (0: within a factor of 2, keeping first-hand views; 23: equal depths only)",
        check_depth_tie_bits, metavar="BITS")
    warp: WarpMode = option("nearest", "how cached cells land on a new camera's grid: nearest (the paper: each rounded "
                            "to its nearest cell) or subcell (each cell blended from its surface's points by their "
                            "sub-cell offsets: no half-cell shifts; the flat cache only)", check_warp)
    seen_rays: bool = option(False, "a cached cell that its own camera saw along the ray the new camera looks along "
                             "(within a tenth of a cell, the new camera no farther from it) takes its cell even from "
                             "points in front of it: visible for certain in a static world, so a revisited view comes "
                             "back as it was seen (the flat cache only)", check_seen_rays)

    def check_together(self) -> None:
        check_warp(self.warp, self.voxel_size)
        check_seen_rays(self.seen_rays, self.voxel_size)


def lift_latents(
    observation: Observation, depth_mode: DepthMode = "bilinear", resolution: LiftResolution = "latent",
    edge_threshold: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lift a frame's latent: returns world points (N, 3) and latent features (N, C).

    ``resolution="latent"`` (Mirage): one point per latent cell, N = h * w, with depth brought down to
    the latent grid by ``depth_mode`` and the intrinsics scaled to it per axis.
    ``resolution="pixel"``: one point per pixel, N = H * W, at the full-resolution depth, each
    carrying the latent of the cell it falls in (64x the points for f = 8).
    Holes (NaN depth) are not lifted: a pixel without depth, or a latent cell whose depth footprint holds one
    (see :func:`~mirage_viz.geometry.depth.downsample_depth`), gives no point, so N is smaller.
    ``edge_threshold`` (None: lift every cell, the paper's rule) drops the cells, or pixels, that straddle a depth
    discontinuity (:func:`~mirage_viz.geometry.depth.depth_edges`): lifted at one depth they would float between
    the surfaces and cover, from later views, what lies behind.
    """
    check_lift(resolution)
    channels, height, width = observation.latent.shape
    if resolution == "pixel":
        full_height, full_width = observation.depth.shape
        depth = mask_depth_edges(observation.depth, observation.depth, edge_threshold)  # (H, W), edges NaN
        points = backproject_depth(depth, observation.camera, allow_holes=True)  # [H*W, 3] world frame
        cells = F.interpolate(observation.latent[None], size=(full_height, full_width), mode="nearest")[0]
        return rows_with_depth(depth, points, cells.reshape(channels, -1).T)  # [N, 3], [N, C]
    latent_camera = observation.camera.scaled_to(width, height)
    latent_depth = downsample_depth(observation.depth, height, width, depth_mode, allow_holes=True)  # (h, w)
    latent_depth = mask_depth_edges(latent_depth, observation.depth, edge_threshold)  # cells on an edge: NaN
    points = backproject_depth(latent_depth, latent_camera, allow_holes=True)  # [h*w, 3] world frame
    features = observation.latent.reshape(channels, -1).T  # [h*w, C]
    return rows_with_depth(latent_depth, points, features)  # [N, 3], [N, C]


class LatentSpatialMemory(PointCloudMemory):
    """Store: lift each frame's latent cells with depth. Read: z-buffer splat at latent resolution.

    Takes :class:`LatentOptions`, or its fields by name (``LatentSpatialMemory(warp="subcell")``):
        depth_mode: how depth comes down to the latent grid (see :mod:`mirage_viz.geometry.depth`).
        latent_dtype: storage precision of points and features (float16 halves the bytes).
        voxel_size: when set, fuse points per voxel of this size in metres (:class:`VoxelPointCache`);
            ``None`` keeps the paper's flat cache.
        lift: ``"latent"`` (Mirage) or ``"pixel"`` resolution lifting (see :func:`lift_latents`).
        edge_threshold: drop cells whose depth footprint spreads by more than this fraction (a depth edge), as the
            official pipeline drops its depth model's edge points; ``None`` lifts every cell (the paper's text).
        depth_tie_bits: the read's z-test tolerance (see :func:`~mirage_viz.geometry.splat.splat_points`).
        warp: ``"nearest"`` (the paper) rounds each cached cell to the nearest cell of the new camera;
            ``"subcell"`` then blends each covered cell from the points of its winner's frame and surface around it,
            by their sub-cell offsets (:func:`~mirage_viz.geometry.splat.refine_splat_subcell`): bilinear resampling
            of what that frame saw, no half-cell shifts. Needs the flat cache (no ``voxel_size``).
        seen_rays: a cached point that the camera it was lifted from saw along the ray the new camera looks along
            (within a tenth of a cell, the new camera no farther from it) is visible for certain in a static world, so
            the points clearly in front of it drop out of its cell (:mod:`~mirage_viz.geometry.visibility`): a
            revisited view comes back as it was seen, instead of losing its silhouette cells to other views' points.
            ``False``: the z-test alone (the paper). Needs the flat cache.
    """

    name = "latent"
    features = "latent"
    display_color = "#1f77b4"
    cache_label = "latent cache"

    def __init__(self, options: LatentOptions | None = None, **overrides: Any) -> None:
        options = replace(options or LatentOptions(), **overrides)
        options.validate()
        self.options = options
        dtype = STORAGE_DTYPES[options.latent_dtype]
        self._workspace = SplatWorkspace()
        self.cache: PointCache | VoxelPointCache = (
            PointCache(dtype) if options.voxel_size is None else VoxelPointCache(options.voxel_size, dtype)
        )
        self._frame_starts: list[int] = []  # index of each written frame's first point in the flat cache
        self._frame_centers: list[torch.Tensor] = []  # (3,) each written frame's camera centre, world frame

    def write(self, observation: Observation) -> None:
        count = len(self.cache)
        self.cache.append(*lift_latents(observation, self.options.depth_mode, self.options.lift, self.options.edge_threshold))
        if len(self.cache) > count:
            self._frame_starts.append(count)
            self._frame_centers.append(camera_center(observation.camera))

    def reset(self) -> None:
        super().reset()
        self._frame_starts, self._frame_centers = [], []

    def restore(self, snapshot: object) -> None:
        super().restore(snapshot)
        count = len(self.cache)
        self._frame_starts = [start for start in self._frame_starts if start < count]  # the frames the undo kept
        self._frame_centers = self._frame_centers[: len(self._frame_starts)]

    def frame_of_points(self) -> torch.Tensor:
        """(N,) int64: the write (0 for the first frame written) each cached point was lifted in; flat cache only."""
        if not isinstance(self.cache, PointCache):
            raise ValueError("a fused (voxel) cache merges the points of several frames: frame_of_points needs the "
                             "flat cache (voxel_size=None)")
        starts = torch.tensor(self._frame_starts, dtype=torch.int64)  # [frames]
        return torch.bucketize(torch.arange(len(self.cache)), starts, right=True) - 1

    def read(self, camera: Camera, latent_shape: tuple[int, int, int]) -> MemoryRead:
        channels, height, width = latent_shape
        points, features = self.cache.tensors()
        if points.shape[0] == 0:
            latent, mask = torch.zeros(latent_shape), torch.zeros(height, width, dtype=torch.bool)
            source, source_depth = torch.full((height, width), -1, dtype=torch.int64), torch.zeros(height, width)
        else:
            latent_camera = camera.scaled_to(width, height)
            frames = self.frame_of_points() if self.options.seen_rays or self.options.warp == "subcell" else None  # [N]
            seen = None
            if self.options.seen_rays:  # [N] bool: the points their own camera saw along this camera's rays
                seen = seen_along_ray(points, torch.stack(self._frame_centers)[frames], latent_camera)
            splat = splat_points(points, features, latent_camera, workspace=self._workspace,
                                 depth_tie_bits=self.options.depth_tie_bits, seen=seen)
            if self.options.warp == "subcell":
                splat = refine_splat_subcell(points, features, latent_camera, splat, groups=frames)
            latent, mask = splat.features, splat.mask
            source, source_depth = splat.point_index, splat.depth  # the z-test's winners (subcell keeps them)
        return MemoryRead(latent=latent, mask=mask, source=source, source_depth=source_depth)
