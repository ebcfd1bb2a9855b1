"""Trace a cell: which cached point each cell of a step's memory read came from, and why it won.

The winner is what the engine's own splat recorded (:attr:`StepRecord.source`, the read's ``point_index``); the
other points that landed in the cell, and the rule that decided between them, come from projecting the cache that
step read (the points written before it) with the splat's own projection
(:func:`~mirage_viz.geometry.projection.project_points`) under the rollout's own read options. A hole is explained
by placing the current step's depth at the cell in the world and projecting it into every earlier camera.

Grids: a cell is ``(row, col)`` on the memory's read grid, latent cells for ``"latent"`` and pixels for ``"rgb"``
(:func:`cell_of_pixel` maps a click on a decoded frame to it). OpenCV cameras, ``camera_to_world`` poses
(:mod:`mirage_viz.geometry.cameras`). Flat caches only: a fused (voxel) point stands for several steps.

:func:`owners_under_rules` is the z-test lesson's data: the step owning every latent cell under the paper's
tolerance and under first-hand ties, made by the same :func:`~mirage_viz.geometry.splat.splat_points` the memory
runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mirage_viz.geometry.cameras import Camera
from mirage_viz.geometry.depth import downsample_depth
from mirage_viz.geometry.projection import backproject_depth, project_points
from mirage_viz.geometry.splat import DEPTH_TIE_BITS, SPLAT_NEAR, splat_points
from mirage_viz.geometry.visibility import camera_center, seen_along_ray
from mirage_viz.memories import RGBPointCloudMemory
from mirage_viz.rollout.config import memory_setting_of
from mirage_viz.rollout.records import Rollout

__all__ = ["FIRST_HAND_TIE_BITS", "HOLE_NO_DEPTH", "HOLE_OUTSIDE", "HOLE_UNFILLED", "PAPER_TIE_BITS", "Candidate",
           "CellTrace", "EarlierView", "RuleOwners", "StepRead", "Winner", "cell_of_pixel", "owners_under_rules",
           "StepTrace", "pixels_of_cell", "read_grid", "step_read", "steps_of_points", "trace_cell", "trace_pixel",
           "trace_step"]

PAPER_TIE_BITS = DEPTH_TIE_BITS  # the paper's z-test: depths within 3.1% tie, the earliest written wins
FIRST_HAND_TIE_BITS = 0  # first-hand ties: depths within a factor of 2 tie, so the first view of a surface is kept

HOLE_OUTSIDE = "outside every earlier camera's view"
HOLE_UNFILLED = ("earlier cameras saw this place but no point landed here (occluded, or not lifted: no depth / "
                 "edge)")
HOLE_NO_DEPTH = "this step's frame has no depth at this cell, so the place it shows cannot be located"
_CLOSEST_VIEWS = 3  # earlier cameras a hole's trace names
_NEARER = 1.0 - 2.0**-PAPER_TIE_BITS  # an earlier view's depth below this fraction of the place's: something in front


@dataclass(frozen=True)
class Candidate:
    """A cached point that landed in the traced cell, as the read's z-test saw it."""

    index: int  # into the cache the step read (its write order)
    step: int  # the step that lifted it (0: the given first frame)
    depth: float  # metres, z in the reading camera
    tied: bool  # within the tie tolerance of the nearest point left in the cell (the ones the earliest is taken from)
    seen: bool  # seen along this ray by the camera that lifted it (always False unless the read uses seen rays)
    dropped: bool  # left out: clearly in front of a seen point in this cell, off the ray that point was seen along


@dataclass(frozen=True)
class Winner:
    """The point that took the cell in the engine's splat."""

    index: int  # into the cache the step read
    step: int  # the step that lifted it
    depth: float  # metres, z in the reading camera
    position: tuple[float, float, float]  # world frame, metres
    footprint: tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels of the lifting step's frame it was lifted from; x1, y1 exclusive


