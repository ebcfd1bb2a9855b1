"""What a rollout is asked to do (:class:`RolloutConfig`, frozen) and what that resolves to before anything runs
(:class:`RolloutSetup`, :func:`plan_rollout`: a photo's size and intrinsics, a trajectory's steps, the cameras)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType
from typing import Literal, get_args

import torch

from mirage_viz.backbone import Backbone, check_decoder_sharpness
from mirage_viz.checks import check_choice
from mirage_viz.geometry.cameras import FOV_RANGE, Camera, Intrinsics, check_fov_degrees
from mirage_viz.geometry.depth import DepthMode, check_depth_mode, check_edge_threshold
from mirage_viz.geometry.splat import DEPTH_TIE_BITS, check_depth_tie_bits
from mirage_viz.memories import MEMORY_NAMES
from mirage_viz.memories.latent import (LatentDtype, LiftResolution, WarpMode, check_latent_dtype, check_lift,
                                       check_seen_rays, check_warp)
from mirage_viz.memories.voxel_cache import FusionMode, check_fusion, check_voxel_size
from mirage_viz.models.hub import pick_device
from mirage_viz.rollout.step_cost import MEASURED, check_step_fits_machine
from mirage_viz.scenes.depth_errors import parse_depth_errors
from mirage_viz.scenes.photo import DEFAULT_FOV_DEGREES, Photo
from mirage_viz.scenes.trajectories import MAX_STEPS, Trajectory, check_trajectory_name, make_trajectory
from mirage_viz.scenes.worlds import DEFAULT_WORLD, WORLD_NAMES, SyntheticWorld, make_world

__all__ = ["DEPTH_SOURCES", "MAX_SEED", "MAX_STEP_PIXELS", "MAX_STEPS", "MEMORY_SETTINGS", "DepthSource", "MemorySetting",
           "RolloutConfig", "RolloutPlan", "RolloutSetup", "memory_setting_of", "plan_rollout"]

DepthSource = Literal["truth", "estimated"]
DEPTH_SOURCES: tuple[DepthSource, ...] = get_args(DepthSource)
MAX_SEED = 2**32 - 1  # seeds and world seeds; per-step seeds derived from them stay within torch's range
# A rollout keeps every step's frames, latents and depth in memory: about 10 MB a step at 256 px for the
# three memories, growing with the pixel count. Bounded at 400 steps at 256 px (100 at 512, MAX_STEPS at 128).
MAX_STEP_PIXELS = 400 * 256**2
MAX_AVERAGE_SAMPLES = 16  # draws averaged per frame: each costs one more generation


@dataclass(frozen=True)
class MemorySetting:
    """A named memory setting: what it does in one plain sentence, and the :class:`RolloutConfig` fields it sets.
    Their figures (measured on held-out worlds) are in ``docs/memory-settings.md`` and the bench's memory-options
    section; names and sentences never carry figures."""

    name: str
    sentence: str
    options: Mapping[str, object]


_CLOSEST = {"depth_tie_bits": 0, "known_cells": True, "depth_mode": "center", "warp": "subcell", "seen_rays": True,
            "num_inference_steps": 1, "average_samples": 4}
# The one table of memory settings: the CLI (--memory-setting), the app, the sweep (memory_settings), the bench
# and the notebooks all read it.
MEMORY_SETTINGS: dict[str, MemorySetting] = {setting.name: setting for setting in (
    MemorySetting("paper", "Mirage as published: the nearest point wins each cell, and the generator draws the whole "
                  "frame from the warped latent and its holes.", MappingProxyType({})),
    MemorySetting("keep what memory holds", "What memory holds is kept as it is: a cell goes to the point seen first "
                  "when depths tie, and the generator keeps the cells memory covers and fills only the holes, so a "
                  "revisited view comes back as it was first seen.",
                  MappingProxyType({"depth_tie_bits": 0, "known_cells": True, "depth_mode": "nearest",
                                    "seen_rays": True})),
    MemorySetting("closest to the truth", "As 'keep what memory holds', with each cell placed where its surface "
                  "really lands and the mean of four quick draws: the frames closest to the truth on average, but "
                  "softer.", MappingProxyType(_CLOSEST)),
    MemorySetting("sharp and close", "As 'closest to the truth', decoded by a decoder moved towards one trained to "
                  "draw edges: sharper frames for a little closeness.",
                  MappingProxyType({**_CLOSEST, "decoder_sharpness": 0.6})),
)}


def memory_setting_of(config: RolloutConfig) -> str:
    """The name of the memory setting ``config`` runs under: the most specific one whose every option it has
    ("paper" when none)."""
    matches = [setting for setting in MEMORY_SETTINGS.values()
               if setting.options and all(getattr(config, key) == value for key, value in setting.options.items())]
    return max(matches, key=lambda setting: len(setting.options)).name if matches else "paper"


@dataclass(frozen=True)
class RolloutConfig:
    """What a rollout is asked to do; every field has a sensible default. Frozen: what actually runs (a photo's
    size and field of view, a trajectory file's steps, the backbone's denoising steps) is its
    :class:`RolloutSetup`."""

    world: str = DEFAULT_WORLD
    world_seed: int = 0
    trajectory: str = "loop"
    steps: int = 12
    magnitude: float | None = None  # preset's default when None
    size: int = 256
    fov_degrees: float | None = None  # horizontal; None: a camera file's own intrinsics where it has them, else 60
    seed: int = 0
    memories: tuple[str, ...] = MEMORY_NAMES
    depth_source: DepthSource = "truth"
    # errors put on the true depth, as a spec (mirage_viz.scenes.depth_errors): "" exact, e.g. "noise=0.1+holes=0.05"
    depth_errors: str = ""
    depth_mode: DepthMode = "bilinear"
    num_inference_steps: int | None = None  # denoising steps per frame; None: the backbone's own (embedded: 6)
    # the latent memory's cache: storage precision, optional voxel fusion, lifting resolution
    latent_dtype: LatentDtype = "float32"
    voxel_size: float | None = None  # metres; None keeps the paper's flat cache
    fusion: FusionMode = "oldest"
    lift: LiftResolution = "latent"
    # both point memories drop cells (pixels) that straddle a depth edge by more than this relative spread, as the
    # official pipeline drops its depth model's edge points; None lifts every cell (the paper's text)
    edge_threshold: float | None = None
    # the sampler keeps the cells memory covers as memory holds them (RePaint-style); off: the paper's conditioning
    known_cells: bool = False
    # the latent memory's z-test tolerance: depths within a factor 1 + 2**-bits of a cell's nearest tie, the earliest
    # written wins
    depth_tie_bits: int = DEPTH_TIE_BITS
    # how the latent memory places cached cells on the new camera's grid: "nearest" (the paper) or "subcell"
    warp: WarpMode = "nearest"
    # the latent memory lets a cached cell that its own camera saw along the new camera's ray (within a tenth of a cell,
    # the new camera no farther from it) keep points clearly in front of it out of its cell: in a static world it is
    # visible for certain
    seen_rays: bool = False
    # the generator draws this many latents per frame and keeps their mean (1: one draw, the paper's sampler)
    average_samples: int = 1
    # how far the embedded VAE's decoder moves towards the discriminator-trained one (embedded-sharp): 0 the embedded
    # decoder, 1 the sharp one, between: their weights interpolated (Backbone.with_decoder_sharpness)
    decoder_sharpness: float = 0.0

    def validate(self, size_multiple: int = 32) -> None:
        """Raise ``ValueError`` naming the first bad parameter and what is accepted."""
        if self.world not in WORLD_NAMES:
            raise ValueError(f"unknown world {self.world!r}; accepted: {', '.join(WORLD_NAMES)}")
        if self.trajectory != "custom":
            check_trajectory_name(self.trajectory)
        for name in ("steps", "size", "seed", "world_seed", "num_inference_steps", "average_samples"):
            value = getattr(self, name)
            if name == "num_inference_steps" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not 0 < self.steps <= MAX_STEPS:
            raise ValueError(f"steps must be in [1, {MAX_STEPS}], got {self.steps}")
        if self.size <= 0 or self.size % size_multiple or self.size > 2048:
            raise ValueError(
                f"size must be a positive multiple of {size_multiple} up to 2048 (the VAE's factor times the "
                f"denoiser's downsampling), got {self.size}"
            )
        if self.steps * self.size**2 > MAX_STEP_PIXELS:
            most = MAX_STEP_PIXELS // self.size**2
            raise ValueError(
                f"{self.steps} steps at {self.size} px is more than a rollout may hold in memory (every step's frames "
                f"are kept: about 10 MB a step at 256 px); accepted: steps x size^2 at most 400 x 256^2, so at most "
                f"{most} steps at {self.size} px"
            )
        for name in ("seed", "world_seed"):
            if not 0 <= getattr(self, name) <= MAX_SEED:
                raise ValueError(f"{name} must be in [0, {MAX_SEED}] (2^32 - 1), got {getattr(self, name)}")
        if self.fov_degrees is not None:
            check_fov_degrees(self.fov_degrees)
        if not self.memories or any(m not in MEMORY_NAMES for m in self.memories) or len(set(self.memories)) != len(self.memories):
            raise ValueError(f"memories must be distinct names from {', '.join(MEMORY_NAMES)}, got {list(self.memories)}")
        check_choice("depth_source", self.depth_source, DEPTH_SOURCES)
        errors = parse_depth_errors(self.depth_errors)
        if self.depth_source != "truth" and not errors.is_exact:
            raise ValueError(
                f"depth_errors {errors.spec!r} apply to a world's true depth, but depth here is estimated "
                f"(depth_source {self.depth_source!r}, or a photo, which has no true depth); accepted: depth_errors '' "
                f"with estimated depth, or depth_source 'truth' on a synthetic world"
            )
        check_depth_mode(self.depth_mode)
        if self.num_inference_steps is not None and not 1 <= self.num_inference_steps <= 1000:
            raise ValueError(f"num_inference_steps must be in [1, 1000], got {self.num_inference_steps}")
        check_latent_dtype(self.latent_dtype)
        if self.voxel_size is not None:
            check_voxel_size(self.voxel_size)  # None: no fusion
        check_fusion(self.fusion)
        check_lift(self.lift)
        check_edge_threshold(self.edge_threshold)
        check_depth_tie_bits(self.depth_tie_bits)
        if not isinstance(self.known_cells, bool):
            raise ValueError(f"known_cells must be True or False, got {self.known_cells!r}")
        check_warp(self.warp, self.voxel_size)
        check_seen_rays(self.seen_rays, self.voxel_size)
        if not 1 <= self.average_samples <= MAX_AVERAGE_SAMPLES:
            raise ValueError(f"average_samples must be in [1, {MAX_AVERAGE_SAMPLES}] (draws averaged per frame), "
                             f"got {self.average_samples}")
        check_decoder_sharpness(self.decoder_sharpness)

    def with_memory_setting(self, name: str) -> RolloutConfig:
        """This config under one of :data:`MEMORY_SETTINGS` (its options replace this config's)."""
        check_choice("memory setting", name, tuple(MEMORY_SETTINGS))
        return self.with_options(**MEMORY_SETTINGS[name].options)

    def with_options(self, **options: object) -> RolloutConfig:
        """This config with memory, sampler or decoder options replaced by name (``depth_tie_bits=0``)."""
        return replace(self, **options)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["memories"] = list(self.memories)
        return data


@dataclass(frozen=True)
class RolloutSetup:
    """What a rollout's config resolved to, as it runs (on :attr:`Rollout.setup` and in ``summary.json``)."""

    first_frame: Literal["world", "photo"]  # the world's view at the first camera, or a photo
    world: str | None  # the world and its seed (None for a photo)
    world_seed: int | None
    photo: str | None  # the photo's file name (None for a world)
    trajectory: str  # a preset's name (maybe "+back_to_start"), or "custom" for poses given as a trajectory
    steps: int  # generated steps after the first frame (a drive: so far)
    size: int  # square frames, pixels
    fov_degrees: float  # horizontal field of view of the first camera
    fov_source: str  # "setting", "default", "file" (the camera file's intrinsics), or for a photo "exif"
    intrinsics: Intrinsics  # of the first camera, at pixel resolution (a zoom or a camera file may vary them)
    intrinsics_vary: bool  # whether the cameras' intrinsics change along the path (every camera's are in trajectory.json)
    depth_source: DepthSource  # what lifts generated frames: the world's true depth, or the estimator
    num_inference_steps: int | None  # denoising steps per frame (None: planned without a backbone)
    depth_errors: str = ""  # the errors put on the true depth, as a canonical spec ("": the exact truth)

    def to_dict(self) -> dict:
        return asdict(self) | {"intrinsics": self.intrinsics.to_dict()}


@dataclass
class RolloutPlan:
    """What a rollout will run, checked: its config as asked, what that resolved to, the world (None for a
    photo), the trajectory and the cameras."""

    config: RolloutConfig
    setup: RolloutSetup
    world: SyntheticWorld | None
    trajectory: Trajectory
    cameras: list[Camera]


def plan_rollout(
    config: RolloutConfig | None = None,
    trajectory: Trajectory | None = None,
    photo: Photo | None = None,
    world: SyntheticWorld | None = None,
    backbone: Backbone | None = None,
    device: str | torch.device | None = None,
) -> RolloutPlan:
    """Check a rollout's inputs, resolve what will run and lay out its cameras, without running any model.

    A photo brings its own size, field of view and intrinsics, and no truth (depth is estimated); a trajectory
    brings its steps. Raises ``ValueError`` naming the first problem: a bad setting, or (for a synthetic world)
    the first step whose camera stands outside the room or in an object. ``backbone`` (when given) sets the size
    rule and the default denoising steps; without one, sizes must be multiples of 32 (the embedded models' rule).
    On the CPU (the backbone's device, else ``device`` as ``build_backbone`` takes it, else the CPU) a size whose
    step is estimated beyond this machine is refused with the estimate (``rollout.step_cost``); CUDA has no such bound.
    """
    config = config or RolloutConfig()
    own_intrinsics = photo is None and trajectory is not None and trajectory.intrinsics is not None and config.fov_degrees is None
    if photo is not None:
        size, fov, fov_source, depth_source = int(photo.image.shape[-1]), photo.fov_degrees, photo.fov_source, "estimated"
    elif own_intrinsics:
        size, fov, fov_source, depth_source = config.size, trajectory.intrinsics[0].fov_x_degrees, "file", config.depth_source
    else:
        fov, fov_source = (DEFAULT_FOV_DEGREES, "default") if config.fov_degrees is None else (config.fov_degrees, "setting")
        size, depth_source = config.size, config.depth_source
    if trajectory is None:
        name, steps = config.trajectory, config.steps
    else:
        try:
            check_trajectory_name(trajectory.name)
            name = trajectory.name
        except ValueError:
            name = "custom"
        steps = trajectory.steps
        if steps > MAX_STEPS:
            raise ValueError(f"the trajectory has {steps:,} steps; a rollout runs at most {MAX_STEPS:,}: subsample it "
                             f"(--steps N with --trajectory-file; Trajectory.subsample(N) in Python)")
    inference_steps = config.num_inference_steps
    if inference_steps is None and backbone is not None:
        inference_steps = backbone.num_inference_steps
    resolved = replace(config, size=size, fov_degrees=None if own_intrinsics else fov, depth_source=depth_source,
                       trajectory=name, steps=steps, num_inference_steps=inference_steps)
    resolved.validate(backbone.size_multiple if backbone is not None else 32)  # what runs is what is checked
    on = backbone.device if backbone is not None else pick_device(str(device))[0] if device is not None else None
    if on is None or on.type == "cpu":
        check_step_fits_machine(size, steps, len(config.memories), inference_steps or MEASURED["denoising_steps"],
                                config.average_samples, backbone.size_multiple if backbone is not None else 32)
    if backbone is not None:
        backbone.check_decoder_sharpness(config.decoder_sharpness)  # the embedded VAE's decoder only
    world = None if photo is not None else world or make_world(config.world, config.world_seed)
    trajectory = trajectory or make_trajectory(name, steps, config.magnitude)
    base = photo.intrinsics if photo is not None else Intrinsics.from_fov(size, size, fov)
    cameras = trajectory.cameras(base, own_intrinsics=own_intrinsics)
    _check_fields_of_view(cameras)
    if world is not None:  # every camera must stand in the room, out of every object
        world.check_cameras(cameras)
    setup = RolloutSetup(
        first_frame="photo" if photo is not None else "world", world=None if photo is not None else config.world,
        world_seed=None if photo is not None else config.world_seed, photo=None if photo is None else photo.name,
        trajectory=name, steps=steps, size=size, fov_degrees=float(fov),
        fov_source=fov_source, intrinsics=cameras[0].intrinsics,
        intrinsics_vary=any(c.intrinsics != cameras[0].intrinsics for c in cameras),
        depth_source=depth_source, num_inference_steps=inference_steps,
        depth_errors=parse_depth_errors(config.depth_errors).spec)
    return RolloutPlan(config=config, setup=setup, world=world, trajectory=trajectory, cameras=cameras)




def _check_fields_of_view(cameras: list[Camera]) -> None:
    """Every camera's horizontal and vertical field of view within ``FOV_RANGE`` (a zoom or a file may leave it)."""
    low, high = FOV_RANGE
    for step, camera in enumerate(cameras):
        k = camera.intrinsics
        fov_y = Intrinsics(k.fy, k.fx, k.cy, k.cx, k.height, k.width).fov_x_degrees
        if not (low <= k.fov_x_degrees <= high and low <= fov_y <= high):
            raise ValueError(f"the camera of step {step} sees {k.fov_x_degrees:.1f} x {fov_y:.1f} degrees; accepted: "
                             f"fields of view in [{low:g}, {high:g}] degrees (a smaller zoom, or --fov)")
