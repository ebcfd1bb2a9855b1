"""Trace a cell, drawn: where a clicked place of a step's memory read came from, every memory side by side.

Pure functions of a rollout and the engine's own traces (:func:`mirage_viz.rollout.trace.trace_pixel`, which reads
the winners the read's splat recorded), shared by the app and the notebook inspector:

- :func:`click_picture`: the picture a visitor clicks (the warped latent, the decoded frame or the truth),
  enlarged so that a click lands on one pixel of the frame (:func:`pixel_of_click`), the traced cell outlined;
- :func:`trace_view`: the place under a pixel traced in every memory that keeps a traceable cache: per memory, the
  frame of the step that lifted the winning point with its footprint outlined (for a hole, the earlier camera that
  came closest, the place marked) and a card of plain sentences (step, depth, the other points, the rule);
- :func:`trace_view_html`: that view as one HTML fragment (images as WebP data);
- :func:`trace_overlay` and :func:`trace_cache_figure`: the winning points highlighted in the 3D caches
  (:func:`~mirage_viz.viz.figures.cache_figure`), each with the ray from the step's camera centre to it.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from mirage_viz.image import to_uint8_image
from mirage_viz.rollout.records import Rollout
from mirage_viz.rollout.trace import CellTrace, EarlierView, cell_of_pixel, pixels_of_cell, steps_of_points, trace_pixel
from mirage_viz.viz.figures import cache_figure, plot_xyz, rollout_pca
from mirage_viz.viz.pca import PCABasis
from mirage_viz.viz.step_view import HOLE_COLORS, Tile, hatch_holes, image_data_uri

__all__ = ["CLICK_PICTURES", "ClickPicture", "MemoryTraceView", "TraceView", "click_figure", "click_picture",
           "click_scale", "pixel_of_click", "trace_cache_figure", "trace_overlay", "trace_view", "trace_view_html"]

CLICK_PICTURES = ("warped latent", "decoded frame", "truth")  # what a visitor may click on (same geometry)
CLICK_SIZE = 512  # the clickable picture's width at least (pixels): a browser never enlarges it, so clicks map exactly
SOURCE_SIZE = 320  # a source frame's width at least, so a latent cell's outline is drawn a few pixels wide
OUTLINE = (255, 214, 0)  # the traced cell and the winner's footprint: yellow on a dark edge
HOLE_MARK = HOLE_COLORS[0]  # a hole's place, as holes are drawn in the step view
_OTHERS_LISTED = 6  # other points a card names one by one


@dataclass(frozen=True)
class ClickPicture:
    """A picture of a step to click on: ``scale`` display pixels per frame pixel (see :func:`pixel_of_click`)."""

    image: np.ndarray  # (H * scale, W * scale, 3) uint8
    scale: int
    caption: str  # what it shows


@dataclass(frozen=True)
class MemoryTraceView:
    """One memory's answer at the traced place."""

    memory: str
    title: str  # e.g. "latent memory: cell (5, 7) of its 16x16 latent grid"
    color: str  # the memory's own colour (charts, legends, the 3D highlight)
    trace: CellTrace | None  # None where the memory keeps nothing traceable (``lines`` says why)
    picture: Tile | None  # the lifting step's frame with the footprint outlined; a hole: the closest earlier view
    lines: tuple[str, ...]  # the card: one plain sentence each


@dataclass(frozen=True)
class TraceView:
    """The place under pixel ``pixel`` of step ``step``, traced in every memory (see :func:`trace_view`)."""

    step: int
    last_step: int
    pixel: tuple[int, int]  # (x, y) on the step's frame
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1), x1 and y1 exclusive: the latent cell holding the pixel
    heading: str
    current: Tile  # the step's decoded frame with the traced cell outlined
    memories: tuple[MemoryTraceView, ...]  # the memories that keep a cache, in the rollout's order
    notes: tuple[str, ...] = ()  # the memories that keep nothing to trace (the no-memory), one sentence each

    def trace(self, memory: str) -> CellTrace | None:
        """The trace of ``memory`` (None when it has none here)."""
        return next((m.trace for m in self.memories if m.memory == memory), None)

    def without_pictures(self) -> TraceView:
        """This view without its pictures (a few KB instead of about a MB): enough for :func:`trace_overlay`, to
        keep between a click and the 3D view drawn after it."""
        blank = Tile(self.current.title, self.current.caption, np.zeros((0, 0, 3), np.uint8))
        return replace(self, current=blank, memories=tuple(replace(m, picture=None) for m in self.memories))


