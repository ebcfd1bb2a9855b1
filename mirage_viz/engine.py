"""The generation engine: one camera trajectory, several memories side by side, one record a step.

Each step reads as the algorithm: read memory -> generate -> decode -> depth -> write memory.
Every memory gets the same backbone and the same noise at each step, so the differences between
their rollouts come from memory alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Literal, get_args

import torch

from .backbone import Backbone, load_embedded_backbone
from .cameras import Camera, Intrinsics, check_fov_degrees
from .checks import check_choice
from .depth import DepthMode, check_depth_mode
from .memories import (
    MEMORY_NAMES,
    FeatureKind,
    LatentSpatialMemory,
    MemoryInfo,
    MemoryRead,
    NoMemory,
    Observation,
    RGBPointCloudMemory,
    SpatialMemory,
)
from .memories.latent import LatentDtype, LiftResolution, check_latent_dtype, check_lift
from .memories.voxel_cache import FusionMode, check_fusion, check_voxel_size
from .metrics import psnr, ssim
from .photo import Photo, load_photo
from .step import STAGES, StageTimer, run_step
from .trajectories import MAX_STEPS, TRAJECTORY_NAMES, Trajectory, make_trajectory
from .worlds import DEFAULT_WORLD, WORLD_NAMES, Render, SyntheticWorld, make_world

__all__ = ["DEPTH_SOURCES", "MAX_SEED", "MAX_STEP_PIXELS", "MAX_STEPS", "STAGES", "DepthSource", "RolloutConfig",
           "RolloutSetup", "RolloutPlan", "StepRecord", "plan_rollout", "Rollout", "RolloutEngine", "iter_rollout", "run_rollout"]

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
class StepRecord:
    """Everything one step of one memory's rollout produced."""

    step: int  # 0 is the given first frame
    memory: str
    camera: Camera
    conditioning_latent: torch.Tensor  # (C, h, w); 0 in holes
    mask: torch.Tensor  # (h, w) bool
    generated_latent: torch.Tensor  # (C, h, w)
    frame: torch.Tensor  # (3, H, W) decoded, in [0, 1]
    depth: torch.Tensor  # (H, W) metric depth used to write the memory
    depth_source: str  # "truth" or "estimated"
    cache_points: int
    cache_bytes: int
    timings_ms: dict[str, float]  # one entry per STAGES
    true_frame: torch.Tensor | None = None  # (3, H, W) when the world is known
    memory_render: torch.Tensor | None = None  # (3, H, W) the RGB memory's pixel render
    memory_render_mask: torch.Tensor | None = None  # (H, W) bool, the pixels that render hit
    # (3, H, W) in [0, 1]: the conditioning latent decoded by the backbone's VAE, what a latent memory alone
    # remembers of this view; steps > 0 of memories that read a latent only (no render), when it covers a cell
    conditioning_frame: torch.Tensor | None = None
    psnr: float | None = None
    ssim: float | None = None
    depth_model: str | None = None  # the estimator that ran when depth_source is "estimated"

    @property
    def mask_coverage(self) -> float:
        return float(self.mask.float().mean())

    def summary(self) -> dict:
        return {
            "step": self.step,
            "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
            "cache_points": self.cache_points,
            "cache_bytes": self.cache_bytes,
            "mask_coverage": round(self.mask_coverage, 5),
            "depth_source": self.depth_source,
            "depth_model": self.depth_model,
            "psnr": _json_number(self.psnr, 4),
            "ssim": _json_number(self.ssim, 5),
        }


def _json_number(value: float | None, digits: int) -> float | None:
    """JSON has no infinity: a perfect match (PSNR inf) or no truth is written as null."""
    return None if value is None or not math.isfinite(value) else round(value, digits)


