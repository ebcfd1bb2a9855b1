"""The grid a sweep runs: axes of rollout settings, their product as runs, each run named and checked up front.

A run is one rollout of the three memories (:class:`RunSpec`); its name (:attr:`RunSpec.run_id`) is made of its
settings, so a rerun of a grid finds the runs already done. Depth qualities are ``truth``, ``estimated`` (the
embedded estimator) or the truth with controlled errors, written as a :mod:`mirage_viz.scenes.depth_errors` spec
(``noise=0.05``, ``noise=0.1+smear=2``). Memory settings are the names of
:data:`mirage_viz.rollout.config.MEMORY_SETTINGS` ("paper", "keep what memory holds", ...).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mirage_viz.checks import check_choice
from mirage_viz.inputs import read_json_file
from mirage_viz.rollout.config import MEMORY_SETTINGS, RolloutConfig, plan_rollout
from mirage_viz.scenes.depth_errors import parse_depth_errors
from mirage_viz.scenes.sequence import ImageSequence, load_sequence

__all__ = ["AXES", "DEFAULT_MAX_RUNS", "RunSpec", "SweepGrid", "check_memory_setting", "load_grid",
           "parse_depth_quality"]

DEFAULT_MAX_RUNS = 1_000
AXES = ("worlds", "world_seeds", "trajectories", "steps", "sizes", "depths", "depth_modes", "seeds", "memory_settings",
        "sequences")
SEQUENCE_TRAJECTORY = "sequence"  # a sequence run's trajectory column: the file's own cameras
DEFAULT_DEPTH_MODE = "bilinear"  # the depth_modes axis's default: the only one a setting's own depth mode replaces
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


def check_memory_setting(name: object, depth_mode: str = DEFAULT_DEPTH_MODE) -> str:
    """``name`` when it is one of :data:`MEMORY_SETTINGS` and runs with ``depth_mode``; else a ``ValueError``. A
    setting that sets its own depth mode ("keep what memory holds": nearest) replaces the depth_modes axis, so it
    runs only with that axis at its default: another value would run the same rollout under another name."""
    name = check_choice("memory setting", name, tuple(MEMORY_SETTINGS))
    own = MEMORY_SETTINGS[name].options.get("depth_mode")
    if own is not None and depth_mode != DEFAULT_DEPTH_MODE:
        raise ValueError(f"the memory setting {name!r} sets depth_mode {own!r} itself, so it cannot run with depth "
                         f"mode {depth_mode!r}; leave the depth_modes axis at {DEFAULT_DEPTH_MODE} for it (its rows "
                         f"record depth_mode {own!r}), or sweep the depth modes under settings that keep them (paper)")
    return name


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: one rollout of the three memories with these settings.

    ``depth_mode`` is the depth mode asked; a memory setting that sets its own replaces it (see
    :func:`check_memory_setting`), and the run's rows record the one that ran (:attr:`depth_mode_run`)."""

    world: str
    world_seed: int
    trajectory: str
    steps: int
    size: int
    depth: str  # a depth quality: "truth", "estimated" or an error spec on the truth
    depth_mode: str
    seed: int
    memory_setting: str = "paper"  # a name of MEMORY_SETTINGS
    # a posed image sequence's camera file (mirage_viz.scenes.sequence) as the world, "" for a procedural world: its
    # rows name it as their world, with world seed 0, trajectory "sequence" and estimated depth
    sequence: str = ""

    def __post_init__(self) -> None:
        check_memory_setting(self.memory_setting, self.depth_mode)

    @classmethod
    def of_sequence(cls, path: str, steps: int, size: int, depth_mode: str, seed: int, memory_setting: str) -> RunSpec:
        """The run of the posed image sequence at ``path`` (its first ``steps`` steps, picked evenly)."""
        return cls(world=path, world_seed=0, trajectory=SEQUENCE_TRAJECTORY, steps=steps, size=size, depth="estimated",
                   depth_mode=depth_mode, seed=seed, memory_setting=memory_setting, sequence=path)

    def load_sequence(self) -> ImageSequence | None:
        """The sequence this run reads (None for a procedural world)."""
        return load_sequence(self.sequence, self.size, self.steps) if self.sequence else None

    @property
    def depth_mode_run(self) -> str:
        """The depth mode the rollout runs with: the memory setting's own where it sets one, else ``depth_mode``."""
        return self.config().latent.depth_mode

    @property
    def run_id(self) -> str:
        """A file-safe name made of the settings: equal settings, equal names, so a rerun skips finished runs. The
        memory setting is named only when it is not "paper", so runs made before the axis keep their names."""
        setting = "" if self.memory_setting == "paper" else f"-{self.memory_setting}"
        world = self.world
        if self.sequence:  # the file's folder and name, and a short hash of the whole path (two clips may share a name)
            path = Path(self.sequence)
            world = f"{path.parent.name}_{path.name}_{hashlib.sha1(self.sequence.encode()).hexdigest()[:8]}"
        name = (f"{world}-w{self.world_seed}-{self.trajectory}-{self.steps}steps-{self.size}px-{self.depth}-"
                f"{self.depth_mode}-s{self.seed}{setting}")
        return _FILE_SAFE.sub("_", name)

    def config(self) -> RolloutConfig:
        """The rollout this run asks for, under its memory setting (whose options replace the axes' values)."""
        depth_source, depth_errors = parse_depth_quality(self.depth)
        scene = {} if self.sequence else dict(world=self.world, world_seed=self.world_seed, trajectory=self.trajectory)
        return RolloutConfig(**scene, steps=self.steps, size=self.size, seed=self.seed, depth_source=depth_source,
                             depth_errors=depth_errors).with_options(depth_mode=self.depth_mode).with_memory_setting(
                                 self.memory_setting)

    def to_dict(self) -> dict:
        """The settings as the table's columns (the sequence, if any, is the world column)."""
        return {key: value for key, value in asdict(self).items() if key != "sequence"}