def click_scale(rollout: Rollout) -> int:
    """Display pixels per frame pixel of :func:`click_picture`: its width is at least ``CLICK_SIZE``."""
    width = _frame_size(rollout)[1]
    return max(1, math.ceil(CLICK_SIZE / width))


def pixel_of_click(rollout: Rollout, x: float, y: float) -> tuple[int, int]:
    """The frame pixel ``(x, y)`` under a click at ``(x, y)`` on :func:`click_picture` (its own pixels); a click off
    the picture is a ``ValueError``."""
    height, width = _frame_size(rollout)
    scale = click_scale(rollout)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, y)):
        raise ValueError(f"a click is two numbers (x, y) on the picture, got {x!r}, {y!r}")
    px, py = int(x) // scale, int(y) // scale
    if not (0 <= px < width and 0 <= py < height):
        raise ValueError(f"the click ({x:g}, {y:g}) is off the {width * scale}x{height * scale} picture")
    return px, py


def click_picture(rollout: Rollout, step: int, picture: str = "warped latent", basis: PCABasis | None = None,
                  outline: tuple[int, int, int, int] | None = None) -> ClickPicture:
    """The picture of ``step`` to click on, enlarged ``click_scale`` times (cell edges kept sharp).

    Args:
        picture: one of ``CLICK_PICTURES``: the warped latent of the first latent memory in PCA colours with its
            holes hatched (a hole is easy to find), its decoded frame, or the true view (a photo has none: its
            decoded frame instead).
        outline: pixels ``(x0, y0, x1, y1)`` of the frame to outline (the traced cell), x1 and y1 exclusive.
    """
    if picture not in CLICK_PICTURES:
        raise ValueError(f"picture must be one of {', '.join(CLICK_PICTURES)}, got {picture!r}")
    if len(rollout) == 0:
        raise ValueError("the rollout has no steps yet")
    step = max(0, min(int(step), len(rollout) - 1))
    name = _latent_memory(rollout)
    record = rollout.records[name][step]
    image, caption = to_uint8_image(record.frame), f"step {step}: the {name} memory's decoded frame"
    if picture == "warped latent" and step > 0:
        basis = basis or rollout_pca(rollout)
        height, width = record.frame.shape[-2:]
        colors = F.interpolate(basis.image(record.conditioning_latent)[None], size=(height, width), mode="nearest")[0]
        holes = F.interpolate(record.mask[None, None].float(), size=(height, width), mode="nearest")[0, 0] < 0.5
        image = hatch_holes(to_uint8_image(colors), holes.numpy())
        caption = f"step {step}: the {name} memory's warped latent (PCA colours, holes hatched)"
    elif picture == "warped latent":
        caption = "step 0 is the given first frame: no memory was read; its decoded frame"
    elif picture == "truth" and record.true_frame is not None:
        image, caption = to_uint8_image(record.true_frame), f"step {step}: the true view"
    elif picture == "truth":
        caption += " (no true view to show: a photo)"
    scale = click_scale(rollout)
    enlarged = _enlarge(image, scale)
    if outline is not None:
        enlarged = _outlined(enlarged, [tuple(v * scale for v in outline)])
    return ClickPicture(enlarged, scale, caption)


def click_figure(shown: ClickPicture) -> go.Figure:
    """``shown`` as a plotly figure to click in a notebook (a ``FigureWidget``'s ``on_click``): one image trace whose
    x and y are the picture's own pixels (:func:`pixel_of_click` maps them to the frame), its caption as the title."""
    height, width = shown.image.shape[:2]
    image = dict(type="image", source=image_data_uri(shown.image, "png"), x0=0, y0=0, dx=1, dy=1,
                 hovertemplate="x %{x}, y %{y}<extra></extra>")
    layout = dict(template=dict(layout=dict()), width=width + 20, height=height + 60,
                  margin=dict(l=10, r=10, t=50, b=10), title=dict(text=shown.caption, x=0.01, font=dict(size=13)),
                  dragmode=False,
                  xaxis=dict(visible=False, range=[-0.5, width - 0.5]),
                  yaxis=dict(visible=False, range=[height - 0.5, -0.5], scaleanchor="x"))
    return go.Figure(dict(data=[image], layout=layout))


