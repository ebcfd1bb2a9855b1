"""One step, staged: the five stages of a memory read (lift, project, z-test, holes, generate) as pictures with two
plain sentences each, and the z-test lesson of a revisit: which frame owns each cell under the paper's z-test and
under first-hand ties, and the frames each rule gives.

Everything is read from the rollout on screen: the records (:class:`~mirage_viz.rollout.records.StepRecord`: the
conditioning latent, the mask, the read's winners in ``source``, the frames, depth) and the caches. The points that
landed in each cell come from projecting the cache the step read with the splat's own projection
(:func:`~mirage_viz.geometry.projection.project_points`, rounded to the nearest cell), under the read options the
rollout ran with; the winners are the engine's. The lesson's owners are
:func:`~mirage_viz.rollout.trace.owners_under_rules`, its conditioning per rule the same
:func:`~mirage_viz.geometry.splat.splat_points` the latent memory runs, and its frames the rollout's generator run on
the step's own noise.

Pure functions of a rollout, shared by the app and the notebooks: :func:`walkthrough` and :func:`ztest_lesson` return
data and pictures, :func:`walkthrough_html` lays them out as one self-contained HTML fragment (images as data URIs).
Cells are ``(row, col)`` on the memory's read grid: latent cells for ``"latent"``, pixels for ``"rgb"``.
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from mirage_viz.backbone import Backbone, load_embedded_backbone
from mirage_viz.geometry.depth import downsample_depth
from mirage_viz.geometry.splat import refine_splat_subcell, splat_points
from mirage_viz.geometry.visibility import camera_center
from mirage_viz.image import to_uint8_image
from mirage_viz.metrics import psnr as psnr_of
from mirage_viz.rollout.records import Rollout, StepRecord
from mirage_viz.rollout.engine import step_noise
from mirage_viz.rollout.trace import (FIRST_HAND_TIE_BITS, PAPER_TIE_BITS, RuleOwners, StepRead, owners_under_rules,
                                      step_read)
from mirage_viz.viz.figures import rollout_pca
from mirage_viz.viz.pca import PCABasis
from mirage_viz.viz.step_view import ERROR_LUT, hatch_holes, image_data_uri, label_font, wrap_text

__all__ = ["STAGE_NAMES", "Lesson", "RuleOutcome", "Stage", "conditioning_under_rule", "revisited_step",
           "step_colors", "walkthrough", "walkthrough_html", "ztest_lesson"]

STAGE_NAMES = ("lift", "project", "z-test", "holes", "generate")
_PANEL_PX = 320  # a panel is the frame enlarged by the whole factor that brings it nearest this many pixels
_MAX_DOTS = 20_000  # points drawn as dots in the projection and from-above pictures (evenly strided beyond)
_BACKGROUND, _INK, _SOFT_INK = (255, 255, 255), (30, 30, 34), (95, 95, 105)
_ONE_POINT = (205, 205, 210)  # a cell one point reached: nothing to decide
_FIRST_STEP = (31, 119, 200)  # step 0, the given frame: blue; later steps on a warm ramp, later is darker
_LATER_STOPS = np.array([[255, 221, 87], [253, 160, 64], [236, 96, 50], [196, 36, 40], [120, 20, 40]], np.float32)
_DEPTH_STOPS = np.array([[245, 245, 245], [40, 40, 48]], np.float32)  # near light, far dark: no step colour
_DIFFERENCE_RANGE = 0.1  # mean absolute difference per pixel at the top of the lesson's difference map
_TIE_DOT, _OUTLINE = (255, 255, 255), (0, 0, 0)
_SAME_POSE_M, _SAME_POSE_DEG, _SAME_FOCAL = 0.01, 0.5, 0.005  # a revisit: the camera within these of an earlier one


@dataclass(frozen=True)
class Stage:
    """One stage of a step: a title, two plain sentences with this step's figures, and a picture."""

    title: str
    sentences: tuple[str, str]
    picture: np.ndarray  # (H, W, 3) uint8: the panels with their titles and a legend

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


@dataclass(frozen=True)
class RuleOutcome:
    """What one z-test rule gives at a step of the latent memory: its owners, conditioning and frames."""

    rule: str  # "the paper's z-test" or "first-hand ties"
    depth_tie_bits: int
    owners: torch.Tensor  # (h, w) int64: the step owning each cell; -1 in holes
    conditioning_latent: torch.Tensor  # (C, h, w): the read under this rule, 0 in holes
    mask: torch.Tensor  # (h, w) bool
    conditioning_frame: torch.Tensor  # (3, H, W) in [0, 1]: that latent decoded
    frame: torch.Tensor | None  # (3, H, W) in [0, 1]: generated from it on the step's noise and decoded; None: not run
    psnr: float | None  # of ``frame`` against the truth; None without a frame or a truth
    ran: bool  # the rule the rollout ran with: its conditioning and frame are the record's own

    def cells_of(self, step: int) -> int:
        """How many cells ``step`` owns under this rule."""
        return int((self.owners == step).sum())