@dataclass
class Rollout:
    """All records of a rollout: ``records[memory][step]``.

    It grows one step at a time (:meth:`append`) and, for an undo, shrinks one (:meth:`pop`). ``cameras``
    is the planned path when one was laid out before the run (a preset or a file: it stays whole), else
    (a drive) the path so far, growing and shrinking with the steps.
    """

    config: RolloutConfig
    cameras: list[Camera]
    records: dict[str, list[StepRecord]] = field(default_factory=dict)
    setup: RolloutSetup | None = None  # what the config resolved to
    backbone_name: str = "embedded"
    notices: list[str] = field(default_factory=list)  # models that fell back while loading, and why
    caches: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)  # final (points, features)
    # per-step caches of memories that are not append-only (fused caches): snapshots[memory][step]
    snapshots: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = field(default_factory=dict)
    memory_info: dict[str, MemoryInfo] = field(default_factory=dict)  # what each memory is (features, colour)
    _planned: int = field(init=False, repr=False, compare=False, default=0)  # cameras laid out before the first step

    def __post_init__(self) -> None:
        self._planned = len(self.cameras)

    def __len__(self) -> int:
        """Steps recorded so far."""
        return len(next(iter(self.records.values()), []))

    def append(self, records: dict[str, StepRecord], camera: Camera,
               caches: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Add the next step: one record per memory, its camera and every memory's cache after it.

        The camera joins ``cameras`` unless the path was planned (then it must be the planned one); the
        cache of each memory in ``snapshots`` (the fused ones) is kept for this step too.
        """
        step = len(self)
        if set(records) != set(self.records) or any(r.step != step for r in records.values()):
            raise ValueError(f"step {step} needs one record of that step for each of {', '.join(self.records)}; got "
                             f"{ {name: r.step for name, r in records.items()} }")
        if step < len(self.cameras):
            if not torch.equal(self.cameras[step].camera_to_world, camera.camera_to_world):
                raise ValueError(f"step {step} ran at another camera than the planned one")
        else:
            self.cameras.append(camera)
        for name, record in records.items():
            self.records[name].append(record)
        self.caches = dict(caches)
        for name, kept in self.snapshots.items():
            kept.append(self.caches[name])

    def pop(self) -> None:
        """Forget the last step (an undo): its records, its camera (unless planned) and the caches it wrote."""
        if len(self) == 0:
            raise ValueError("the rollout has no step to remove")
        for records in self.records.values():
            records.pop()
        if len(self.cameras) > max(self._planned, len(self)):
            self.cameras.pop()
        for kept in self.snapshots.values():
            kept.pop()
        if len(self) == 0:
            self.caches = {}
            return
        caches = {}
        for name, (points, features) in self.caches.items():
            # a fused cache was kept step by step; an append-only one is a prefix of the later one
            count = self.records[name][-1].cache_points
            caches[name] = self.snapshots[name][-1] if name in self.snapshots else (points[:count], features[:count])
        self.caches = caches

    def memories_holding(self, features: FeatureKind) -> list[str]:
        """The memories whose caches hold ``features`` ("latent", "color"), in the rollout's order, with a cache kept."""
        return [name for name, info in self.memory_info.items() if info.features == features and name in self.caches]

    def cache_at(self, memory: str, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The cache of ``memory`` right after ``step``: points (N, 3) and features (N, C).

        An append-only cache is the first ``cache_points`` entries of the final cache; a fused cache
        was kept step by step.
        """
        if memory not in self.caches:
            raise ValueError(f"no cache kept for memory {memory!r}; kept: {', '.join(self.caches) or 'none'}")
        if memory in self.snapshots:
            return self.snapshots[memory][step]
        count = self.records[memory][step].cache_points
        points, features = self.caches[memory]
        return points[:count], features[:count]

    def summary(self) -> dict:
        """The JSON-ready summary written as ``summary.json``."""
        config = self.config.to_dict() | {"backbone": self.backbone_name, "convention": "opencv camera_to_world"}
        return {
            "config": config,
            "setup": None if self.setup is None else self.setup.to_dict(),
            "notices": list(self.notices),
            "memories": {name: {"steps": [r.summary() for r in records]} for name, records in self.records.items()},
        }


def make_memory(name: str, backbone: Backbone, config: RolloutConfig | None = None) -> SpatialMemory:
    """The memory ``name`` set up as ``config`` says (depth mode, latent cache options)."""
    config = config or RolloutConfig()
    if name == "latent":
        return LatentSpatialMemory(depth_mode=config.depth_mode, dtype=config.latent_dtype, voxel_size=config.voxel_size,
                                   fusion=config.fusion, lift=config.lift)
    if name == "rgb":
        return RGBPointCloudMemory(encode=backbone.encode)
    if name == "none":
        return NoMemory()
    raise ValueError(f"unknown memory {name!r}; accepted: {', '.join(MEMORY_NAMES)}")


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


class RolloutEngine:
    """Runs cameras step by step with several memories side by side, one step at a time or a whole plan.

    >>> engine = RolloutEngine(RolloutConfig(steps=4))
    >>> for step in engine:          # one dict {memory: StepRecord} per planned step
    ...     print(step["latent"].psnr)

    Or steered, a step at a time (any camera with the planned intrinsics): ``engine.step(camera)`` runs the
    next step, ``engine.undo()`` takes the last one back out of every memory, ``engine.reset()`` forgets all.
    Step ``k`` draws its noise from ``seed * 1_000_003 + k`` whichever way it is reached, so a steered run
    and the plan of the same cameras give the same frames.
    """

    def __init__(
        self,
        config: RolloutConfig | None = None,
        backbone: Backbone | None = None,
        world: SyntheticWorld | None = None,
        trajectory: Trajectory | None = None,
        photo: Photo | None = None,
    ) -> None:
        self.backbone = backbone or load_embedded_backbone()
        self.photo = photo
        plan = plan_rollout(config, trajectory=trajectory, photo=photo, world=world, backbone=self.backbone)
        self.config, self.setup, self.world = plan.config, plan.setup, plan.world
        self.trajectory, self.cameras = plan.trajectory, plan.cameras
        self.intrinsics = plan.setup.intrinsics
        size = self.setup.size
        self.memories = {name: make_memory(name, self.backbone, self.config) for name in self.config.memories}
        factor = self.backbone.downsample_factor
        self.latent_shape = (self.backbone.latent_channels, size // factor, size // factor)
        self._undo: list[dict[str, object]] = []  # per step run: every memory's snapshot from before it

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self) -> Iterator[dict[str, StepRecord]]:
        self.reset()  # every pass is a fresh rollout
        for camera in self.cameras:
            yield self.step(camera)

    @property
    def steps_done(self) -> int:
        """Steps run since the last reset (step 0, the first frame, included); the next step's index."""
        return len(self._undo)

    def reset(self) -> None:
        """Forget every step: the memories are empty and the next step is step 0."""
        for memory in self.memories.values():
            memory.reset()
        self._undo.clear()

    def step(self, camera: Camera) -> dict[str, StepRecord]:
        """Run the next step at ``camera`` for every memory: step 0 writes the first frame, later ones generate.

        ``camera`` must have the planned intrinsics (``self.intrinsics``). Where a step fails, every memory
        is put back as it was before it.
        """
        if camera.intrinsics != self.intrinsics:
            raise ValueError(f"the camera's intrinsics {camera.intrinsics} are not the rollout's {self.intrinsics}")
        step = self.steps_done
        before = {name: memory.snapshot() for name, memory in self.memories.items()}
        try:
            truth = None if self.world is None else self.world.render(camera)
            if step == 0:
                records = self._first_step(camera, truth)
            else:
                # each memory leads in turn: on a busy machine (a browser drawing the last step, say) the slow
                # start of a step falls on every memory alike, not always on the first
                names = list(self.memories)
                turn = names[step % len(names):] + names[: step % len(names)]
                ran = {name: self._step(step, camera, self.memories[name], truth) for name in turn}
                records = {name: ran[name] for name in names}
        except BaseException:
            self._restore(before)
            raise
        self._undo.append(before)
        return records

    def undo(self) -> None:
        """Take the last step back out of every memory (the step after it reuses its index and noise)."""
        if not self._undo:
            raise ValueError("nothing to undo: no step has run since the last reset")
        self._restore(self._undo.pop())

    def _restore(self, snapshots: dict[str, object]) -> None:
        for name, snapshot in snapshots.items():
            self.memories[name].restore(snapshot)

    def caches(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every memory's cache now: points (N, 3) and features (N, C)."""
        return {name: memory.cached_points() for name, memory in self.memories.items()}

    def new_rollout(self, cameras: list[Camera] | None = None) -> Rollout:
        """An empty :class:`Rollout` of this engine's config and memories: ``cameras`` planned, or none (a drive)."""
        fused = [name for name, memory in self.memories.items() if not memory.append_only]
        return Rollout(config=self.config, setup=self.setup, cameras=list(cameras or []), records={n: [] for n in self.memories},
                       backbone_name=self.backbone.name, notices=list(self.backbone.notices),
                       snapshots={name: [] for name in fused},
                       memory_info={name: memory.info() for name, memory in self.memories.items()})

    def _depth(self, frame: torch.Tensor, truth: Render | None) -> tuple[torch.Tensor, str]:
        if self.setup.depth_source == "truth" and truth is not None:
            return truth.depth, "truth"
        return self.backbone.estimate_depth(frame), "estimated"

    def _first_step(self, camera: Camera, truth: Render | None) -> dict[str, StepRecord]:
        """Step 0: the given frame (the world's view, or the photo) is encoded and written into every memory.

        Its record shows the frame decoded back from its latent: what the model itself holds of it.
        """
        image = truth.rgb if truth is not None else self.photo.image
        target = image  # what the decoded first frame is measured against
        latent = self.backbone.encode(image[None])[0]
        decoded = self.backbone.decode(latent[None])[0]
        timer = StageTimer()
        with timer("depth"):
            depth, depth_source = self._depth(image, truth)
        records = {}
        for name, memory in self.memories.items():
            with timer("write"):
                memory.write(Observation(camera=camera, image=image, latent=latent, depth=depth))
            stats = memory.stats()
            records[name] = StepRecord(
                step=0, memory=name, camera=camera, conditioning_latent=torch.zeros_like(latent),
                mask=torch.zeros(latent.shape[1:], dtype=torch.bool), generated_latent=latent, frame=decoded,
                depth=depth, depth_source=depth_source, cache_points=stats.points, cache_bytes=stats.bytes,
                timings_ms={"read": 0.0, "generate": 0.0, "decode": 0.0, **timer.ms},
                true_frame=target, psnr=psnr(decoded, target), ssim=ssim(decoded, target),
                depth_model=self.backbone.depth_name if depth_source == "estimated" else None,
            )
        return records

    def _step(self, step: int, camera: Camera, memory: SpatialMemory, truth: Render | None) -> StepRecord:
        noise = torch.Generator().manual_seed(self.config.seed * 1_000_003 + step)  # the same for every memory
        out = run_step(memory, self.backbone, camera, self.latent_shape, noise, lambda frame: self._depth(frame, truth),
                       self.setup.num_inference_steps)
        stats = memory.stats()
        return StepRecord(
            step=step, memory=memory.name, camera=camera, conditioning_latent=out.read.latent, mask=out.read.mask,
            generated_latent=out.latent, frame=out.frame, depth=out.depth, depth_source=out.depth_source,
            cache_points=stats.points, cache_bytes=stats.bytes, timings_ms=out.timings_ms,
            true_frame=None if truth is None else truth.rgb, memory_render=out.read.render,
            memory_render_mask=out.read.render_mask, conditioning_frame=self._remembered_frame(out.read),
            psnr=None if truth is None else psnr(out.frame, truth.rgb),
            ssim=None if truth is None else ssim(out.frame, truth.rgb),
            depth_model=self.backbone.depth_name if out.depth_source == "estimated" else None,
        )

    def _remembered_frame(self, read: MemoryRead) -> torch.Tensor | None:
        """What a latent-only read holds, as an image (3, H, W): its latent decoded (untimed: for viewers)."""
        if read.render is not None or not read.mask.any():
            return None  # a pixel memory shows its own render; an empty read has nothing to show
        return self.backbone.decode(read.latent[None])[0]


def iter_rollout(
    config: RolloutConfig | None = None,
    backbone: Backbone | None = None,
    trajectory: Trajectory | None = None,
    photo: Photo | str | Path | None = None,
) -> Iterator[Rollout]:
    """Stream a rollout: yields the same growing :class:`Rollout` after each step (caches included).

    ``photo`` (a :class:`~mirage_viz.photo.Photo` or a path) replaces the world's first view; the
    world is then unknown, so depth is estimated and there is no truth to score later frames against.
    The photo's size and field of view replace ``config.size`` and ``config.fov_degrees``: a path is
    loaded at ``config.size`` with its EXIF field of view (else 60 degrees); to choose the field of view,
    pass ``load_photo(path, size, fov_degrees)``.
    Inputs are checked and the models loaded before the first step runs.
    """
    if photo is not None and not isinstance(photo, Photo):
        photo = load_photo(photo, (config or RolloutConfig()).size)
    engine = RolloutEngine(config, backbone=backbone, trajectory=trajectory, photo=photo)
    rollout = engine.new_rollout(list(engine.cameras))
    for records, camera in zip(engine, engine.cameras):
        rollout.append(records, camera, engine.caches())
        yield rollout


def run_rollout(
    config: RolloutConfig | None = None,
    backbone: Backbone | None = None,
    trajectory: Trajectory | None = None,
    on_step: Callable[[int, Rollout], None] | None = None,
    photo: Photo | str | Path | None = None,
) -> Rollout:
    """Run a whole rollout and keep every record and the final caches.

    ``on_step(step, rollout)`` is called as each step finishes; ``photo`` as in :func:`iter_rollout`.
    """
    rollout = None
    for rollout in iter_rollout(config, backbone=backbone, trajectory=trajectory, photo=photo):
        if on_step is not None:
            on_step(len(rollout) - 1, rollout)
    return rollout