def trace_view(rollout: Rollout, step: int, x: int, y: int) -> TraceView:
    """The place under pixel ``(x, y)`` of ``step``'s frame, traced in every memory that keeps a cache.

    Raises ``ValueError`` (the engine's own message) when no memory can trace it: no step yet, step 0 (it read
    nothing), a step or pixel out of range. A memory that cannot (the no-memory, a fused cache) says why on its card.
    """
    if len(rollout) == 0:
        raise ValueError("the rollout has no step yet")
    latent = _latent_memory(rollout)
    traces: dict[str, CellTrace | ValueError] = {}
    for name in rollout.records:
        try:
            traces[name] = trace_pixel(rollout, name, step, x, y)
        except ValueError as error:
            traces[name] = error
    if not any(isinstance(t, CellTrace) for t in traces.values()):  # the message of a memory with a flat cache
        flat = [name for name in traces if name in rollout.caches and name not in rollout.snapshots]
        raise traces[flat[0] if flat else next(iter(traces))]
    named = latent if isinstance(traces.get(latent), CellTrace) else next(  # whose grid names the cell
        name for name, traced in traces.items() if isinstance(traced, CellTrace))
    row, col = cell_of_pixel(rollout, named, x, y)
    box = pixels_of_cell(rollout, named, row, col)
    memories, notes = [], []
    for name, traced in traces.items():
        info = rollout.memory_info[name]
        if isinstance(traced, ValueError) and info.features == "none":
            notes.append(f"{name} memory: it stores nothing, so nothing to trace.")
        elif isinstance(traced, ValueError):  # a cache it cannot trace (a fused one): a column saying why
            memories.append(MemoryTraceView(name, f"{name} memory", info.color, None, None, (str(traced),)))
        else:
            memories.append(_memory_view(rollout, traced, info.color, box if named == latent else None))
    scale = _scale_for(rollout, SOURCE_SIZE)
    current_frame = _enlarge(to_uint8_image(rollout.records[latent][step].frame), scale)
    cell = f", latent cell ({row}, {col})" if rollout.memory_info[named].features == "latent" else ""
    current = Tile(f"step {step}: the traced place", f"pixel ({x}, {y}){cell}, outlined",
                   _outlined(current_frame, [tuple(v * scale for v in box)]))
    heading = f"Step {step}, pixel ({x}, {y}){cell}: where each memory's piece of it came from"
    return TraceView(step, len(rollout) - 1, (x, y), box, heading, current, tuple(memories), tuple(notes))


def trace_view_html(view: TraceView, with_current: bool = False, image_format: str = "webp") -> str:
    """``view`` as one HTML fragment: a heading, then one column per memory (its picture and its card); with
    ``with_current``, the step's own frame with the cell outlined first."""
    columns = []
    if with_current:
        columns.append(_column_html(view.current.title, view.current.caption, view.current.image, (), image_format))
    for memory in view.memories:
        picture = memory.picture
        columns.append(_column_html(memory.title, picture.caption if picture else "",
                                    picture.image if picture else None, memory.lines, image_format,
                                    picture.title if picture else ""))
    notes = "".join(f'<p class="mv-note">{html.escape(note)}</p>' for note in view.notes)
    return (f'{_STYLE}<div class="mv-trace"><div class="mv-heading">{html.escape(view.heading)}</div>'
            f'<div class="mv-trace-grid" style="--mv-columns:{max(1, len(columns))}">{"".join(columns)}</div>'
            f'{notes}</div>')


def trace_overlay(view: TraceView) -> list[dict]:
    """Scatter3d traces (dicts) of ``view`` for the 3D caches: per memory, the winning point in its colour and the
    ray from the step's camera centre to it; for a hole, the ray to the place this step's depth puts there."""
    traces: list[dict] = []
    for memory in view.memories:
        trace = memory.trace
        if trace is None:
            continue
        target = trace.winner.position if trace.winner is not None else trace.place
        if target is None:
            continue  # a hole without depth: no place to point at
        line = torch.tensor([trace.origin, target], dtype=torch.float32)  # [2, 3] world frame
        if trace.winner is not None:
            name = f"{memory.memory}: from step {trace.winner.step} at {trace.winner.depth:.2f} m"
            color, symbol = memory.color, "diamond"
        else:
            name = f"{memory.memory}: a hole (the place this step's depth puts there)"
            color, symbol = "#ff4fa0", "x"
        traces.append(dict(type="scatter3d", **plot_xyz(line), mode="lines", name=f"{name}: the ray",
                           legendgroup=f"trace-{memory.memory}", showlegend=False, hoverinfo="skip",
                           line=dict(color=color, width=5, dash="dash")))
        traces.append(dict(type="scatter3d", **plot_xyz(line[1:]), mode="markers", name=name,
                           legendgroup=f"trace-{memory.memory}", hovertext=[name], hoverinfo="text",
                           marker=dict(size=10, color=color, symbol=symbol, line=dict(color="#000000", width=2))))
    return traces