@dataclass(frozen=True)
class SweepGrid:
    """Axes of settings; :meth:`runs` is their product. Every axis holds at least one value."""

    worlds: tuple[str, ...] = ("room",)
    world_seeds: tuple[int, ...] = (0,)
    trajectories: tuple[str, ...] = ("loop",)
    steps: tuple[int, ...] = (12,)
    sizes: tuple[int, ...] = (128,)
    depths: tuple[str, ...] = ("truth",)
    depth_modes: tuple[str, ...] = (DEFAULT_DEPTH_MODE,)
    seeds: tuple[int, ...] = (0,)
    memory_settings: tuple[str, ...] = ("paper",)  # names of MEMORY_SETTINGS; see check_memory_setting
    # posed image sequences' camera files, each run with steps x sizes x depth_modes x seeds x memory_settings (the
    # world axes and depths apply to the worlds only; worlds may be empty when sequences are given)
    sequences: tuple[str, ...] = ()
    runs_count: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        for axis in AXES:
            values = tuple(getattr(self, axis))
            may_be_empty = axis == "sequences" or (axis == "worlds" and self.sequences)
            if not values and not may_be_empty:
                raise ValueError(f"the grid's {axis} axis is empty; give at least one value")
            if len(set(values)) != len(values):
                raise ValueError(f"the grid's {axis} axis repeats a value: {list(values)}; give each value once")
            object.__setattr__(self, axis, values)
        shared = len(self.steps) * len(self.sizes) * len(self.depth_modes) * len(self.seeds) * len(self.memory_settings)
        worlds = len(self.worlds) * len(self.world_seeds) * len(self.trajectories) * len(self.depths)
        object.__setattr__(self, "runs_count", (worlds + len(self.sequences)) * shared)
        for setting, mode in itertools.product(self.memory_settings, self.depth_modes):
            check_memory_setting(setting, mode)

    def runs(self, max_runs: int = DEFAULT_MAX_RUNS) -> list[RunSpec]:
        """Every run of the grid, each checked as a rollout would check it (before any model loads): a
        ``ValueError`` naming the first bad value, or the grid's size when it is over ``max_runs``."""
        if self.runs_count > max_runs:
            sizes = " x ".join(f"{len(getattr(self, axis))} {axis}" for axis in AXES)
            raise ValueError(f"the grid has {self.runs_count:,} runs ({sizes}), more than --max-runs {max_runs:,}; "
                             "shrink an axis or raise --max-runs")
        for value in self.depths:
            parse_depth_quality(value)
        specs = [RunSpec(*values) for values in itertools.product(*(getattr(self, axis) for axis in AXES[:-1]))]
        specs += [RunSpec.of_sequence(path, *values) for path in self.sequences for values in itertools.product(
            self.steps, self.sizes, self.depth_modes, self.seeds, self.memory_settings)]
        checked: set[tuple] = set()
        for spec in specs:  # each distinct rollout setting once: the seed and the depth do not move cameras
            key = (spec.world, spec.world_seed, spec.trajectory, spec.steps, spec.size, spec.depth_mode, spec.depth,
                   spec.memory_setting)
            if key not in checked:
                checked.add(key)
                try:
                    plan_rollout(spec.config(), sequence=spec.load_sequence())
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
    their defaults); ``sequences`` given relative to the file's folder are read from there."""
    grid = SweepGrid.from_dict(read_json_file(path, "sweep grid"), f"sweep grid {path}")
    folder = Path(path).parent
    return replace(grid, sequences=tuple(str(folder / s) if not Path(s).is_absolute() else s for s in grid.sequences))
