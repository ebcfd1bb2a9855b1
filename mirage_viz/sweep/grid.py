"""The grid a sweep runs: axes of rollout settings, their product as runs, each run named and checked up front.

A run is one rollout of the three memories (:class:`RunSpec`); its name (:attr:`RunSpec.run_id`) is made of its
settings, so a rerun of a grid finds the runs already done. Depth qualities are ``truth``, ``estimated`` (the
embedded estimator) or the truth with controlled errors, written as a :mod:`mirage_viz.scenes.depth_errors` spec
(``noise=0.05``, ``noise=0.1+smear=2``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mirage_viz.inputs import read_json_file
from mirage_viz.rollout.config import RolloutConfig, plan_rollout
from mirage_viz.scenes.depth_errors import parse_depth_errors

__all__ = ["AXES", "DEFAULT_MAX_RUNS", "RunSpec", "SweepGrid", "load_grid", "parse_depth_quality"]

DEFAULT_MAX_RUNS = 1_000
AXES = ("worlds", "world_seeds", "trajectories", "steps", "sizes", "depths", "depth_modes", "seeds")
_INTEGER_AXES = {"world_seeds", "steps", "sizes", "seeds"}
_FILE_SAFE = re.compile(r"[^A-Za-z0-9._+=-]")


def parse_depth_quality(value: str) -> tuple[str, str]:
    """``(depth_source, depth_errors)`` for a depth quality: ``truth``, ``estimated`` or an error spec on the
    truth; a ``ValueError`` saying what is accepted otherwise."""
    if value in ("truth", "estimated"):
        return value, ""
    if not isinstance(value, str) or "=" not in value:
        raise ValueError(f"unknown depth quality {value!r}; accepted: truth, estimated, or errors on the truth such as "
                         "noise=0.05, bias=1.1, smear=2, holes=0.05, joined with '+' (noise=0.1+smear=2)")
    errors = parse_depth_errors(value)
    return "truth", errors.spec


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: one rollout of the three memories with these settings."""

    world: str
    world_seed: int
    trajectory: str
    steps: int
    size: int
    depth: str  # a depth quality: "truth", "estimated" or an error spec on the truth
    depth_mode: str
    seed: int

    @property
    def run_id(self) -> str:
        """A file-safe name made of the settings: equal settings, equal names, so a rerun skips finished runs."""
        name = (f"{self.world}-w{self.world_seed}-{self.trajectory}-{self.steps}steps-{self.size}px-{self.depth}-"
                f"{self.depth_mode}-s{self.seed}")
        return _FILE_SAFE.sub("_", name)

    def config(self) -> RolloutConfig:
        depth_source, depth_errors = parse_depth_quality(self.depth)
        return RolloutConfig(world=self.world, world_seed=self.world_seed, trajectory=self.trajectory, steps=self.steps,
                             size=self.size, seed=self.seed, depth_source=depth_source, depth_errors=depth_errors,
                             depth_mode=self.depth_mode)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SweepGrid:
    """Axes of settings; :meth:`runs` is their product. Every axis holds at least one value."""

    worlds: tuple[str, ...] = ("room",)
    world_seeds: tuple[int, ...] = (0,)
    trajectories: tuple[str, ...] = ("loop",)
    steps: tuple[int, ...] = (12,)
    sizes: tuple[int, ...] = (128,)
    depths: tuple[str, ...] = ("truth",)
    depth_modes: tuple[str, ...] = ("bilinear",)
    seeds: tuple[int, ...] = (0,)
    runs_count: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        count = 1
        for axis in AXES:
            values = tuple(getattr(self, axis))
            if not values:
                raise ValueError(f"the grid's {axis} axis is empty; give at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"the grid's {axis} axis repeats a value: {list(values)}; give each value once")
            object.__setattr__(self, axis, values)
            count *= len(values)
        object.__setattr__(self, "runs_count", count)

    def runs(self, max_runs: int = DEFAULT_MAX_RUNS) -> list[RunSpec]:
        """Every run of the grid, each checked as a rollout would check it (before any model loads): a
        ``ValueError`` naming the first bad value, or the grid's size when it is over ``max_runs``."""
        if self.runs_count > max_runs:
            sizes = " x ".join(f"{len(getattr(self, axis))} {axis}" for axis in AXES)
            raise ValueError(f"the grid has {self.runs_count:,} runs ({sizes}), more than --max-runs {max_runs:,}; "
                             "shrink an axis or raise --max-runs")
        for value in self.depths:
            parse_depth_quality(value)
        specs = [RunSpec(*values) for values in itertools.product(*(getattr(self, axis) for axis in AXES))]
        checked: set[tuple] = set()
        for spec in specs:  # each distinct rollout setting once: the seed and the depth do not move cameras
            key = (spec.world, spec.world_seed, spec.trajectory, spec.steps, spec.size, spec.depth_mode, spec.depth)
            if key not in checked:
                checked.add(key)
                try:
                    plan_rollout(spec.config())
                except ValueError as error:
                    raise ValueError(f"run {spec.run_id}: {error}") from None
        return specs

    def to_dict(self) -> dict:
        return {axis: list(getattr(self, axis)) for axis in AXES}

    @classmethod
    def from_dict(cls, data: object, where: str = "grid") -> SweepGrid:
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a JSON object with the axes {', '.join(AXES)}")
        unknown = sorted(set(data) - set(AXES))
        if unknown:
            raise ValueError(f"{where}: unknown axis {unknown[0]!r}; accepted: {', '.join(AXES)}")
        values = {}
        for axis, raw in data.items():
            raw = raw if isinstance(raw, list) else [raw]
            kind = int if axis in _INTEGER_AXES else str
            if any(isinstance(v, bool) or not isinstance(v, kind) for v in raw):
                raise ValueError(f"{where}: {axis} must be a list of {'integers' if kind is int else 'strings'}, "
                                 f"got {raw!r}")
            values[axis] = tuple(raw)
        return cls(**values)


def load_grid(path: str | Path) -> SweepGrid:
    """A grid from a JSON file of axes (``{"worlds": ["room", "studio"], "seeds": [0, 1, 2]}``; missing axes keep
    their defaults)."""
    return SweepGrid.from_dict(read_json_file(path, "sweep grid"), f"sweep grid {path}")