def trace_cache_figure(rollout: Rollout, view: TraceView, basis: PCABasis | None = None,
                       max_points: int = 20_000) -> go.Figure:
    """:func:`~mirage_viz.viz.figures.cache_figure` of the traced step with :func:`trace_overlay` on top."""
    figure = cache_figure(rollout, view.step, basis, max_points=max_points)
    figure.add_traces(trace_overlay(view))
    return figure


# -- one memory's card and picture -------------------------------------------------------------------------------

def _memory_view(rollout: Rollout, trace: CellTrace, color: str,
                 box: tuple[int, int, int, int] | None) -> MemoryTraceView:
    """The card and the picture of one memory's trace; ``box``: the latent cell's pixels, for a pixel memory's
    summary of the pixels under it (None: no latent cell traced)."""
    rows, cols = trace.grid
    if rollout.memory_info[trace.memory].features == "color":
        title = f"{trace.memory} memory: pixel ({trace.col}, {trace.row}) (x, y)"
    else:
        title = f"{trace.memory} memory: cell ({trace.row}, {trace.col}) of its {rows}x{cols} latent grid"
    setting = (f"memory setting: {trace.setting} (z-test tie tolerance depth_tie_bits {trace.depth_tie_bits}, "
               f"seen rays {'on' if trace.seen_rays else 'off'})")
    if trace.covered:
        winner = trace.winner
        others = [c for c in trace.candidates if c.index != winner.index]
        lines = [f"From step {winner.step}, at depth {winner.depth:.2f} m from this step's camera.",
                 _others_sentence(others), f"Rule: {trace.rule}.", setting.capitalize() + "."]
        record = rollout.records[trace.memory][winner.step]
        scale = _scale_for(rollout, SOURCE_SIZE)
        image = _outlined(_enlarge(to_uint8_image(record.frame), scale), [tuple(v * scale for v in winner.footprint)])
        kind = "pixel" if winner.footprint[2] - winner.footprint[0] == 1 else "cell"
        picture = Tile(f"step {winner.step}: where it was lifted from",
                       f"the {trace.memory} memory's frame at step {winner.step}, the {kind} it was lifted from "
                       "outlined",
                       image)
    else:
        lines = [f"A hole: {trace.hole_reason}.", *_views_sentences(trace.closest_views), setting.capitalize() + "."]
        picture = _hole_picture(rollout, trace)
    if rollout.memory_info[trace.memory].features == "color" and box is not None:
        lines.append(_block_sentence(rollout, trace.memory, trace.step, box))
    return MemoryTraceView(trace.memory, title, color, trace, picture, tuple(lines))


def _others_sentence(others: list) -> str:
    if not others:
        return "No other point landed in this cell."
    listed = ", ".join(
        f"step {c.step} at {c.depth:.2f} m" + (" (tied)" if c.tied and not c.dropped else "")
        + (" (dropped: off a seen ray)" if c.dropped else "") for c in others[:_OTHERS_LISTED])
    more = f" and {len(others) - _OTHERS_LISTED} more" if len(others) > _OTHERS_LISTED else ""
    count = f"{len(others)} other point{'s' if len(others) > 1 else ''} landed here"
    return f"{count} and lost: {listed}{more}."


def _views_sentences(views: tuple[EarlierView, ...]) -> list[str]:
    if not views:
        return ["No earlier camera to ask: this step's frame has no depth here, so its place is unknown."]
    return [f"The earlier cameras that came closest: {'; '.join(view.note for view in views)}."]


