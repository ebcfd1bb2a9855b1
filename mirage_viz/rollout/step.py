"""One step of the data flow, timed by one timer: read memory -> generate -> decode -> depth -> write memory.

:func:`run_step` is the step the engine runs for every memory and the benchmark times; memories only return
data, the step measures each stage with a :class:`StageTimer`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from mirage_viz.backbone import Backbone
from mirage_viz.geometry.cameras import Camera
from mirage_viz.memories import MemoryRead, Observation, SpatialMemory

__all__ = ["STAGES", "StageTimer", "StepOutput", "run_step", "run_steps", "timed_ms"]

STAGES = ("read", "generate", "decode", "depth", "write")

# frame (3, H, W) -> depth (H, W), NaN where there is none, and its source
DepthFunction = Callable[[torch.Tensor], tuple[torch.Tensor, str]]


class StageTimer:
    """Wall time of each stage in milliseconds (``ms``), measured one way everywhere::

        timer = StageTimer()
        with timer("read"):
            read = memory.read(camera, latent_shape)
    """

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.ms[stage] = (time.perf_counter() - start) * 1e3


def timed_ms(function: Callable[[], object]) -> tuple[object, float]:
    """Run ``function`` once: its result and its wall time in milliseconds (a :class:`StageTimer` of one stage)."""
    timer = StageTimer()
    with timer("call"):
        result = function()
    return result, timer.ms["call"]


@dataclass
class StepOutput:
    """What one step of one memory produced."""

    read: MemoryRead  # the conditioning the memory handed the generator
    latent: torch.Tensor  # (C, h, w) generated latent
    frame: torch.Tensor  # (3, H, W) decoded, in [0, 1]
    depth: torch.Tensor  # (H, W) metric depth written with the frame; NaN where it has none (not lifted)
    depth_source: str  # "truth" or "estimated"
    timings_ms: dict[str, float]  # one entry per STAGES


def run_step(
    memory: SpatialMemory,
    backbone: Backbone,
    camera: Camera,
    latent_shape: tuple[int, int, int],
    noise: torch.Generator,
    depth: DepthFunction,
    num_inference_steps: int | None = None,
    write_to: SpatialMemory | None = None,
    known_cells: bool = False,
    samples: int = 1,
) -> StepOutput:
    """One step at ``camera``: read ``memory``, generate a latent of ``latent_shape`` (C, h, w) from ``noise``,
    decode it, take its depth (``depth(frame)``) and write the frame into ``memory`` (or ``write_to``, so a
    benchmark can keep the memory it times unchanged); ``samples`` > 1 generates the mean of that many draws. Each
    stage is timed."""
    timer = StageTimer()
    with timer("read"):
        read = memory.read(camera, latent_shape)
    with timer("generate"):
        latent = backbone.generate(read.latent, read.mask.float(), noise, num_inference_steps, known_cells, samples)
    with timer("decode"):
        frame = backbone.decode(latent[None])[0]
    with timer("depth"):
        depth_map, depth_source = depth(frame)
    with timer("write"):
        (write_to or memory).write(Observation(camera=camera, image=frame, latent=latent, depth=depth_map))
    return StepOutput(read=read, latent=latent, frame=frame, depth=depth_map, depth_source=depth_source,
                      timings_ms=timer.ms)


def run_steps(
    memories: Mapping[str, SpatialMemory],
    backbone: Backbone,
    camera: Camera,
    latent_shape: tuple[int, int, int],
    noise: Callable[[], torch.Generator],
    depth: DepthFunction,
    num_inference_steps: int | None = None,
    known_cells: bool = False,
    samples: int = 1,
) -> dict[str, StepOutput]:
    """One step at ``camera`` of several memories that share its noise (``noise()``: a generator seeded alike each
    time), the generator and the decoder run once for all: each memory is read (timed alone), the latents are
    generated in one batched call per denoising step and decoded in one call, then each frame's depth is taken and
    written into its memory (timed alone). Each memory's frames equal :func:`run_step`'s with ``noise()``; its
    ``generate`` and ``decode`` times are its share of the batch's (the batch's time over the memories)."""
    timers = {name: StageTimer() for name in memories}
    reads: dict[str, MemoryRead] = {}
    for name, memory in memories.items():
        with timers[name]("read"):
            reads[name] = memory.read(camera, latent_shape)
    shared = StageTimer()
    with shared("generate"):
        latents = backbone.generate_shared(torch.stack([r.latent for r in reads.values()]),  # [B, C, h, w]
                                           torch.stack([r.mask.float() for r in reads.values()]),  # [B, h, w]
                                           noise, num_inference_steps, known_cells, samples)
    with shared("decode"):
        frames = backbone.decode(latents)  # [B, 3, H, W]
    outputs = {}
    for (name, memory), latent, frame in zip(memories.items(), latents, frames):
        timer = timers[name]
        timer.ms.update({stage: shared.ms[stage] / len(memories) for stage in ("generate", "decode")})
        with timer("depth"):
            depth_map, depth_source = depth(frame)
        with timer("write"):
            memory.write(Observation(camera=camera, image=frame, latent=latent, depth=depth_map))
        outputs[name] = StepOutput(read=reads[name], latent=latent, frame=frame, depth=depth_map,
                                   depth_source=depth_source, timings_ms={stage: timer.ms[stage] for stage in STAGES})
    return outputs
