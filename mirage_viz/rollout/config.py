"""What a rollout is asked to do (:class:`RolloutConfig`, frozen) and what that resolves to before anything runs
(:class:`RolloutSetup`, :func:`plan_rollout`: a photo's size and intrinsics, a trajectory's steps, the cameras)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Literal, get_args

import torch

from mirage_viz.backbone import Backbone, DecoderOptions, SamplerOptions
from mirage_viz.checks import check_choice
from mirage_viz.geometry.cameras import FOV_RANGE, Camera, Intrinsics, check_fov_degrees
from mirage_viz.memories import MEMORY_NAMES
from mirage_viz.memories.latent import LatentOptions
from mirage_viz.models.hub import pick_device
from mirage_viz.options import OptionGroup
from mirage_viz.rollout.step_cost import MEASURED, check_step_fits_machine
from mirage_viz.scenes.depth_errors import parse_depth_errors
from mirage_viz.scenes.photo import DEFAULT_FOV_DEGREES, Photo
from mirage_viz.scenes.sequence import ImageSequence
from mirage_viz.scenes.trajectories import MAX_STEPS, Trajectory, check_trajectory_name, make_trajectory
from mirage_viz.scenes.worlds import DEFAULT_WORLD, WORLD_NAMES, SyntheticWorld, make_world

__all__ = ["DEPTH_SOURCES", "MAX_SEED", "MAX_STEP_PIXELS", "MAX_STEPS", "MEMORY_SETTINGS", "DepthSource", "MemorySetting",
           "RolloutConfig", "RolloutPlan", "RolloutSetup", "memory_setting_of", "memory_settings_markdown", "option_groups",
           "plan_rollout"]

DepthSource = Literal["truth", "estimated"]
DEPTH_SOURCES: tuple[DepthSource, ...] = get_args(DepthSource)
MAX_SEED = 2**32 - 1  # seeds and world seeds; per-step seeds derived from them stay within torch's range
# A rollout keeps every step's frames, latents and depth in memory: about 10 MB a step at 256 px for the
# three memories, growing with the pixel count. Bounded at 400 steps at 256 px (100 at 512, MAX_STEPS at 128).
MAX_STEP_PIXELS = 400 * 256**2


@dataclass(frozen=True)
class MemorySetting:
    """A named memory setting: what it does in one plain sentence, and the options it sets, by name (the fields of
    :class:`RolloutConfig`'s option groups: ``depth_tie_bits``, ``known_cells``, ...).
    Their figures (measured on held-out worlds) are in ``docs/memory-settings.md`` and the bench's memory-options
    section; names and sentences never carry figures."""

    name: str
    sentence: str
    options: Mapping[str, object]

    @property
    def flags(self) -> str:
        """The ``mirage-viz rollout`` flags that set the same options (``--depth-tie-bits 0 --known-cells ...``)."""
        return " ".join(f"--{'' if value else 'no-'}{key.replace('_', '-')}" if isinstance(value, bool)
                        else f"--{key.replace('_', '-')} {value}" for key, value in self.options.items())


def memory_settings_markdown() -> str:
    """The table of :data:`MEMORY_SETTINGS` for ``docs/memory-settings.md``: name, flags, sentence (a test keeps the
    page equal to it)."""
    rows = [f"| **{s.name}**{' (default)' if not s.options else ''} | {f'`{s.flags}`' if s.options else 'none'} | "
            f"{s.sentence} |" for s in MEMORY_SETTINGS.values()]
    return "\n".join(["| setting | the same as the flags | what it does |", "| --- | --- | --- |", *rows])


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
    held = config.options()
    matches = [setting for setting in MEMORY_SETTINGS.values()
               if setting.options and all(held[key] == value for key, value in setting.options.items())]
    return max(matches, key=lambda setting: len(setting.options)).name if matches else "paper"


@dataclass(frozen=True)
class RolloutConfig:
    """What a rollout is asked to do: the scene fields, then the options of the latent memory, the sampler and the
    decoder as groups owned by their layers (:func:`option_groups`). Every field has a sensible default, the paper's
    for every option. Frozen: what actually runs (a photo's size and field of view, a trajectory file's steps, the
    backbone's denoising steps) is its :class:`RolloutSetup`."""

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
    latent: LatentOptions = field(default_factory=LatentOptions)
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    decoder: DecoderOptions = field(default_factory=DecoderOptions)

    def validate(self, size_multiple: int = 32) -> None:
        """Raise ``ValueError`` naming the first bad parameter and what is accepted."""
        if self.world not in WORLD_NAMES:
            raise ValueError(f"unknown world {self.world!r}; accepted: {', '.join(WORLD_NAMES)}")
        if self.trajectory != "custom":
            check_trajectory_name(self.trajectory)
        for name in ("steps", "size", "seed", "world_seed"):
            value = getattr(self, name)
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
        for group, kind in option_groups().items():
            options = getattr(self, group)
            if not isinstance(options, kind):
                raise ValueError(f"{group} must be a {kind.__name__}, got {options!r}")
            options.validate()

    def options(self) -> dict[str, object]:
        """Every option of the groups by name: ``{"depth_mode": "bilinear", ..., "decoder_sharpness": 0.0}``."""
        return {name: value for group in option_groups() for name, value in asdict(getattr(self, group)).items()}

    def with_options(self, **options: object) -> RolloutConfig:
        """This config with options of its groups replaced by name (``with_options(depth_tie_bits=0, known_cells=True)``);
        an unknown name is a ``ValueError`` listing the accepted ones."""
        owner = {name: group for group, kind in option_groups().items() for name in (f.name for f in fields(kind))}
        unknown = [name for name in options if name not in owner]
        if unknown:
            raise ValueError(f"unknown option {', '.join(map(repr, unknown))}; accepted: {', '.join(owner)}")
        changes = {group: replace(getattr(self, group), **{k: v for k, v in options.items() if owner[k] == group})
                   for group in {owner[name] for name in options}}
        return replace(self, **changes)

    def with_memory_setting(self, name: str) -> RolloutConfig:
        """This config under one of :data:`MEMORY_SETTINGS` (its options replace this config's)."""
        check_choice("memory setting", name, tuple(MEMORY_SETTINGS))
        return self.with_options(**MEMORY_SETTINGS[name].options)

    def to_dict(self) -> dict:
        """The scene fields, then each group's options under its name (``{"latent": {"depth_mode": ...}, ...}``)."""
        data = asdict(self)
        data["memories"] = list(self.memories)
        return data


def option_groups() -> dict[str, type[OptionGroup]]:
    """:class:`RolloutConfig`'s option groups by field name, in order: ``{"latent": LatentOptions, "sampler":
    SamplerOptions, "decoder": DecoderOptions}``, read from its fields (a new group is one new field)."""
    return {spec.name: spec.default_factory for spec in fields(RolloutConfig)  # type: ignore[misc]
            if isinstance(spec.default_factory, type) and issubclass(spec.default_factory, OptionGroup)}


@dataclass(frozen=True)
class RolloutSetup:
    """What a rollout's config resolved to, as it runs (on :attr:`Rollout.setup` and in ``summary.json``)."""

    first_frame: Literal["world", "photo", "sequence"]  # the world's view at the first camera, a photo, or a sequence's
    world: str | None  # the world and its seed (None for a photo or a sequence)
    world_seed: int | None
    photo: str | None  # the photo's file name (a sequence: its first image's; None for a world)
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
    sequence: str | None = None  # a posed image sequence's camera file, format and frames ("transforms.json (nerfstudio, 13 frames)")
    depth_scale: float = 1.0  # the factor on estimated depth that puts it in the poses' units (a sequence's rule)
    depth_scale_rule: str = ""  # the rule that gave it (ImageSequence.depth_factor); "" where no rule applies

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
    sequence: ImageSequence | None = None,
) -> RolloutPlan:
    """Check a rollout's inputs, resolve what will run and lay out its cameras, without running any model.

    A photo brings its own size, field of view and intrinsics, and no truth (depth is estimated); a trajectory
    brings its steps; a camera file's intrinsics, cut as the photo was, replace the photo's unless a field of view is
    set. A posed image sequence is its first frame as a photo with its file's trajectory. Raises ``ValueError`` naming the first problem: a bad setting, or (for a synthetic world)
    the first step whose camera stands outside the room or in an object. ``backbone`` (when given) sets the size
    rule and the default denoising steps; without one, sizes must be multiples of 32 (the embedded models' rule).
    On the CPU (the backbone's device, else ``device`` as ``build_backbone`` takes it, else the CPU) a size whose
    step is estimated beyond this machine is refused with the estimate (``rollout.step_cost``); CUDA has no such bound.
    """
    config = config or RolloutConfig()
    if sequence is not None:
        if photo is not None or trajectory is not None or world is not None:
            raise ValueError("a posed image sequence brings its first frame and its cameras; accepted: a sequence alone, "
                             "or a photo, a world and a trajectory without one")
        photo, trajectory = sequence.first_photo, sequence.trajectory
    own_intrinsics = (trajectory is not None and trajectory.intrinsics is not None and config.fov_degrees is None
                      and (photo is None or photo.fov_source != "setting"))
    if photo is not None and own_intrinsics:  # the file's intrinsics, cut as the photo was
        size, fov_source, depth_source = int(photo.image.shape[-1]), "file", "estimated"
        fov = photo.intrinsics_from(trajectory.intrinsics[0], f"the camera file {trajectory.name!r}").fov_x_degrees
    elif photo is not None:
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
    inference_steps = config.sampler.num_inference_steps
    if inference_steps is None and backbone is not None:
        inference_steps = backbone.num_inference_steps
    resolved = replace(config.with_options(num_inference_steps=inference_steps), size=size, depth_source=depth_source,
                       fov_degrees=None if own_intrinsics else fov, trajectory=name, steps=steps)
    resolved.validate(backbone.size_multiple if backbone is not None else 32)  # what runs is what is checked
    on = backbone.device if backbone is not None else pick_device(str(device))[0] if device is not None else None
    if on is None or on.type == "cpu":
        check_step_fits_machine(size, steps, len(config.memories), inference_steps or MEASURED["denoising_steps"],
                                config.sampler.average_samples, backbone.size_multiple if backbone is not None else 32)
    if backbone is not None:
        backbone.check_decoder_sharpness(config.decoder.decoder_sharpness)  # the embedded VAE's decoder only
    world = None if photo is not None else world or make_world(config.world, config.world_seed)
    trajectory = trajectory or make_trajectory(name, steps, config.magnitude)
    if photo is not None and own_intrinsics:
        where = f"the camera file {trajectory.name!r}"
        cameras = [Camera(photo.intrinsics_from(k, where), pose) for k, pose in zip(trajectory.intrinsics, trajectory.camera_to_world)]
    else:
        base = photo.intrinsics if photo is not None else Intrinsics.from_fov(size, size, fov)
        cameras = trajectory.cameras(base, own_intrinsics=own_intrinsics)
    _check_fields_of_view(cameras)
    if world is not None:  # every camera must stand in the room, out of every object
        world.check_cameras(cameras)
    setup = RolloutSetup(
        first_frame="sequence" if sequence is not None else "photo" if photo is not None else "world", world=None if photo is not None else config.world,
        world_seed=None if photo is not None else config.world_seed, photo=None if photo is None else photo.name,
        trajectory=name, steps=steps, size=size, fov_degrees=float(fov),
        fov_source=fov_source, intrinsics=cameras[0].intrinsics,
        intrinsics_vary=any(c.intrinsics != cameras[0].intrinsics for c in cameras),
        depth_source=depth_source, num_inference_steps=inference_steps,
        depth_errors=parse_depth_errors(config.depth_errors).spec,
        sequence=None if sequence is None else sequence.source)
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