def _hole_picture(rollout: Rollout, trace: CellTrace) -> Tile:
    """A hole's picture: the earlier camera that came closest to seeing the place, the place marked (clamped to the
    frame's edge when it lands off it); without a place, this step's frame with the cell outlined."""
    scale = _scale_for(rollout, SOURCE_SIZE)
    seen = [view for view in trace.closest_views if view.pixel is not None]
    if not seen:
        record = rollout.records[trace.memory][trace.step]
        box = pixels_of_cell(rollout, trace.memory, trace.row, trace.col)
        image = _outlined(_enlarge(to_uint8_image(record.frame), scale), [tuple(v * scale for v in box)])
        reason = "no depth at this cell" if trace.place is None else "every earlier camera had the place behind it"
        return Tile(f"step {trace.step}: a hole", f"this step's frame, the cell outlined ({reason})", image)
    view = seen[0]
    record = rollout.records[trace.memory][view.step]
    frame = _enlarge(to_uint8_image(record.frame), scale)
    x, y = (view.pixel[0] + 0.5) * scale, (view.pixel[1] + 0.5) * scale  # display pixels, maybe off the frame
    if view.in_view:
        return Tile(f"step {view.step}: the closest earlier view", f"step {view.step}'s frame, the place marked",
                    _ring(frame, (x, y)))
    side = _side(view.pixel, tuple(record.frame.shape[-2:]))
    return Tile(f"step {view.step}: the closest earlier view",
                f"step {view.step}'s frame: the place lands {view.outside_px:.0f} px off its {side} (the arrow)",
                _edge_arrow(frame, (x, y)))


def _block_sentence(rollout: Rollout, memory: str, step: int, box: tuple[int, int, int, int]) -> str:
    """The pixels of a pixel memory's read under the latent cell ``box``: how many it covered, from which steps
    (the winners its own splat recorded, :attr:`StepRecord.source`)."""
    x0, y0, x1, y1 = box
    records = rollout.records[memory]
    source = records[step].source[y0:y1, x0:x1].reshape(-1).long()  # [n] winners of the read's splat, -1 in holes
    covered = source[source >= 0]
    steps = steps_of_points(rollout, memory, step, covered)  # the step whose write holds each winner
    found, many = torch.unique(steps, return_counts=True)
    parts = ", ".join(f"step {int(s)} ({int(n)})" for s, n in zip(found, many))
    total, holes = source.numel(), int((source < 0).sum())
    came = f"{covered.numel()} covered, from {parts}" if covered.numel() else "none covered"
    return (f"The {total} pixels under the same latent cell: {came}"
            f"{f'; {holes} hole' + ('s' if holes != 1 else '') if holes and covered.numel() else ''}.")


# -- drawing -----------------------------------------------------------------------------------------------------

def _latent_memory(rollout: Rollout) -> str:
    """The memory whose grid names a cell: the first memory holding latents, else the first memory."""
    holding = [name for name, info in rollout.memory_info.items() if info.features == "latent"]
    return holding[0] if holding else next(iter(rollout.records))


def _frame_size(rollout: Rollout) -> tuple[int, int]:
    if len(rollout) == 0:
        raise ValueError("the rollout has no steps yet")
    return tuple(next(iter(rollout.records.values()))[0].frame.shape[-2:])


def _scale_for(rollout: Rollout, size: int) -> int:
    return max(1, math.ceil(size / _frame_size(rollout)[1]))


def _enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    """(H, W, 3) -> (H * scale, W * scale, 3), each pixel a block."""
    return image if scale == 1 else np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def _outlined(image: np.ndarray, boxes: list[tuple[int, ...]]) -> np.ndarray:
    """``image`` with each box (x0, y0, x1, y1), x1 and y1 exclusive, outlined in yellow on a dark edge; a box under
    12 pixels gets a margin so that it stays visible."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(3, image.shape[1] // 128)
    for x0, y0, x1, y1 in boxes:
        grow = max(0, (12 - min(x1 - x0, y1 - y0)) // 2)
        x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
        draw.rectangle((x0 - width - 1, y0 - width - 1, x1 + width, y1 + width), outline=(0, 0, 0), width=1)
        draw.rectangle((x0 - width, y0 - width, x1 - 1 + width, y1 - 1 + width), outline=OUTLINE, width=width)
    return np.asarray(canvas)


def _ring(image: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """``image`` with a ring and a cross at ``centre`` (x, y) in the hole colour, on a dark edge."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    radius, width = max(8, image.shape[1] // 28), max(3, image.shape[1] // 128)
    x, y = centre
    for color, grow in (((0, 0, 0), 1), (HOLE_MARK, 0)):
        box = (x - radius - grow, y - radius - grow, x + radius + grow, y + radius + grow)
        draw.ellipse(box, outline=color, width=width + 2 * grow)
        draw.line((x - radius / 2 - grow, y, x + radius / 2 + grow, y), fill=color, width=width + 2 * grow)
        draw.line((x, y - radius / 2 - grow, x, y + radius / 2 + grow), fill=color, width=width + 2 * grow)
    return np.asarray(canvas)