@dataclass(frozen=True)
class EarlierView:
    """Where an earlier camera saw the place a hole shows (the current step's depth at the cell, in the world)."""

    step: int
    in_view: bool  # the place lands on that step's frame, in front of its camera
    pixel: tuple[float, float] | None  # (x, y) in that step's frame (may lie off it); None behind the camera
    outside_px: float  # how far off the frame it lands, in pixels (0 in view; inf behind the camera)
    depth: float  # metres, the place's z in that camera (<= 0 behind it)
    seen_depth: float | None  # that step's own depth at the pixel (NaN: none there, not lifted); None out of view

    @property
    def note(self) -> str:
        """One plain phrase: what that camera saw of the place."""
        if self.pixel is None:
            return f"step {self.step}: behind the camera"
        if not self.in_view:
            return f"step {self.step}: out of view ({self.outside_px:.0f} px off the frame)"
        if self.seen_depth is None or self.seen_depth != self.seen_depth:
            return f"step {self.step}: in view, but no depth there (not lifted)"
        if self.seen_depth < self.depth * _NEARER:
            return f"step {self.step}: in view, hidden behind a nearer surface ({self.seen_depth:.2f} m against {self.depth:.2f} m)"
        return f"step {self.step}: in view at about this depth ({self.seen_depth:.2f} m), but no point of it landed here"


@dataclass(frozen=True)
class CellTrace:
    """Where one cell of a step's memory read came from, and why (see :func:`trace_cell`)."""

    memory: str  # "latent" or "rgb"
    step: int  # the step whose read is traced (>= 1)
    row: int  # on the read grid: latent cells for "latent", pixels for "rgb"
    col: int
    grid: tuple[int, int]  # (rows, cols) of the read grid
    covered: bool  # a cached point took the cell
    winner: Winner | None  # from the engine's splat; None in a hole
    candidates: tuple[Candidate, ...]  # every cached point that landed in the cell, nearest first (empty in a hole)
    rule: str  # one plain sentence: what decided the cell under the rollout's own read options
    depth_tie_bits: int  # the read's z-test tolerance
    seen_rays: bool  # the read's seen-rays rule
    setting: str  # the memory setting the rollout ran under (see MEMORY_SETTINGS)
    origin: tuple[float, float, float]  # the reading camera's centre, world frame: the ray to the winner starts here
    hole_reason: str | None  # HOLE_OUTSIDE, HOLE_UNFILLED or HOLE_NO_DEPTH; None when covered
    place: tuple[float, float, float] | None  # a hole: the world point this step's depth puts at the cell's centre
    closest_views: tuple[EarlierView, ...]  # a hole: the earlier cameras that came closest to seeing the place

    def rule_pick(self) -> Candidate | None:
        """The candidate the rule picks: of the points left in the cell (not dropped) and tied with the nearest, the
        earliest written. Equal to :attr:`winner` wherever the explanation agrees with the engine's splat."""
        picked = [candidate for candidate in self.candidates if candidate.tied and not candidate.dropped]
        return min(picked, key=lambda candidate: candidate.index, default=None)


@dataclass(frozen=True)
class RuleOwners:
    """The step owning each latent cell of a step's read under two z-test tolerances (see :func:`owners_under_rules`)."""

    step: int
    paper: torch.Tensor  # (h, w) int64: owning step under depth_tie_bits 5 (PAPER_TIE_BITS); -1 in holes
    first_hand: torch.Tensor  # (h, w) int64: owning step under depth_tie_bits 0 (FIRST_HAND_TIE_BITS); -1 in holes
    differ: torch.Tensor  # (h, w) bool: the cells whose owning step differs between the two
    paper_source: torch.Tensor  # (h, w) int64: the owning point's index in the cache the step read; -1 in holes
    first_hand_source: torch.Tensor  # (h, w) int64, the same under first-hand ties