@dataclass(frozen=True)
class Lesson:
    """The z-test lesson of one step (see :func:`ztest_lesson`)."""

    step: int
    revisit_of: int | None  # the earlier step whose camera this step's is; None: not a revisit
    owners: RuleOwners  # from owners_under_rules
    paper: RuleOutcome
    first_hand: RuleOutcome
    truth: torch.Tensor | None  # (3, H, W)
    sentences: tuple[str, str]  # who owns the cells under each rule; the frames each rule gives
    why: str  # why the owners differ, and how the owner maps are coloured
    owners_picture: np.ndarray  # (H, W, 3) uint8: the two owner maps, differing cells outlined, a legend
    frames_picture: np.ndarray  # (H, W, 3) uint8: each rule's warped latent decoded and its frame, the truth

    @property
    def differing_cells(self) -> int:
        return int(self.owners.differ.sum())

    def stages(self) -> list[Stage]:
        """The lesson as two stages, to show after :func:`walkthrough`'s five."""
        made = (f"Each rule's read, decoded (left), and the frame generated from it on step {self.step}'s own noise "
                "(middle), everything else as the rollout ran.")
        return [Stage("The z-test lesson: who owns each cell", (self.sentences[0], self.why), self.owners_picture),
                Stage("The z-test lesson: the frame each rule gives", (made, self.sentences[1]), self.frames_picture)]


def _unit(read: StepRead) -> str:
    return "cell" if read.memory == "latent" else "pixel"


def _check(rollout: Rollout, memory: str, step: int) -> tuple[StepRecord, StepRead]:
    """The record of ``memory`` at ``step`` and the read it ran (:func:`~mirage_viz.rollout.trace.step_read`), or its
    ``ValueError`` saying what can be staged."""
    read = step_read(rollout, memory, step)
    return rollout.records[memory][step], read


# -- colours and drawing -------------------------------------------------------------------------------------------