def _edge_arrow(image: np.ndarray, target: tuple[float, float]) -> np.ndarray:
    """``image`` with an arrow in the hole colour from inside the frame to its edge, pointing at ``target`` (x, y),
    a point off the picture."""
    height, width = image.shape[:2]
    centre = np.array([width / 2, height / 2])
    direction = np.array(target, dtype=np.float64) - centre
    direction /= max(float(np.linalg.norm(direction)), 1e-9)
    reach = min((width / 2 - 4) / max(abs(direction[0]), 1e-9), (height / 2 - 4) / max(abs(direction[1]), 1e-9))
    tip = centre + direction * reach  # on the frame's edge, 4 px in
    length = max(24.0, width / 6)
    tail = tip - direction * length
    normal = np.array([-direction[1], direction[0]])
    head = [tuple(tip), tuple(tip - direction * length / 2.5 + normal * length / 4),
            tuple(tip - direction * length / 2.5 - normal * length / 4)]
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    line = max(3, width // 100)
    draw.line((*tail, *tip), fill=(0, 0, 0), width=line + 4)
    draw.polygon(head, fill=HOLE_MARK, outline=(0, 0, 0), width=2)
    draw.line((*tail, *(tip - direction * length / 3)), fill=HOLE_MARK, width=line)
    return np.asarray(canvas)


def _side(pixel: tuple[float, float], frame: tuple[int, int]) -> str:
    """Which edge of a frame (H, W) a pixel (x, y) off it lies beyond: "left edge", ..., "top-left corner"."""
    (x, y), (height, width) = pixel, frame
    vertical = "top" if y < -0.5 else "bottom" if y > height - 0.5 else ""
    horizontal = "left" if x < -0.5 else "right" if x > width - 0.5 else ""
    return f"{vertical}-{horizontal} corner" if vertical and horizontal else f"{vertical or horizontal} edge"


_STYLE = """<style>
.mv-trace{font-family:inherit;color:inherit}
.mv-trace .mv-heading{margin:2px 0 8px;font-size:15px;font-weight:600;line-height:1.3}
.mv-trace .mv-trace-grid{display:grid;grid-template-columns:repeat(var(--mv-columns),minmax(200px,1fr));gap:12px}
@media (max-width:900px){.mv-trace .mv-trace-grid{grid-template-columns:1fr}}
.mv-trace figure{margin:0;min-width:0}
.mv-trace .mv-title{font-size:14px;font-weight:600;line-height:1.3;overflow-wrap:anywhere}
.mv-trace .mv-caption{font-size:13px;line-height:1.3;opacity:.8;margin-bottom:4px;overflow-wrap:anywhere}
.mv-trace img{display:block;width:100%;max-width:420px;height:auto;border-radius:4px;background:#222;
 image-rendering:pixelated}
.mv-trace ul{margin:6px 0 0;padding-left:18px;font-size:14px;line-height:1.4}
.mv-trace li{margin:2px 0;overflow-wrap:anywhere}
.mv-trace .mv-note{font-size:13px;opacity:.8;margin:8px 0 0}
</style>"""


def _column_html(title: str, caption: str, image: np.ndarray | None, lines: tuple[str, ...], image_format: str,
                 picture_title: str = "") -> str:
    sub = f"{picture_title}: {caption}" if picture_title and caption else picture_title or caption
    parts = [f'<figure><div class="mv-title">{html.escape(title)}</div>']
    if sub:
        parts.append(f'<div class="mv-caption">{html.escape(sub)}</div>')
    if image is not None:
        parts.append(f'<img alt="{html.escape(sub or title)}" src="{image_data_uri(image, image_format)}">')
    if lines:
        parts.append("<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in lines if line) + "</ul>")
    parts.append("</figure>")
    return "".join(parts)