@dataclass
class StepRead:
    """What a step's read of a flat cache started from, rebuilt from the rollout, and where each point landed on the
    read grid under the read's own z-test (:func:`step_read`). The walkthrough and the trace both read it."""

    memory: str
    step: int
    points: torch.Tensor  # (N, 3) world frame: the cache prefix the step read (written before it)
    features: torch.Tensor  # (N, C)
    point_steps: torch.Tensor  # (N,) int64: the step that lifted each point
    camera: Camera  # the reading camera on the read grid (latent cells, or pixels)
    grid: tuple[int, int]  # (rows, cols) of the read grid
    depth_tie_bits: int
    seen: torch.Tensor | None  # (N,) bool: seen along this camera's rays (the latent read's seen_rays), else None
    uv: torch.Tensor  # (N, 2) (col, row) on the read grid, as project_points gives them
    depth: torch.Tensor  # (N,) float32: z in the reading camera
    landed: torch.Tensor  # (N,) bool: in front of the camera and rounded onto the grid, as the splat rounds
    cell: torch.Tensor  # (N,) int64: row * cols + col of the cell a landed point went to (0 where not landed)
    tied: torch.Tensor  # (N,) bool: landed, and within the tie tolerance of the nearest point left in its cell
    dropped: torch.Tensor  # (N,) bool: landed, and clearly in front of a seen point of its cell (off its ray)

    def per_cell(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, cols) int64: how many points landed in each cell; (rows, cols) bool: the cells where two or more
        points tie for the win."""
        rows, cols = self.grid
        counts = torch.bincount(self.cell[self.landed], minlength=rows * cols)
        ties = torch.bincount(self.cell[self.tied], minlength=rows * cols) >= 2
        return counts.reshape(rows, cols), ties.reshape(rows, cols)

    def owners(self, source: torch.Tensor) -> torch.Tensor:
        """(rows, cols) int64: the step that lifted each cell's winner (``source``: indices into this cache, -1 in
        holes), -1 in holes."""
        source = source.to(torch.int64)
        return torch.where(source >= 0, self.point_steps[source.clamp(min=0)], -1)


def read_grid(rollout: Rollout, memory: str) -> tuple[int, int]:
    """(rows, cols) of ``memory``'s read grid: the latent grid for ``"latent"``, the frame's pixels for ``"rgb"``."""
    record = _records(rollout, memory)[0]
    return tuple(record.frame.shape[-2:]) if memory == "rgb" else tuple(record.mask.shape)


def cell_of_pixel(rollout: Rollout, memory: str, x: int, y: int) -> tuple[int, int]:
    """The cell ``(row, col)`` of ``memory``'s read grid under pixel ``(x, y)`` (column, row) of a decoded frame:
    the latent cell holding it, or the pixel itself for the RGB memory."""
    height, width = _records(rollout, memory)[0].frame.shape[-2:]
    for name, value, size in (("x", x, width), ("y", y, height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            raise ValueError(f"{name} must be a pixel of the {width}x{height} frame (0 to {size - 1}), got {value!r}")
    rows, cols = read_grid(rollout, memory)
    return y * rows // height, x * cols // width


def pixels_of_cell(rollout: Rollout, memory: str, row: int, col: int) -> tuple[int, int, int, int]:
    """The pixels ``(x0, y0, x1, y1)`` (x1, y1 exclusive) of a decoded frame that cell ``(row, col)`` of
    ``memory``'s read grid covers: a latent cell's f x f block, or one pixel for the RGB memory."""
    rows, cols = _check_cell(rollout, memory, row, col)
    height, width = _records(rollout, memory)[0].frame.shape[-2:]
    return _cell_box(row, col, (rows, cols), (height, width))


def trace_cell(rollout: Rollout, memory: str, step: int, row: int, col: int) -> CellTrace:
    """Trace cell ``(row, col)`` of ``memory``'s read at ``step``: its winner, the other points that landed in it and
    the rule that decided, or why it is a hole.

    Args:
        rollout: a rollout whose records keep their read's source (:attr:`StepRecord.source`).
        memory: ``"latent"`` or ``"rgb"``, with a flat cache.
        step: a step that read memory (1 to the last).
        row, col: the cell on the memory's read grid (:func:`read_grid`; :func:`cell_of_pixel` maps a pixel).

    Raises ``ValueError`` for an unknown or untraceable memory (the no-memory, a fused cache), step 0, a step or a
    cell out of range.
    """
    _check_step(rollout, memory, step)
    grid = _check_cell(rollout, memory, row, col)
    record = rollout.records[memory][step]
    index = int(record.source[row, col])
    bits, seen_rays = _read_rule(rollout, memory)
    common = dict(memory=memory, step=step, row=row, col=col, grid=grid, depth_tie_bits=bits, seen_rays=seen_rays,
                  setting=memory_setting_of(rollout.config),
                  origin=tuple(float(v) for v in camera_center(record.camera)))
    if index < 0:
        place, views = _hole_views(rollout, memory, step, row, col)
        reason = HOLE_NO_DEPTH if place is None else HOLE_OUTSIDE if not any(v.in_view for v in views) else HOLE_UNFILLED
        return CellTrace(**common, covered=False, winner=None, candidates=(), hole_reason=reason, place=place,
                         closest_views=views, rule=f"no point landed here: a hole ({reason})")
    read = step_read(rollout, memory, step)
    candidates = _candidates(read, row, col)
    lifted = int(read.point_steps[index])
    winner = Winner(index=index, step=lifted, depth=float(record.source_depth[row, col]),
                    position=tuple(float(v) for v in read.points[index]),
                    footprint=_lifted_footprint(rollout, memory, read.points[index], lifted))
    rule = _rule_sentence(rollout, memory, candidates, winner, read.depth_tie_bits)
    return CellTrace(**common, covered=True, winner=winner, candidates=candidates, rule=rule, hole_reason=None,
                     place=None, closest_views=())


def trace_pixel(rollout: Rollout, memory: str, step: int, x: int, y: int) -> CellTrace:
    """:func:`trace_cell` at the cell under pixel ``(x, y)`` of the decoded frame (a click on a frame)."""
    _check_step(rollout, memory, step)
    return trace_cell(rollout, memory, step, *cell_of_pixel(rollout, memory, x, y))


@dataclass(frozen=True)
class StepTrace:
    """Every cell of one step's read at once (what :func:`trace_cell` says of each, as arrays): for pages that answer
    a click without a server, such as ``report.html``."""

    memory: str
    step: int
    owner: torch.Tensor  # (rows, cols) int64: the step that lifted each cell's winner (the engine's splat); -1 in holes
    depth: torch.Tensor  # (rows, cols) float32: the winner's depth in this step's camera, metres; 0 in holes
    landed: torch.Tensor  # (rows, cols) int64: how many cached points landed in each cell
    ties: torch.Tensor  # (rows, cols) bool: two or more of them tied for the win (the earliest written won)
    depth_tie_bits: int


def trace_step(rollout: Rollout, memory: str, step: int) -> StepTrace:
    """:func:`trace_cell`'s winner and counts for every cell of ``memory``'s read at ``step`` (the winner from the
    engine's record, the counts from :func:`step_read`)."""
    read = step_read(rollout, memory, step)
    record = rollout.records[memory][step]
    counts, ties = read.per_cell()
    return StepTrace(memory, step, read.owners(record.source), record.source_depth.float(), counts, ties,
                     read.depth_tie_bits)


def owners_under_rules(rollout: Rollout, step: int) -> RuleOwners:
    """The step owning every cell of the latent memory's read at ``step`` under the paper's z-test
    (``depth_tie_bits`` 5) and under first-hand ties (``depth_tie_bits`` 0), each made by
    :func:`~mirage_viz.geometry.splat.splat_points` on the cache the step read, everything else (seen rays) as the
    rollout ran. The rule the rollout ran with gives its recorded owners; where the two differ, later views of a
    surface took cells the first view saw (the paper) or kept them (first-hand)."""
    _check_step(rollout, "latent", step)
    read = step_read(rollout, "latent", step)
    owners = {}
    for bits in (PAPER_TIE_BITS, FIRST_HAND_TIE_BITS):
        source = splat_points(read.points, read.features, read.camera, depth_tie_bits=bits, seen=read.seen).point_index
        steps = read.owners(source)  # (h, w)
        owners[bits] = source, steps
    (paper_source, paper), (first_source, first_hand) = owners[PAPER_TIE_BITS], owners[FIRST_HAND_TIE_BITS]
    return RuleOwners(step=step, paper=paper, first_hand=first_hand, differ=paper != first_hand,
                      paper_source=paper_source, first_hand_source=first_source)


def _records(rollout: Rollout, memory: str) -> list:
    """``memory``'s records, or a ``ValueError`` when it has none that can be traced."""
    traceable = [name for name in rollout.records if name != "none" and name not in rollout.snapshots]
    if memory == "none" and memory in rollout.records:
        raise ValueError("the no-memory stores nothing, so its reads have no source to trace; traceable here: "
                         f"{', '.join(traceable) or 'none'}")
    if memory in rollout.snapshots:
        raise ValueError(f"the {memory} memory here fuses its cache per voxel (voxel_size "
                         f"{rollout.config.latent.voxel_size}): a fused point stands for several steps' points, so "
                         "tracing a cell needs the flat cache (voxel_size None)")
    if memory not in rollout.records or memory not in ("latent", "rgb"):
        raise ValueError(f"unknown memory {memory!r}; traceable in this rollout: {', '.join(traceable) or 'none'}")
    if not rollout.records[memory]:
        raise ValueError("the rollout has no step yet")
    return rollout.records[memory]


def _check_step(rollout: Rollout, memory: str, step: int) -> None:
    records = _records(rollout, memory)
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < len(records):
        raise ValueError(f"step must be a step of the rollout that read memory, 1 to {len(records) - 1}, got {step!r}")
    if step == 0:
        later = f"steps 1 to {len(records) - 1}" if len(records) > 1 else "a later step, once one is generated"
        raise ValueError(f"step 0 is the given first frame: it wrote memory but read none, so it has no cell to trace; "
                         f"accepted: {later}")
    if records[step].source is None:
        raise ValueError(f"the {memory} record of step {step} keeps no read source (a rollout made before reads "
                         "recorded their winners): run it again to trace it")


def _check_cell(rollout: Rollout, memory: str, row: int, col: int) -> tuple[int, int]:
    rows, cols = read_grid(rollout, memory)
    for name, value, size in (("row", row, rows), ("col", col, cols)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
            grid = "latent grid" if memory == "latent" else "pixel grid"
            raise ValueError(f"{name} must be in [0, {size - 1}] on the {memory} memory's {rows}x{cols} {grid}, got "
                             f"{value!r}")
    return rows, cols


def _cell_box(row: int, col: int, grid: tuple[int, int], frame: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixels (x0, y0, x1, y1), x1 and y1 exclusive, of a ``frame`` (H, W) that cell ``(row, col)`` of ``grid``
    (h, w) covers."""
    (rows, cols), (height, width) = grid, frame
    return col * width // cols, row * height // rows, (col + 1) * width // cols, (row + 1) * height // rows


def steps_of_points(rollout: Rollout, memory: str, step: int, index: torch.Tensor) -> torch.Tensor:
    """The step that lifted each cache entry of ``index`` (any shape, int; -1 stays -1), in the cache ``memory`` read at
    ``step``: the write each falls in, from the records' cache sizes (no projection)."""
    counts = torch.tensor([r.cache_points for r in rollout.records[memory][:step]], dtype=torch.int64)  # [step]
    index = index.to(torch.int64)
    return torch.where(index >= 0, torch.searchsorted(counts, index.clamp(min=0).contiguous(), right=True), -1)


def step_read(rollout: Rollout, memory: str, step: int) -> StepRead:
    """The cache ``memory`` read at ``step`` (the points written before it), each point's step, the read's camera and
    options as the memory's ``read`` had them, and where each point landed under its z-test: the rule of
    :func:`~mirage_viz.geometry.splat.splat_points`, per point (the same projection, rounding and float32 limits).
    Raises ``ValueError`` as :func:`trace_cell` does."""
    _check_step(rollout, memory, step)
    records = rollout.records[memory]
    count = records[step - 1].cache_points  # the cache after the step before: what this step read
    points, features = rollout.caches[memory]
    points, features = points[:count], features[:count]  # [N, 3], [N, C]
    point_steps = steps_of_points(rollout, memory, step, torch.arange(count))  # [N]
    bits, seen_rays = _read_rule(rollout, memory)
    rows, cols = read_grid(rollout, memory)
    camera = _on_grid(records[step].camera, rows, cols)
    seen = None
    if seen_rays:  # [N] as LatentSpatialMemory.read: each point's lifting camera centre, this read's rays
        centers = torch.stack([camera_center(r.camera) for r in records[:step]])  # [step, 3]
        seen = seen_along_ray(points, centers[point_steps], camera)
    uv, z = project_points(points, camera)  # [N, 2], [N]: the whole cache at once, as the splat projects it
    col, row = uv[:, 0].round(), uv[:, 1].round()
    landed = (z > SPLAT_NEAR) & (col >= 0) & (col < cols) & (row >= 0) & (row < rows)  # [N]
    cell = torch.where(landed, row * cols + col, 0).to(torch.int64)  # [N]
    factor = 1.0 + 2.0**-bits
    dropped = torch.zeros_like(landed)  # [N]
    if seen is not None:  # clearly in front of a seen point of its cell, a point drops out
        on = landed & seen
        seen_min = torch.full((rows * cols,), math.inf).scatter_reduce(0, cell[on], z[on], "amin")  # [cells]
        dropped = landed & (z * factor < seen_min[cell]) & seen_min[cell].isfinite()  # cells a seen point reached
    kept = landed & ~dropped
    nearest = torch.full((rows * cols,), math.inf).scatter_reduce(0, cell[kept], z[kept], "amin")  # [cells]
    tied = kept & (z <= nearest[cell] * factor)  # [N]
    return StepRead(memory, step, points, features, point_steps, camera, (rows, cols), bits, seen, uv, z, landed, cell,
                    tied, dropped)


def _on_grid(camera: Camera, rows: int, cols: int) -> Camera:
    """``camera`` on a grid of ``rows`` x ``cols`` cells: itself on its own pixels (the RGB read), else scaled (the
    latent grid, as the latent memory scales it)."""
    k = camera.intrinsics
    return camera if (k.height, k.width) == (rows, cols) else camera.scaled_to(cols, rows)


def _read_rule(rollout: Rollout, memory: str) -> tuple[int, bool]:
    """The z-test tolerance (depth_tie_bits) and the seen-rays rule ``memory``'s read ran with: the latent memory's
    are the rollout's options; the RGB memory's z-test is always its own (the paper's), without seen rays."""
    if memory == "rgb":
        return RGBPointCloudMemory.depth_tie_bits, False
    return rollout.config.latent.depth_tie_bits, rollout.config.latent.seen_rays


def _candidates(read: StepRead, row: int, col: int) -> tuple[Candidate, ...]:
    """Every point of the read's cache that landed in cell ``(row, col)``, nearest first, flagged as the z-test of
    :func:`~mirage_viz.geometry.splat.splat_points` treats it (:func:`step_read`)."""
    index = torch.nonzero(read.landed & (read.cell == row * read.grid[1] + col)).squeeze(1)  # [M] in write order
    seen = torch.zeros_like(index, dtype=torch.bool) if read.seen is None else read.seen[index]  # [M]
    order = torch.argsort(read.depth[index], stable=True)
    return tuple(Candidate(index=int(index[i]), step=int(read.point_steps[index[i]]), depth=float(read.depth[index[i]]),
                           tied=bool(read.tied[index[i]]), seen=bool(seen[i]), dropped=bool(read.dropped[index[i]]))
                 for i in order)


def _lifted_footprint(rollout: Rollout, memory: str, point: torch.Tensor, step: int) -> tuple[int, int, int, int]:
    """The pixels (x0, y0, x1, y1) of step ``step``'s frame that ``point`` was lifted from: its latent cell's block
    (a latent memory lifting cells), else its pixel. Found by projecting it back into that step's camera, on whose
    grid it was lifted at a cell centre."""
    record = rollout.records[memory][step]
    frame = tuple(record.frame.shape[-2:])
    grid = frame if memory == "rgb" or rollout.config.latent.lift == "pixel" else tuple(record.mask.shape)
    uv, _ = project_points(point[None], _on_grid(record.camera, *grid))  # [1, 2]
    col = min(max(int(uv[0, 0].round()), 0), grid[1] - 1)
    row = min(max(int(uv[0, 1].round()), 0), grid[0] - 1)
    return _cell_box(row, col, grid, frame)


def _tolerance_text(bits: int) -> str:
    if bits == 0:
        return "within a factor of 2"
    percent = 100.0 * 2.0**-bits
    return f"within {percent:.2g}%" if percent >= 0.01 else f"within {percent:.1e}%"


def _rule_sentence(rollout: Rollout, memory: str, candidates: tuple[Candidate, ...], winner: Winner,
                   bits: int) -> str:
    """What decided the cell, in plain words, from its candidates."""
    if len(candidates) == 1:
        sentence = "the only point that landed here"
    else:
        parts = []
        dropped = [c for c in candidates if c.dropped]
        if dropped:
            seen_step = min((c for c in candidates if c.seen), key=lambda c: c.depth).step
            parts.append(f"seen along this ray by the camera that lifted it (step {seen_step}): {len(dropped)} nearer "
                         f"point{'s' if len(dropped) > 1 else ''} off that ray dropped out")
        tied = [c for c in candidates if c.tied]
        left = len(candidates) - len(dropped)
        if len(tied) == 1:
            parts.append(f"nearest depth, of {left} point{'s' if left > 1 else ''}" if left > 1 else "the one point left")
        else:
            nearest = min(tied, key=lambda c: c.depth)
            over = f", over a nearer point from step {nearest.step}" if nearest.index != winner.index else ""
            parts.append(f"tie {_tolerance_text(bits)} (depth_tie_bits {bits}): the earliest written of {len(tied)} "
                         f"tied points won{over}")
        sentence = "; ".join(parts)
    if memory == "latent" and rollout.config.latent.warp == "subcell":
        sentence += f"; warp subcell blends its feature from step {winner.step}'s points around the cell"
    return sentence


def _hole_views(rollout: Rollout, memory: str, step: int, row: int,
                col: int) -> tuple[tuple[float, float, float] | None, tuple[EarlierView, ...]]:
    """The world point that this step's own depth puts at the centre of cell ``(row, col)`` (None where it has no
    depth), and the earlier cameras that came closest to seeing it, nearest the frame first."""
    record = rollout.records[memory][step]
    rows, cols = record.source.shape
    depth = record.depth  # (H, W), NaN where none
    if memory == "latent":  # the cell's depth as the latent memory would lift it
        depth = downsample_depth(depth, rows, cols, rollout.config.latent.depth_mode, allow_holes=True)  # (h, w)
    if torch.isnan(depth[row, col]):
        return None, ()
    cell_depth = torch.full_like(depth, float("nan"))  # (rows, cols): only the traced cell is lifted
    cell_depth[row, col] = depth[row, col]
    place = backproject_depth(cell_depth, _on_grid(record.camera, rows, cols), allow_holes=True)[row * cols + col]  # (3,)
    views = []
    for earlier in rollout.records[memory][:step]:
        k = earlier.camera.intrinsics
        uv, z = project_points(place[None], earlier.camera)  # [1, 2], [1] at pixel resolution
        x, y, z = float(uv[0, 0]), float(uv[0, 1]), float(z[0])
        if not z > SPLAT_NEAR:
            views.append(EarlierView(step=earlier.step, in_view=False, pixel=None, outside_px=float("inf"), depth=z,
                                     seen_depth=None))
            continue
        off_x = max(-0.5 - x, x - (k.width - 0.5), 0.0)  # pixel centres at integers: the frame spans -0.5 to W - 0.5
        off_y = max(-0.5 - y, y - (k.height - 0.5), 0.0)
        outside = (off_x**2 + off_y**2) ** 0.5
        seen_depth = None if outside > 0 else float(earlier.depth[min(round(y), k.height - 1), min(round(x), k.width - 1)])
        views.append(EarlierView(step=earlier.step, in_view=outside == 0, pixel=(x, y), outside_px=outside, depth=z,
                                 seen_depth=seen_depth))
    views.sort(key=lambda view: (view.outside_px, view.step))
    return tuple(float(v) for v in place), tuple(views[:_CLOSEST_VIEWS])