def _ramp(stops: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Colours (..., 3) uint8 at ``t`` in [0, 1] along ``stops`` (K, 3)."""
    position = np.clip(t, 0, 1) * (len(stops) - 1)
    return np.stack([np.interp(position, np.arange(len(stops)), stops[:, c]) for c in range(3)], -1).round().astype(np.uint8)


def step_colors(rollout: Rollout) -> np.ndarray:
    """(S, 3) uint8: the colour of each step of ``rollout`` (its planned length, so colours stay put while it grows):
    step 0, the given frame, blue; later steps from yellow to dark red, later darker."""
    count = max(len(rollout.cameras), len(rollout), 1)
    later = _ramp(_LATER_STOPS, np.arange(count - 1) / max(1, count - 2))  # [S - 1, 3]
    return np.concatenate([np.array([_FIRST_STEP], np.uint8), later.reshape(-1, 3)])


def _panel_scale(frame_size: int) -> int:
    """The whole factor a frame of ``frame_size`` pixels is enlarged by in a panel."""
    return max(1, round(_PANEL_PX / frame_size))


def _cells_image(colors: np.ndarray, side: int) -> np.ndarray:
    """Cell colours (h, w, 3) uint8 as a (side, side * w / h, 3) picture, each cell a block."""
    factor = side // colors.shape[0]
    return np.repeat(np.repeat(colors, factor, axis=0), factor, axis=1)


def _enlarge(image: torch.Tensor, side: int) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (side, side * W / H, 3) uint8, pixels kept sharp."""
    return _cells_image(to_uint8_image(image), side)


def _holes_on(picture: np.ndarray, holes: torch.Tensor) -> np.ndarray:
    """``picture`` with the cells of ``holes`` (h, w) bool hatched."""
    blocks = _cells_image(holes.numpy()[..., None], picture.shape[0])[..., 0]
    return hatch_holes(picture, blocks)


def _grid_lines(picture: np.ndarray, rows: int, cols: int, strength: float = 0.35) -> np.ndarray:
    """``picture`` with the cell borders of a rows x cols grid darkened (a copy)."""
    out = picture.astype(np.float32)
    step_y, step_x = picture.shape[0] / rows, picture.shape[1] / cols
    for r in range(1, rows):
        out[round(r * step_y)] *= 1 - strength
    for c in range(1, cols):
        out[:, round(c * step_x)] *= 1 - strength
    return out.round().astype(np.uint8)


def _mark(picture: np.ndarray, cells: torch.Tensor, kind: str, color: tuple[int, int, int]) -> np.ndarray:
    """``picture`` with each cell of ``cells`` (h, w) bool marked: a ``"dot"`` at its centre, or an ``"outline"``."""
    out = picture.copy()
    size = picture.shape[0] // cells.shape[0]
    for row, col in torch.nonzero(cells).tolist():
        y0, x0 = row * size, col * size
        if kind == "dot":  # a centred square; small cells get no ring around it, which would cover their colour
            dot = max(1, size // 3)
            dot += (size - dot) % 2  # centred exactly
            top, left = y0 + (size - dot) // 2, x0 + (size - dot) // 2
            if size >= 12:
                out[top - 1: top + dot + 1, left - 1: left + dot + 1] = _OUTLINE
            out[top: top + dot, left: left + dot] = color
        else:
            width = max(1, size // 8)
            out[y0: y0 + width, x0: x0 + size] = color
            out[y0 + size - width: y0 + size, x0: x0 + size] = color
            out[y0: y0 + size, x0: x0 + width] = color
            out[y0: y0 + size, x0 + size - width: x0 + size] = color
    return out


def _dots(picture: np.ndarray, x: np.ndarray, y: np.ndarray, colors: np.ndarray, radius: int = 1) -> np.ndarray:
    """``picture`` with a square dot of ``radius`` at each pixel (x, y) (floats; outside ones skipped), in ``colors``
    (N, 3) uint8, drawn in order (later ones on top)."""
    out = picture.copy()
    height, width = picture.shape[:2]
    xi, yi = np.round(x).astype(np.int64), np.round(y).astype(np.int64)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            px, py = xi + dx, yi + dy
            inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
            out[py[inside], px[inside]] = colors[inside]
    return out


def _depth_picture(depth: torch.Tensor, side: int, low: float, high: float) -> np.ndarray:
    """Depth (h, w) (NaN: none) as greys from near (light) to far (dark), each cell a block, holes hatched."""
    values = depth.numpy()
    t = (values - low) / max(high - low, 1e-6)
    picture = _cells_image(_ramp(_DEPTH_STOPS, np.nan_to_num(t)), side)
    return _holes_on(picture, torch.isnan(depth))


def _stride(count: int, limit: int) -> np.ndarray:
    """At most ``limit`` of ``count`` indices, evenly strided (caches are in write order: every step keeps its share)."""
    return np.arange(count) if count <= limit else (np.arange(limit) * (count / limit)).astype(np.int64)


# A legend entry: (kind, colour, label); kind "fill", "hatch" (holes), "dot" (ties) or "outline" (differing cells)
LegendEntry = tuple[str, tuple[int, int, int], str]


def _step_legend(colors: np.ndarray, steps: list[int], first_note: str = " (first frame)") -> list[LegendEntry]:
    return [("fill", tuple(int(v) for v in colors[s]), f"step {s}{first_note if s == 0 else ''}") for s in steps]


def _compose(rows: list[list[tuple[str, np.ndarray]]], legend: list[LegendEntry] = ()) -> np.ndarray:
    """Panels (title, picture) in rows, each titled above (up to two lines), and a legend under them, on white."""
    title_font, legend_font = label_font(15), label_font(14)
    pad, line, title_lines = 12, 19, 2
    tile_w = max(picture.shape[1] for row in rows for _, picture in row)
    tile_h = max(picture.shape[0] for row in rows for _, picture in row)
    columns = max(len(row) for row in rows)
    width = pad + columns * (tile_w + pad)
    row_h = title_lines * line + 4 + tile_h + pad
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items, x, legend_rows = [], pad, 1 if legend else 0
    for kind, color, label in legend:  # laid out left to right, wrapping
        item_w = 18 + 6 + int(measure.textlength(label, font=legend_font)) + 18
        if x + item_w > width - pad and x > pad:
            x, legend_rows = pad, legend_rows + 1
        items.append((x, legend_rows - 1, kind, color, label))
        x += item_w
    height = pad + len(rows) * row_h + legend_rows * 24 + (pad if legend else 0)
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        top = pad + r * row_h
        for c, (title, picture) in enumerate(row):
            left = pad + c * (tile_w + pad)
            for index, text in enumerate(wrap_text(draw, title, title_font, tile_w, lines=title_lines)):
                draw.text((left, top + index * line), text, fill=_INK, font=title_font)
            canvas.paste(Image.fromarray(picture), (left, top + title_lines * line + 4))
    top = pad + len(rows) * row_h
    for x, legend_row, kind, color, label in items:
        y = top + legend_row * 24
        box = (x, y + 1, x + 18, y + 17)
        if kind == "fill":
            draw.rectangle(box, fill=color, outline=_SOFT_INK)
        elif kind == "hatch":
            swatch = hatch_holes(np.full((16, 18, 3), 255, np.uint8), np.ones((16, 18), bool))
            canvas.paste(Image.fromarray(swatch), (x, y + 1))
        elif kind == "dot":
            draw.rectangle(box, fill=_ONE_POINT)
            draw.rectangle((x + 5, y + 5, x + 13, y + 13), fill=color, outline=_OUTLINE)
        else:  # outline
            draw.rectangle(box, fill=_BACKGROUND, outline=color, width=3)
        draw.text((x + 24, y), label, fill=_INK, font=legend_font)
    return np.asarray(canvas)


# -- the five stages -------------------------------------------------------------------------------------------------

def _count(value: int, noun: str) -> str:
    return f"{value:,} {noun}{'' if value == 1 else 's'}"


def _from_above(rollout: Rollout, read: StepRead, colors: np.ndarray, side: int) -> np.ndarray:
    """The cache seen from above (x right, z forward up the picture), each point in its step's colour, the cameras of
    the steps so far as dark squares and this step's as a ring with its view direction."""
    picture = np.full((side, side, 3), 245, np.uint8)
    records = rollout.records[read.memory][: read.step + 1]
    centers = torch.stack([camera_center(r.camera) for r in records]).numpy()  # [step + 1, 3]
    keep = _stride(read.points.shape[0], _MAX_DOTS)
    points = read.points[keep].numpy()  # [M, 3]
    both = np.concatenate([points[:, [0, 2]], centers[:, [0, 2]]])
    low, high = both.min(0), both.max(0)
    span, margin = float(max(high - low)) or 1.0, 14
    scale = (side - 2 * margin) / span
    offset = (side - 2 * margin - (high - low) * scale) / 2 + margin

    def to_pixels(xz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (xz[:, 0] - low[0]) * scale + offset[0], side - 1 - ((xz[:, 1] - low[1]) * scale + offset[1])

    x, y = to_pixels(points[:, [0, 2]])
    picture = _dots(picture, x, y, colors[read.point_steps[keep].numpy()], radius=1)
    image = Image.fromarray(picture)
    draw = ImageDraw.Draw(image)
    cx, cy = to_pixels(centers[:, [0, 2]])
    for px, py in zip(cx[:-1], cy[:-1]):
        draw.rectangle((px - 3, py - 3, px + 3, py + 3), fill=_INK)
    forward = records[-1].camera.camera_to_world[:3, 2].numpy()  # this camera's view direction, world frame
    length = 0.12 * side / math.hypot(forward[0], forward[2]) if math.hypot(forward[0], forward[2]) > 1e-6 else 0.0
    px, py = cx[-1], cy[-1]
    draw.line((px, py, px + forward[0] * length, py - forward[2] * length), fill=_INK, width=3)
    draw.ellipse((px - 7, py - 7, px + 7, py + 7), outline=_INK, width=3)
    return np.asarray(image)


def _lift_stage(rollout: Rollout, read: StepRead, colors: np.ndarray, side: int) -> Stage:
    records = rollout.records[read.memory]
    previous = records[read.step - 1]
    lifted = previous.cache_points - (records[read.step - 2].cache_points if read.step >= 2 else 0)
    height, width = previous.frame.shape[-2:]
    if read.memory == "latent":
        rows, cols = previous.mask.shape
        depth = downsample_depth(previous.depth, rows, cols, rollout.config.latent.depth_mode, allow_holes=True)
        channels = previous.generated_latent.shape[0]
        cut = f"its {rows}x{cols} latent cells, and every cell with a depth became one 3D point carrying its {channels} latent channels"
        frame = _grid_lines(_enlarge(previous.frame, side), rows, cols)
        frame_title = f"step {read.step - 1}'s frame and its {rows}x{cols} latent cells"
    else:
        depth = previous.depth
        cut = f"its {height}x{width} pixels, and every pixel with a depth became one 3D point carrying its colour"
        frame = _enlarge(previous.frame, side)
        frame_title = f"step {read.step - 1}'s frame ({height}x{width} pixels)"
    finite = depth[~torch.isnan(depth)]
    low, high = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 1.0)
    first = (f"Each earlier frame was cut into {cut}: step {read.step - 1}'s frame (left) gave "
             f"{_count(lifted, 'point')}, at depths {low:.1f} to {high:.1f} m (middle).")
    steps = "step 0" if read.step == 1 else "steps 0 and 1" if read.step == 2 else f"steps 0 to {read.step - 1}"
    second = (f"Before step {read.step} the memory holds {_count(read.points.shape[0], 'point')} lifted by {steps}, "
              "seen from above on the right, each coloured by the step that lifted it.")
    panels = [(frame_title, frame), (f"its depth per {_unit(read)}", _depth_picture(depth, side, low, high)),
              ("the memory from above, with the cameras (ring: this step's)",
               _from_above(rollout, read, colors, side))]
    present = sorted(set(read.point_steps.unique().tolist()))
    legend = [("fill", tuple(int(v) for v in _DEPTH_STOPS[0]), f"near ({low:.1f} m)"),
              ("fill", tuple(int(v) for v in _DEPTH_STOPS[-1]), f"far ({high:.1f} m)"),
              ("hatch", (0, 0, 0), "no depth"), *_step_legend(colors, present)]
    return Stage("1. Lift: earlier frames become 3D points", (first, second), _compose([panels], legend))


def _project_stage(read: StepRead, colors: np.ndarray, side: int, counts: torch.Tensor) -> Stage:
    rows, cols = read.grid
    total, landed = read.points.shape[0], int(read.landed.sum())
    reached = int((counts > 0).sum())
    first = (f"All {_count(total, 'cached point')} were projected into step {read.step}'s camera, on its {rows}x{cols} "
             f"{'latent grid' if read.memory == 'latent' else 'pixel grid'}: {landed:,} landed inside it (dots, "
             f"coloured by the step that lifted them) and {total - landed:,} fell outside the view or behind the camera.")
    second = (f"Each point goes to the {_unit(read)} its centre falls nearest to, with no rendering and no network: "
              f"{reached:,} of the {rows * cols:,} {_unit(read)}s received at least one point.")
    scale = side / cols
    index = torch.nonzero(read.landed).squeeze(1).numpy()
    index = index[_stride(len(index), _MAX_DOTS)]
    uv = read.uv[index].numpy()
    picture = np.full((side, side, 3), 40, np.uint8)
    if read.memory == "latent":
        picture = _grid_lines(np.full((side, side, 3), 70, np.uint8), rows, cols, strength=0.6)
    picture = _dots(picture, (uv[:, 0] + 0.5) * scale - 0.5, (uv[:, 1] + 0.5) * scale - 0.5,
                    colors[read.point_steps[index].numpy()], radius=1 if scale < 12 else 2)
    levels = np.array([[_ONE_POINT[0]] * 3, [150, 170, 200], [90, 120, 175], [40, 70, 140], [15, 30, 80]], np.float32)
    classes = torch.bucketize(counts, torch.tensor([1, 2, 3, 5, 9]), right=True).clamp(max=5).numpy()  # 0: none
    count_colors = _ramp(levels, (np.maximum(classes, 1) - 1) / 4)
    count_picture = _holes_on(_cells_image(count_colors, side), counts == 0)
    if read.memory == "latent":
        count_picture = _grid_lines(count_picture, rows, cols, strength=0.15)
    names = ["1 point", "2", "3 or 4", "5 to 8", "9 or more"]
    legend = [("fill", tuple(int(v) for v in levels[k]), names[k])
              for k in range(5) if k + 1 <= max(1, int(classes.max()))]
    legend.insert(0, ("hatch", (0, 0, 0), "no point"))
    present = sorted(set(read.point_steps[index].tolist()))
    panels = [(f"every cached point where it lands in step {read.step}'s camera", picture),
              (f"how many points landed in each {_unit(read)}", count_picture)]
    return Stage("2. Project: the memory seen from the new camera", (first, second),
                 _compose([panels], [*legend, *_step_legend(colors, present)]))


def _tolerance(bits: int) -> str:
    return "a factor of 2" if bits == 0 else f"{100 * 2.0**-bits:.2g}%"


def _ztest_stage(rollout: Rollout, read: StepRead, record: StepRecord, colors: np.ndarray, side: int,
                 counts: torch.Tensor, ties: torch.Tensor) -> Stage:
    rows, cols = read.grid
    owners = read.owners(record.source)
    several = counts >= 2
    first_cells = int((owners == 0).sum())
    first = (f"{int(several.sum()):,} of the {rows * cols:,} {_unit(read)}s were reached by more than one point; in each, "
             "the z-test keeps one, and the picture colours it by the step whose point won (grey: only one point came).")
    seen = (" Seen rays first dropped the points clearly in front of a point its own camera saw along this ray."
            if read.seen is not None else "")
    second = (f"The nearest point wins, but depths within {_tolerance(read.depth_tie_bits)} of the nearest tie "
              f"(depth_tie_bits {read.depth_tie_bits}) and the earliest written of them wins: {int(ties.sum()):,} "
              f"{_unit(read)}s were such ties (dots), and step 0, the first frame, won {first_cells:,} {_unit(read)}s in "
              f"all.{seen}")
    cell_colors = np.where(several.numpy()[..., None], colors[owners.clamp(min=0).numpy()],
                           np.array(_ONE_POINT, np.uint8))
    picture = _holes_on(_cells_image(cell_colors.astype(np.uint8), side), owners < 0)
    if read.memory == "latent":
        picture = _mark(_grid_lines(picture, rows, cols, strength=0.15), ties, "dot", _TIE_DOT)
    depth = torch.where(record.source >= 0, record.source_depth, torch.tensor(float("nan")))
    finite = depth[~torch.isnan(depth)]
    low, high = (float(finite.min()), float(finite.max())) if finite.numel() else (0.0, 1.0)
    present = sorted(set(owners[several].tolist()))
    legend = [("fill", _ONE_POINT, "one point only"), ("dot", _TIE_DOT, "a tie"), ("hatch", (0, 0, 0), "hole"),
              *_step_legend(colors, present),
              ("fill", tuple(int(v) for v in _DEPTH_STOPS[0]), f"near ({low:.1f} m)"),
              ("fill", tuple(int(v) for v in _DEPTH_STOPS[-1]), f"far ({high:.1f} m)")]
    panels = [(f"the step whose point won each {_unit(read)}", picture),
              (f"the winner's depth in step {read.step}'s camera", _depth_picture(depth, side, low, high))]
    return Stage(f"3. Z-test: one point per {_unit(read)}", (first, second), _compose([panels], legend))


def _holes_stage(read: StepRead, record: StepRecord, basis: PCABasis, side: int) -> Stage:
    rows, cols = read.grid
    hit = record.source >= 0  # the read's own grid: latent cells, or the RGB memory's pixels
    holes = int((~hit).sum())
    share = holes / (rows * cols)
    if holes:
        first = (f"{holes:,} of the {rows * cols:,} {_unit(read)}s ({share:.0%}) received no point: no earlier frame saw "
                 "that part of the view, it was hidden from them, or their points spread too thin to reach every "
                 f"{_unit(read)}. These are the holes (hatched): memory hands the generator nothing there.")
    else:
        first = (f"None of the {rows * cols:,} {_unit(read)}s is a hole: every part of this view was seen by an earlier "
                 "frame, so memory hands the generator something everywhere.")
    behind = "the truth" if record.true_frame is not None else "the generated frame"
    if read.memory == "latent":
        covered = _holes_on(_cells_image(to_uint8_image(basis.image(record.conditioning_latent)), side), ~record.mask)
        first_title, what = "the warped latent (PCA colours), holes hatched", "warped latent"
    else:
        render = record.memory_render if record.memory_render is not None else torch.zeros_like(record.frame)
        covered = _holes_on(_enlarge(render, side), ~hit)
        first_title, what = "the pixel render, holes hatched", "pixel render (the VAE encodes it next)"
    second = (f"The {rows * cols - holes:,} covered {_unit(read)}s form the {what}, on the left; on the right, {behind} "
              "with the holes over it: what the generator has to make up.")
    shown = record.true_frame if record.true_frame is not None else record.frame
    panels = [(first_title, covered), (f"{behind} under the holes", _holes_on(_enlarge(shown, side), ~hit))]
    return Stage("4. Holes: what memory does not hold", (first, second),
                 _compose([panels], [("hatch", (0, 0, 0), f"hole: no point reached the {_unit(read)}")]))


def _score(record: StepRecord) -> str:
    return "inf" if record.psnr == float("inf") else f"{record.psnr:.1f}"


def _generate_stage(rollout: Rollout, read: StepRead, record: StepRecord, side: int) -> Stage:
    steps = rollout.setup.num_inference_steps if rollout.setup is not None else None
    sampler = rollout.config.sampler
    how = f"in {_count(steps, 'denoising step')}" if steps else "in its denoising steps"
    if sampler.average_samples > 1:
        how += f", the mean of {sampler.average_samples} draws"
    kept = ", keeping the covered cells as memory holds them" if sampler.known_cells else ""
    first = (f"The generator took the conditioning latent and its mask and drew step {read.step}'s latent {how}{kept}; "
             "the VAE decoded it to the frame in the middle.")
    if record.psnr is not None:
        second = (f"Against the truth (right) it scores PSNR {_score(record)} dB and SSIM {record.ssim:.3f}; on the "
                  "left, what memory alone held, decoded, before the generator made up the holes.")
    else:
        second = ("There is no truth to score it against (a photo); on the left, what memory alone held, decoded, "
                  "before the generator made up the holes.")
    if read.memory == "latent":
        held = record.conditioning_frame if record.conditioning_frame is not None else torch.zeros_like(record.frame)
        held = _holes_on(_enlarge(held, side), ~record.mask)
        held_title = "the warped latent decoded, holes hatched"
    else:
        render = record.memory_render if record.memory_render is not None else torch.zeros_like(record.frame)
        held, held_title = _holes_on(_enlarge(render, side), record.source < 0), "the pixel render, holes hatched"
    panels = [(held_title, held), ("the generated frame" + (f": PSNR {_score(record)} dB" if record.psnr is not None
                                                             else ""), _enlarge(record.frame, side))]
    if record.true_frame is not None:
        panels.append(("the truth: the world rendered at this camera", _enlarge(record.true_frame, side)))
    return Stage("5. Generate: the new view", (first, second), _compose([panels]))


def walkthrough(rollout: Rollout, step: int, memory: str = "latent", basis: PCABasis | None = None) -> list[Stage]:
    """The five stages of ``memory``'s read at ``step`` (:data:`STAGE_NAMES`: lift, project, z-test, holes, generate),
    each a picture and two sentences with this step's figures, from the rollout's records and caches.

    Args:
        rollout: a rollout whose records keep their read's source (:attr:`StepRecord.source`).
        step: a step that read memory (1 to the last).
        memory: ``"latent"`` (its cells) or ``"rgb"`` (its pixels), with a flat cache.
        basis: the rollout's PCA colours (default :func:`~mirage_viz.viz.figures.rollout_pca`).

    Raises ``ValueError`` for the no-memory, a fused cache, step 0 or a step out of range.
    """
    record, read = _check(rollout, memory, step)
    colors = step_colors(rollout)
    side = record.frame.shape[-2] * _panel_scale(record.frame.shape[-2])
    counts, ties = read.per_cell()
    return [_lift_stage(rollout, read, colors, side), _project_stage(read, colors, side, counts),
            _ztest_stage(rollout, read, record, colors, side, counts, ties),
            _holes_stage(read, record, basis or rollout_pca(rollout), side), _generate_stage(rollout, read, record, side)]


# -- the z-test lesson ---------------------------------------------------------------------------------------------

def revisited_step(rollout: Rollout, step: int) -> int | None:
    """The earliest step before ``step`` whose camera ``step``'s camera is again (within 1 cm, half a degree and half
    a percent of focal length: a loop's return, a drive's back-to-start), or None."""
    cameras = rollout.cameras[: len(rollout)]
    if not 0 <= step < len(cameras):
        return None
    here = cameras[step]
    for index, earlier in enumerate(cameras[:step]):
        a, b = here.camera_to_world.double(), earlier.camera_to_world.double()
        turn = float(torch.linalg.matrix_norm(a[:3, :3] - b[:3, :3]))  # ~ angle * sqrt(2) in radians
        focal = abs(here.intrinsics.fx - earlier.intrinsics.fx) / earlier.intrinsics.fx
        if (float((a[:3, 3] - b[:3, 3]).norm()) <= _SAME_POSE_M and turn <= math.radians(_SAME_POSE_DEG) * math.sqrt(2)
                and focal <= _SAME_FOCAL):
            return index
    return None


def conditioning_under_rule(rollout: Rollout, step: int, depth_tie_bits: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                                         torch.Tensor]:
    """The latent memory's read at ``step`` with the z-test tolerance ``depth_tie_bits``, every other read option as
    the rollout ran (seen rays, sub-cell warp): the conditioning latent (C, h, w), its mask (h, w) and each cell's
    winner (h, w) int64 (index into the cache the step read, -1 in holes). With the rollout's own tolerance it is the
    record's conditioning."""
    record, read = _check(rollout, "latent", step)
    options = rollout.config.latent
    splat = splat_points(read.points, read.features, read.camera, depth_tie_bits=depth_tie_bits, seen=read.seen)
    if options.warp == "subcell":
        splat = refine_splat_subcell(read.points, read.features, read.camera, splat, groups=read.point_steps)
    latent = splat.features.to(record.conditioning_latent.dtype)
    return latent, splat.mask, splat.point_index


def _backbone_for(rollout: Rollout, backbone: Backbone | None) -> Backbone:
    """The backbone that made ``rollout``, decoding as it did: ``backbone`` (the one it ran with), or the embedded one
    when it ran with the embedded models."""
    amount = rollout.config.decoder.decoder_sharpness
    if backbone is None:
        ran = rollout.backbone_name
        if ran not in ("embedded", f"embedded, decoder sharpness {amount:g}"):
            raise ValueError(f"this rollout ran with the models {ran!r}: pass that backbone to regenerate its step")
        backbone = load_embedded_backbone()
    if amount and backbone.vae_name == "embedded":  # as the engine: the decoder moved towards the sharp one
        backbone = backbone.with_decoder_sharpness(amount)
    return backbone


def _outcome(rollout: Rollout, step: int, bits: int, rule: str, owners: torch.Tensor,
             backbone: Callable[[], Backbone], generate: bool) -> RuleOutcome:
    """One rule's outcome at ``step``: the record's own for the rule the rollout ran, else read, decoded and
    generated here by ``backbone()``."""
    record = rollout.records["latent"][step]
    ran = bits == rollout.config.latent.depth_tie_bits
    if ran and record.conditioning_frame is not None:
        return RuleOutcome(rule, bits, owners, record.conditioning_latent, record.mask, record.conditioning_frame,
                           record.frame if generate else None, record.psnr if generate else None, ran=True)
    latent, mask, _ = conditioning_under_rule(rollout, step, bits)
    conditioning_frame = backbone().decode(latent[None])[0]
    frame = None
    if generate:
        sampler = rollout.config.sampler
        steps = rollout.setup.num_inference_steps if rollout.setup is not None else None
        generated = backbone().generate(latent, mask.float(), step_noise(rollout.config, step), steps, sampler.known_cells,
                                        sampler.average_samples)
        frame = backbone().decode(generated[None])[0]
    score = None if frame is None or record.true_frame is None else psnr_of(frame, record.true_frame)
    return RuleOutcome(rule, bits, owners, latent, mask, conditioning_frame, frame, score, ran)


def _owners_picture(owners: RuleOwners, outcomes: tuple[RuleOutcome, RuleOutcome], colors: np.ndarray, side: int,
                    first: int) -> np.ndarray:
    panels = []
    for outcome in outcomes:
        cells = _cells_image(colors[outcome.owners.clamp(min=0).numpy()], side)
        picture = _holes_on(cells, outcome.owners < 0)
        rows, cols = outcome.owners.shape
        picture = _mark(_grid_lines(picture, rows, cols, strength=0.12), owners.differ, "outline", _OUTLINE)
        panels.append((f"{outcome.rule} (depth_tie_bits {outcome.depth_tie_bits}): step {first} owns "
                       f"{outcome.cells_of(first)} cells", picture))
    present = sorted(set(owners.paper[owners.paper >= 0].tolist()) | set(owners.first_hand[owners.first_hand >= 0].tolist()))
    legend = [("outline", _OUTLINE, "owner differs between the rules"), ("hatch", (0, 0, 0), "hole"),
              *_step_legend(colors, present)]
    return _compose([panels], legend)


def _frames_picture(outcomes: tuple[RuleOutcome, RuleOutcome], truth: torch.Tensor | None, side: int) -> np.ndarray:
    rows = []
    for outcome in outcomes:
        row = [(f"{outcome.rule}: warped latent decoded", _holes_on(_enlarge(outcome.conditioning_frame, side),
                                                                    ~outcome.mask))]
        if outcome.frame is not None:
            score = "" if outcome.psnr is None else f": PSNR {outcome.psnr:.2f} dB"
            row.append((f"{outcome.rule}: generated frame{score}", _enlarge(outcome.frame, side)))
        rows.append(row)
    if truth is not None:
        rows[0].append(("the truth", _enlarge(truth, side)))
    paper, first = outcomes
    if paper.frame is not None and first.frame is not None:
        difference = (paper.frame - first.frame).abs().mean(dim=0)  # (H, W)
        level = (difference * (255 / _DIFFERENCE_RANGE)).round().clamp(0, 255).to(torch.uint8).numpy()
        rows[1].append((f"where the two frames differ: 0 (black) to {_DIFFERENCE_RANGE:g} and more (yellow)",
                        _cells_image(ERROR_LUT[level], side)))
    return _compose(rows)


def ztest_lesson(rollout: Rollout, step: int, backbone: Backbone | None = None, generate: bool = True) -> Lesson:
    """The z-test lesson at ``step`` of the latent memory, best at a revisit (a loop's return): which frame owns each
    cell under the paper's z-test (depth_tie_bits 5) and under first-hand ties (0), from
    :func:`~mirage_viz.rollout.trace.owners_under_rules`, and the frame each rule gives.

    Each rule's conditioning is the latent memory's splat of the cache the step read (:func:`conditioning_under_rule`);
    the rule the rollout ran with keeps the record's own conditioning and frame, the other is decoded and, with
    ``generate``, generated on the step's own noise with the rollout's sampler and decoded (one generation). Without
    ``generate`` only the warped latents are decoded.

    Args:
        backbone: the backbone the rollout ran with; None: the embedded one (a rollout of other models refuses).
    """
    _check(rollout, "latent", step)
    owners = owners_under_rules(rollout, step)
    revisit = revisited_step(rollout, step)
    models = functools.cache(lambda: _backbone_for(rollout, backbone))  # loaded when a rule needs it
    paper = _outcome(rollout, step, PAPER_TIE_BITS, "the paper's z-test", owners.paper, models, generate)
    first_hand = _outcome(rollout, step, FIRST_HAND_TIE_BITS, "first-hand ties", owners.first_hand, models, generate)
    record = rollout.records["latent"][step]
    truth = record.true_frame
    colors = step_colors(rollout)
    side = record.frame.shape[-2] * _panel_scale(record.frame.shape[-2])
    first = revisit if revisit is not None else 0
    differ, cells = int(owners.differ.sum()), owners.differ.numel()
    where = f"At step {step} the camera is back where step {revisit} was" if revisit is not None else f"At step {step}"
    lead = (f"{where}, and {differ} of its {cells} latent cells change owner between the two rules: step {first} keeps "
            f"{paper.cells_of(first)} cells under the paper's z-test (depths within {_tolerance(PAPER_TIE_BITS)} tie) "
            f"and {first_hand.cells_of(first)} under first-hand ties (within {_tolerance(FIRST_HAND_TIE_BITS)}).")
    colours = "each cell is coloured by the step that owns it (step 0 blue, later steps warmer)"
    why = f"No cell changes owner here; {colours}."
    if differ:  # how much nearer the paper's winners lay: past its tie, within first-hand ties
        depth = step_read(rollout, "latent", step).depth  # [N] in this step's camera
        ratio = depth[owners.first_hand_source[owners.differ]] / depth[owners.paper_source[owners.differ]]
        why = (f"In the {differ} outlined cells a later frame's point lay a median "
               f"{100 * (float(ratio.median()) - 1):.1f}% nearer than the first-hand winner, past the paper's tie, so "
               f"it took the cell; {colours}.")
    if paper.frame is not None and paper.psnr is not None:
        frames = (f"Against the truth the paper's read gives PSNR {paper.psnr:.2f} dB and first-hand ties "
                  f"{first_hand.psnr:.2f} dB ({first_hand.psnr - paper.psnr:+.2f} dB): the same generator and noise, only "
                  "the z-test differs.")
    elif paper.frame is not None:
        frames = "Generated from each on the step's own noise (no truth to score them against)."
    else:
        frames = "Each rule's warped latent is decoded (the generator was not run)."
    outcomes = (paper, first_hand)
    return Lesson(step=step, revisit_of=revisit, owners=owners, paper=paper, first_hand=first_hand, truth=truth,
                  sentences=(lead, frames), why=why, owners_picture=_owners_picture(owners, outcomes, colors, side, first),
                  frames_picture=_frames_picture(outcomes, truth, side))


# -- HTML ------------------------------------------------------------------------------------------------------------

_STYLE = """<style>
.mv-walk{font-family:inherit;color:inherit}
.mv-walk section{margin:0 0 18px}
.mv-walk h4{margin:8px 0 2px;font-size:16px;font-weight:600}
.mv-walk p{margin:2px 0 6px;font-size:14px;line-height:1.45;max-width:80em}
.mv-walk img{display:block;max-width:100%;height:auto;border-radius:4px}
</style>"""


def walkthrough_html(stages: list[Stage], heading: str | None = None, image_format: str = "png") -> str:
    """``stages`` (from :func:`walkthrough`, and a lesson's :meth:`Lesson.stages`) as one self-contained HTML
    fragment: each a title, its two sentences and its picture as a data URI (PNG by default: the labels stay crisp)."""
    parts = [_STYLE, '<div class="mv-walk">']
    if heading:
        parts.append(f"<h4>{html.escape(heading)}</h4>")
    for stage in stages:
        uri = image_data_uri(stage.picture, image_format)
        parts.append(f'<section><h4>{html.escape(stage.title)}</h4><p>{html.escape(stage.text)}</p>'
                     f'<img alt="{html.escape(stage.title)}" src="{uri}"></section>')
    parts.append("</div>")
    return "".join(parts)
