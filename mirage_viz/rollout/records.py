"""What a rollout keeps: one :class:`StepRecord` per memory and step, gathered in a :class:`Rollout` that grows a
step at a time (and shrinks one for an undo), with the caches after each step."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from mirage_viz.consistency import StepConsistency, mean_scores
from mirage_viz.geometry.cameras import Camera
from mirage_viz.memories import FeatureKind, MemoryInfo
from mirage_viz.rollout.config import RolloutConfig, RolloutSetup

__all__ = ["Rollout", "StepRecord"]

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
    depth: torch.Tensor  # (H, W) metric depth used to write the memory; NaN where it has none (a hole)
    depth_source: str  # "truth" or "estimated"
    cache_points: int
    cache_bytes: int
    timings_ms: dict[str, float]  # one entry per STAGES
    true_frame: torch.Tensor | None = None  # (3, H, W) when the world is known
    memory_render: torch.Tensor | None = None  # (3, H, W) the RGB memory's pixel render
    memory_render_mask: torch.Tensor | None = None  # (H, W) bool, the pixels that render hit
    # the read's own splat (MemoryRead.source): the index, into the cache this step read, of the point each cell of
    # the read grid came from, -1 in holes: (h, w) int64 for the latent memory, (H, W) int32 for the RGB memory's
    # pixels; and that point's depth in this step's camera, 0 in holes. None for step 0 and the no-memory.
    source: torch.Tensor | None = None
    source_depth: torch.Tensor | None = None
    # (3, H, W) in [0, 1]: the conditioning latent decoded by the backbone's VAE, what a latent memory alone
    # remembers of this view; steps > 0 of memories that read a latent only (no render), when it covers a cell
    conditioning_frame: torch.Tensor | None = None
    psnr: float | None = None
    ssim: float | None = None
    depth_model: str | None = None  # the estimator that ran when depth_source is "estimated"
    depth_errors: str = ""  # the errors put on the true depth, a canonical spec ("": exact truth, or estimated)
    # mean |used - true| / true over the pixels with depth, when the world's truth is known (0.0 for the exact
    # truth; None without truth, e.g. a photo): estimated depth and noisy truth on one axis of depth error
    depth_abs_rel: float | None = None
    depth_holes: float = 0.0  # fraction of pixels without depth (not lifted)
    # the scores that need no truth (mirage_viz.consistency): camera control and flow against the step before,
    # reprojection into the nearest earlier frames; None for step 0 (and when the engine ran without them)
    consistency: StepConsistency | None = None

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
            "depth_errors": self.depth_errors,
            "depth_abs_rel": _json_number(self.depth_abs_rel, 6),
            "depth_holes": round(self.depth_holes, 5),
            "psnr": _json_number(self.psnr, 4),
            "ssim": _json_number(self.ssim, 5),
            "consistency": None if self.consistency is None else self.consistency.to_dict(),
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

    def consistency_means(self, memory: str) -> dict[str, float | None]:
        """``memory``'s scores that need no truth, each averaged over the steps that have it (None where none has)."""
        means = mean_scores([r.consistency for r in self.records[memory] if r.consistency is not None])
        return {name: _json_number(value, 4) for name, value in means.items()}

    def summary(self) -> dict:
        """The JSON-ready summary written as ``summary.json``."""
        config = self.config.to_dict() | {"backbone": self.backbone_name, "convention": "opencv camera_to_world"}
        return {
            "config": config,
            "setup": None if self.setup is None else self.setup.to_dict(),
            "notices": list(self.notices),
            "memories": {name: {"consistency": self.consistency_means(name), "steps": [r.summary() for r in records]}
                         for name, records in self.records.items()},
        }


