"""What a rollout is asked to do (:class:`RolloutConfig`, frozen) and what that resolves to before anything runs
(:class:`RolloutSetup`, :func:`plan_rollout`: a photo's size and intrinsics, a trajectory's steps, the cameras)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Literal, get_args

from mirage_viz.backbone import Backbone
from mirage_viz.checks import check_choice
from mirage_viz.geometry.cameras import Camera, Intrinsics, check_fov_degrees
from mirage_viz.geometry.depth import DepthMode, check_depth_mode
from mirage_viz.memories import MEMORY_NAMES
from mirage_viz.memories.latent import LatentDtype, LiftResolution, check_latent_dtype, check_lift
from mirage_viz.memories.voxel_cache import FusionMode, check_fusion, check_voxel_size
from mirage_viz.scenes.photo import Photo
from mirage_viz.scenes.trajectories import MAX_STEPS, TRAJECTORY_NAMES, Trajectory, make_trajectory
from mirage_viz.scenes.worlds import DEFAULT_WORLD, WORLD_NAMES, SyntheticWorld, make_world

__all__ = ["DEPTH_SOURCES", "MAX_SEED", "MAX_STEP_PIXELS", "MAX_STEPS", "DepthSource", "RolloutConfig", "RolloutPlan",
           "RolloutSetup", "plan_rollout"]

DepthSource = Literal["truth", "estimated"]
DEPTH_SOURCES: tuple[DepthSource, ...] = get_args(DepthSource)
MAX_SEED = 2**32 - 1  # seeds and world seeds; per-step seeds derived from them stay within torch's range
# A rollout keeps every step's frames, latents and depth in memory: about 10 MB a step at 256 px for the
# three memories, growing with the pixel count. Bounded at 400 steps at 256 px (100 at 512, MAX_STEPS at 128).
MAX_STEP_PIXELS = 400 * 256**2


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
    fov_degrees: float = 60.0
    seed: int = 0
    memories: tuple[str, ...] = MEMORY_NAMES
    depth_source: DepthSource = "truth"
    depth_mode: DepthMode = "bilinear"
    num_inference_steps: int | None = None  # denoising steps per frame; None: the backbone's own (embedded: 6)
    # the latent memory's cache: storage precision, optional voxel fusion, lifting resolution
    latent_dtype: LatentDtype = "float32"
    voxel_size: float | None = None  # metres; None keeps the paper's flat cache
    fusion: FusionMode = "oldest"
    lift: LiftResolution = "latent"

    def validate(self, size_multiple: int = 32) -> None:
        """Raise ``ValueError`` naming the first bad parameter and what is accepted."""
        if self.world not in WORLD_NAMES:
            raise ValueError(f"unknown world {self.world!r}; accepted: {', '.join(WORLD_NAMES)}")
        if self.trajectory not in TRAJECTORY_NAMES and self.trajectory != "custom":
            raise ValueError(f"unknown trajectory {self.trajectory!r}; accepted: {', '.join(TRAJECTORY_NAMES)}")
        for name in ("steps", "size", "seed", "world_seed", "num_inference_steps"):
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
        check_fov_degrees(self.fov_degrees)
        if not self.memories or any(m not in MEMORY_NAMES for m in self.memories) or len(set(self.memories)) != len(self.memories):
            raise ValueError(f"memories must be distinct names from {', '.join(MEMORY_NAMES)}, got {list(self.memories)}")
        check_choice("depth_source", self.depth_source, DEPTH_SOURCES)
        check_depth_mode(self.depth_mode)
        if self.num_inference_steps is not None and not 1 <= self.num_inference_steps <= 1000:
            raise ValueError(f"num_inference_steps must be in [1, 1000], got {self.num_inference_steps}")
        check_latent_dtype(self.latent_dtype)
        if self.voxel_size is not None:
            check_voxel_size(self.voxel_size)  # None: no fusion
        check_fusion(self.fusion)
        check_lift(self.lift)

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
    trajectory: str  # a preset's name, or "custom" for poses given as a trajectory
    steps: int  # generated steps after the first frame (a drive: so far)
    size: int  # square frames, pixels
    fov_degrees: float  # horizontal field of view
    fov_source: str  # "setting", or for a photo "exif" or "default"
    intrinsics: Intrinsics  # of every camera, at pixel resolution
    depth_source: DepthSource  # what lifts generated frames: the world's true depth, or the estimator
    num_inference_steps: int | None  # denoising steps per frame (None: planned without a backbone)

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
) -> RolloutPlan:
    """Check a rollout's inputs, resolve what will run and lay out its cameras, without running any model.

    A photo brings its own size, field of view and intrinsics, and no truth (depth is estimated); a trajectory
    brings its steps. Raises ``ValueError`` naming the first problem: a bad setting, or (for a synthetic world)
    the first step whose camera stands outside the room or in an object. ``backbone`` (when given) sets the size
    rule and the default denoising steps; without one, sizes must be multiples of 32 (the embedded models' rule).
    """
    config = config or RolloutConfig()
    if photo is not None:
        size, fov, fov_source, depth_source = int(photo.image.shape[-1]), photo.fov_degrees, photo.fov_source, "estimated"
    else:
        size, fov, fov_source, depth_source = config.size, config.fov_degrees, "setting", config.depth_source
    name = config.trajectory if trajectory is None else trajectory.name if trajectory.name in TRAJECTORY_NAMES else "custom"
    steps = config.steps if trajectory is None else trajectory.steps
    inference_steps = config.num_inference_steps
    if inference_steps is None and backbone is not None:
        inference_steps = backbone.num_inference_steps
    resolved = replace(config, size=size, fov_degrees=fov, depth_source=depth_source, trajectory=name, steps=steps,
                       num_inference_steps=inference_steps)
    resolved.validate(backbone.size_multiple if backbone is not None else 32)  # what runs is what is checked
    world = None if photo is not None else world or make_world(config.world, config.world_seed)
    trajectory = trajectory or make_trajectory(name, steps, config.magnitude)
    intrinsics = photo.intrinsics if photo is not None else Intrinsics.from_fov(size, size, fov)
    cameras = trajectory.cameras(intrinsics)
    if world is not None:  # every camera must stand in the room, out of every object
        world.check_cameras(cameras)
    setup = RolloutSetup(
        first_frame="photo" if photo is not None else "world", world=None if photo is not None else config.world,
        world_seed=None if photo is not None else config.world_seed, photo=None if photo is None else photo.name,
        trajectory=name, steps=steps, size=size, fov_degrees=float(fov), fov_source=fov_source, intrinsics=intrinsics,
        depth_source=depth_source, num_inference_steps=inference_steps)
    return RolloutPlan(config=config, setup=setup, world=world, trajectory=trajectory, cameras=cameras)


