"""The generation engine: one camera trajectory, several memories side by side, one record a step.

Each step reads as the algorithm: read memory -> generate -> decode -> depth -> write memory
(:func:`mirage_viz.rollout.step.run_steps`: the memories share the step's noise, so they are generated and decoded
together). Every memory gets the same backbone and the same noise at each step, so the differences between their
rollouts come from memory alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator

import torch

from mirage_viz.backbone import Backbone, load_embedded_backbone
from mirage_viz.consistency import RolloutConsistency
from mirage_viz.geometry.cameras import Camera
from mirage_viz.memories import MEMORY_NAMES, LatentSpatialMemory, MemoryRead, NoMemory, Observation, RGBPointCloudMemory, SpatialMemory
from mirage_viz.metrics import psnr, ssim
from mirage_viz.rollout.config import RolloutConfig, plan_rollout
from mirage_viz.rollout.records import Rollout, StepRecord
from mirage_viz.rollout.step import StageTimer, StepOutput, run_steps
from mirage_viz.scenes.depth_errors import depth_abs_rel, hole_fraction, parse_depth_errors
from mirage_viz.scenes.photo import Photo, load_photo
from mirage_viz.scenes.sequence import ImageSequence, load_sequence
from mirage_viz.scenes.trajectories import Trajectory
from mirage_viz.scenes.worlds import Render, SyntheticWorld

__all__ = ["RolloutEngine", "iter_rollout", "make_memory", "run_rollout", "step_noise"]

_DEPTH_ERROR_SEEDS = 2**62  # depth errors draw from seeds above every generation seed (at most ~2^52)


def step_noise(config: RolloutConfig, step: int) -> torch.Generator:
    """The generator noise of ``step``: seeded from the rollout's seed and the step, the same for every memory (so a
    step can be drawn again, e.g. under another z-test rule)."""
    return torch.Generator().manual_seed(config.seed * 1_000_003 + step)


def make_memory(name: str, backbone: Backbone, config: RolloutConfig | None = None) -> SpatialMemory:
    """The memory ``name`` set up as ``config`` says (depth mode, latent cache options)."""
    config = config or RolloutConfig()
    if name == "latent":
        return LatentSpatialMemory(config.latent)
    if name == "rgb":
        return RGBPointCloudMemory(encode=backbone.encode, edge_threshold=config.latent.edge_threshold)
    if name == "none":
        return NoMemory()
    raise ValueError(f"unknown memory {name!r}; accepted: {', '.join(MEMORY_NAMES)}")


class RolloutEngine:
    """Runs cameras step by step with several memories side by side, one step at a time or a whole plan.

    >>> engine = RolloutEngine(RolloutConfig(steps=4))
    >>> for step in engine:          # one dict {memory: StepRecord} per planned step
    ...     print(step["latent"].psnr)

    Or steered, a step at a time (any camera on the planned image grid): ``engine.step(camera)`` runs the
    next step, ``engine.undo()`` takes the last one back out of every memory, ``engine.reset()`` forgets all.
    Step ``k`` draws its noise from ``seed * 1_000_003 + k`` whichever way it is reached, so a steered run
    and the plan of the same cameras give the same frames; its depth errors (``config.depth_errors``) draw from
    a seed of their own made from the same two numbers, the same for every memory.

    Each record carries the scores that need no truth (``record.consistency``: :mod:`mirage_viz.consistency`,
    against the memory's own earlier frames); ``scores=False`` leaves them out (``None``). ``step(camera,
    score=False)`` leaves its step's scores for later: :meth:`score` fills in every step left so, in order (a drive
    shows a press's frames first and scores them when the driver pauses).
    """

    def __init__(
        self,
        config: RolloutConfig | None = None,
        backbone: Backbone | None = None,
        world: SyntheticWorld | None = None,
        trajectory: Trajectory | None = None,
        photo: Photo | None = None,
        sequence: ImageSequence | None = None,
        scores: bool = True,
    ) -> None:
        self.backbone = backbone or load_embedded_backbone()
        self.photo = photo if sequence is None else sequence.first_photo
        self.sequence = sequence
        plan = plan_rollout(config, trajectory=trajectory, photo=photo, world=world, backbone=self.backbone,
                            sequence=sequence)
        self.config, self.setup, self.world = plan.config, plan.setup, plan.world
        self.backbone = self.backbone.with_decoder_sharpness(self.config.decoder.decoder_sharpness)  # itself at 0
        self.trajectory, self.cameras = plan.trajectory, plan.cameras
        self.intrinsics = plan.setup.intrinsics
        size = self.setup.size
        self.memories = {name: make_memory(name, self.backbone, self.config) for name in self.config.memories}
        self.depth_errors = parse_depth_errors(self.config.depth_errors)  # checked by the plan: truth only
        factor = self.backbone.downsample_factor
        self.latent_shape = (self.backbone.latent_channels, size // factor, size // factor)
        self._undo: list[dict[str, object]] = []  # per step run: every memory's snapshot from before it
        self.scores = scores
        self._scored = {name: RolloutConsistency() for name in self.memories}  # the frames so far, per memory
        self._unscored: list[tuple[Camera, dict[str, StepRecord]]] = []  # steps run with score=False, in order
        self.depth_factor = 1.0  # on estimated depth: a sequence's poses and the estimator agree in units
        if sequence is not None:
            first_depth = self.backbone.estimate_depth(self.photo.image)  # [H, W]
            self.depth_factor, rule = sequence.depth_factor(first_depth, self.cameras[0])
            self.setup = replace(self.setup, depth_scale=self.depth_factor, depth_scale_rule=rule)

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
        self._scored = {name: RolloutConsistency() for name in self.memories}
        self._unscored.clear()

    def step(self, camera: Camera, score: bool = True) -> dict[str, StepRecord]:
        """Run the next step at ``camera`` for every memory: step 0 writes the first frame, later ones generate.

        ``camera`` must see the planned image grid (``self.intrinsics``' width and height; its focal length and
        principal point may differ: a zoom, or a camera file). Where a step fails, every memory
        is put back as it was before it. ``score=False`` leaves the step's scores (``record.consistency``) to
        :meth:`score`.
        """
        k = camera.intrinsics
        if (k.width, k.height) != (self.intrinsics.width, self.intrinsics.height):
            raise ValueError(f"the camera's intrinsics are for {k.width}x{k.height} pixels; this rollout's frames are "
                             f"{self.intrinsics.width}x{self.intrinsics.height}")
        step = self.steps_done
        before = {name: memory.snapshot() for name, memory in self.memories.items()}
        try:
            truth = self._truth(step, camera)
            if step == 0:
                records = self._first_step(camera, truth)
            else:
                records = self._step(step, camera, truth)
            if self.scores:
                self._unscored.append((camera, records))
            if score:
                self.score()
        except BaseException:
            self._restore(before)
            self._forget_scores(step)
            raise
        self._undo.append(before)
        return records

    def score(self) -> None:
        """Score every step run with ``score=False`` since the last call, in order: each record's ``consistency``
        is filled in (nothing to do when every step is scored, or the engine runs without scores)."""
        while self._unscored:
            camera, records = self._unscored[0]
            for name, record in records.items():
                if len(self._scored[name]) <= records[name].step:  # not scored yet (a failed call scored a part)
                    record.consistency = self._scored[name].add(record.frame, record.depth, camera)
            self._unscored.pop(0)

    def undo(self) -> None:
        """Take the last step back out of every memory (the step after it reuses its index and noise)."""
        if not self._undo:
            raise ValueError("nothing to undo: no step has run since the last reset")
        self._restore(self._undo.pop())
        self._forget_scores(self.steps_done)

    def _forget_scores(self, step: int) -> None:
        """Take ``step`` (the last one run) out of the scores: unscored, or its frames from every memory's tracker."""
        if self._unscored and next(iter(self._unscored[-1][1].values())).step == step:
            self._unscored.pop()
        for scored in self._scored.values():
            if len(scored) > step:
                scored.undo()

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

    def _truth(self, step: int, camera: Camera) -> Render | None:
        """What ``step`` is scored against: the world's view at ``camera``, or a sequence's real frame when ``camera``
        is the one the file gave for that step (no depth); None for a photo, or a sequence driven elsewhere."""
        if self.world is not None:
            return self.world.render(camera)
        planned = self.sequence is not None and step < len(self.cameras) and self.cameras[step].intrinsics == camera.intrinsics
        if planned and torch.equal(self.cameras[step].camera_to_world, camera.camera_to_world):
            return Render(rgb=self.sequence.truth(step), depth=None)
        return None

    def _depth(self, frame: torch.Tensor, truth: Render | None, step: int) -> tuple[torch.Tensor, str]:
        """The depth (H, W) that lifts ``frame`` at ``step`` and its source: the true depth with the config's errors
        (NaN in holes), or the estimator's."""
        if self.setup.depth_source == "truth" and truth is not None:
            if self.depth_errors.is_exact:
                return truth.depth, "truth"
            noise = torch.Generator().manual_seed(_DEPTH_ERROR_SEEDS + self.config.seed * 1_000_003 + step)
            return self.depth_errors.apply(truth.depth, noise), "truth"
        depth = self.backbone.estimate_depth(frame)  # [H, W] in the estimator's units
        return (depth if self.depth_factor == 1.0 else depth * self.depth_factor), "estimated"

    def _depth_record(self, depth: torch.Tensor, depth_source: str, truth: Render | None) -> dict[str, object]:
        """What a record says of the depth it used: its errors, its distance from the truth, its holes."""
        return {"depth_source": depth_source,
                "depth_model": self.backbone.depth_name if depth_source == "estimated" else None,
                "depth_errors": self.depth_errors.spec if depth_source == "truth" else "",
                "depth_abs_rel": None if truth is None or truth.depth is None else depth_abs_rel(depth, truth.depth),
                "depth_holes": hole_fraction(depth)}

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
            depth, depth_source = self._depth(image, truth, 0)
        depth_record = self._depth_record(depth, depth_source, truth)
        records = {}
        for name, memory in self.memories.items():
            with timer("write"):
                memory.write(Observation(camera=camera, image=image, latent=latent, depth=depth))
            stats = memory.stats()
            records[name] = StepRecord(
                step=0, memory=name, camera=camera, conditioning_latent=torch.zeros_like(latent),
                mask=torch.zeros(latent.shape[1:], dtype=torch.bool), generated_latent=latent, frame=decoded,
                depth=depth, cache_points=stats.points, cache_bytes=stats.bytes,
                timings_ms={"read": 0.0, "generate": 0.0, "decode": 0.0, **timer.ms},
                true_frame=target, psnr=psnr(decoded, target), ssim=ssim(decoded, target), **depth_record,
            )
        return records

    def _step(self, step: int, camera: Camera, truth: Render | None) -> dict[str, StepRecord]:
        """A generated step of every memory: read each, generate and decode them together on the step's noise (the
        same for every memory), then each one's depth and write (:func:`~mirage_viz.rollout.step.run_steps`)."""
        # each memory reads first in turn: on a busy machine (a browser drawing the last step, say) the slow start of
        # a step falls on every memory alike, not always on the first
        names = list(self.memories)
        turn = names[step % len(names):] + names[: step % len(names)]
        outputs = run_steps({name: self.memories[name] for name in turn}, self.backbone, camera, self.latent_shape,
                            lambda: step_noise(self.config, step), lambda frame: self._depth(frame, truth, step),
                            self.setup.num_inference_steps, known_cells=self.config.sampler.known_cells,
                            samples=self.config.sampler.average_samples)
        return {name: self._record(step, camera, self.memories[name], outputs[name], truth) for name in names}

    def _record(self, step: int, camera: Camera, memory: SpatialMemory, out: StepOutput, truth: Render | None) -> StepRecord:
        stats = memory.stats()
        return StepRecord(
            step=step, memory=memory.name, camera=camera, conditioning_latent=out.read.latent, mask=out.read.mask,
            generated_latent=out.latent, frame=out.frame, depth=out.depth,
            cache_points=stats.points, cache_bytes=stats.bytes, timings_ms=out.timings_ms,
            true_frame=None if truth is None else truth.rgb, memory_render=out.read.render,
            memory_render_mask=out.read.render_mask, conditioning_frame=self._remembered_frame(out.read),
            source=out.read.source, source_depth=out.read.source_depth,
            psnr=None if truth is None else psnr(out.frame, truth.rgb),
            ssim=None if truth is None else ssim(out.frame, truth.rgb),
            **self._depth_record(out.depth, out.depth_source, truth),
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
    sequence: ImageSequence | str | Path | None = None,
) -> Iterator[Rollout]:
    """Stream a rollout: yields the same growing :class:`Rollout` after each step (caches included).

    ``photo`` (a :class:`~mirage_viz.scenes.photo.Photo` or a path) replaces the world's first view; the
    world is then unknown, so depth is estimated and there is no truth to score later frames against.
    The photo's size and field of view replace ``config.size`` and ``config.fov_degrees``: a path is
    loaded at ``config.size`` with its EXIF field of view (else 60 degrees); to choose the field of view,
    pass ``load_photo(path, size, fov_degrees)``.
    ``sequence`` (an :class:`~mirage_viz.scenes.sequence.ImageSequence` or the path of its camera file) is the world:
    its first image the first frame, its cameras the trajectory, its images the truth each step is scored against;
    a path is read at ``config.size`` with every pose (``load_sequence(path, size, steps)`` to subsample).
    Inputs are checked and the models loaded before the first step runs.
    """
    if photo is not None and not isinstance(photo, Photo):
        photo = load_photo(photo, (config or RolloutConfig()).size)
    if sequence is not None and not isinstance(sequence, ImageSequence):
        sequence = load_sequence(sequence, (config or RolloutConfig()).size)
    engine = RolloutEngine(config, backbone=backbone, trajectory=trajectory, photo=photo, sequence=sequence)
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
    sequence: ImageSequence | str | Path | None = None,
) -> Rollout:
    """Run a whole rollout and keep every record and the final caches.

    ``on_step(step, rollout)`` is called as each step finishes; ``photo`` and ``sequence`` as in :func:`iter_rollout`.
    """
    rollout = None
    for rollout in iter_rollout(config, backbone=backbone, trajectory=trajectory, photo=photo, sequence=sequence):
        if on_step is not None:
            on_step(len(rollout) - 1, rollout)
    return rollout
